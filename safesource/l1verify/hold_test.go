package l1verify_test

import (
	"context"
	"sync"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/testlog"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/l1verify"
)

// checkCounts counts RecordCheck calls by result.
type checkCounts struct {
	l1verify.NoopMetrics

	mu     sync.Mutex
	counts map[string]int
}

func (c *checkCounts) RecordCheck(_, result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[result]++
}

func (c *checkCounts) of(result string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[result]
}

const heldMsg = "Finalized held at the last verified head"

// TestFinalizedHeldWhileL1FinalityLags is the regression test for issue 15
// item 8: a user L1 whose finalized tag lags the source's must not stall the
// safe head. Every origin is canonical and only the finalized claim is above
// L1's finalized block, so the heads pass with the source's safe and
// local-safe heads and finalized held at the last verified one; when L1's
// finality catches up, finalized advances.
func TestFinalizedHeldWhileL1FinalityLags(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t) // L1 finalized 12
	node := w.rollupNode(t)
	logger, logs := testlog.CaptureLogger(t, log.LevelInfo)
	metrics := &checkCounts{}
	s, err := l1verify.Wrap(remote(t, node.URL()), testutil.DialL1(t, w.l1.URL()), l1verify.Config{}, logger, metrics)
	require.NoError(t, err)

	got, err := s.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, w.heads(90, 100, 60, w.l1.Ref(20)), got, "finalized 60 (origin 10) is verified")
	require.Equal(t, w.ref(60), s.Status().VerifiedFinalized)

	// The source moves on: safe 100 (origin 16), local-safe 110 (origin 18),
	// finalized 84 (origin 14), while this L1's finality stays at 12.
	node.Follow(w.a[119], w.a[109], w.a[99], w.a[83], w.l1.Ref(22))
	want := safesource.Heads{Safe: w.ref(100), LocalSafe: w.ref(110), Finalized: w.ref(60), CurrentL1: w.l1.Ref(22)}
	for range 3 {
		got, err = s.Heads(ctx)
		require.NoError(t, err, "only the finalized claim is ahead of L1's finality: the safe head still passes")
		require.Equal(t, want, got, "the source's safe heads, with finalized held at the last verified head 60")
		require.NoError(t, got.Check(), "the held heads hang together")
	}
	st := s.Status()
	require.Equal(t, l1verify.ResultFinalizedHeld, st.LastResult)
	require.NoError(t, st.LastError)
	require.Zero(t, st.ConsecutiveErrors)
	require.Equal(t, want, st.LastHeads)
	require.Equal(t, w.ref(60), st.VerifiedFinalized)
	require.Equal(t, w.ref(84), st.HeldFinalizedClaim, "status says which claim is held back")
	require.Equal(t, 3, metrics.of(l1verify.ResultFinalizedHeld))
	require.Zero(t, metrics.of(l1verify.ResultAheadOfL1))
	rec := logs.FindLogs(testlog.NewMessageContainsFilter(heldMsg))
	require.Len(t, rec, 1, "logged once, not every call")
	require.EqualValues(t, 60, rec[0].AttrValue("held"))
	require.EqualValues(t, 84, rec[0].AttrValue("claimed"))
	require.EqualValues(t, 12, rec[0].AttrValue("l1_finalized"))

	// The adapter's decision core applies the held heads: safe moves to 100,
	// finalized stays at the local one (never backwards).
	for _, localFin := range []uint64{60, 72} {
		d := reorg.Decide(reorg.Input{
			Heads:         got,
			Local:         reorg.Local{Unsafe: w.ref(100), Safe: w.ref(90), Finalized: w.ref(localFin)},
			ELAtSafe:      reorg.Lookup{Ref: w.ref(100), Found: true},
			ELAtFinalized: reorg.Lookup{Ref: w.ref(60), Found: true},
			ELAtLocalSafe: reorg.Lookup{Ref: w.ref(90), Found: true},
		})
		require.Equal(t, reorg.Consolidate, d.Action, d.Reason)
		require.Equal(t, w.ref(100), d.Next.Safe, "safe applied while finalized is held")
		require.Equal(t, w.ref(localFin), d.Next.Finalized, "local finalized %d kept", localFin)
	}

	// L1's finality reaches the claim: finalized advances.
	w.l1.SetLabels(18, 14)
	got, err = s.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, w.ref(84), got.Finalized, "finalized advances once L1's finality catches up")
	require.Equal(t, w.ref(100), got.Safe)
	st = s.Status()
	require.Equal(t, l1verify.ResultOK, st.LastResult)
	require.Equal(t, w.ref(84), st.VerifiedFinalized)
	require.Zero(t, st.HeldFinalizedClaim)
	logs.RequireMessageContainedOnce(t, "Finalized verified again")

	// Ahead again: held at the new verified head 84, and logged again.
	node.Follow(w.a[119], w.a[119], w.a[109], w.a[101], w.l1.Ref(22)) // finalized 102, origin 17
	got, err = s.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, w.ref(84), got.Finalized)
	require.Equal(t, w.ref(110), got.Safe)
	require.Len(t, logs.FindLogs(testlog.NewMessageContainsFilter(heldMsg)), 2, "a new held claim is logged")
}

