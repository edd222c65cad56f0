package l1verify_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/l1verify"
	"github.com/lightcl/lightcl/safesource/quorum"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCanonicalOriginsPass(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	inner := remote(t, w.rollupNode(t).URL())
	l1 := count(testutil.DialL1(t, w.l1.URL()))
	s := wrap(t, inner, l1, l1verify.Config{})
	require.Equal(t, inner.Name()+"+l1verify", s.Name())

	want := w.heads(90, 100, 60, w.l1.Ref(20))
	got, err := s.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got)
	latest, finalized, byNumber, _ := l1.calls()
	require.Equal(t, []int{1, 1, 4}, []int{latest, finalized, byNumber},
		"a cold start reads the L1 head, L1 finality and the four distinct origins 15, 16, 10 and 20")

	for range 5 {
		got, err = s.Heads(ctx)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	latest, finalized, byNumber, _ = l1.calls()
	require.Equal(t, []int{6, 1, 4}, []int{latest, finalized, byNumber}, "warm: one L1 head read per call, nothing else")

	ref, err := s.L2BlockRefByNumber(ctx, 50)
	require.NoError(t, err)
	require.Equal(t, w.ref(50), ref, "lookups pass through to the inner source")

	st := s.Status()
	require.Equal(t, l1verify.ResultOK, st.LastResult)
	require.NoError(t, st.LastError)
	require.Equal(t, want, st.LastHeads)
	require.Equal(t, w.l1.Head(), st.L1.L1Head)
	require.Equal(t, w.l1.Finalized(), st.L1.L1Finalized)
}

func TestNonCanonicalOriginDropped(t *testing.T) {
	bad := common.Hash{0xba, 0xd}
	forge := func(r eth.L2BlockRef) eth.L2BlockRef {
		r.L1Origin.Hash = bad
		return r
	}
	tests := []struct {
		name   string
		edit   func(h *safesource.Heads)
		names  string // in the error
		height uint64 // the origin's height
	}{
		{"safe", func(h *safesource.Heads) { h.Safe = forge(h.Safe) }, "safe head 90", 15},
		{"local-safe", func(h *safesource.Heads) { h.LocalSafe = forge(h.LocalSafe) }, "local-safe head 100", 16},
		{"finalized", func(h *safesource.Heads) { h.Finalized = forge(h.Finalized) }, "finalized head 60", 10},
		{"current L1", func(h *safesource.Heads) { h.CurrentL1.Hash = bad }, "current L1 block 20", 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			h := w.heads(90, 100, 60, w.l1.Ref(20))
			tt.edit(&h)
			s := wrap(t, static(t, "pushed", h), testutil.DialL1(t, w.l1.URL()), l1verify.Config{})
			got, err := s.Heads(context.Background())
			require.ErrorIs(t, err, safesource.ErrL1Mismatch)
			require.Equal(t, safesource.Heads{}, got, "failed heads are never returned")
			require.ErrorContains(t, err, tt.names)
			require.ErrorContains(t, err, bad.Hex(), "the claimed hash")
			require.ErrorContains(t, err, w.l1.Ref(tt.height).Hash.Hex(), "the canonical hash")
			require.ErrorContains(t, err, "pushed+l1verify")
			require.Equal(t, l1verify.ResultL1Mismatch, s.Status().LastResult)
		})
	}

	t.Run("a remote on another L1 fork", func(t *testing.T) {
		w := newWorld(t)
		node := w.rollupNode(t)
		w.l1.Reorg(13, 1) // the remote's origins 15, 16 and current L1 20 are gone; 10 stays
		s := wrap(t, remote(t, node.URL()), testutil.DialL1(t, w.l1.URL()), l1verify.Config{})
		_, err := s.Heads(context.Background())
		require.ErrorIs(t, err, safesource.ErrL1Mismatch)
		for _, part := range []string{"safe head 90", "local-safe head 100", "current L1 block 20"} {
			require.ErrorContains(t, err, part)
		}
		require.NotContains(t, err.Error(), "finalized head", "the finalized head's origin is still canonical")
	})
}

