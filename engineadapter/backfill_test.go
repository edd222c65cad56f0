package engineadapter_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/reorg"
)

// provider serves chain (to its head) from a public in-memory EL through
// op-service's L2Client, as a remote EL would.
func provider(t *testing.T, tree *fakechain.Tree, chain []*types.Block) (*fakeel.EL, *sources.L2Client) {
	el := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true})
	el.Insert(chain...)
	el.SetForkchoice(chain[len(chain)-1].Hash(), tree.Genesis().Hash(), tree.Genesis().Hash())
	rpc, err := client.NewRPC(context.Background(), log.NewLogger(log.DiscardHandler()), el.URL())
	require.NoError(t, err)
	t.Cleanup(rpc.Close)
	l2, err := sources.NewL2Client(rpc, log.NewLogger(log.DiscardHandler()), nil, sources.L2ClientDefaultConfig(tree.RollupConfig(), false))
	require.NoError(t, err)
	return el, l2
}

func (r *rig) backfillAdapter(p engineadapter.PayloadProvider, window int) *engineadapter.Adapter {
	cfg := engineadapter.DefaultConfig()
	cfg.SyncMode, cfg.Payloads, cfg.BackfillWindow = reorg.Backfill, p, window
	a, err := engineadapter.New(cfg, r.engine, r.src, nil, nil)
	require.NoError(r.t, err)
	a.OnEvent(func(e engineadapter.Event) { r.events = append(r.events, e) })
	return a
}

// backfillRig is a rig whose adapter backfills (window blocks at a time) from
// a provider holding chain a of n blocks; its engine holds genesis only and has
// no peer, so EL sync could not work.
func backfillRig(t *testing.T, n, window int) ([]*types.Block, *rig) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), n, tagA)
	_, payloads := provider(t, tree, a)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.a = r.backfillAdapter(payloads, window)
	return a, r
}

func TestBackfillCatchUp(t *testing.T) {
	a, r := backfillRig(t, 120, 16)
	r.src.follow(a[119], 100, 80)

	d, err := r.a.Step(context.Background())
	require.NoError(t, err)
	require.Equal(t, reorg.CatchUp, d.Action)
	unsafe, safe, fin := r.labels()
	require.Equal(t, r.ref(a[99]), unsafe)
	require.Equal(t, r.ref(a[99]), safe)
	require.Equal(t, r.tree.Ref(r.tree.Genesis()), fin, "finalized moves once the engine holds it")
	require.Equal(t, 100, r.el.CallCount("engine_newPayloadV2"), "each block inserted once")
	require.Equal(t, 7, len(r.el.ForkchoiceUpdates()), "six checkpoints every 16 blocks, then the update")

	require.NoError(t, r.step())
	_, _, fin = r.labels()
	require.Equal(t, r.ref(a[79]), fin)

	// the engine's head is the source's safe block the catch-up went to, a
	// whole ref: a tick reads it as a header
	from := len(r.el.Calls())
	require.NoError(t, r.step())
	headers, whole := blockReads(t, r.el.Calls()[from:])
	require.Equal(t, [2]int{1, 0}, [2]int{headers, whole})
	r.checkInvariants()
}

// TestBackfillOneBlockAtATimeReadsNoEngineBlocks: a follower without a tip
// feed backfills each new safe block as it comes; once its finalized head is
// a block it labelled safe before, a tick reads the engine's head (a header)
// and nothing else of it: the blocks under the old head stay known under the
// new one, which the backfill linked to it.
func TestBackfillOneBlockAtATimeReadsNoEngineBlocks(t *testing.T) {
	a, r := backfillRig(t, 120, 16)
	r.src.follow(a[59], 50, 30)
	require.NoError(t, r.step())
	for i := uint64(1); i <= 40; i++ {
		r.src.follow(a[59+i], 50+i, 30+i)
		from := len(r.el.Calls())
		d, err := r.a.Step(context.Background())
		require.NoError(t, err)
		require.Equal(t, reorg.CatchUp, d.Action, d.Reason)
		headers, whole := blockReads(t, r.el.Calls()[from:])
		if i > 21 { // finalized 30+i was labelled safe at tick i-20
			require.Equal(t, [2]int{1, 0}, [2]int{headers, whole}, "tick %d: the head's header only", i)
		}
		unsafe, safe, fin := r.labels()
		require.Equal(t, r.ref(a[49+i]), unsafe)
		require.Equal(t, r.ref(a[49+i]), safe)
		require.Equal(t, r.ref(a[29+i]), fin)
	}
	r.checkInvariants()
}

