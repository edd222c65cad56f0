package l1derive_test

import (
	"context"
	"testing"

	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/testutil/opgeth"
	"github.com/lightcl/lightcl/internal/testutil/opstack"
	"github.com/lightcl/lightcl/safesource/l1derive"
)

// TestDerivesThePostedSafeHead: a follower with no peers and no blocks is
// brought to exactly the safe head the batcher posted, by building every
// derived block; unposted blocks stay off it.
func TestDerivesThePostedSafeHead(t *testing.T) {
	for _, kind := range []opstack.BatchKind{opstack.Singular, opstack.Span} {
		t.Run(kind.String(), func(t *testing.T) {
			ctx := testContext(t)
			w := newWorld(t)
			w.build(ctx, t, 24)
			w.post(ctx, t, 12, kind)

			w.follow(ctx, t, 12)
			w.requireSequencersChain(ctx, t, 12)
			require.Equal(t, 12, w.count(engineadapter.Built), "every block built from derived attributes")
			st := w.src.Status()
			require.Equal(t, uint64(12), st.Derived)
			require.Zero(t, st.Building)

			w.post(ctx, t, 24, kind)
			w.follow(ctx, t, 24)
			w.requireSequencersChain(ctx, t, 24)
			require.Zero(t, w.count(engineadapter.Reorged))
		})
	}
}

// TestTamperedDataIsIgnored: batch data that does not decode (an unknown
// version byte, a truncated frame) derives nothing; the safe head waits for
// the valid batch.
func TestTamperedDataIsIgnored(t *testing.T) {
	ctx := testContext(t)
	w := newWorld(t)
	w.build(ctx, t, 12)
	w.post(ctx, t, 6, opstack.Singular)
	w.follow(ctx, t, 6)

	data, err := w.stack.BatchData(ctx, 12, opstack.Singular)
	require.NoError(t, err)
	var tampered [][]byte
	for _, d := range data {
		bad := append([]byte{0x01}, d[1:]...) // unknown derivation version
		tampered = append(tampered, bad, d[:len(d)/2])
	}
	_, err = w.stack.PostData(tampered...)
	require.NoError(t, err)
	for range 10 {
		_, err := w.adapter.Step(ctx)
		require.NoError(t, err)
	}
	require.Equal(t, uint64(6), w.adapter.Status().Safe.Number, "nothing derived from tampered data")
	w.requireSequencersChain(ctx, t, 6)

	w.post(ctx, t, 12, opstack.Singular)
	w.follow(ctx, t, 12)
	w.requireSequencersChain(ctx, t, 12)
}

// TestRebuildsOverAnotherEngineBlock: the follower's engine holds other
// blocks at the derived heights; the adapter abandons them and builds the
// derived ones, ending on the derived chain.
func TestRebuildsOverAnotherEngineBlock(t *testing.T) {
	ctx := testContext(t)
	w := newWorld(t)
	seqBlocks := w.build(ctx, t, 12)
	w.post(ctx, t, 12, opstack.Span)
	w.buildOtherBlocks(ctx, t, seqBlocks[:5])

	w.follow(ctx, t, 12)
	w.requireSequencersChain(ctx, t, 12)
	require.Equal(t, 1, w.count(engineadapter.Reorged))
	for _, e := range w.events {
		if e.Kind == engineadapter.Reorged {
			require.Equal(t, uint64(5), e.Depth, "the follower's 5 blocks abandoned")
			require.Equal(t, uint64(0), e.Decision.Ancestor.Number)
		}
	}
}

// TestL1FinalityMovesL2Finality: L2 finality follows L1 finality of the L1
// blocks the batches were posted in, and only that.
func TestL1FinalityMovesL2Finality(t *testing.T) {
	ctx := testContext(t)
	w := newWorld(t)
	w.build(ctx, t, 12)
	p1 := w.post(ctx, t, 6, opstack.Singular)
	p2 := w.post(ctx, t, 12, opstack.Singular)
	w.follow(ctx, t, 12)
	require.Zero(t, w.adapter.Status().Finalized.Number, "L1 finalized nothing yet")

	w.stack.L1().SetLabels(p1.Number-1, p1.Number-1)
	w.follow(ctx, t, 12)
	require.Zero(t, w.adapter.Status().Finalized.Number, "the batch block is not final yet")

	w.stack.L1().SetLabels(p1.Number, p1.Number)
	w.followFinalized(ctx, t, 6)
	w.stack.L1().SetLabels(p2.Number, p2.Number)
	w.followFinalized(ctx, t, 12)
}

