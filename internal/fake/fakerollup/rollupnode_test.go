package fakerollup_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
)

// dialNoAuth returns op-service's real RPC client for url, without JWT, with
// the given call timeout; it is closed in t.Cleanup.
func dialRollup(t *testing.T, n *fakerollup.RollupNode) *sources.RollupClient {
	t.Helper()
	return sources.NewRollupClient(testutil.DialNoAuth(t, n.URL(), 5*time.Second))
}

func requireRPCErrorCode(t *testing.T, want int, err error) {
	t.Helper()
	var rpcErr rpc.Error
	require.ErrorAs(t, err, &rpcErr)
	require.Equal(t, want, rpcErr.ErrorCode(), err.Error())
}

func TestRollupNodeStartsAtGenesis(t *testing.T) {
	tree := fakechain.NewTree()
	n := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{})
	st, err := dialRollup(t, n).SyncStatus(context.Background())
	require.NoError(t, err)
	g := tree.Ref(tree.Genesis())
	require.Equal(t, &eth.SyncStatus{CurrentL1: fakechain.L1Ref(0), UnsafeL2: g, SafeL2: g, LocalSafeL2: g, FinalizedL2: g}, st)
}

func TestRollupNodeServesWhatFollowSet(t *testing.T) {
	tree := fakechain.NewTree()
	n := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{})
	rc := dialRollup(t, n)
	ctx := context.Background()
	chain := tree.Extend(tree.Genesis().Hash(), 10, 0) // chain[i] is block i+1
	n.Follow(chain[9], chain[7], chain[5], chain[2], fakechain.L1Ref(1))

	st, err := rc.SyncStatus(ctx)
	require.NoError(t, err)
	want := eth.SyncStatus{
		CurrentL1:   fakechain.L1Ref(1),
		UnsafeL2:    tree.Ref(chain[9]),
		LocalSafeL2: tree.Ref(chain[7]),
		SafeL2:      tree.Ref(chain[5]),
		FinalizedL2: tree.Ref(chain[2]),
	}
	require.Equal(t, &want, st)

	for _, b := range append([]*types.Block{tree.Genesis()}, chain...) {
		out, err := rc.OutputAtBlock(ctx, b.NumberU64())
		require.NoError(t, err)
		require.Equal(t, tree.Ref(b), out.BlockRef)
		require.Equal(t, fakerollup.OutputRoot(b), out.OutputRoot)
		require.Equal(t, eth.Bytes32{}, out.Version)
		require.Equal(t, b.Root(), out.StateRoot)
		require.Equal(t, &want, out.Status)
	}
	require.NotEqual(t, fakerollup.OutputRoot(chain[0]), fakerollup.OutputRoot(chain[1]))
	_, err = rc.OutputAtBlock(ctx, 11)
	require.ErrorContains(t, err, "not found")
	_, err = rc.OutputAtBlock(ctx, ^uint64(0))
	require.ErrorContains(t, err, "not found")

	cfg, err := rc.RollupConfig(ctx)
	require.NoError(t, err)
	require.Equal(t, tree.RollupConfig(), cfg)
	version, err := rc.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, "testutil", version)

	require.Equal(t, 1, n.CallCount("optimism_syncStatus"))
	require.Equal(t, 13, n.CallCount("optimism_outputAtBlock"))
	calls := n.Calls()
	require.Len(t, calls, 16)
	require.JSONEq(t, `["0x0"]`, string(calls[1].Params))
}

func TestRollupNodeFollowReorgsOutputs(t *testing.T) {
	tree := fakechain.NewTree()
	n := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{})
	rc := dialRollup(t, n)
	ctx := context.Background()
	chain := tree.Extend(tree.Genesis().Hash(), 6, 0)
	fork := tree.Extend(chain[1].Hash(), 2, 1) // blocks 3 and 4 on another fork
	n.Follow(chain[5], chain[5], chain[3], chain[1], fakechain.L1Ref(1))

	n.Follow(fork[1], fork[0], chain[1], nil, fakechain.L1Ref(1))
	out, err := rc.OutputAtBlock(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, tree.Ref(fork[0]), out.BlockRef)
	require.Equal(t, tree.Ref(tree.Genesis()), out.Status.FinalizedL2, "nil means genesis")
	_, err = rc.OutputAtBlock(ctx, 5)
	require.ErrorContains(t, err, "not found", "the shorter fork has no block 5")
}

