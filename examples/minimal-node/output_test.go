package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
)

// TestOutputAtBlockErrors: the in-memory EL serves no eth_getProof, so only
// optimism_outputAtBlock's errors are checked here (the outputs themselves
// against op-geth in internal/e2e): a block above the engine's head names both
// numbers; the engine failing the proof names the block and the call; and the
// node answers on afterwards.
func TestOutputAtBlockErrors(t *testing.T) {
	f := newFixture(t, 10)
	rn := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
	rn.Follow(f.block(10), f.block(8), f.block(8), f.block(5), fakechain.L1Ref(2))
	p := f.start(t, false, map[string]string{"l2.follow.source": rn.URL()})
	require.Eventually(t, func() bool { return f.syncStatus(t) != nil }, waitFor, 50*time.Millisecond,
		"optimism_syncStatus answers; stderr:\n%s", p.stderr)

	_, err := f.outputAtBlock(t, 1000)
	require.ErrorContains(t, err, "block 1000 is above the engine's head 10")

	_, err = f.outputAtBlock(t, 5)
	require.ErrorContains(t, err, "block 5 ("+f.block(5).Hash().Hex()+"): computing its output from the engine")
	require.ErrorContains(t, err, "eth_getProof")
	require.Positive(t, f.el.CallCount("eth_getProof"), "the node asked the engine for the proof")

	require.NotNil(t, f.syncStatus(t), "the node answers on")
	require.NotContains(t, p.stderr.String(), "panic")
	p.stop(t)
}

// outputAtBlock asks the node's status RPC for optimism_outputAtBlock.
func (f *fixture) outputAtBlock(t *testing.T, number uint64) (*eth.OutputResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rpc.DialContext(ctx, fmt.Sprintf("http://127.0.0.1:%d", f.rpcPort))
	require.NoError(t, err)
	defer c.Close()
	return sources.NewRollupClient(client.NewBaseRPCClient(c)).OutputAtBlock(ctx, number)
}
