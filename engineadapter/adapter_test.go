package engineadapter_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource"
)

// Tags name the chains of a test Tree: a is the main chain, b forks from it
// above the finalized head, c below it.
const (
	tagA = 1
	tagB = 2
	tagC = 3
)

func TestSteadyFollowing(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, tagA)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.elHas(a[19], tree.Genesis(), tree.Genesis()) // unsafe 20, nothing safe yet

	for _, h := range []struct{ safe, fin uint64 }{{4, 1}, {10, 4}, {12, 10}, {20, 12}} {
		r.src.follow(a[29], h.safe, h.fin)
		require.NoError(t, r.step())
		unsafe, safe, fin := r.labels()
		require.Equal(t, r.ref(a[19]), unsafe, "consolidation keeps the unsafe head")
		require.Equal(t, r.ref(a[h.safe-1]), safe)
		require.Equal(t, r.ref(a[h.fin-1]), fin)
		st := r.a.Status()
		require.Equal(t, safe, st.Safe)
		require.Equal(t, fin, st.Finalized)
		require.NoError(t, st.LastError)
	}
	// nothing changed: no further forkchoice update
	n := len(r.el.ForkchoiceUpdates())
	require.NoError(t, r.step())
	require.Len(t, r.el.ForkchoiceUpdates(), n)
	require.Equal(t, "hold", r.a.Status().LastAction)
	require.Contains(t, r.eventKinds(), engineadapter.SafeAdvanced)
	require.Contains(t, r.eventKinds(), engineadapter.FinalizedAdvanced)
	r.checkInvariants()
}

func TestSourceBehindNeverMovesBackwards(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, tagA)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.elHas(a[19], a[14], a[9]) // safe 15, finalized 10

	r.src.follow(a[29], 12, 6)
	require.NoError(t, r.step())
	_, safe, fin := r.labels()
	require.Equal(t, r.ref(a[14]), safe)
	require.Equal(t, r.ref(a[9]), fin)
	require.Empty(t, r.el.ForkchoiceUpdates(), "a lagging source sends nothing")
}

func TestCatchUpByELSync(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 40, tagA)
	r := newRig(t, tree, fakeel.ELConfig{Peer: tree, SyncDelay: time.Hour})
	r.elHas(a[4], a[2], a[0]) // unsafe 5
	r.src.follow(a[39], 30, 20)

	// the engine lacks block 30: it answers SYNCING and the labels stay
	require.NoError(t, r.step())
	require.True(t, r.a.Status().Syncing)
	require.Equal(t, engineadapter.EngineSyncing, r.events[len(r.events)-1].Kind)
	_, safe, _ := r.labels()
	require.Equal(t, r.ref(a[2]), safe)
	fc := r.el.ForkchoiceUpdates()
	require.Len(t, fc, 1)
	require.Equal(t, eth.ForkchoiceState{HeadBlockHash: a[29].Hash(), SafeBlockHash: a[29].Hash(), FinalizedBlockHash: a[0].Hash()}, fc[0])

	// still syncing: the same target is sent again next tick
	require.NoError(t, r.step())
	require.Len(t, r.el.ForkchoiceUpdates(), 2)
	require.Equal(t, fc[0], r.el.ForkchoiceUpdates()[1])
	r.checkInvariants()
}

func TestCatchUpCompletes(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 40, tagA)
	r := newRig(t, tree, fakeel.ELConfig{Peer: tree}) // synced by the next request
	r.elHas(a[4], a[2], a[0])
	r.src.follow(a[39], 30, 20)

	require.NoError(t, r.step()) // SYNCING, the engine fetches 6..30
	require.NoError(t, r.step()) // the engine has 30: consolidate, finalized moves too
	unsafe, safe, fin := r.labels()
	require.Equal(t, r.ref(a[29]), unsafe)
	require.Equal(t, r.ref(a[29]), safe)
	require.Equal(t, r.ref(a[19]), fin)
	require.False(t, r.a.Status().Syncing)
	r.checkInvariants()
}