func TestL1ReorgRemovingACachedOriginIsCaughtOnTheNextTick(t *testing.T) {
	tests := []struct {
		name  string
		reorg func(l1 *fakel1.L1)
	}{
		{"replaced at the same height", func(l1 *fakel1.L1) { l1.Reorg(14, 1) }},
		{"replaced, and L1 moved on", func(l1 *fakel1.L1) { l1.Reorg(14, 1); l1.Advance(3) }},
		{"replaced by a shorter fork", func(l1 *fakel1.L1) { l1.Reorg(14, 1); l1.SetHead(22) }},
		{"replaced by a fork one block longer", func(l1 *fakel1.L1) { l1.Reorg(14, 1); l1.Advance(1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t)
			s := wrap(t, remote(t, w.rollupNode(t).URL()), testutil.DialL1(t, w.l1.URL()), l1verify.Config{})
			_, err := s.Heads(ctx)
			require.NoError(t, err)
			_, err = s.Heads(ctx)
			require.NoError(t, err, "origins 15, 16 and current L1 20 are now cached")
			old := w.l1.Ref(15)

			tt.reorg(w.l1)
			got, err := s.Heads(ctx)
			require.ErrorIs(t, err, safesource.ErrL1Mismatch, "caught on the very next tick")
			require.Equal(t, safesource.Heads{}, got)
			require.ErrorContains(t, err, "safe head 90")
			require.ErrorContains(t, err, old.Hash.Hex())
			require.ErrorContains(t, err, w.l1.Ref(15).Hash.Hex())
			require.Equal(t, 1, s.Status().L1.L1Reorgs)
		})
	}

	t.Run("on a linked L1", func(t *testing.T) {
		ctx := context.Background()
		l1 := testutil.NewL1(t, fakel1.L1Config{Head: 40, Safe: 30, Finalized: 20, Linked: true})
		inner := static(t, "pushed", synthHeads(l1.Ref(32), l1.Ref(33), l1.Ref(20), l1.Ref(40)))
		s := wrap(t, inner, testutil.DialL1(t, l1.URL()), l1verify.Config{})
		for range 2 {
			_, err := s.Heads(ctx)
			require.NoError(t, err)
		}
		l1.Reorg(31, 1)
		l1.Advance(1) // a new head whose parent is not the old head
		_, err := s.Heads(ctx)
		require.ErrorIs(t, err, safesource.ErrL1Mismatch)
		require.ErrorContains(t, err, "safe head 195")
	})

	t.Run("a reorg above the origins keeps the heads", func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t)
		l1 := count(testutil.DialL1(t, w.l1.URL()))
		s := wrap(t, remote(t, w.rollupNode(t).URL()), l1, l1verify.Config{})
		want, err := s.Heads(ctx)
		require.NoError(t, err)
		before := l1.total()
		w.l1.Reorg(22, 1)
		got, err := s.Heads(ctx)
		require.NoError(t, err)
		require.Equal(t, want, got)
		require.Equal(t, 1, s.Status().L1.L1Reorgs)
		require.Equal(t, 1+4, l1.total()-before, "the L1 head, then the four origins again: the cache was dropped")

		w.l1.Reorg(22, 0) // the original chain again: nothing changes for the remote
		_, err = s.Heads(ctx)
		require.NoError(t, err)
	})
}

