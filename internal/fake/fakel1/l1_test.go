package fakel1_test

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/testutil"
)

func TestL1ServesTheTreesOrigins(t *testing.T) {
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 20, Safe: 12, Finalized: 8})
	c := testutil.DialL1(t, l1.URL())

	id, err := c.ChainID(ctx)
	require.NoError(t, err)
	require.EqualValues(t, fakechain.L1ChainID, id.Uint64())
	for n := uint64(0); n <= 20; n++ {
		ref, err := c.L1BlockRefByNumber(ctx, n)
		require.NoError(t, err, "block %d must pass the client's hash check", n)
		require.Equal(t, fakechain.L1Ref(n), ref, "block %d is the Tree's synthetic L1 block", n)
		require.Equal(t, ref, l1.Ref(n))
	}
	tree := fakechain.NewTree()
	for _, b := range tree.Extend(tree.Genesis().Hash(), 100, 0) {
		origin := tree.Ref(b).L1Origin
		ref, err := c.L1BlockRefByNumber(ctx, origin.Number)
		require.NoError(t, err)
		require.Equal(t, origin, ref.ID(), "the L1 origin of L2 block %d is canonical", b.NumberU64())
	}
	for label, want := range map[eth.BlockLabel]uint64{eth.Unsafe: 20, eth.Safe: 12, eth.Finalized: 8} {
		ref, err := c.L1BlockRefByLabel(ctx, label)
		require.NoError(t, err)
		require.Equal(t, fakechain.L1Ref(want), ref, string(label))
	}
	ref, err := c.L1BlockRefByHash(ctx, fakechain.L1Ref(5).Hash)
	require.NoError(t, err)
	require.Equal(t, fakechain.L1Ref(5), ref)
	_, err = c.L1BlockRefByNumber(ctx, 21)
	require.ErrorIs(t, err, ethereum.NotFound)
}

func TestL1LinkedIsARealPostMergeChain(t *testing.T) {
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 10, Linked: true})
	cfg := sources.L1ClientSimpleConfig(false, sources.RPCKindStandard, 10)
	cfg.MustBePostMerge = true
	rpcClient := testutil.DialNoAuth(t, l1.URL(), 5*time.Second)
	c, err := sources.NewL1Client(rpcClient, nil, nil, cfg)
	require.NoError(t, err)

	var prev eth.L1BlockRef
	for n := uint64(0); n <= 10; n++ {
		ref, err := c.L1BlockRefByNumber(ctx, n)
		require.NoError(t, err, "block %d passes the post-merge and hash checks", n)
		require.Equal(t, l1.Ref(n), ref)
		if n > 0 {
			require.Equal(t, prev.Hash, ref.ParentHash, "block %d links to its parent", n)
			require.NotEqual(t, fakechain.L1Ref(n).Hash, ref.Hash, "a linked L1 is not the Tree's synthetic L1")
		}
		prev = ref
	}
}

func TestL1Reorg(t *testing.T) {
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 20, Safe: 15, Finalized: 5})
	c := testutil.DialL1(t, l1.URL())
	before := l1.Ref(12)

	l1.Reorg(10, 1)
	require.Equal(t, uint64(20), l1.Head().Number, "a reorg keeps the head's height")
	require.Equal(t, uint64(10), l1.Safe().Number, "safe above the fork point is lowered to it")
	require.Equal(t, fakechain.L1Ref(5), l1.Finalized())
	for n := uint64(0); n <= 20; n++ {
		ref, err := c.L1BlockRefByNumber(ctx, n)
		require.NoError(t, err)
		if n <= 10 {
			require.Equal(t, fakechain.L1Ref(n), ref, "block %d is below the fork point", n)
		} else {
			require.NotEqual(t, fakechain.L1Ref(n).Hash, ref.Hash, "block %d was replaced", n)
			require.Equal(t, l1.Ref(n-1).Hash, ref.ParentHash, "the new fork is linked")
		}
	}
	old, err := c.L1BlockRefByHash(ctx, before.Hash)
	require.NoError(t, err, "a reorged-out block is still served by hash")
	require.Equal(t, before, old)

	l1.Advance(3)
	head, err := c.L1BlockRefByLabel(ctx, eth.Unsafe)
	require.NoError(t, err)
	require.Equal(t, uint64(23), head.Number)
	require.Equal(t, l1.Ref(22).Hash, head.ParentHash, "Advance builds on the new fork")

	l1.Reorg(10, 0)
	require.Equal(t, fakechain.L1Ref(23), l1.Head(), "tag 0 restores the original chain")

	l2 := testutil.NewL1(t, fakel1.L1Config{Head: 20, Linked: true})
	first := l2.Ref(15)
	l2.Reorg(14, 7)
	require.NotEqual(t, first, l2.Ref(15))
	l2.Reorg(14, 0)
	require.Equal(t, first, l2.Ref(15), "the same (parent, tag) gives the same block")
}