// stalledIndex hides the engine's blocks above a height from reads by number, as
// an engine in the middle of a sync that already moved its head does.
type stalledIndex struct {
	engineadapter.Engine
	above uint64
}

func (s stalledIndex) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	if n > s.above {
		return eth.L2BlockRef{}, ethereum.NotFound
	}
	return s.Engine.L2BlockRefByNumber(ctx, n)
}

func TestELStillSyncingMovesSafeLabelOnly(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, tagA)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.elHas(a[19], a[4], a[0])
	ad, err := engineadapter.New(engineadapter.DefaultConfig(), stalledIndex{r.engine, 10}, r.src, nil, nil)
	require.NoError(t, err)
	r.src.follow(a[29], 15, 8)

	d, err := ad.Step(context.Background())
	require.NoError(t, err)
	require.Equal(t, reorg.SafeLabelOnly, d.Action, d.Reason)
	st := ad.Status()
	require.Equal(t, r.ref(a[14]), st.Safe)
	require.Equal(t, r.ref(a[19]), st.Unsafe, "unsafe left alone")
	require.Equal(t, r.ref(a[0]), st.Finalized)
	require.Empty(t, r.el.ForkchoiceUpdates(), "nothing sent while the engine lacks the block")
}

func TestDivergenceAtSafeHeightReorgs(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 20, tagA)
	b := tree.Extend(a[11].Hash(), 10, tagB) // b[i] is block 13+i
	r := newRig(t, tree, fakeel.ELConfig{Peer: tree})
	r.elHas(a[19], a[9], a[4]) // unsafe 20, safe 10, finalized 5
	r.src.follow(b[9], 16, 5)  // the source's safe 16 is on b

	require.NoError(t, r.step())
	if r.a.Status().Syncing { // the engine fetched b from its peer
		require.NoError(t, r.step())
	}
	unsafe, safe, fin := r.labels()
	require.Equal(t, r.ref(b[3]), unsafe, "unsafe reset to the source's safe head")
	require.Equal(t, r.ref(b[3]), safe)
	require.Equal(t, r.ref(a[4]), fin)

	var reorged *engineadapter.Event
	for i := range r.events {
		if r.events[i].Kind == engineadapter.Reorged {
			reorged = &r.events[i]
		}
	}
	require.NotNil(t, reorged, "a reorg event is reported")
	require.Equal(t, uint64(8), reorged.Depth, "20 - common ancestor 12")
	require.Equal(t, r.ref(a[11]), reorged.Decision.Ancestor)
	r.checkInvariants()
}

func TestFinalizedConflictHalts(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 20, tagA)
	c := tree.Extend(a[2].Hash(), 20, tagC) // c forks after block 3
	r := newRig(t, tree, fakeel.ELConfig{Peer: tree})
	r.elHas(a[19], a[9], a[4]) // finalized 5

	for _, tc := range []struct {
		name      string
		safe, fin uint64
	}{
		{"source finalized at the local finalized height", 15, 5},
		{"source finalized below local finalized", 15, 4},
		{"source finalized above, chain leaves finalized below", 18, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.src.follow(c[19], tc.safe, tc.fin)
			err := r.step()
			require.ErrorIs(t, err, engineadapter.ErrHalted)
			require.True(t, r.a.Status().Halted)
			require.Equal(t, engineadapter.Halted, r.events[len(r.events)-1].Kind)
			require.Empty(t, r.el.ForkchoiceUpdates(), "no forkchoice update on a finalized conflict")
			_, _, fin := r.labels()
			require.Equal(t, r.ref(a[4]), fin)
		})
	}
	// the source comes back to the finalized chain: the halt clears
	r.src.follow(a[19], 12, 6)
	require.NoError(t, r.step())
	require.False(t, r.a.Status().Halted)
	_, safe, _ := r.labels()
	require.Equal(t, r.ref(a[11]), safe)
}