// TestL1ReorgDroppingABatch: an L1 reorg that drops a batch moves the
// derived local-safe head back, never finalized; the batch posted again
// derives again.
func TestL1ReorgDroppingABatch(t *testing.T) {
	ctx := testContext(t)
	w := newWorld(t)
	w.build(ctx, t, 12)
	p1 := w.post(ctx, t, 6, opstack.Singular)
	p2 := w.post(ctx, t, 12, opstack.Singular)
	w.stack.L1().SetLabels(p1.Number, p1.Number)
	w.follow(ctx, t, 12)
	w.followFinalized(ctx, t, 6)

	w.stack.L1().Reorg(p2.Number-1, 1) // the block with the second batch is replaced
	var st l1derive.Status
	for range 5 {
		_, _ = w.adapter.Step(ctx)
		st = w.src.Status()
		require.GreaterOrEqual(t, st.Heads.Finalized.Number, uint64(6), "finalized never moves back")
		require.GreaterOrEqual(t, w.adapter.Status().Finalized.Number, uint64(6), "finalized never moves back")
	}
	require.Equal(t, uint64(6), st.Heads.LocalSafe.Number, "local-safe back to the last block still posted")
	require.Equal(t, uint64(6), st.Heads.Finalized.Number)
	require.GreaterOrEqual(t, st.Resets, 2, "derivation restarted from the engine's heads")
	// the adapter keeps its safe label: the source's head is behind it on the same chain
	require.Equal(t, uint64(12), w.adapter.Status().Safe.Number)

	w.post(ctx, t, 12, opstack.Singular) // 7..12 again
	w.follow(ctx, t, 12)
	require.Equal(t, uint64(12), w.src.Status().Heads.LocalSafe.Number)
	w.requireSequencersChain(ctx, t, 12)
	require.Zero(t, w.count(engineadapter.Reorged))
}

// TestRestartResumes: a node restarted over the same engine datadir derives
// on from the engine's heads, not from genesis.
func TestRestartResumes(t *testing.T) {
	ctx := testContext(t)
	w := newWorld(t)
	w.build(ctx, t, 24)
	p1 := w.post(ctx, t, 6, opstack.Singular)
	w.post(ctx, t, 12, opstack.Singular)
	w.stack.L1().SetLabels(p1.Number, p1.Number)
	w.follow(ctx, t, 12)
	w.followFinalized(ctx, t, 6)

	w.follower.Restart(t)
	w.start(t)
	w.post(ctx, t, 24, opstack.Singular)
	w.follow(ctx, t, 24)
	w.requireSequencersChain(ctx, t, 24)
	st := w.src.Status()
	t.Logf("after the restart: %d blocks derived, %d pipeline starts", st.Derived, st.Resets)
	require.LessOrEqual(t, st.Derived, uint64(24-6), "derived on from the engine's finalized head at most, not from genesis")
	require.Equal(t, uint64(6), w.adapter.Status().Finalized.Number)
}

func (w *world) followFinalized(ctx context.Context, t *testing.T, fin uint64) {
	t.Helper()
	for range 20 {
		_, err := w.adapter.Step(ctx)
		require.NoError(t, err)
		if st := w.adapter.Status(); st.Finalized.Number == fin {
			seq, err := w.stack.Sequencer().L2(t).L2BlockRefByNumber(ctx, fin)
			require.NoError(t, err)
			require.Equal(t, seq.Hash, st.Finalized.Hash)
			return
		}
	}
	t.Fatalf("finalized %d, want %d", w.adapter.Status().Finalized.Number, fin)
}

// buildOtherBlocks builds, on the follower, a block for each of the
// sequencer's blocks given, with the same L1 origin and L1-info deposit but
// two transfers instead of one: a valid chain that L1 does not derive.
func (w *world) buildOtherBlocks(ctx context.Context, t *testing.T, like []eth.L2BlockRef) {
	t.Helper()
	builder := derive.NewFetchingAttributesBuilder(w.stack.RollupConfig(), nil, nil, w.l1, w.engine)
	seq := opgeth.NewSequencer(t, w.follower)
	for i, b := range like {
		attrs, err := builder.PreparePayloadAttributes(ctx, seq.Head(), b.L1Origin)
		require.NoError(t, err)
		attrs.NoTxPool = true
		for _, tx := range opgeth.TransferTxs(opgeth.FundedKey(), w.stack.RollupConfig().L2ChainID, uint64(2*i), 2) {
			attrs.Transactions = append(attrs.Transactions, tx)
		}
		ref, err := seq.BuildAttributes(ctx, seq.Head(), attrs)
		require.NoError(t, err)
		require.Equal(t, b.Number, ref.Number)
		require.NotEqual(t, b.Hash, ref.Hash)
	}
}