// TestFinalizedClaimedPastL1FinalityDroppedBeforeAnyIsVerified: a finalized
// claim ahead of L1's finality no longer drops the heads once a finalized
// head has been verified for the source (finalized is then held at it: see
// TestFinalizedHeldWhileL1FinalityLags). A fresh wrapper has none to hold at,
// and a zero finalized head would fail safesource.Heads.Check, so its first
// answer is still dropped, as before, and the error says why.
func TestFinalizedClaimedPastL1FinalityDroppedBeforeAnyIsVerified(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.l1.SetLabels(18, 8) // the remote's finalized head 60 has origin 10
	inner := remote(t, w.rollupNode(t).URL())
	s := wrap(t, inner, testutil.DialL1(t, w.l1.URL()), l1verify.Config{})
	got, err := s.Heads(ctx)
	require.ErrorIs(t, err, safesource.ErrAheadOfL1)
	require.Equal(t, safesource.Heads{}, got)
	require.ErrorContains(t, err, "finalized head 60")
	require.ErrorContains(t, err, "L1's finalized block 8")
	require.ErrorContains(t, err, "no finalized head verified yet")
	require.Equal(t, l1verify.ResultAheadOfL1, s.Status().LastResult)
	require.Zero(t, s.Status().VerifiedFinalized)

	w.l1.SetLabels(18, 10)
	_, err = s.Heads(ctx)
	require.NoError(t, err, "L1 finality caught up")

	w2 := newWorld(t)
	w2.l1.SetLabels(18, 8)
	skip := wrap(t, remote(t, w2.rollupNode(t).URL()), testutil.DialL1(t, w2.l1.URL()), l1verify.Config{SkipFinalityCheck: true})
	_, err = skip.Heads(ctx)
	require.NoError(t, err, "the finality check can be turned off")
}

func TestOriginAboveTheL1HeadDropped(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	node := w.rollupNode(t)
	w.l1.SetHead(14) // the remote's safe origin is 15, local-safe 16, current L1 20
	s := wrap(t, remote(t, node.URL()), testutil.DialL1(t, w.l1.URL()), l1verify.Config{})
	got, err := s.Heads(ctx)
	require.ErrorIs(t, err, safesource.ErrAheadOfL1)
	require.NotErrorIs(t, err, safesource.ErrL1Mismatch)
	require.Equal(t, safesource.Heads{}, got)
	require.ErrorContains(t, err, "safe head 90 (")
	require.ErrorContains(t, err, "above the L1 head 14")
	require.NotContains(t, err.Error(), "current L1", "a current L1 block above the L1 head is unknown here, not wrong")

	w.l1.SetHead(18)
	got, err = s.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, w.heads(90, 100, 60, eth.L1BlockRef{}), got, "the current L1 block 20 is above the L1 head 18: reported as unknown")
	require.Zero(t, s.Status().L1.L1Reorgs, "the L1 head moved from 14 to 18 on the same chain")
}

func TestL1Down(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	s := wrap(t, remote(t, w.rollupNode(t).URL()), testutil.DialL1(t, w.l1.URL()), l1verify.Config{Timeout: 200 * time.Millisecond})
	_, err := s.Heads(ctx)
	require.NoError(t, err)

	w.l1.Faults().HTTPStatus(500)
	got, err := s.Heads(ctx)
	require.ErrorIs(t, err, l1verify.ErrL1Unavailable)
	require.Equal(t, safesource.Heads{}, got, "heads that cannot be verified are not passed on")
	st := s.Status()
	require.Equal(t, l1verify.ResultL1Error, st.LastResult)
	require.ErrorIs(t, st.LastError, l1verify.ErrL1Unavailable, "status says why")
	require.ErrorContains(t, st.LastError, "reading the L1 head")
	require.Equal(t, 1, st.ConsecutiveErrors)

	w.l1.Faults().Clear()
	w.l1.Faults().Stall(5 * time.Second)
	start := time.Now()
	_, err = s.Heads(ctx)
	require.ErrorIs(t, err, l1verify.ErrL1Unavailable)
	require.Less(t, time.Since(start), 2*time.Second, "an L1 call is bounded by the configured timeout")
	require.Equal(t, 2, s.Status().ConsecutiveErrors)

	w.l1.Faults().Clear()
	_, err = s.Heads(ctx)
	require.NoError(t, err)
	require.Zero(t, s.Status().ConsecutiveErrors)
}