func TestSourceErrorsAndInconsistentHeadsAreSkipped(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 20, tagA)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.elHas(a[19], a[9], a[4])

	boom := errors.New("remote: connection refused")
	r.src.fail(boom)
	err := r.step()
	require.ErrorIs(t, err, boom)
	require.ErrorIs(t, r.a.Status().LastError, boom)
	require.Equal(t, engineadapter.SourceFailed, r.events[len(r.events)-1].Kind)

	// a source whose finalized is above its safe
	bad := &safesource.Func{SourceName: "liar", HeadsFn: func(context.Context) (safesource.Heads, error) {
		return safesource.Heads{Safe: r.ref(a[11]), LocalSafe: r.ref(a[11]), Finalized: r.ref(a[13])}, nil
	}}
	ad, err := engineadapter.New(engineadapter.DefaultConfig(), r.engine, bad, nil, nil)
	require.NoError(t, err)
	_, err = ad.Step(context.Background())
	require.ErrorIs(t, err, safesource.ErrInconsistentHeads)
	require.Empty(t, r.el.ForkchoiceUpdates())
	_, safe, fin := r.labels()
	require.Equal(t, r.ref(a[9]), safe)
	require.Equal(t, r.ref(a[4]), fin)
}

func TestEngineAnswersSyncing(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 20, tagA)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.elHas(a[19], a[4], a[0])
	r.src.follow(a[19], 12, 6)

	r.el.SetForceSyncing(true)
	require.NoError(t, r.step())
	require.True(t, r.a.Status().Syncing)
	require.Equal(t, r.ref(a[4]), r.a.Status().Safe, "labels wait for VALID")

	r.el.SetForceSyncing(false)
	require.NoError(t, r.step())
	require.False(t, r.a.Status().Syncing)
	require.Equal(t, r.ref(a[11]), r.a.Status().Safe)
	fcs := r.el.ForkchoiceUpdates()
	require.Len(t, fcs, 2)
	require.Equal(t, fcs[0], fcs[1], "the SYNCING target is retried as it was")
}

func TestEngineAnswersInvalid(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 20, tagA)
	b := tree.Extend(a[11].Hash(), 10, tagB)
	r := newRig(t, tree, fakeel.ELConfig{Peer: tree})
	r.elHas(a[19], a[9], a[4])
	r.el.MarkInvalid(b[3].Hash()) // block 16 on b
	r.src.follow(b[9], 16, 5)

	err := r.step()
	require.Error(t, err)
	require.Equal(t, engineadapter.EngineInvalid, r.events[len(r.events)-1].Kind)
	n := len(r.el.ForkchoiceUpdates())
	require.Equal(t, 1, n)

	for range 3 {
		require.Error(t, r.step())
	}
	require.Len(t, r.el.ForkchoiceUpdates(), n, "an INVALID head is never sent again")
	require.Equal(t, "skip", r.a.Status().LastAction)
	unsafe, safe, _ := r.labels()
	require.Equal(t, r.ref(a[19]), unsafe)
	require.Equal(t, r.ref(a[9]), safe)
}

func TestAdapterRestartMidway(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, tagA)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.elHas(a[24], tree.Genesis(), tree.Genesis())
	r.src.follow(a[29], 15, 10)
	require.NoError(t, r.step())

	// a new adapter on the same engine starts from the engine's labels
	r.a = r.newAdapter()
	r.src.follow(a[29], 14, 6) // the source now lags behind what was applied
	require.NoError(t, r.step())
	st := r.a.Status()
	require.Equal(t, r.ref(a[14]), st.Safe)
	require.Equal(t, r.ref(a[9]), st.Finalized, "a source lagging after a restart does not move finalized back")

	r.src.follow(a[29], 20, 12)
	require.NoError(t, r.step())
	_, safe, fin := r.labels()
	require.Equal(t, r.ref(a[19]), safe)
	require.Equal(t, r.ref(a[11]), fin)
	r.checkInvariants()
}