// TestFinalizedHeldOnlyForALag: holding finalized is for a claim that is
// merely ahead of L1's finality. A finalized head whose origin is not
// canonical is a lie and still drops the heads, even once a finalized head
// is verified; and a held head that does not fit the new heads is not used.
func TestFinalizedHeldOnlyForALag(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (world, *safesource.Static, *l1verify.Source) {
		w := newWorld(t)
		w.l1.SetLabels(18, 11)
		inner := static(t, "pushed", w.heads(90, 100, 71, w.l1.Ref(20))) // finalized 71, origin 11
		s := wrap(t, inner, testutil.DialL1(t, w.l1.URL()), l1verify.Config{})
		_, err := s.Heads(ctx)
		require.NoError(t, err)
		require.Equal(t, w.ref(71), s.Status().VerifiedFinalized)
		return w, inner, s
	}

	t.Run("a finalized origin not canonical, and ahead of L1 finality", func(t *testing.T) {
		w, inner, s := setup(t)
		h := w.heads(100, 110, 84, w.l1.Ref(20)) // finalized origin 14, above L1 finalized 11
		bad := common.Hash{0xba, 0xd}
		h.Finalized.L1Origin.Hash = bad
		require.NoError(t, inner.Set(h))
		got, err := s.Heads(ctx)
		require.ErrorIs(t, err, safesource.ErrL1Mismatch, "a lie, not a lag")
		require.Equal(t, safesource.Heads{}, got, "the whole answer is dropped")
		require.ErrorContains(t, err, "finalized head 84")
		require.ErrorContains(t, err, bad.Hex())
		require.Equal(t, l1verify.ResultL1Mismatch, s.Status().LastResult)
	})

	t.Run("the held head does not link to the new safe head", func(t *testing.T) {
		w, inner, s := setup(t)
		fork := w.tree.Extend(w.a[69].Hash(), 2, 7) // 71' and 72' on block 70
		f72 := w.tree.Ref(fork[1])                  // origin 12, above L1 finalized 11
		require.NoError(t, inner.Set(safesource.Heads{Safe: f72, LocalSafe: f72, Finalized: f72}))
		got, err := s.Heads(ctx)
		require.ErrorIs(t, err, safesource.ErrAheadOfL1)
		require.Equal(t, safesource.Heads{}, got)
		require.ErrorContains(t, err, "the last verified finalized head 71")
		require.ErrorContains(t, err, "does not fit the heads")
		require.Equal(t, l1verify.ResultAheadOfL1, s.Status().LastResult)
	})

	t.Run("the held head is not below the claim", func(t *testing.T) {
		w, inner, s := setup(t)
		claim := w.ref(70)
		claim.Hash = common.Hash{0x70} // another chain's block 70, on origin 12
		claim.L1Origin = w.l1.Ref(12).ID()
		require.NoError(t, inner.Set(safesource.Heads{Safe: w.ref(100), LocalSafe: w.ref(110), Finalized: claim}))
		got, err := s.Heads(ctx)
		require.ErrorIs(t, err, safesource.ErrAheadOfL1)
		require.Equal(t, safesource.Heads{}, got)
		require.ErrorContains(t, err, "is not below the claim")
	})

}

// TestFinalizedHeldAtGenesisBeforeAnyIsVerified: with Config.Genesis, a
// finalized claim ahead of L1's finality from the very first answer holds
// finalized at the L2 genesis block, and the safe head goes through.
func TestFinalizedHeldAtGenesisBeforeAnyIsVerified(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.l1.SetLabels(18, 8) // the remote's finalized head 60 has origin 10
	genesis := w.tree.Ref(w.tree.Genesis())
	s := wrap(t, remote(t, w.rollupNode(t).URL()), testutil.DialL1(t, w.l1.URL()), l1verify.Config{Genesis: genesis})
	got, err := s.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, genesis, got.Finalized, "finalized held at genesis")
	require.NotZero(t, got.Safe.Number, "the safe head goes through")
	require.NoError(t, got.Check())
	require.Equal(t, l1verify.ResultFinalizedHeld, s.Status().LastResult)

	w.l1.SetLabels(18, 10)
	got, err = s.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(60), got.Finalized.Number, "L1 finality caught up")
}

