package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
)

// TestPostUnsafePayload: with --rpc.enable-admin, a payload posted with
// admin_postUnsafePayload (op-node's admin API) becomes the engine's head
// through the tip path, safe and finalized untouched; one whose hash does not
// match its contents is refused as op-node refuses it and never reaches the
// engine. Without the flag there is no admin namespace.
func TestPostUnsafePayload(t *testing.T) {
	f := newFixture(t, 20)
	rn := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
	rn.Follow(f.block(20), f.block(10), f.block(10), f.block(5), fakechain.L1Ref(1))
	next := f.tree.Extend(f.block(20).Hash(), 2, 9)
	env := func(i int) *eth.ExecutionPayloadEnvelope {
		e, err := eth.BlockAsPayloadEnv(next[i], f.tree.RollupConfig())
		require.NoError(t, err)
		return e
	}
	post := func(e *eth.ExecutionPayloadEnvelope) error {
		c, err := rpc.DialContext(context.Background(), fmt.Sprintf("http://127.0.0.1:%d", f.rpcPort))
		require.NoError(t, err)
		defer c.Close()
		return c.CallContext(context.Background(), nil, "admin_postUnsafePayload", e)
	}

	p := f.start(t, false, map[string]string{"l2.follow.source": rn.URL(), "rpc.enable-admin": "true"})
	f.checkFollows(t, p, 10, 5)
	require.NoError(t, post(env(0)))
	unsafe, safe, fin := f.el.Labels()
	require.Equal(t, f.tree.Ref(next[0]), unsafe, "the posted block is the engine's head once the call returns")
	require.Equal(t, [2]uint64{10, 5}, [2]uint64{safe.Number, fin.Number}, "safe and finalized untouched")

	below, err := eth.BlockAsPayloadEnv(f.block(5), f.tree.RollupConfig())
	require.NoError(t, err)
	require.ErrorContains(t, post(below), "not taken", "a block below safe is ignored, and the poster is told")

	forged := env(1)
	forged.ExecutionPayload.BlockHash = common.Hash{1}
	require.ErrorContains(t, post(forged), "bad block hash")
	newPayloads := 0
	for _, v := range []string{"V1", "V2", "V3", "V4"} {
		newPayloads += f.el.CallCount("engine_newPayload" + v)
	}
	require.Equal(t, 1, newPayloads, "only the good payload reached the engine")
	p.stop(t)

	p = f.start(t, false, map[string]string{"l2.follow.source": rn.URL()})
	require.ErrorContains(t, post(env(1)), "does not exist")
	p.stop(t)
}