func TestEngineLosesBlocks(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, tagA)
	r := newRig(t, tree, fakeel.ELConfig{Peer: tree})
	r.elHas(a[24], a[14], a[9])
	r.src.follow(a[29], 20, 12)
	require.NoError(t, r.step())

	r.el.DropAbove(17) // a restart that lost its unflushed blocks
	require.NoError(t, r.step())
	require.NoError(t, r.step())
	_, safe, fin := r.labels()
	require.Equal(t, r.ref(a[19]), safe)
	require.Equal(t, r.ref(a[11]), fin)
	r.checkInvariants()
}

func TestUnauthenticatedEngineIsRefused(t *testing.T) {
	tree := fakechain.NewTree()
	el := testutil.NewEL(t, tree, fakeel.ELConfig{JWTSecret: fakeel.NewJWTSecret()})
	cfg := testutilEngineConfig(tree)
	wrong := testutil.DialEngine(t, el.URL(), fakeel.NewJWTSecret(), cfg)
	src := newChainSource(tree)
	ad, err := engineadapter.New(engineadapter.DefaultConfig(), wrong, src, nil, nil)
	require.NoError(t, err)
	_, err = ad.Step(context.Background())
	require.ErrorContains(t, err, "401")
}

func TestRunStopsCleanly(t *testing.T) {
	// registered first, so it runs after the rig's servers and clients are closed
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, tagA)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.elHas(a[24], tree.Genesis(), tree.Genesis())
	r.src.follow(a[29], 20, 10)

	cfg := engineadapter.DefaultConfig()
	cfg.PollInterval = 10 * time.Millisecond
	ad, err := engineadapter.New(cfg, r.engine, r.src, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ad.Run(ctx) }()
	require.Eventually(t, func() bool {
		_, safe, _ := r.labels()
		return safe.Number == 20
	}, 10*time.Second, 10*time.Millisecond)
	r.src.follow(a[29], 25, 20)
	require.Eventually(t, func() bool {
		_, _, fin := r.labels()
		return fin.Number == 20
	}, 10*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	r.checkInvariants()
}

func TestConfigCheck(t *testing.T) {
	require.NoError(t, engineadapter.DefaultConfig().Check())
	require.NoError(t, engineadapter.Config{}.Check(), "zero values mean defaults")
	bad := engineadapter.DefaultConfig()
	bad.PollInterval = -time.Second
	require.ErrorContains(t, bad.Check(), "PollInterval")
	bad = engineadapter.DefaultConfig()
	bad.SyncMode = reorg.Backfill
	require.ErrorContains(t, bad.Check(), "Payloads")
	_, err := engineadapter.New(bad, nil, nil, nil, nil)
	require.Error(t, err)
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestDivergenceWithForkAlreadyInEngine(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 20, tagA)
	b := tree.Extend(a[11].Hash(), 10, tagB)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.el.Insert(tree.Chain(b[9].Hash())...) // the engine saw b, e.g. by gossip
	r.elHas(a[19], a[9], a[4])
	r.src.follow(b[9], 16, 5)

	d, err := r.a.Step(context.Background())
	require.NoError(t, err)
	require.Equal(t, reorg.Reorg, d.Action, d.Reason)
	require.Equal(t, uint64(8), d.Depth)
	unsafe, safe, _ := r.labels()
	require.Equal(t, r.ref(b[3]), unsafe)
	require.Equal(t, r.ref(b[3]), safe)
	require.Equal(t, []engineadapter.EventKind{engineadapter.Reorged, engineadapter.SafeAdvanced}, r.eventKinds())
	r.checkInvariants()
}

func TestFreshEngineWithoutLabels(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 20, tagA)
	r := newRig(t, tree, fakeel.ELConfig{FreshLabels: true}) // answers "safe block not found", as a fresh op-geth
	r.el.Insert(a...)
	r.el.Gossip(tree, a[19].Hash())
	_, safe, fin := r.labels()
	require.Zero(t, safe)
	require.Zero(t, fin)

	r.src.follow(a[19], 10, 5)
	require.NoError(t, r.step())
	_, safe, fin = r.labels()
	require.Equal(t, r.ref(a[9]), safe)
	require.Equal(t, r.ref(a[4]), fin)
	r.checkInvariants()
}

