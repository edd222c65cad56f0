package engineadapter_test

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/reorg"
)

// provider serves chain (to its head) from a public in-memory EL through
// op-service's L2Client, as a remote EL would.
func provider(t *testing.T, tree *testutil.Tree, chain []*types.Block) (*testutil.EL, *sources.L2Client) {
	el := testutil.NewEL(t, tree, testutil.ELConfig{NoAuth: true})
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

func TestBackfillCatchUp(t *testing.T) {
	tree := testutil.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 120, tagA)
	_, payloads := provider(t, tree, a)
	r := newRig(t, tree, testutil.ELConfig{}) // no peer: EL sync could not work
	r.a = r.backfillAdapter(payloads, 16)
	r.src.follow(a[119], 100, 80)

	d, err := r.a.Step(context.Background())
	require.NoError(t, err)
	require.Equal(t, reorg.CatchUp, d.Action)
	unsafe, safe, fin := r.labels()
	require.Equal(t, r.ref(a[99]), unsafe)
	require.Equal(t, r.ref(a[99]), safe)
	require.Equal(t, r.tree.Ref(tree.Genesis()), fin, "finalized moves once the engine holds it")
	require.Equal(t, 100, r.el.CallCount("engine_newPayloadV2"), "each block inserted once")
	require.Equal(t, 7, len(r.el.ForkchoiceUpdates()), "six checkpoints every 16 blocks, then the update")

	require.NoError(t, r.step())
	_, _, fin = r.labels()
	require.Equal(t, r.ref(a[79]), fin)
	r.checkInvariants()
}

func TestBackfillReorg(t *testing.T) {
	tree := testutil.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 20, tagA)
	b := tree.Extend(a[11].Hash(), 10, tagB) // b[i] is block 13+i
	_, payloads := provider(t, tree, tree.Chain(b[9].Hash()))
	r := newRig(t, tree, testutil.ELConfig{})
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
	tree := testutil.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 60, tagA)
	_, payloads := provider(t, tree, a)
	r := newRig(t, tree, testutil.ELConfig{})
	r.el.MarkInvalid(a[29].Hash()) // block 30
	r.a = r.backfillAdapter(payloads, 8)
	r.src.follow(a[59], 50, 10)

	_, err := r.a.Step(context.Background())
	require.ErrorIs(t, err, engineadapter.ErrBackfillInvalid)
	sent := r.el.CallCount("engine_newPayloadV2")
	require.Equal(t, 30, sent, "blocks 1..29 VALID, 30 INVALID, nothing after it")

	for range 3 {
		_, err = r.a.Step(context.Background())
		require.Error(t, err)
	}
	require.Equal(t, sent, r.el.CallCount("engine_newPayloadV2"), "a target above an INVALID block is not tried again")
	unsafe, safe, _ := r.labels()
	require.Equal(t, r.ref(a[23]), unsafe, "the last checkpoint before the INVALID block")
	require.Equal(t, r.tree.Ref(tree.Genesis()), safe)
}

func TestBackfillWaitsForTheProvider(t *testing.T) {
	tree := testutil.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 40, tagA)
	remote, payloads := provider(t, tree, a[:30]) // the provider is 10 blocks behind the source
	r := newRig(t, tree, testutil.ELConfig{})
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
	tree := testutil.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, tagA)
	c := tree.Extend(a[9].Hash(), 20, tagC)
	_, payloads := provider(t, tree, tree.Chain(c[19].Hash()))
	r := newRig(t, tree, testutil.ELConfig{})
	r.a = r.backfillAdapter(payloads, 8)
	r.src.follow(a[29], 25, 5)

	_, err := r.a.Step(context.Background())
	require.ErrorContains(t, err, "not on the source's chain")
	_, safe, _ := r.labels()
	require.Equal(t, r.tree.Ref(tree.Genesis()), safe)
}