func TestBackfillReorg(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 20, tagA)
	b := tree.Extend(a[11].Hash(), 10, tagB) // b[i] is block 13+i
	_, payloads := provider(t, tree, tree.Chain(b[9].Hash()))
	r := newRig(t, tree, fakeel.ELConfig{})
	r.elHas(a[19], a[9], a[4])
	r.a = r.backfillAdapter(payloads, 4)
	r.src.follow(b[9], 18, 5)

	d, err := r.a.Step(context.Background())
	require.NoError(t, err)
	require.Equal(t, reorg.Reorg, d.Action)
	require.Equal(t, uint64(13), d.BackfillFrom)
	require.Equal(t, uint64(18), d.BackfillTo)
	unsafe, safe, _ := r.labels()
	require.Equal(t, r.ref(b[5]), unsafe)
	require.Equal(t, r.ref(b[5]), safe)
	require.Equal(t, 6, r.el.CallCount("engine_newPayloadV2"))
	r.checkInvariants()
}

func TestBackfillStopsAtInvalid(t *testing.T) {
	a, r := backfillRig(t, 60, 8)
	r.el.MarkInvalid(a[29].Hash()) // block 30
	r.src.follow(a[59], 50, 10)

	_, err := r.a.Step(context.Background())
	require.ErrorIs(t, err, engineadapter.ErrBackfillInvalid)
	require.Contains(t, r.eventKinds(), engineadapter.EngineInvalid)
	sent := r.el.CallCount("engine_newPayloadV2")
	require.Equal(t, 30, sent, "blocks 1..29 VALID, 30 INVALID, nothing after it")

	for range 3 {
		_, err = r.a.Step(context.Background())
		require.Error(t, err)
	}
	require.Equal(t, sent, r.el.CallCount("engine_newPayloadV2"), "a target above an INVALID block is not tried again")
	unsafe, safe, _ := r.labels()
	require.Equal(t, r.ref(a[23]), unsafe, "the last checkpoint before the INVALID block")
	require.Equal(t, r.tree.Ref(r.tree.Genesis()), safe)
}

func TestBackfillWaitsForTheProvider(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 40, tagA)
	remote, payloads := provider(t, tree, a[:30]) // the provider is 10 blocks behind the source
	r := newRig(t, tree, fakeel.ELConfig{})
	r.a = r.backfillAdapter(payloads, 8)
	r.src.follow(a[39], 40, 10)

	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(300 * time.Millisecond)
		remote.Insert(a[30:]...)
		remote.SetForkchoice(a[39].Hash(), tree.Genesis().Hash(), tree.Genesis().Hash())
	}()
	_, err := r.a.Step(context.Background())
	<-done
	require.NoError(t, err)
	_, safe, _ := r.labels()
	require.Equal(t, r.ref(a[39]), safe)
}

func TestBackfillProviderOnAnotherChain(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, tagA)
	c := tree.Extend(a[9].Hash(), 20, tagC)
	_, payloads := provider(t, tree, tree.Chain(c[19].Hash()))
	r := newRig(t, tree, fakeel.ELConfig{})
	r.a = r.backfillAdapter(payloads, 8)
	r.src.follow(a[29], 25, 5)

	_, err := r.a.Step(context.Background())
	require.ErrorContains(t, err, "not on the source's chain")
	unsafe, safe, _ := r.labels()
	require.Equal(t, r.tree.Ref(r.tree.Genesis()), safe)
	require.LessOrEqual(t, unsafe.Number, uint64(10), "the engine's head never moves onto the provider's fork")
	r.checkInvariants()
}

// switchable is a PayloadProvider whose backing provider a test can replace.
type switchable struct {
	mu sync.Mutex
	p  engineadapter.PayloadProvider
}

func (s *switchable) set(p engineadapter.PayloadProvider) { s.mu.Lock(); s.p = p; s.mu.Unlock() }

func (s *switchable) PayloadByNumber(ctx context.Context, n uint64) (*eth.ExecutionPayloadEnvelope, error) {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	return p.PayloadByNumber(ctx, n)
}

func TestBackfillInvalidOnTheProvidersForkDoesNotRejectTheSource(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, tagA)
	c := tree.Extend(a[9].Hash(), 20, tagC) // c[2] is block 13 on the provider's fork
	_, bad := provider(t, tree, tree.Chain(c[19].Hash()))
	_, good := provider(t, tree, a)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.el.MarkInvalid(c[2].Hash())
	p := &switchable{p: bad}
	r.a = r.backfillAdapter(p, 8)
	r.src.follow(a[29], 25, 5)

	_, err := r.a.Step(context.Background())
	require.ErrorIs(t, err, engineadapter.ErrBackfillInvalid)
	p.set(good)
	require.NoError(t, r.step(), "the source's head is still eligible")
	_, safe, _ := r.labels()
	require.Equal(t, r.ref(a[24]), safe)
	r.checkInvariants()
}