// TestFinalizedHeldAtEachChainsGenesis: one verifier serves several chains on
// its L1. Each source wrapped with WrapChain holds a finalized claim ahead of
// L1's finality at its own chain's genesis, not at Config.Genesis (which a
// source wrapped with Wrap still uses), and each passes its own finalized head
// once L1's finality catches up.
func TestFinalizedHeldAtEachChainsGenesis(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.l1.SetLabels(18, 8) // every chain's finalized origin below is above 8
	treeGenesis := w.tree.Ref(w.tree.Genesis())
	synthGenesis := eth.L2BlockRef{Hash: synthHash(0), Time: fakechain.GenesisTime, L1Origin: w.l1.Ref(0).ID()}
	configGenesis := eth.L2BlockRef{Hash: common.Hash{0xc0, 0xf1, 0x6}, Time: fakechain.GenesisTime, L1Origin: w.l1.Ref(0).ID()}
	v, err := l1verify.New(testutil.DialL1(t, w.l1.URL()), l1verify.Config{Genesis: configGenesis}, nil, nil)
	require.NoError(t, err)

	chains := []struct {
		name    string
		heads   safesource.Heads
		genesis eth.L2BlockRef // for WrapChain; zero: wrapped with Wrap
		want    eth.L2BlockRef // finalized held at
	}{
		{"the Tree's chain, with its genesis", w.heads(90, 100, 60, w.l1.Ref(20)), treeGenesis, treeGenesis},
		{"a synthetic chain, with its genesis", synthHeads(w.l1.Ref(15), w.l1.Ref(16), w.l1.Ref(10), w.l1.Ref(20)), synthGenesis, synthGenesis},
		{"a chain wrapped with Wrap: Config.Genesis", synthHeads(w.l1.Ref(13), w.l1.Ref(14), w.l1.Ref(9), w.l1.Ref(20)), eth.L2BlockRef{}, configGenesis},
	}
	srcs := make([]*l1verify.Source, len(chains))
	for i, c := range chains {
		inner := static(t, c.name, c.heads)
		if c.genesis == (eth.L2BlockRef{}) {
			srcs[i], err = v.Wrap(inner)
		} else {
			srcs[i], err = v.WrapChain(inner, l1verify.Chain{Genesis: c.genesis})
		}
		require.NoError(t, err, c.name)
		require.Same(t, v, srcs[i].Verifier(), c.name)
	}

	for i, c := range chains {
		got, err := srcs[i].Heads(ctx)
		require.NoError(t, err, c.name)
		require.Equal(t, c.want, got.Finalized, "%s: finalized held at its own genesis", c.name)
		require.Equal(t, c.heads.Safe, got.Safe, "%s: the safe head goes through", c.name)
		require.NoError(t, got.Check(), c.name)
		st := srcs[i].Status()
		require.Equal(t, l1verify.ResultFinalizedHeld, st.LastResult, c.name)
		require.Equal(t, c.heads.Finalized, st.HeldFinalizedClaim, c.name)
	}

	w.l1.SetLabels(18, 10)
	for i, c := range chains {
		got, err := srcs[i].Heads(ctx)
		require.NoError(t, err, c.name)
		require.Equal(t, c.heads, got, "%s: L1 finality caught up, its own finalized head passes", c.name)
		require.Equal(t, l1verify.ResultOK, srcs[i].Status().LastResult, c.name)
	}
}

// TestWrapChainWithoutGenesis: WrapChain with a zero genesis is Wrap: with no
// Config.Genesis either, a finalized claim ahead of L1's finality before any
// is verified has nothing to be held at, and the heads are dropped.
func TestWrapChainWithoutGenesis(t *testing.T) {
	w := newWorld(t)
	w.l1.SetLabels(18, 8)
	v, err := l1verify.New(testutil.DialL1(t, w.l1.URL()), l1verify.Config{}, nil, nil)
	require.NoError(t, err)
	s, err := v.WrapChain(static(t, "pushed", w.heads(90, 100, 60, w.l1.Ref(20))), l1verify.Chain{})
	require.NoError(t, err)
	got, err := s.Heads(context.Background())
	require.ErrorIs(t, err, safesource.ErrAheadOfL1)
	require.ErrorContains(t, err, "no genesis set")
	require.Equal(t, safesource.Heads{}, got)

	_, err = v.WrapChain(nil, l1verify.Chain{Genesis: w.tree.Ref(w.tree.Genesis())})
	require.Error(t, err, "a nil inner source is refused")
}