func TestInnerErrorPassesThrough(t *testing.T) {
	w := newWorld(t)
	boom := errors.New("boom")
	inner := &safesource.Func{SourceName: "fn", HeadsFn: func(context.Context) (safesource.Heads, error) { return safesource.Heads{}, boom }}
	s := wrap(t, inner, testutil.DialL1(t, w.l1.URL()), l1verify.Config{})
	_, err := s.Heads(context.Background())
	require.ErrorIs(t, err, boom)
	require.Equal(t, l1verify.ResultSourceError, s.Status().LastResult)
}

func TestQuorumOfVerifiedMembers(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	l1 := count(testutil.DialL1(t, w.l1.URL()))
	v, err := l1verify.New(l1, l1verify.Config{}, nil, nil)
	require.NoError(t, err)
	var nodes []*fakerollup.RollupNode
	var members []safesource.SafeHeadSource
	for range 3 {
		n := w.rollupNode(t)
		m, err := v.Wrap(remote(t, n.URL()))
		require.NoError(t, err)
		nodes, members = append(nodes, n), append(members, m)
	}
	q, err := quorum.New(quorum.Config{Threshold: 2}, members, nil, nil)
	require.NoError(t, err)
	h, err := q.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, w.ref(90), h.Safe)

	// one member reports its heads on L1 origins that are not canonical
	lie := func(n *fakerollup.RollupNode) {
		st := eth.SyncStatus{
			CurrentL1:   w.l1.Ref(20),
			UnsafeL2:    w.ref(120),
			SafeL2:      w.ref(90),
			LocalSafeL2: w.ref(100),
			FinalizedL2: w.ref(60),
		}
		st.SafeL2.L1Origin.Hash = common.Hash{0xba, 0xd}
		n.SetSyncStatus(st)
	}
	lie(nodes[2])
	const rounds = 20
	before := l1.total()
	for range rounds {
		h, err = q.Heads(ctx)
		require.NoError(t, err, "two verified members still agree")
		require.Equal(t, w.ref(90), h.Safe)
	}
	perRound := float64(l1.total()-before) / rounds
	t.Logf("quorum of 3 members sharing one verifier: %.2f L1 calls per round", perRound)
	require.LessOrEqual(t, perRound, 3.0, "at most one L1 head read per member; no origin is read again")
	st := q.Status()
	require.ErrorIs(t, st[2].LastError, safesource.ErrL1Mismatch, "the quorum sees why the lying member failed")

	lie(nodes[1])
	_, err = q.Heads(ctx)
	require.ErrorIs(t, err, quorum.ErrNoQuorum, "two members on a non-canonical L1 origin leave no quorum")
}

// TestSteadyStateCostsOneL1CallPerTick counts calls through op-service's
// sources.L1Client, whose reads are one request each: one L1 head read per
// tick, plus one finalized read each time L1 finality advances (1.004 calls
// per tick measured when it advances every 32 L1 blocks). RPCSource batches
// that read with the head's: see TestRPCSourceSteadyStateCostsOneRequestPerTick.
func TestSteadyStateCostsOneL1CallPerTick(t *testing.T) {
	for _, tt := range []struct {
		name            string
		finalityAdvance bool
	}{
		{"L1 finality still", false},
		{"L1 finality advancing every 32 L1 blocks", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l1 := testutil.NewL1(t, fakel1.L1Config{Head: 20, Linked: true})
			counted := count(testutil.DialL1(t, l1.URL()))
			var latest0, finalized0, byNumber0, total0, server0 int
			advances := steadyState(t, l1, counted, tt.finalityAdvance, func() {
				latest0, finalized0, byNumber0, total0 = counted.calls()
				server0 = serverCalls(l1)
			})
			latest, finalized, byNumber, total := counted.calls()
			avg := float64(total-total0) / steadyTicks
			t.Logf("steady state over %d ticks: %.3f L1 calls per tick (L1 head %d, L1 finalized %d, by number %d; L1 finality advanced %d times)",
				steadyTicks, avg, latest-latest0, finalized-finalized0, byNumber-byNumber0, advances)
			require.Equal(t, total-total0, serverCalls(l1)-server0, "the L1 node saw the same calls")
			require.Equal(t, steadyTicks, latest-latest0, "one L1 head read per tick")
			require.Zero(t, byNumber-byNumber0, "every origin was seen as the L1 head before: no lookups")
			require.Equal(t, advances, finalized-finalized0, "L1 finality is read once each time it advances")
			if tt.finalityAdvance {
				require.Positive(t, advances)
				require.LessOrEqual(t, avg, 1+float64(advances)/steadyTicks)
			} else {
				require.LessOrEqual(t, avg, 1.0)
			}
		})
	}
}

