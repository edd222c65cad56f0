package opstack

import (
	"bytes"
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/params"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-node/rollup/attributes"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/testlog"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/testutil/opgeth"
)

// testContext returns the context of a test, once geth is built (a cold
// build takes minutes and must not eat into the test's deadline).
func testContext(t *testing.T) context.Context {
	t.Helper()
	opgeth.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// transfers gives each block perBlock transfers from opgeth's funded
// account, nonces counted from the first block of the chain.
func transfers(firstBlock, perBlock int) func(i int) [][]byte {
	return func(i int) [][]byte {
		return opgeth.TransferTxs(opgeth.FundedKey(), big.NewInt(opgeth.ChainID), uint64((firstBlock+i)*perBlock), perBlock)
	}
}

// consolidate checks derived attributes against the block the sequencer
// built at that height, as op-node consolidates, and returns that block.
func consolidate(ctx context.Context, t *testing.T, s *Stack) func(*derive.AttributesWithParent) eth.L2BlockRef {
	cfg, seq, lgr := s.RollupConfig(), s.Sequencer().Engine(t), testlog.Logger(t, log.LevelWarn)
	return func(a *derive.AttributesWithParent) eth.L2BlockRef {
		env, err := seq.PayloadByNumber(ctx, a.Parent.Number+1)
		require.NoError(t, err)
		require.NoError(t, attributes.AttributesMatchBlock(cfg, a.Attributes, a.Parent.Hash, env, lgr),
			"derived attributes match the sequencer's block %d", a.Parent.Number+1)
		ref, err := derive.PayloadToBlockRef(cfg, env.ExecutionPayload)
		require.NoError(t, err)
		return ref
	}
}

// requireOrigins checks the L1 origins the test sequencer chose: canonical,
// not after the block, the latest such L1 block (BuildL2 keeps the L1 in
// step), one epoch at a time with sequence numbers restarting at 0.
func requireOrigins(t *testing.T, s *Stack, parent eth.L2BlockRef, refs []eth.L2BlockRef) {
	t.Helper()
	for _, ref := range refs {
		origin := s.L1().Ref(ref.L1Origin.Number)
		require.Equal(t, origin.ID(), ref.L1Origin, "block %d: canonical origin", ref.Number)
		require.LessOrEqual(t, origin.Time, ref.Time, "block %d", ref.Number)
		require.Less(t, ref.Time, origin.Time+12, "block %d: the latest L1 block not after it", ref.Number)
		if ref.L1Origin == parent.L1Origin {
			require.Equal(t, parent.SequenceNumber+1, ref.SequenceNumber)
		} else {
			require.Equal(t, parent.L1Origin.Number+1, ref.L1Origin.Number, "block %d: the next epoch", ref.Number)
			require.Zero(t, ref.SequenceNumber)
		}
		parent = ref
	}
}

// requireDerived checks one batch's derived attributes: the blocks want, in
// order, all derived from the L1 block from; with span batches only the last
// block of the span concludes it.
func requireDerived(t *testing.T, got []*derive.AttributesWithParent, want []eth.L2BlockRef, from eth.L1BlockRef, kind BatchKind) {
	t.Helper()
	require.Len(t, got, len(want))
	for i, a := range got {
		require.Equal(t, want[i].ParentHash, a.Parent.Hash, "block %d", want[i].Number)
		require.Equal(t, from, a.DerivedFrom, "block %d derived from the L1 block holding its batch", want[i].Number)
		require.Equal(t, kind == Singular || i == len(got)-1, a.Concluding, "block %d", want[i].Number)
	}
}

func TestDerivationRebuildsTheSequencersChain(t *testing.T) {
	for _, kind := range []BatchKind{Singular, Span} {
		t.Run(kind.String(), func(t *testing.T) {
			ctx := testContext(t)
			begin := time.Now()
			s := New(t, Config{})
			t.Logf("timing: New %s", time.Since(begin).Round(time.Millisecond))
			genesis := s.SequencerHead()
			require.Equal(t, s.RollupConfig().Genesis.L2, genesis.ID())

			begin = time.Now()
			refs, err := s.BuildL2(ctx, 30, transfers(0, 2))
			require.NoError(t, err)
			t.Logf("timing: BuildL2(30) %s", time.Since(begin).Round(time.Millisecond))
			require.Equal(t, refs[29], s.SequencerHead())
			requireOrigins(t, s, genesis, refs)
			require.Equal(t, uint64(5), s.L1().Head().Number, "L2 block 30 is at L1 block 5's time")

			first, err := s.PostBatches(ctx, 12, kind)
			require.NoError(t, err)
			require.Equal(t, s.L1().Head(), first)
			begin = time.Now()
			v := newVerifier(ctx, t, s, s.Sequencer().Engine(t), consolidate(ctx, t, s))
			requireDerived(t, v.derive(ctx, t), refs[:12], first, kind)
			require.Equal(t, refs[11], v.pending, "derivation stops at the last posted block")
			require.Equal(t, first, v.pipeline.Origin(), "having read the whole L1")
			t.Logf("timing: derive 12 blocks %s", time.Since(begin).Round(time.Millisecond))

			second, err := s.PostBatches(ctx, 30, kind)
			require.NoError(t, err)
			requireDerived(t, v.derive(ctx, t), refs[12:], second, kind)
			require.Equal(t, refs[29], v.pending)

			_, err = s.PostBatches(ctx, 30, kind)
			require.ErrorContains(t, err, "nothing to post")
			_, err = s.PostBatches(ctx, 31, kind)
			require.ErrorContains(t, err, "head")
		})
	}
}

// TestManyChannelsAndFrames cuts the batches into several channels of
// several frames each (one transaction per frame, all in one L1 block).
func TestManyChannelsAndFrames(t *testing.T) {
	for _, kind := range []BatchKind{Singular, Span} {
		t.Run(kind.String(), func(t *testing.T) {
			ctx := testContext(t)
			s := New(t, Config{})
			refs, err := s.BuildL2(ctx, 12, transfers(0, 3))
			require.NoError(t, err)
			s.sizes = channelSizes{target: 1500, maxFrame: 300}

			data, err := s.BatchData(ctx, 12, kind)
			require.NoError(t, err)
			channels := map[string]int{}
			for _, d := range data {
				require.LessOrEqual(t, len(d), 1+300)
				channels[string(d[1:17])]++
			}
			require.Greater(t, len(channels), 1, "several channels")
			require.Less(t, len(channels), 12, "of several blocks")
			require.Greater(t, len(data), len(channels), "several frames per channel")
			t.Logf("%d frames in %d channels", len(data), len(channels))

			posted, err := s.PostBatches(ctx, 12, kind)
			require.NoError(t, err)
			v := newVerifier(ctx, t, s, s.Sequencer().Engine(t), consolidate(ctx, t, s))
			got := v.derive(ctx, t)
			require.Len(t, got, 12)
			concluding := 0
			for i, a := range got {
				require.Equal(t, refs[i].ParentHash, a.Parent.Hash)
				require.Equal(t, posted, a.DerivedFrom)
				if a.Concluding {
					concluding++
				}
			}
			require.True(t, got[11].Concluding)
			if kind == Span {
				require.Equal(t, len(channels), concluding, "one span batch per channel")
			} else {
				require.Equal(t, 12, concluding)
			}
			require.Equal(t, refs[11], v.pending)
		})
	}
}

// frameDataOffset is where a frame's data starts in batcher calldata:
// version byte, channel id (16), frame number (2), data length (4).
const frameDataOffset = 1 + 16 + 2 + 4

// TestTamperedDataDerivesNothing posts batcher data that derivation must
// ignore, then the valid batch. (A byte flipped inside the compressed
// batches is not among them: zlib checks its checksum only at the end of the
// stream, after the batches before it were read, and a flipped bit can still
// decode to a valid batch with another transaction. The batcher's signature
// is what protects the data.)
func TestTamperedDataDerivesNothing(t *testing.T) {
	ctx := testContext(t)
	s := New(t, Config{})
	refs, err := s.BuildL2(ctx, 12, transfers(0, 1))
	require.NoError(t, err)
	v := newVerifier(ctx, t, s, s.Sequencer().Engine(t), consolidate(ctx, t, s))

	for _, tc := range []struct {
		name   string
		tamper func(d []byte) []byte
	}{
		{"unknown derivation version", func(d []byte) []byte { d[0] = 1; return d }},
		{"truncated frame", func(d []byte) []byte { return d[:len(d)-1] }},
		{"unknown compression", func(d []byte) []byte { d[frameDataOffset] ^= 0xff; return d }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := s.BatchData(ctx, 12, Singular)
			require.NoError(t, err)
			require.Len(t, data, 1, "one frame")
			require.Greater(t, len(data[0]), 2*frameDataOffset)
			l1Block, err := s.PostData(tc.tamper(bytes.Clone(data[0])))
			require.NoError(t, err)
			require.Empty(t, v.derive(ctx, t))
			require.Equal(t, l1Block, v.pipeline.Origin(), "the tampered L1 block was read")
		})
	}
	t.Run("valid data not from the batcher", func(t *testing.T) {
		data, err := s.BatchData(ctx, 12, Singular)
		require.NoError(t, err)
		key, err := crypto.GenerateKey()
		require.NoError(t, err)
		inbox := s.RollupConfig().BatchInboxAddress
		tx, err := types.SignNewTx(key, types.LatestSignerForChainID(big.NewInt(fakechain.L1ChainID)), &types.DynamicFeeTx{
			ChainID: big.NewInt(fakechain.L1ChainID), GasFeeCap: big.NewInt(params.GWei), Gas: 1_000_000, To: &inbox, Data: data[0],
		})
		require.NoError(t, err)
		s.L1().Include(tx)
		s.L1().Advance(1)
		require.Empty(t, v.derive(ctx, t))
		require.Equal(t, s.L1().Head(), v.pipeline.Origin())
	})

	posted, err := s.PostBatches(ctx, 12, Singular)
	require.NoError(t, err)
	requireDerived(t, v.derive(ctx, t), refs, posted, Singular)
	require.Equal(t, refs[11], v.pending, "the valid batch after the tampered ones derives")
}

