package e2e_test

import (
	"math/big"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-core/predeploys"
	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/testutil/opgeth"
)

// TestMinimalNodeOutputAtBlock: minimal-node, with a peerless follower op-geth
// as its engine (backfilled, so it executed every block and holds their
// state), answers optimism_outputAtBlock with the output the sequencer's
// op-geth gives for the same block (the safe head, and one below it): same
// block, state root, message passer storage root and output root. A block
// above the engine's head answers an error naming both numbers.
//
// The test genesis has no predeploys, and op-service proves the message
// passer's storage root only for an account that exists (an exclusion proof
// fails as "account proof does not match"): block 1 sends it some wei, so
// its storage root is the empty trie's.
func TestMinimalNodeOutputAtBlock(t *testing.T) {
	w := newWorld(t)
	refs := append(w.fundMessagePasser(), w.build(29, 1)...)
	safe, fin := refs[19], refs[9]
	w.label(safe, fin)
	follower := w.follower("follower", false)
	node := startNode(t, "--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
		"--l2.follow.source", w.seq.HTTP(), "--l2.follow.kind", "el", "--rollup.config", writeRollupJSON(t, w.genesis.RollupConfig()),
		"--sync.mode", "backfill", "--rpc.addr", "127.0.0.1", "--rpc.port", "0")
	node.waitStarted(60 * time.Second)
	requireLabels(w.ctx, t, follower.L2(t), safe, fin, node.stderr)

	addr := regexp.MustCompile(`Status RPC listening +addr=(\S+)`).FindStringSubmatch(node.stderr.String())
	require.Len(t, addr, 2, "status address in the log:\n%s", node.stderr.String())
	rpcClient, err := rpc.DialContext(w.ctx, "http://"+addr[1])
	require.NoError(t, err)
	defer rpcClient.Close()
	rollup := sources.NewRollupClient(client.NewBaseRPCClient(rpcClient))
	seq := w.seq.L2(t)

	for _, ref := range []eth.L2BlockRef{safe, refs[4]} {
		want, err := seq.OutputV0AtBlock(w.ctx, ref.Hash)
		require.NoError(t, err, "the sequencer's output at block %d", ref.Number)
		got, err := rollup.OutputAtBlock(w.ctx, ref.Number)
		require.NoError(t, err, "optimism_outputAtBlock %d; node log:\n%s", ref.Number, node.stderr.String())
		require.Equal(t, eth.OutputVersionV0, got.Version)
		require.Equal(t, ref, got.BlockRef, "block %d", ref.Number)
		require.Equal(t, common.Hash(want.StateRoot), got.StateRoot, "block %d", ref.Number)
		require.Equal(t, common.Hash(want.MessagePasserStorageRoot), got.WithdrawalStorageRoot, "block %d", ref.Number)
		require.Equal(t, eth.OutputRoot(want), got.OutputRoot, "block %d", ref.Number)
		require.NotNil(t, got.Status, "syncStatus")
		require.Equal(t, safe, got.Status.SafeL2, "syncStatus's safe_l2")
		require.Equal(t, fin, got.Status.FinalizedL2, "syncStatus's finalized_l2")
	}

	// the follower's head is the safe head, or the sequencer's if the node
	// follows the tip
	_, err = rollup.OutputAtBlock(w.ctx, 1000)
	require.Error(t, err)
	m := regexp.MustCompile(`block 1000 is above the engine's head (\d+)`).FindStringSubmatch(err.Error())
	require.Len(t, m, 2, "error names both numbers: %v", err)
	head, err := strconv.ParseUint(m[1], 10, 64)
	require.NoError(t, err)
	require.GreaterOrEqual(t, head, safe.Number)
	require.LessOrEqual(t, head, refs[29].Number)
	node.stop()
}

// fundMessagePasser builds one block that sends the L2ToL1MessagePasser
// predeploy 1 gwei, so that its account exists, and returns it.
func (w *world) fundMessagePasser() []eth.L2BlockRef {
	chainID := big.NewInt(opgeth.ChainID)
	tx, err := types.SignNewTx(opgeth.FundedKey(), types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: w.nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(10 * params.GWei),
		Gas: 100_000, To: &predeploys.L2ToL1MessagePasserAddr, Value: big.NewInt(params.GWei),
	})
	require.NoError(w.t, err)
	raw, err := tx.MarshalBinary()
	require.NoError(w.t, err)
	refs, err := w.builder.Build(w.ctx, 1, func(int) [][]byte { return [][]byte{raw} })
	require.NoError(w.t, err)
	w.nonce++
	return refs
}