func TestEngineLosesBlocksBelowFinalized(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, tagA)
	c := tree.Extend(a[4].Hash(), 30, tagC) // forks after block 5, below finalized 10
	r := newRig(t, tree, fakeel.ELConfig{Peer: tree})
	r.elHas(a[24], a[14], a[9]) // finalized 10
	r.src.follow(a[29], 15, 10)
	require.NoError(t, r.step())

	r.el.DropAbove(7) // lost blocks below the finalized head
	sent := len(r.el.ForkchoiceUpdates())

	// a source on a chain without block 10 is never followed
	r.src.follow(c[20], 20, 12)
	for range 3 {
		err := r.step()
		require.ErrorIs(t, err, engineadapter.ErrHalted)
		require.Equal(t, r.ref(a[9]), r.a.Status().Finalized, "finalized is kept though the engine lost it")
	}
	require.Len(t, r.el.ForkchoiceUpdates(), sent, "nothing sent towards the other chain")

	// the honest source: the engine catches up to a chain holding finalized 10
	r.src.follow(a[29], 20, 12)
	for range 3 {
		_ = r.step()
	}
	_, safe, fin := r.labels()
	require.Equal(t, r.ref(a[19]), safe)
	require.Equal(t, r.ref(a[11]), fin)
	r.checkInvariants()
}

// TestSteadyTickReadsTheEngineOnce: while neither the source nor the engine
// changes, a tick costs one request to the source and one engine read, its
// head as a header; a new engine head makes the next tick read the head and
// the heights again, whole.
func TestSteadyTickReadsTheEngineOnce(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, tagA)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.elHas(a[19], tree.Genesis(), tree.Genesis())
	r.src.follow(a[29], 12, 6) // safe and finalized at different heights
	require.NoError(t, r.step())
	require.NoError(t, r.step())

	reads := func(from int) (headers, whole int) { return blockReads(t, r.el.Calls()[from:]) }
	r.src.mu.Lock()
	calls0 := r.src.calls
	r.src.mu.Unlock()
	from := len(r.el.Calls())
	const ticks = 100
	for range ticks {
		require.NoError(t, r.step())
	}
	r.src.mu.Lock()
	sourceCalls := r.src.calls - calls0
	r.src.mu.Unlock()
	headers, whole := reads(from)
	t.Logf("%d steady ticks: %.2f engine header reads, %.2f whole block reads and %.2f source requests per tick",
		ticks, float64(headers)/ticks, float64(whole)/ticks, float64(sourceCalls)/ticks)
	require.Equal(t, [2]int{ticks, 0}, [2]int{headers, whole}, "one engine read (the head's header) per tick")
	require.Equal(t, ticks, sourceCalls, "one source request per tick")

	// the engine moves on: the next tick reads the heights again, once
	r.el.Insert(tree.Chain(a[20].Hash())...)
	r.el.SetForkchoice(a[20].Hash(), a[11].Hash(), a[5].Hash())
	from = len(r.el.Calls())
	require.NoError(t, r.step())
	headers, whole = reads(from)
	require.Equal(t, [2]int{1, 3}, [2]int{headers, whole}, "the head's header, the new head, and the blocks at the source's safe and finalized heights")
	from = len(r.el.Calls())
	require.NoError(t, r.step())
	headers, whole = reads(from)
	require.Equal(t, [2]int{1, 0}, [2]int{headers, whole})
	r.checkInvariants()
}