func TestL1HeadAndLabels(t *testing.T) {
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 10, Safe: 8, Finalized: 4})
	c := testutil.DialL1(t, l1.URL())
	l1.SetHead(15)
	require.Equal(t, fakechain.L1Ref(15), l1.Head())
	l1.SetHead(6)
	require.Equal(t, fakechain.L1Ref(6), l1.Head())
	require.Equal(t, fakechain.L1Ref(6), l1.Safe(), "safe is lowered with the head")
	l1.SetLabels(6, 6)
	ref, err := c.L1BlockRefByLabel(ctx, eth.Finalized)
	require.NoError(t, err)
	require.Equal(t, fakechain.L1Ref(6), ref)
	l1.SetLabels(3, 1)
	ref, err = c.L1BlockRefByLabel(ctx, eth.Finalized)
	require.NoError(t, err)
	require.Equal(t, fakechain.L1Ref(1), ref, "labels may move backwards on purpose")
}

func TestL1SetupMistakesPanic(t *testing.T) {
	_, err := fakel1.StartL1(fakel1.L1Config{Head: 3, Safe: 4})
	require.Error(t, err)
	l1, err := fakel1.StartL1(fakel1.L1Config{Head: 10, Safe: 6, Finalized: 5})
	require.NoError(t, err)
	defer l1.Close()
	require.Panics(t, func() { l1.Reorg(4, 1) }, "below finalized")
	require.Panics(t, func() { l1.Reorg(10, 1) }, "nothing above the head")
	require.Panics(t, func() { l1.Reorg(7, 0) }, "a reorg that changes nothing")
	require.Panics(t, func() { l1.SetHead(4) }, "rewinding below finalized")
	require.Panics(t, func() { l1.SetLabels(11, 0) }, "safe above the head")
	require.Panics(t, func() { l1.SetLabels(5, 6) }, "finalized above safe")
	require.Panics(t, func() { l1.Ref(11) })
}

func TestL1FaultsAndCallCount(t *testing.T) {
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 5})
	c := testutil.DialL1(t, l1.URL())

	l1.Faults().HTTPStatus(500)
	_, err := c.L1BlockRefByLabel(ctx, eth.Unsafe)
	require.Error(t, err)
	require.Zero(t, l1.CallCount("eth_getBlockByNumber"), "a request a fault answers is not recorded")
	l1.Faults().Clear()

	_, err = c.L1BlockRefByLabel(ctx, eth.Unsafe)
	require.NoError(t, err)
	_, err = c.L1BlockRefByHash(ctx, fakechain.L1Ref(2).Hash)
	require.NoError(t, err)
	require.Equal(t, 1, l1.CallCount("eth_getBlockByNumber"))
	require.Equal(t, 1, l1.CallCount("eth_getBlockByHash"))

	var a, b map[string]any
	batch := []rpc.BatchElem{
		{Method: "eth_getBlockByNumber", Args: []any{"latest", false}, Result: &a},
		{Method: "eth_getBlockByNumber", Args: []any{hexutil.EncodeUint64(3), false}, Result: &b},
	}
	require.NoError(t, testutil.DialNoAuth(t, l1.URL(), 5*time.Second).BatchCallContext(ctx, batch))
	require.NoError(t, batch[0].Error)
	require.NoError(t, batch[1].Error)
	require.Equal(t, fakechain.L1Ref(3).Hash.Hex(), b["hash"])
	require.Equal(t, 3, l1.CallCount("eth_getBlockByNumber"), "each element of a batch counts")
	require.Len(t, l1.Calls(), 4)
}