const (
	steadyWarmUp = 100
	steadyTicks  = 1000
)

// steadyState runs steadyTicks ticks (after steadyWarmUp to warm up) of a
// healthy follower verified through src against l1, a linked L1 that starts
// at block 20: the L1 head advances one block every 6 ticks (12 s L1 blocks,
// 2 s ticks), the source's safe and local-safe heads follow 10 and 9 L1
// blocks behind it, its current L1 block is the L1 head, and its finalized
// head's origin is L1's finalized block, which, with finalityAdvance, moves
// by a 32-block epoch at a time, 64 blocks behind the head. warm is called
// after the warm-up; steadyState returns how often L1 finality advanced in
// the ticks that follow.
func steadyState(t *testing.T, l1 *fakel1.L1, src l1verify.L1Source, finalityAdvance bool, warm func()) (advances int) {
	ctx := context.Background()
	inner := safesource.NewStatic("pushed", nil)
	s := wrap(t, inner, src, l1verify.Config{})
	tick := func(i int) {
		if i > 0 && i%6 == 0 {
			l1.Advance(1)
			if head := l1.Head().Number; finalityAdvance && head%32 == 0 && head >= 96 {
				l1.SetLabels(head-32, head-64)
				advances++
			}
		}
		head := l1.Head()
		require.NoError(t, inner.Set(synthHeads(l1.Ref(head.Number-10), l1.Ref(head.Number-9), l1.Finalized(), head)))
		h, err := s.Heads(ctx)
		require.NoError(t, err, "tick %d", i)
		require.Equal(t, head, h.CurrentL1)
	}
	for i := range steadyWarmUp {
		tick(i)
	}
	warm()
	advances = 0
	for i := steadyWarmUp; i < steadyWarmUp+steadyTicks; i++ {
		tick(i)
	}
	return advances
}

func TestConfigCheck(t *testing.T) {
	require.NoError(t, l1verify.Config{}.Check())
	require.NoError(t, l1verify.DefaultConfig().Check())
	require.ErrorContains(t, l1verify.Config{CacheSize: -1}.Check(), "CacheSize")
	require.ErrorContains(t, l1verify.Config{CacheSize: 3}.Check(), "CacheSize")
	require.ErrorContains(t, l1verify.Config{Timeout: -time.Second}.Check(), "Timeout")
	require.ErrorContains(t, l1verify.Config{MaxHeadAge: -time.Second}.Check(), "MaxHeadAge")
	require.NoError(t, l1verify.Config{MaxHeadAge: time.Minute}.Check())

	w := newWorld(t)
	l1 := testutil.DialL1(t, w.l1.URL())
	_, err := l1verify.Wrap(static(t, "x", w.heads(90, 100, 60, eth.L1BlockRef{})), l1, l1verify.Config{CacheSize: -1}, nil, nil)
	require.ErrorContains(t, err, "CacheSize", "a bad config is refused at construction")
	_, err = l1verify.New(l1, l1verify.Config{MaxHeadAge: -time.Second}, nil, nil)
	require.ErrorContains(t, err, "MaxHeadAge", "a bad config is refused at construction")
	_, err = l1verify.Wrap(nil, l1, l1verify.Config{}, nil, nil)
	require.Error(t, err)
	_, err = l1verify.Wrap(static(t, "x", w.heads(90, 100, 60, eth.L1BlockRef{})), nil, l1verify.Config{}, nil, nil)
	require.Error(t, err)
}