// TestEngineThatLostItsStateIsForgiven: an engine that lost its state calls
// the source's blocks INVALID (op-geth: "links to previously rejected block")
// and the adapter stops sending them. After the engine restarts below the safe
// label, the adapter raises an alarm, forgets those answers for the blocks
// the source vouches for, and converges.
func TestEngineThatLostItsStateIsForgiven(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 40, tagA)
	r := newRig(t, tree, fakeel.ELConfig{Peer: tree})
	r.elHas(a[9], tree.Genesis(), tree.Genesis())
	r.src.follow(a[39], 10, 5)
	require.NoError(t, r.step())

	// the engine, without its state, rejects the source's next safe head, which
	// it is sent as head to catch up to
	r.el.MarkInvalid(a[14].Hash())
	r.src.follow(a[39], 15, 5)
	require.Error(t, r.step())
	require.Error(t, r.step(), "the head the engine called INVALID is not sent again")
	_, safe, _ := r.labels()
	require.Equal(t, uint64(10), safe.Number)

	// it restarts, back below the safe label, and no longer rejects the block
	r.el.DropAbove(8)
	r.el.ForgetInvalid()
	for range 4 {
		_ = r.step()
	}
	_, safe, fin := r.labels()
	require.Equal(t, r.ref(a[14]), safe, "converged on the source's safe head")
	require.Equal(t, r.ref(a[4]), fin)
	r.checkInvariants()
}

// TestEngineThatWentBackDropsWhatItHeldAbove: an engine that comes back from
// an unclean stop with its head rewound below the safe label but its blocks
// kept above it (op-geth with its default storage after SIGKILL) is told once
// to drop them (Config.Drop, debug_setHead to its head), and is caught up.
func TestEngineThatWentBackDropsWhatItHeldAbove(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 40, tagA)
	r := newRig(t, tree, fakeel.ELConfig{NoAuth: true, Debug: true, Peer: tree})
	cfg := engineadapter.DefaultConfig()
	cfg.Drop = engineadapter.DebugSetHead{RPC: testutil.DialNoAuth(t, r.el.URL(), 5*time.Second)}
	var err error
	r.a, err = engineadapter.New(cfg, r.engine, r.src, nil, nil)
	require.NoError(t, err)
	r.elHas(a[19], a[9], a[4])
	r.src.follow(a[39], 15, 5)
	require.NoError(t, r.step())
	require.Zero(t, r.el.CallCount("debug_setHead"), "nothing to drop while the engine is on the safe chain")

	// the unclean stop: its head is back at block 6, the blocks above it kept
	r.el.ForceLabels(a[5].Hash(), tree.Genesis().Hash(), tree.Genesis().Hash())
	require.True(t, r.el.Has(a[10].Hash()))
	for range 4 {
		_ = r.step()
	}
	require.Equal(t, 1, r.el.CallCount("debug_setHead"), "told once, when it went back")
	var params []string
	for _, c := range r.el.Calls() {
		if c.Method == "debug_setHead" {
			require.NoError(t, json.Unmarshal(c.Params, &params))
		}
	}
	require.Equal(t, []string{"0x6"}, params, "to its head block")
	_, safe, fin := r.labels()
	require.Equal(t, r.ref(a[14]), safe, "caught up to the source's safe head")
	require.Equal(t, r.ref(a[4]), fin)

	// an engine that goes back again, holding nothing above: the drop is
	// asked for again, and its refusal is no error
	r.el.DropAbove(3)
	for range 4 {
		_ = r.step()
	}
	require.Equal(t, 2, r.el.CallCount("debug_setHead"))
	_, safe, _ = r.labels()
	require.Equal(t, r.ref(a[14]), safe)
	r.checkInvariants()
}

// TestSafeAdvancedCarriesTheSourceHeads: the event of a tick that moved safe
// carries the source's answer it applied (a safe-head database pairs the safe
// head with the answer's CurrentL1).
func TestSafeAdvancedCarriesTheSourceHeads(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, tagA)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.elHas(a[19], tree.Genesis(), tree.Genesis())
	r.src.follow(a[29], 15, 5)
	require.NoError(t, r.step())
	var got []engineadapter.Event
	for _, e := range r.events {
		if e.Kind == engineadapter.SafeAdvanced {
			got = append(got, e)
		}
	}
	require.Len(t, got, 1)
	require.Equal(t, r.ref(a[14]), got[0].New.Safe)
	require.Equal(t, r.ref(a[14]), got[0].Heads.Safe, "the source's answer the tick applied")
	require.Equal(t, r.ref(a[4]), got[0].Heads.Finalized)
}
