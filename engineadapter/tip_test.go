package engineadapter_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/reorg"
)

// treeFeed is a tip feed over the test's Tree: it serves any of its blocks by
// hash, and Run delivers what the test pushes. It can stall or lie.
type treeFeed struct {
	tree    *fakechain.Tree
	push    chan *types.Block
	mu      sync.Mutex
	fetched int
	stall   bool
	lie     *types.Block // served for every PayloadByHash when set
}

var _ engineadapter.TipFeed = (*treeFeed)(nil)

func newTreeFeed(tree *fakechain.Tree) *treeFeed {
	return &treeFeed{tree: tree, push: make(chan *types.Block, 64)}
}

func (f *treeFeed) Name() string { return "test-feed" }

func (f *treeFeed) Run(ctx context.Context, out chan<- *eth.ExecutionPayloadEnvelope) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-f.push:
			env, err := f.envelope(b)
			if err != nil {
				return err
			}
			select {
			case out <- env:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

func (f *treeFeed) PayloadByHash(ctx context.Context, hash common.Hash) (*eth.ExecutionPayloadEnvelope, error) {
	f.mu.Lock()
	f.fetched++
	stall, lie := f.stall, f.lie
	f.mu.Unlock()
	if stall {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if lie != nil {
		return f.envelope(lie)
	}
	b, ok := f.tree.Block(hash)
	if !ok {
		return nil, errors.New("not found")
	}
	return f.envelope(b)
}

func (f *treeFeed) envelope(b *types.Block) (*eth.ExecutionPayloadEnvelope, error) {
	return eth.BlockAsPayloadEnv(b, f.tree.RollupConfig())
}

func (f *treeFeed) fetches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetched
}

// tipRig is a rig whose adapter has a tip feed, and whose engine follows
// chain a to 20 with safe 10 and finalized 5 (set through one tick).
type tipRig struct {
	*rig
	feed *treeFeed
	a, b []*types.Block // b forks off a after block 12 (above safe)
}

func newTipRig(t *testing.T, mode reorg.SyncMode) *tipRig {
	tree := fakechain.NewTree()
	r := &tipRig{rig: newRig(t, tree, fakeel.ELConfig{Peer: tree})}
	r.a = tree.Extend(tree.Genesis().Hash(), 40, tagA)
	r.b = append(append([]*types.Block{}, r.a[:12]...), tree.Extend(r.a[11].Hash(), 20, tagB)...)
	r.feed = newTreeFeed(tree)
	cfg := engineadapter.DefaultConfig()
	cfg.Tip, cfg.TipWindow, cfg.SourceTimeout = r.feed, 16, 200*time.Millisecond
	if mode == reorg.Backfill {
		_, payloads := provider(t, tree, r.a)
		cfg.SyncMode, cfg.Payloads = reorg.Backfill, payloads
	}
	a, err := engineadapter.New(cfg, r.engine, r.src, nil, nil)
	require.NoError(t, err)
	a.OnEvent(func(e engineadapter.Event) { r.events = append(r.events, e) })
	r.rig.a = a
	r.elHas(r.a[19], r.tree.Genesis(), r.tree.Genesis())
	r.src.follow(r.a[39], 10, 5)
	require.NoError(t, r.step())
	unsafe, safe, fin := r.labels()
	require.Equal(t, [3]uint64{20, 10, 5}, [3]uint64{unsafe.Number, safe.Number, fin.Number})
	return r
}

// tip hands block b (a[n-1] is block n) to the adapter as a feed would.
func (r *tipRig) tip(b *types.Block) (reorg.TipDecision, error) {
	env, err := r.feed.envelope(b)
	require.NoError(r.t, err)
	return r.rig.a.Tip(context.Background(), env)
}

// requireLabels checks the engine's head, and that safe and finalized are
// still 10 and 5: nothing from the tip path moves them.
func (r *tipRig) requireHead(head *types.Block) {
	r.t.Helper()
	unsafe, safe, fin := r.labels()
	require.Equal(r.t, r.ref(head), unsafe, "engine head")
	require.Equal(r.t, r.ref(r.a[9]), safe, "safe untouched by the tip path")
	require.Equal(r.t, r.ref(r.a[4]), fin, "finalized untouched by the tip path")
	r.checkInvariants()
}

func TestTipExtendsTheHeadWithOnePayloadAndOneForkchoice(t *testing.T) {
	r := newTipRig(t, reorg.ELSync)
	before := len(r.el.Calls())
	for n := 21; n <= 25; n++ {
		d, err := r.tip(r.a[n-1])
		require.NoError(t, err)
		require.Equal(t, reorg.TipInsert, d.Action, d.Reason)
		r.requireHead(r.a[n-1])
	}
	calls := r.el.Calls()[before:]
	methods := map[string]int{}
	for _, c := range calls {
		methods[strings.TrimRight(c.Method, "V0123456789")]++ // the Engine API version is the client's choice
	}
	require.Equal(t, map[string]int{"engine_newPayload": 5, "engine_forkchoiceUpdated": 5}, methods,
		"per tip block: one newPayload, one forkchoice update, nothing else")
	require.Zero(t, r.feed.fetches(), "no parent fetched")
	st := r.rig.a.Status().Tip
	require.Equal(t, uint64(5), st.Inserted)
	require.Equal(t, r.a[24].Hash(), st.Head.Hash)
	require.False(t, st.Failing)
}

// TestTickAfterATipReadsTheWholeHead: the adapter knows a tip block from its
// payload, without its L1 origin; the next tick reads the engine's head whole
// (not as a header), and the tick after that as a header.
func TestTickAfterATipReadsTheWholeHead(t *testing.T) {
	r := newTipRig(t, reorg.ELSync)
	d, err := r.tip(r.a[20])
	require.NoError(t, err)
	require.Equal(t, reorg.TipInsert, d.Action, d.Reason)
	from := len(r.el.Calls())
	require.NoError(t, r.rig.step())
	headers, whole := blockReads(t, r.el.Calls()[from:])
	require.Equal(t, 0, headers)
	require.GreaterOrEqual(t, whole, 1)
	require.Equal(t, r.rig.ref(r.a[20]), r.rig.a.Status().Unsafe, "the whole ref, L1 origin included")
	from = len(r.el.Calls())
	require.NoError(t, r.rig.step())
	headers, whole = blockReads(t, r.el.Calls()[from:])
	require.Equal(t, [2]int{1, 0}, [2]int{headers, whole})
}

func TestTipWithAGapFetchesTheMissingParents(t *testing.T) {
	r := newTipRig(t, reorg.ELSync)
	d, err := r.tip(r.a[25]) // block 26: 21..25 missing
	require.NoError(t, err)
	require.Equal(t, reorg.TipInsert, d.Action, d.Reason)
	require.Equal(t, 5, r.feed.fetches())
	r.requireHead(r.a[25])
	require.Equal(t, 6, r.el.CallCount("engine_newPayloadV2"))
}

func TestTipOnAForkAboveSafeIsFollowed(t *testing.T) {
	r := newTipRig(t, reorg.ELSync)
	d, err := r.tip(r.b[15]) // block 16 of b, which forks off a after 12
	require.NoError(t, err)
	require.Equal(t, reorg.TipInsert, d.Action, d.Reason)
	require.Equal(t, uint64(8), d.Depth, "blocks 13..20 of a abandoned")
	r.requireHead(r.b[15])
	last := r.events[len(r.events)-1]
	require.Equal(t, engineadapter.UnsafeAdvanced, last.Kind)
	require.Equal(t, uint64(8), last.Depth)
}

func TestTipNotDescendingFromSafeIsIgnored(t *testing.T) {
	r := newTipRig(t, reorg.ELSync)
	c := r.tree.Extend(r.a[7].Hash(), 20, 3) // forks off a after 8, below safe 10
	for _, b := range []*types.Block{c[1], c[5], r.a[9], r.a[3], r.a[14]} {
		d, err := r.tip(b)
		require.NoError(t, err)
		require.Equal(t, reorg.TipIgnore, d.Action, "block %d: %s", b.NumberU64(), d.Reason)
	}
	r.requireHead(r.a[19])
	require.Zero(t, r.el.CallCount("engine_newPayloadV2"))
	require.Equal(t, uint64(5), r.rig.a.Status().Tip.Ignored)
}

func TestTipTheEngineCallsInvalidIsDroppedForGood(t *testing.T) {
	r := newTipRig(t, reorg.ELSync)
	r.el.MarkInvalid(r.a[20].Hash())
	_, err := r.tip(r.a[20])
	require.Error(t, err)
	require.True(t, r.rig.a.Status().Tip.Failing)
	require.Contains(t, r.eventKinds(), engineadapter.EngineInvalid)
	r.requireHead(r.a[19])

	// neither it nor a descendant is sent again
	calls := r.el.CallCount("engine_newPayloadV2")
	for _, b := range []*types.Block{r.a[20], r.a[21]} {
		d, err := r.tip(b)
		require.NoError(t, err)
		require.Equal(t, reorg.TipIgnore, d.Action, d.Reason)
	}
	require.Equal(t, calls, r.el.CallCount("engine_newPayloadV2"))
}

func TestTipFeedThatLiesAboutParentsIsFailing(t *testing.T) {
	r := newTipRig(t, reorg.ELSync)
	r.feed.lie = r.b[21] // any parent asked for is answered with this block
	_, err := r.tip(r.a[23])
	require.ErrorIs(t, err, engineadapter.ErrTipFeed)
	require.True(t, r.rig.a.Status().Tip.Failing)
	r.requireHead(r.a[19])
	require.Zero(t, r.el.CallCount("engine_newPayloadV2"))
}

func TestTipFarAheadSyncsOrWaits(t *testing.T) {
	t.Run("EL sync: forkchoice to the tip", func(t *testing.T) {
		r := newTipRig(t, reorg.ELSync)
		d, err := r.tip(r.a[39]) // 20 blocks ahead, window 16
		require.NoError(t, err)
		require.Equal(t, reorg.TipSync, d.Action, d.Reason)
		require.Equal(t, 15, r.feed.fetches(), "fetches stop at the window of 16 blocks, the tip included")
		require.Equal(t, r.a[39].Hash(), r.el.ForkchoiceUpdates()[len(r.el.ForkchoiceUpdates())-1].HeadBlockHash)
	})
	t.Run("backfill: waits for the safe path", func(t *testing.T) {
		r := newTipRig(t, reorg.Backfill)
		d, err := r.tip(r.a[39])
		require.NoError(t, err)
		require.Equal(t, reorg.TipIgnore, d.Action, d.Reason)
		r.requireHead(r.a[19])
	})
}

// TestSafeRuleWinsOverTheTip: the tip feed's fork above safe is followed, then
// the source calls a block of the other chain safe: the safe path reorgs to
// it, and the feed's fork is ignored from then on.
func TestSafeRuleWinsOverTheTip(t *testing.T) {
	r := newTipRig(t, reorg.ELSync)
	_, err := r.tip(r.b[15])
	require.NoError(t, err)
	r.requireHead(r.b[15])

	r.src.follow(r.a[39], 15, 5)
	d, err := r.rig.a.Step(context.Background())
	require.NoError(t, err)
	require.Equal(t, reorg.Reorg, d.Action, d.Reason)
	unsafe, safe, _ := r.labels()
	require.Equal(t, r.ref(r.a[14]), safe)
	require.Equal(t, r.ref(r.a[14]), unsafe)

	td, err := r.tip(r.b[16])
	require.NoError(t, err)
	require.Equal(t, reorg.TipIgnore, td.Action, td.Reason)
	td, err = r.tip(r.a[15])
	require.NoError(t, err)
	require.Equal(t, reorg.TipInsert, td.Action, td.Reason)
	r.checkInvariants()
}

// TestRunWithAStalledFeedFollowsSafe: a feed that delivers a tip whose
// parents it then never serves costs the safe path at most one source timeout
// per tip; safe and finalized keep following, and no goroutine outlives Run.
func TestRunWithAStalledFeedFollowsSafe(t *testing.T) {
	// registered first, so it runs after the rig's servers and clients are closed
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	r := newTipRig(t, reorg.ELSync)
	r.feed.stall = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.rig.a.Run(ctx) }()
	for n := 25; n <= 35; n++ {
		r.feed.push <- r.a[n+2] // a gap: its parents stall
	}
	r.src.follow(r.a[39], 18, 12)
	require.Eventually(t, func() bool {
		_, safe, fin := r.labels()
		return safe.Number == 18 && fin.Number == 12
	}, 10*time.Second, 20*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
}

// TestRunFollowsTheFeedsTip: Run takes the feed's blocks between ticks.
func TestRunFollowsTheFeedsTip(t *testing.T) {
	r := newTipRig(t, reorg.ELSync)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.rig.a.Run(ctx) }()
	for n := 21; n <= 30; n++ {
		r.feed.push <- r.a[n-1]
	}
	require.Eventually(t, func() bool {
		unsafe, _, _ := r.labels()
		return unsafe.Number == 30
	}, 10*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	r.requireHead(r.a[29])
}

// TestTickOnTip: with TickOnTip a tip block taken is followed by a tick at
// once, so the source's new safe head lands without waiting for a poll; without
// it the labels wait for the next poll.
func TestTickOnTip(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[on], func(t *testing.T) {
			r := newTipRig(t, reorg.ELSync)
			cfg := engineadapter.DefaultConfig()
			cfg.Tip, cfg.TickOnTip, cfg.PollInterval = r.feed, on, time.Hour // no poll in this test's time
			a, err := engineadapter.New(cfg, r.engine, r.src, nil, nil)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			require.Eventually(t, func() bool { return a.Status().Ticks == 1 }, 5*time.Second, 10*time.Millisecond)

			r.src.follow(r.a[39], 15, 8) // the remote's labels move with its new head
			r.feed.push <- r.a[20]
			require.Eventually(t, func() bool {
				u, _, _ := r.labels()
				return u.Number == 21
			}, 5*time.Second, 10*time.Millisecond)
			if on {
				require.Eventually(t, func() bool {
					_, safe, fin := r.labels()
					return safe.Number == 15 && fin.Number == 8
				}, 5*time.Second, 10*time.Millisecond, "labels moved right after the tip")
			} else {
				time.Sleep(300 * time.Millisecond)
				_, safe, _ := r.labels()
				require.Equal(t, uint64(10), safe.Number, "labels wait for the next poll")
			}
			cancel()
			require.NoError(t, <-done)
		})
	}
}