func TestL1HeadTracking(t *testing.T) {
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 40, Safe: 30, Finalized: 20, Linked: true})
	counted := count(testutil.DialL1(t, l1.URL()))
	inner := static(t, "pushed", synthHeads(l1.Ref(32), l1.Ref(33), l1.Ref(20), l1.Ref(40)))
	s := wrap(t, inner, counted, l1verify.Config{})
	_, err := s.Heads(ctx)
	require.NoError(t, err)

	steps := []struct {
		name   string
		l1     func()
		calls  int
		reorgs int
	}{
		{"the same head", func() {}, 1, 0},
		{"a child of the head", func() { l1.Advance(1) }, 1, 0},
		{"three blocks on: the old head is checked by number", func() { l1.Advance(3) }, 2, 0},
		{"the head replaced above the origins", func() { l1.Reorg(43, 1) }, 1 + 4, 1},
		{"a fork one block longer: the old head is checked by number", func() { l1.Reorg(42, 2); l1.Advance(1) }, 2 + 4, 2},
	}
	for _, st := range steps {
		st.l1()
		before := counted.total()
		_, err := s.Heads(ctx)
		require.NoError(t, err, st.name)
		require.Equal(t, st.calls, counted.total()-before, st.name)
		require.Equal(t, st.reorgs, s.Status().L1.L1Reorgs, st.name)
	}
}

// hookedL1 calls afterLatest once after the next read of the L1 head.
type hookedL1 struct {
	l1verify.L1Source
	afterLatest func()
}

func (h *hookedL1) L1BlockRefByLabel(ctx context.Context, label eth.BlockLabel) (eth.L1BlockRef, error) {
	ref, err := h.L1Source.L1BlockRefByLabel(ctx, label)
	if label == eth.Unsafe && h.afterLatest != nil {
		h.afterLatest()
		h.afterLatest = nil
	}
	return ref, err
}

// TestReorgAndBackWithinATick: L1 reorgs between a call's head read and its
// reads by number, then back to the same head before the next call. The
// blocks read from the passing fork contradict the source and must not stay
// cached: the next call, on the original chain again, passes.
func TestReorgAndBackWithinATick(t *testing.T) {
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 8, Linked: true})
	hooked := &hookedL1{L1Source: testutil.DialL1(t, l1.URL())}
	inner := safesource.NewStatic("pushed", nil)
	s := wrap(t, inner, hooked, l1verify.Config{SkipFinalityCheck: true})
	require.NoError(t, inner.Set(synthHeads(l1.Ref(1), l1.Ref(1), l1.Ref(0), l1.Ref(8))))
	_, err := s.Heads(ctx)
	require.NoError(t, err)

	// origins 4 and 5, not cached yet; L1 switches fork right after the head read
	require.NoError(t, inner.Set(synthHeads(l1.Ref(5), l1.Ref(5), l1.Ref(4), l1.Ref(8))))
	hooked.afterLatest = func() { l1.Reorg(3, 1) }
	_, err = s.Heads(ctx)
	require.ErrorIs(t, err, safesource.ErrL1Mismatch, "read on the passing fork")

	l1.Reorg(3, 0) // back to the same head as the last head read
	h, err := s.Heads(ctx)
	require.NoError(t, err, "the passing fork's blocks were not kept")
	require.Equal(t, uint64(5), h.Safe.L1Origin.Number)
}
