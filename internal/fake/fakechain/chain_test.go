package fakechain

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-core/predeploys"
	"github.com/ethereum-optimism/optimism/op-service/eth"
)

func TestTreeGenesisAndRollupConfig(t *testing.T) {
	tree := NewTree()
	g := tree.Genesis()
	require.Equal(t, uint64(0), g.NumberU64())
	require.Equal(t, predeploys.SequencerFeeVaultAddr, g.Coinbase())
	require.Empty(t, g.Transactions())

	cfg := tree.RollupConfig()
	require.NoError(t, cfg.Check())
	require.Equal(t, eth.BlockID{Hash: g.Hash(), Number: 0}, cfg.Genesis.L2)
	require.Equal(t, int64(ChainID), cfg.L2ChainID.Int64())
	require.Equal(t, uint64(BlockTime), cfg.BlockTime)
	require.NotSame(t, cfg, tree.RollupConfig(), "each call returns a fresh config")

	require.Equal(t, eth.L2BlockRef{Hash: g.Hash(), Time: GenesisTime, L1Origin: cfg.Genesis.L1}, tree.Ref(g))
}

func TestTreeChildIsDeterministic(t *testing.T) {
	tree, other := NewTree(), NewTree()
	require.Equal(t, tree.Genesis().Hash(), other.Genesis().Hash(), "all trees share genesis")

	a := tree.Child(tree.Genesis().Hash(), 0)
	require.Same(t, a, tree.Child(tree.Genesis().Hash(), 0), "same (parent, tag) returns the built block")
	require.Equal(t, a.Hash(), other.Child(other.Genesis().Hash(), 0).Hash(), "same (parent, tag) gives the same block in another tree")

	b := tree.Child(tree.Genesis().Hash(), 1)
	require.NotEqual(t, a.Hash(), b.Hash(), "another tag forks")
	require.Equal(t, a.NumberU64(), b.NumberU64())

	got, ok := tree.Block(b.Hash())
	require.True(t, ok)
	require.Same(t, b, got)
	_, ok = tree.Block(common.Hash{1})
	require.False(t, ok)
}

func TestTreeExtendBuildsAChainWithL1Origins(t *testing.T) {
	tree := NewTree()
	cfg := tree.RollupConfig()
	blocks := tree.Extend(tree.Genesis().Hash(), 14, 7)
	require.Len(t, blocks, 14)
	parent := tree.Genesis()
	for i, b := range blocks {
		n := uint64(i + 1)
		require.Equal(t, n, b.NumberU64())
		require.Equal(t, parent.Hash(), b.ParentHash())
		require.Equal(t, parent.Time()+BlockTime, b.Time())
		require.Zero(t, b.Difficulty().Sign())
		require.Equal(t, types.BlockNonce{}, b.Header().Nonce)
		require.NotNil(t, b.BaseFee())
		require.LessOrEqual(t, len(b.Extra()), 32)
		require.Equal(t, types.EmptyUncleHash, b.UncleHash())

		ref := tree.Ref(b)
		require.Equal(t, b.Hash(), ref.Hash)
		require.Equal(t, parent.Hash(), ref.ParentHash)
		require.Equal(t, b.Time(), ref.Time)
		require.Equal(t, l1Origin(n/BlocksPerEpoch), ref.L1Origin)
		require.Equal(t, n%BlocksPerEpoch, ref.SequenceNumber)
		if n < BlocksPerEpoch {
			require.Equal(t, cfg.Genesis.L1, ref.L1Origin, "first epoch builds on the genesis L1 block")
		}
		parent = b
	}
	require.Equal(t, blocks, tree.Chain(blocks[len(blocks)-1].Hash()))
	require.Empty(t, tree.Chain(tree.Genesis().Hash()))
}

func TestTreeChildOfUnknownParentPanics(t *testing.T) {
	tree := NewTree()
	require.PanicsWithValue(t,
		"testutil: Child of block "+common.Hash{9}.String()+" which is not in the Tree",
		func() { tree.Child(common.Hash{9}, 0) })
}