func TestBackfillNeverResendsAnInvalidBlock(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 80, tagA)
	_, payloads := provider(t, tree, a)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.el.MarkInvalid(a[29].Hash()) // block 30
	cfg := engineadapter.DefaultConfig()
	cfg.SyncMode, cfg.Payloads, cfg.BackfillWindow, cfg.RejectedCacheSize = reorg.Backfill, payloads, 8, 4
	ad, err := engineadapter.New(cfg, r.engine, r.src, nil, nil)
	require.NoError(t, err)
	for safe := uint64(40); safe < 70; safe++ { // the source advances every tick: many rejected targets
		r.src.follow(a[79], safe, 10)
		_, _ = ad.Step(context.Background())
	}
	sent := 0
	for _, c := range r.el.Calls() {
		if strings.HasPrefix(c.Method, "engine_newPayload") && strings.Contains(string(c.Params), a[29].Hash().Hex()[2:]) {
			sent++
		}
	}
	require.Equal(t, 1, sent, "the INVALID block was sent once, whatever the rejected-cache size")
}

// TestBackfillBelowLostFinalizedInOnePass: the engine lost its blocks from
// below the local finalized head; backfill rebuilds them in one tick, its
// window checkpoints naming no label the engine does not hold yet (a
// checkpoint naming the lost finalized block was refused, so each tick
// advanced one window with an error).
func TestBackfillBelowLostFinalizedInOnePass(t *testing.T) {
	a, r := backfillRig(t, 140, 16)
	r.elHas(a[119], a[109], a[99]) // finalized 100
	r.src.follow(a[139], 110, 100)
	require.NoError(t, r.step())

	r.el.DropAbove(10) // a restart that lost 90 blocks below finalized
	r.src.follow(a[139], 120, 105)
	_, err := r.a.Step(context.Background())
	require.NoError(t, err, "one tick, no error per window")
	unsafe, safe, fin := r.labels()
	require.Equal(t, r.ref(a[119]), unsafe)
	require.Equal(t, r.ref(a[119]), safe)
	require.Equal(t, r.ref(a[99]), fin, "finalized kept: the tick decided while the engine lacked it")
	require.Equal(t, r.ref(a[119]), r.a.Status().Unsafe)
	require.NoError(t, r.step())
	_, _, fin = r.labels()
	require.Equal(t, r.ref(a[104]), fin, "the next tick moves it")
	r.checkInvariants()
}

// slowProvider delays every payload, so that a backfill takes a while.
type slowProvider struct {
	engineadapter.PayloadProvider
	delay time.Duration
}

func (s slowProvider) PayloadByNumber(ctx context.Context, n uint64) (*eth.ExecutionPayloadEnvelope, error) {
	time.Sleep(s.delay)
	return s.PayloadProvider.PayloadByNumber(ctx, n)
}

// TestStatusFollowsALongBackfill: Status shows the engine's head move as the
// backfill's windows land, not only once the tick ends.
func TestStatusFollowsALongBackfill(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 100, tagA)
	_, payloads := provider(t, tree, a)
	r := newRig(t, tree, fakeel.ELConfig{}) // no peer
	cfg := engineadapter.DefaultConfig()
	cfg.SyncMode, cfg.BackfillWindow, cfg.BackfillParallel = reorg.Backfill, 16, 1
	cfg.Payloads = slowProvider{payloads, 5 * time.Millisecond}
	ad, err := engineadapter.New(cfg, r.engine, r.src, nil, nil)
	require.NoError(t, err)
	r.src.follow(a[99], 96, 80)

	done := make(chan error, 1)
	go func() { _, err := ad.Step(context.Background()); done <- err }()
	seen := map[uint64]bool{}
	for running := true; running; {
		select {
		case err := <-done:
			require.NoError(t, err)
			running = false
		case <-time.After(2 * time.Millisecond):
			seen[ad.Status().Unsafe.Number] = true
		}
	}
	require.Equal(t, uint64(96), ad.Status().Unsafe.Number)
	var during []uint64
	for n := range seen {
		if n > 0 && n < 96 {
			during = append(during, n)
		}
	}
	require.GreaterOrEqual(t, len(during), 3, "heads seen in Status while the backfill ran: %v", during)
}
