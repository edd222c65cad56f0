package l1derive_test

import (
	"context"
	"testing"

	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/testutil/opgeth"
	"github.com/lightcl/lightcl/internal/testutil/opstack"
	"github.com/lightcl/lightcl/safesource/l1derive"
)

// TestCheckOnlyWaitsOnUnsafeBlocks: a checker over an engine that holds the
// derived blocks 1..4 (safe label at 4) and other valid blocks at 5..8
// waits at 4 while those blocks are unsafe, since the followed source may
// still replace them; once the engine calls block 5 safe, the checker fails
// with ErrMismatch.
func TestCheckOnlyWaitsOnUnsafeBlocks(t *testing.T) {
	ctx := testContext(t)
	w := newWorld(t)
	seqBlocks := w.build(ctx, t, 12)
	w.post(ctx, t, 4, opstack.Singular)
	w.follow(ctx, t, 4) // the follower holds the sequencer's 1..4, safe at 4
	other := w.buildOtherBlocksOnHead(ctx, t, seqBlocks[4:8], 4)
	p2 := w.post(ctx, t, 12, opstack.Singular)

	safe, err := w.engine.L2BlockRefByLabel(ctx, eth.Safe)
	require.NoError(t, err)
	require.Equal(t, seqBlocks[3], safe, "the engine's safe label is below the other blocks")

	check, err := l1derive.New(l1derive.Config{Name: "check", CheckOnly: true}, w.stack.RollupConfig(), w.l1, nil, w.engine, testLogger(t), nil)
	require.NoError(t, err)
	for i := range 10 {
		h, err := check.Heads(ctx)
		require.NoError(t, err, "call %d: the differing block 5 is unsafe in the engine", i)
		require.Equal(t, seqBlocks[3], h.Safe, "call %d: the safe head stays below the differing block", i)
	}
	st := check.Status()
	require.GreaterOrEqual(t, st.Heads.CurrentL1.Number, p2.Number, "the checker has read the batch of block 5")
	require.Zero(t, st.Building, "a checker hands nothing out to be built")

	// the engine now calls its own block 5 safe, keeping its head at 8
	seq := opgeth.NewSequencer(t, w.follower)
	require.Equal(t, other[3], seq.Head())
	require.NoError(t, seq.SetLabels(ctx, other[0], seq.Finalized()))

	for range 10 {
		if _, err = check.Heads(ctx); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, l1derive.ErrMismatch)
	_, again := check.Heads(ctx)
	require.ErrorIs(t, again, l1derive.ErrMismatch, "the mismatch is for good")
}

// buildOtherBlocksOnHead builds, on the follower's head, a block for each
// of the sequencer's blocks given, with the same L1 origin and L1-info
// deposit but two transfers instead of one, from nonce on: a valid chain
// that L1 does not derive. It returns the blocks built.
func (w *world) buildOtherBlocksOnHead(ctx context.Context, t *testing.T, like []eth.L2BlockRef, nonce uint64) []eth.L2BlockRef {
	t.Helper()
	builder := derive.NewFetchingAttributesBuilder(w.stack.RollupConfig(), nil, nil, w.l1, w.engine)
	seq := opgeth.NewSequencer(t, w.follower)
	refs := make([]eth.L2BlockRef, 0, len(like))
	for i, b := range like {
		attrs, err := builder.PreparePayloadAttributes(ctx, seq.Head(), b.L1Origin)
		require.NoError(t, err)
		attrs.NoTxPool = true
		for _, tx := range opgeth.TransferTxs(opgeth.FundedKey(), w.stack.RollupConfig().L2ChainID, nonce+uint64(2*i), 2) {
			attrs.Transactions = append(attrs.Transactions, tx)
		}
		ref, err := seq.BuildAttributes(ctx, seq.Head(), attrs)
		require.NoError(t, err)
		require.Equal(t, b.Number, ref.Number)
		require.NotEqual(t, b.Hash, ref.Hash)
		refs = append(refs, ref)
	}
	return refs
}

// TestCheckOnlyRechecksWhenTheEngineReorgs: a checker that matched the
// derived blocks 5..8 while they were unsafe in the engine, which the
// followed source then replaced with other blocks and called safe, checks
// again from its confirmed block and fails with ErrMismatch at block 5,
// rather than waiting above block 8 on a chain the engine no longer holds.
func TestCheckOnlyRechecksWhenTheEngineReorgs(t *testing.T) {
	ctx := testContext(t)
	w := newWorld(t)
	seqBlocks := w.build(ctx, t, 8)
	w.post(ctx, t, 4, opstack.Singular)
	w.follow(ctx, t, 4) // the follower holds the sequencer's 1..4, safe at 4
	w.post(ctx, t, 8, opstack.Singular)
	other := w.buildOtherBlocksOnHead(ctx, t, seqBlocks[4:8], 4)

	// the sequencer's 5..8 become the engine's unsafe chain
	seq := w.stack.Sequencer().Engine(t)
	for _, b := range seqBlocks[4:8] {
		env, err := seq.PayloadByNumber(ctx, b.Number)
		require.NoError(t, err)
		st, err := w.engine.NewPayload(ctx, env.ExecutionPayload, env.ParentBeaconBlockRoot)
		require.NoError(t, err)
		require.Equal(t, eth.ExecutionValid, st.Status)
	}
	genesis, err := w.engine.L2BlockRefByNumber(ctx, 0)
	require.NoError(t, err)
	w.forkchoice(ctx, t, seqBlocks[7], seqBlocks[3], genesis)

	check, err := l1derive.New(l1derive.Config{Name: "check", CheckOnly: true}, w.stack.RollupConfig(), w.l1, nil, w.engine, testLogger(t), nil)
	require.NoError(t, err)
	checkUntil(ctx, t, check, func(st l1derive.Status) bool { return st.Heads.Safe.Number == 8 })

	w.forkchoice(ctx, t, other[3], other[3], genesis) // the followed source moves the engine onto its chain
	for range 10 {
		if _, err = check.Heads(ctx); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, l1derive.ErrMismatch)
	require.Contains(t, err.Error(), "block 5 ")
}

// forkchoice sets the follower's head, safe and finalized blocks.
func (w *world) forkchoice(ctx context.Context, t *testing.T, head, safe, fin eth.L2BlockRef) {
	t.Helper()
	res, err := w.engine.ForkchoiceUpdate(ctx, &eth.ForkchoiceState{HeadBlockHash: head.Hash, SafeBlockHash: safe.Hash, FinalizedBlockHash: fin.Hash}, nil)
	require.NoError(t, err)
	require.Equal(t, eth.ExecutionValid, res.PayloadStatus.Status)
}