func TestReorgedOutBatchIsPostedAgain(t *testing.T) {
	ctx := testContext(t)
	s := New(t, Config{})
	refs, err := s.BuildL2(ctx, 12, nil)
	require.NoError(t, err)
	first, err := s.PostBatches(ctx, 12, Span)
	require.NoError(t, err)

	s.L1().Reorg(first.Number-1, 1)
	require.NotEqual(t, first, s.L1().Ref(first.Number), "the batch's L1 block is reorged out")
	v := newVerifier(ctx, t, s, s.Sequencer().Engine(t), consolidate(ctx, t, s))
	require.Empty(t, v.derive(ctx, t), "no batch on the canonical L1")

	again, err := s.PostBatches(ctx, 12, Span)
	require.NoError(t, err, "the dropped blocks count as unposted")
	require.Equal(t, first.Number+1, again.Number)
	requireDerived(t, v.derive(ctx, t), refs, again, Span)
	require.Equal(t, refs[11], v.pending)

	s.L1().Reorg(refs[11].L1Origin.Number-1, 2)
	_, err = s.BuildL2(ctx, 1, nil)
	require.ErrorIs(t, err, ErrL1OriginReorged, "the harness does not reorg the sequencer")
}

// TestFollowerBuildsTheDerivedChain derives the chain onto a second op-geth
// that has none of it, building each block from the derived attributes: the
// follower ends with the sequencer's very blocks.
func TestFollowerBuildsTheDerivedChain(t *testing.T) {
	ctx := testContext(t)
	s := New(t, Config{})
	refs, err := s.BuildL2(ctx, 20, transfers(0, 2))
	require.NoError(t, err)
	posted, err := s.PostBatches(ctx, 20, Span)
	require.NoError(t, err)

	follower := s.StartFollower(t)
	builder := opgeth.NewSequencer(t, follower)
	require.Equal(t, s.RollupConfig().Genesis.L2, builder.Head().ID(), "the follower starts at genesis")
	v := newVerifier(ctx, t, s, follower.Engine(t), func(a *derive.AttributesWithParent) eth.L2BlockRef {
		ref, err := builder.BuildAttributes(ctx, a.Parent, a.Attributes)
		require.NoError(t, err)
		return ref
	})
	requireDerived(t, v.derive(ctx, t), refs, posted, Span)
	require.Equal(t, refs[19], v.pending, "the follower built the sequencer's blocks")
	require.Equal(t, refs[19], builder.Head())
}

func TestConfig(t *testing.T) {
	require.NoError(t, DefaultConfig().Check())
	require.Equal(t, DefaultConfig(), Config{}.withDefaults())
	require.ErrorContains(t, Config{L1Head: 1, SeqWindowSize: 1}.Check(), "SeqWindowSize")
	require.Equal(t, "span", Span.String())
	require.Equal(t, "BatchKind(7)", BatchKind(7).String())
}