// announcingFeed is a treeFeed that announces its heads, and holds each
// pushed block back until the test releases it (the payload "being fetched").
type announcingFeed struct {
	*treeFeed
	announced chan struct{}
	release   chan struct{}
}

func (f *announcingFeed) Announcements() <-chan struct{} { return f.announced }

func (f *announcingFeed) Run(ctx context.Context, out chan<- *eth.ExecutionPayloadEnvelope) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-f.push:
			f.announced <- struct{}{}
			select {
			case <-f.release:
			case <-ctx.Done():
				return nil
			}
			env, err := f.envelope(b)
			if err != nil {
				return err
			}
			select {
			case out <- env:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// TestTickOnTipStartsAtTheAnnouncement: with a feed that announces its heads,
// TickOnTip's tick starts when the head is announced, before its payload is
// there: the source's new labels land while the tip is still being fetched,
// and no second tick follows the tip.
func TestTickOnTipStartsAtTheAnnouncement(t *testing.T) {
	r := newTipRig(t, reorg.ELSync)
	feed := &announcingFeed{treeFeed: r.feed, announced: make(chan struct{}, 1), release: make(chan struct{})}
	cfg := engineadapter.DefaultConfig()
	cfg.Tip, cfg.TickOnTip, cfg.PollInterval = feed, true, time.Hour // no poll in this test's time
	a, err := engineadapter.New(cfg, r.engine, r.src, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	require.Eventually(t, func() bool { return a.Status().Ticks == 1 }, 5*time.Second, 10*time.Millisecond)

	r.src.follow(r.a[39], 15, 8) // the remote's labels move with its new head
	r.feed.push <- r.a[20]
	require.Eventually(t, func() bool {
		_, safe, fin := r.labels()
		return safe.Number == 15 && fin.Number == 8
	}, 5*time.Second, 10*time.Millisecond, "labels moved at the announcement")
	u, _, _ := r.labels()
	require.EqualValues(t, 20, u.Number, "the tip is still being fetched")
	require.Eventually(t, func() bool { return a.Status().Ticks == 2 }, 5*time.Second, time.Millisecond,
		"the tick that moved the labels ends (its status comes after the engine's answer)")

	feed.release <- struct{}{}
	require.Eventually(t, func() bool {
		u, _, _ := r.labels()
		return u.Number == 21
	}, 5*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	require.EqualValues(t, 2, a.Status().Ticks, "the tip starts no tick of its own")
	cancel()
	require.NoError(t, <-done)
}

// TestTipWhileTheEngineSyncsToAnotherSafeHead: the source moves safe onto a
// chain that forks below local safe, the engine answers SYNCING, and later
// reaches that chain by itself. A tip on the engine's new chain does not hold
// local safe: it is not sent with it (the engine would refuse the state);
// the next tick settles the labels. Found by the simulation (seed 35).
func TestTipWhileTheEngineSyncsToAnotherSafeHead(t *testing.T) {
	r := newTipRig(t, reorg.ELSync)
	c := append(append([]*types.Block{}, r.a[:8]...), r.tree.Extend(r.a[7].Hash(), 20, 3)...) // forks after 8
	r.el.SetForceSyncing(true)
	r.src.follow(c[19], 12, 5)
	d, err := r.rig.a.Step(context.Background())
	require.NoError(t, err)
	require.Equal(t, reorg.Reorg, d.Action, d.Reason)
	require.True(t, r.rig.a.Status().Syncing)

	// the engine gets there on its own
	r.el.SetForceSyncing(false)
	r.el.Insert(c[:16]...)
	r.el.ForceLabels(c[15].Hash(), r.a[9].Hash(), r.a[4].Hash())
	fcus := len(r.el.ForkchoiceUpdates())
	td, err := r.tip(c[16])
	require.NoError(t, err)
	require.Equal(t, reorg.TipIgnore, td.Action, td.Reason)
	require.Len(t, r.el.ForkchoiceUpdates(), fcus, "nothing sent with a safe head the tip does not hold")
}

// TestTickOnTipReadsNothingItKnows: the tick that TickOnTip starts after a
// tip extended the head reads neither the head it just set nor blocks the
// tip path inserted or had read: a new head costs the tip's newPayload and
// forkchoice update, the source's heads, and the tick's forkchoice update.
func TestTickOnTipReadsNothingItKnows(t *testing.T) {
	r := newTipRig(t, reorg.ELSync)
	cfg := engineadapter.DefaultConfig()
	cfg.Tip, cfg.TickOnTip, cfg.PollInterval = r.feed, true, time.Hour
	a, err := engineadapter.New(cfg, r.engine, r.src, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	require.Eventually(t, func() bool { return a.Status().Ticks == 1 }, 5*time.Second, 10*time.Millisecond)
	// one block so that the remembered blocks are the tip path's
	r.src.follow(r.a[39], 10, 5)
	r.feed.push <- r.a[20]
	require.Eventually(t, func() bool { return a.Status().Ticks == 2 }, 5*time.Second, 10*time.Millisecond)

	for n := 22; n <= 26; n++ {
		before := len(r.el.Calls())
		r.src.follow(r.a[39], uint64(n-1), 5) // safe moves to the block before the new head
		r.feed.push <- r.a[n-1]
		ticks := uint64(n - 19)
		require.Eventually(t, func() bool {
			_, safe, _ := r.labels()
			return a.Status().Ticks == ticks && safe.Number == uint64(n-1)
		}, 5*time.Second, 10*time.Millisecond)
		methods := map[string]int{}
		for _, c := range r.el.Calls()[before:] {
			methods[strings.TrimRight(c.Method, "V0123456789")]++
		}
		require.Equal(t, map[string]int{"engine_newPayload": 1, "engine_forkchoiceUpdated": 2}, methods, "block %d", n)
	}
	cancel()
	require.NoError(t, <-done)
	r.checkInvariants()
}