func TestRollupNodeServesGivenRollupConfig(t *testing.T) {
	tree := fakechain.NewTree()
	cfg := tree.RollupConfig()
	cfg.L2ChainID = big.NewInt(4242)
	n := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{RollupConfig: cfg})
	got, err := dialRollup(t, n).RollupConfig(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(4242), got.L2ChainID.Int64())
}

func TestRollupNodeSyncStatusLiesComeThrough(t *testing.T) {
	tree := fakechain.NewTree()
	n := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{})
	rc := dialRollup(t, n)
	ctx := context.Background()
	chain := tree.Extend(tree.Genesis().Hash(), 6, 0)
	fork := tree.Extend(chain[0].Hash(), 3, 1)
	n.Follow(chain[5], chain[4], chain[3], chain[1], fakechain.L1Ref(1))

	lie := eth.SyncStatus{
		CurrentL1:   fakechain.L1Ref(1),
		UnsafeL2:    tree.Ref(chain[5]),
		LocalSafeL2: tree.Ref(fork[2]),  // on another fork
		SafeL2:      tree.Ref(chain[1]), // below finalized
		FinalizedL2: tree.Ref(chain[4]),
	}
	lie.UnsafeL2.Hash = common.Hash{} // zero hash
	n.SetSyncStatus(lie)
	st, err := rc.SyncStatus(ctx)
	require.NoError(t, err)
	require.Equal(t, &lie, st)
	out, err := rc.OutputAtBlock(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, tree.Ref(chain[1]), out.BlockRef, "outputs still come from the followed chain")
	require.Equal(t, &lie, out.Status)

	n.Follow(chain[5], chain[4], chain[3], chain[1], fakechain.L1Ref(1))
	st, err = rc.SyncStatus(ctx)
	require.NoError(t, err)
	require.Equal(t, tree.Ref(chain[3]), st.SafeL2, "Follow clears the override")
}

func TestRollupNodeFollowRefusesInconsistentLabels(t *testing.T) {
	tree := fakechain.NewTree()
	n, err := fakerollup.StartRollupNode(tree, fakerollup.RollupNodeConfig{})
	require.NoError(t, err)
	defer n.Close()
	chain := tree.Extend(tree.Genesis().Hash(), 4, 0)
	fork := tree.Extend(chain[0].Hash(), 2, 1)
	stranger := fakechain.NewTree()
	strange := stranger.Extend(stranger.Genesis().Hash(), 1, 7)[0]

	for name, follow := range map[string]func(){
		"unsafe not in the Tree":      func() { n.Follow(strange, nil, nil, nil, eth.L1BlockRef{}) },
		"safe on another fork":        func() { n.Follow(chain[3], chain[3], fork[1], nil, eth.L1BlockRef{}) },
		"local-safe above unsafe":     func() { n.Follow(chain[1], chain[2], nil, nil, eth.L1BlockRef{}) },
		"safe above local-safe":       func() { n.Follow(chain[3], chain[1], chain[2], nil, eth.L1BlockRef{}) },
		"finalized above safe":        func() { n.Follow(chain[3], chain[3], chain[1], chain[2], eth.L1BlockRef{}) },
		"finalized on another branch": func() { n.Follow(chain[3], chain[3], chain[3], fork[0], eth.L1BlockRef{}) },
	} {
		require.Panics(t, follow, name)
	}
	st, err := sources.NewRollupClient(testutil.DialNoAuth(t, n.URL(), 5*time.Second)).SyncStatus(context.Background())
	require.NoError(t, err)
	require.Equal(t, tree.Ref(tree.Genesis()), st.UnsafeL2, "a refused Follow changes nothing")
}

func TestRollupNodeUnknownMethodIsMethodNotFound(t *testing.T) {
	n := testutil.NewRollupNode(t, fakechain.NewTree(), fakerollup.RollupNodeConfig{})
	var out any
	err := testutil.DialNoAuth(t, n.URL(), 5*time.Second).CallContext(context.Background(), &out, "eth_chainId")
	requireRPCErrorCode(t, -32601, err)
	err = testutil.DialNoAuth(t, n.URL(), 5*time.Second).CallContext(context.Background(), &out, "optimism_outputAtBlock", "yesterday")
	requireRPCErrorCode(t, -32602, err)
}

func TestELAnswersSyncStatusWithMethodNotFound(t *testing.T) {
	el := testutil.NewEL(t, fakechain.NewTree(), fakeel.ELConfig{NoAuth: true})
	_, err := sources.NewRollupClient(testutil.DialNoAuth(t, el.URL(), 5*time.Second)).SyncStatus(context.Background())
	requireRPCErrorCode(t, -32601, err)
}
