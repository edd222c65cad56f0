package opgeth

import (
	"context"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
)

func TestRollupConfigPassesCheck(t *testing.T) {
	g := NewGenesis()
	cfg := g.RollupConfig()
	require.NoError(t, cfg.Check())
	require.Equal(t, g.Hash(), cfg.Genesis.L2.Hash)
	require.True(t, cfg.IsGranite(GenesisTime), "granite active at genesis")
	require.False(t, cfg.IsHolocene(GenesisTime+1_000_000), "holocene never active")
	require.Equal(t, g.Hash(), NewGenesis().Hash(), "the genesis is deterministic")
}

func TestGenesisJSONRoundTrips(t *testing.T) {
	g := NewGenesis()
	raw, err := g.JSON()
	require.NoError(t, err)
	var back core.Genesis
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Equal(t, g.Hash(), back.ToBlock().Hash())
	require.Nil(t, back.Config.PragueTime)
	require.Nil(t, back.Config.HoloceneTime)
	require.Nil(t, back.Config.BlobScheduleConfig)
}

func TestOpGethVersionReadsReplace(t *testing.T) {
	for name, goMod := range map[string]string{
		"one line": "module x\n\nreplace github.com/ethereum/go-ethereum => github.com/ethereum-optimism/op-geth v1.2.3-rc.4\n",
		"block":    "module x\n\nreplace (\n\tfoo => bar v0.1.0\n\tgithub.com/ethereum/go-ethereum v1.17.0 => github.com/ethereum-optimism/op-geth v1.2.3-rc.4\n)\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "go.mod")
			require.NoError(t, os.WriteFile(path, []byte(goMod), 0o644))
			v, err := opGethVersion(path)
			require.NoError(t, err)
			require.Equal(t, "v1.2.3-rc.4", v)
		})
	}
	path := filepath.Join(t.TempDir(), "go.mod")
	require.NoError(t, os.WriteFile(path, []byte("module x\n"), 0o644))
	_, err := opGethVersion(path)
	require.Error(t, err, "no replace line")
}

// transfersPerBlock is how many user transactions each test block carries.
const transfersPerBlock = 3

// testContext returns the context of an end-to-end test, once geth is built
// (a cold build takes minutes and must not eat into the test's deadline).
func testContext(t *testing.T) context.Context {
	t.Helper()
	begin := time.Now()
	Binary(t)
	t.Logf("timing: Binary %s", time.Since(begin).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startSequencer starts a sequencer node for cfg and builds n blocks with
// transfersPerBlock transfers each on it.
func startSequencer(ctx context.Context, t *testing.T, cfg Config, n int) (*Node, *Sequencer, []eth.L2BlockRef) {
	t.Helper()
	begin := time.Now()
	node := Start(t, cfg)
	t.Logf("timing: start %s", time.Since(begin).Round(time.Millisecond))
	seq := NewSequencer(t, node)
	require.Equal(t, uint64(0), seq.Head().Number)
	begin = time.Now()
	refs, err := seq.Build(ctx, n, func(i int) [][]byte {
		return TransferTxs(FundedKey(), big.NewInt(ChainID), uint64(i*transfersPerBlock), transfersPerBlock)
	})
	require.NoError(t, err)
	t.Logf("timing: built %d blocks in %s", n, time.Since(begin).Round(time.Millisecond))
	require.Len(t, refs, n)
	return node, seq, refs
}

// TestSequencerBuildsAndLabels builds 20 blocks with transactions on a real
// op-geth and reads them back with op-service's clients.
func TestSequencerBuildsAndLabels(t *testing.T) {
	ctx := testContext(t)
	node, seq, refs := startSequencer(ctx, t, Config{Genesis: NewGenesis(), Name: "sequencer"}, 20)
	for i, ref := range refs {
		n := uint64(i + 1)
		require.Equal(t, n, ref.Number)
		require.Equal(t, GenesisTime+BlockTime*n, ref.Time)
		require.Equal(t, eth.HeaderBlockID(L1Header(n/blocksPerEpoch)), ref.L1Origin, "block %d", n)
		require.Equal(t, n%blocksPerEpoch, ref.SequenceNumber)
	}
	require.Equal(t, refs[19], seq.Head())
	require.NoError(t, seq.SetLabels(ctx, refs[14], refs[9]))
	require.Equal(t, refs[14], seq.Safe())
	require.Equal(t, refs[9], seq.Finalized())

	l2 := node.L2(t)
	requireLabels(ctx, t, l2, refs[19], refs[14], refs[9])
	requireLabels(ctx, t, node.Engine(t), refs[19], refs[14], refs[9])
	_, txs, err := l2.InfoAndTxsByHash(ctx, refs[4].Hash)
	require.NoError(t, err)
	require.Len(t, txs, 1+transfersPerBlock, "L1-info deposit and the transfers")
	var nonce hexutil.Uint64
	require.NoError(t, call(ctx, node.HTTP(), &nonce, "eth_getTransactionCount", FundedAddress, "latest"))
	require.Equal(t, hexutil.Uint64(20*transfersPerBlock), nonce)

	// A new Sequencer picks up the labels geth holds.
	again := NewSequencer(t, node)
	require.Equal(t, refs[19], again.Head())
	require.Equal(t, refs[14], again.Safe())
	require.Equal(t, refs[9], again.Finalized())
}

// TestFollowerSyncsAndForks peers a follower with the sequencer: it reaches
// the sequencer's head by EL sync, then follows a fork built at block 12.
func TestFollowerSyncsAndForks(t *testing.T) {
	ctx := testContext(t)
	g := NewGenesis()
	seqNode, seq, refs := startSequencer(ctx, t, Config{Genesis: g, Name: "sequencer"}, 20)
	require.NoError(t, seq.SetLabels(ctx, refs[14], refs[9]))

	begin := time.Now()
	follower := Start(t, Config{Genesis: g, Name: "follower", Peer: seqNode})
	t.Logf("timing: start follower and peer %s", time.Since(begin).Round(time.Millisecond))
	fe := follower.Engine(t)
	fc := eth.ForkchoiceState{HeadBlockHash: refs[19].Hash, SafeBlockHash: refs[14].Hash, FinalizedBlockHash: refs[9].Hash}
	res, err := fe.ForkchoiceUpdate(ctx, &fc, nil)
	require.NoError(t, err)
	require.Equal(t, eth.ExecutionSyncing, res.PayloadStatus.Status, "head unknown to the follower")
	begin = time.Now()
	requireValidWithin(ctx, t, fe, fc, 10*time.Second)
	t.Logf("timing: follower EL sync to block 20 in %s", time.Since(begin).Round(time.Millisecond))
	requireLabels(ctx, t, follower.L2(t), refs[19], refs[14], refs[9])

	// Fork at 12: 5 new blocks replace 13..20 on the sequencer.
	forked, err := seq.Fork(ctx, refs[11], 5, 1)
	require.NoError(t, err)
	require.Len(t, forked, 5)
	require.Equal(t, refs[11].Hash, forked[0].ParentHash)
	require.NotEqual(t, refs[12].Hash, forked[0].Hash)
	require.Equal(t, forked[4], seq.Head())
	require.Equal(t, refs[11], seq.Safe(), "safe 15 lowered to the fork point")
	require.Equal(t, refs[9], seq.Finalized())
	l2 := seqNode.L2(t)
	requireLabels(ctx, t, l2, forked[4], refs[11], refs[9])
	at13, err := l2.L2BlockRefByNumber(ctx, 13)
	require.NoError(t, err)
	require.Equal(t, forked[0], at13, "the old block 13 is no longer canonical")
	_, err = l2.L2BlockRefByNumber(ctx, 18)
	require.Error(t, err, "the fork is shorter than the old chain")

	// The follower reorgs onto the fork by EL sync once the fork is longer
	// than its chain (geth's skeleton sync stalls, SYNCING for good, when
	// the new head is below its current head: seen with op-geth
	// v1.101702.3-rc.7).
	longer, err := seq.Build(ctx, 6, nil)
	require.NoError(t, err)
	head := longer[5]
	require.Equal(t, uint64(23), head.Number)
	fc = eth.ForkchoiceState{HeadBlockHash: head.Hash, SafeBlockHash: refs[11].Hash, FinalizedBlockHash: refs[9].Hash}
	begin = time.Now()
	requireValidWithin(ctx, t, fe, fc, 10*time.Second)
	t.Logf("timing: follower reorg to the fork in %s", time.Since(begin).Round(time.Millisecond))
	requireLabels(ctx, t, follower.L2(t), head, refs[11], refs[9])
}

// TestRestartKeeps stops or kills the sequencer and restarts it on its
// datadir, then checks what geth kept and that building carries on.
func TestRestartKeeps(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		kill bool
		// keepsAll: every block made canonical survives; else only a prefix
		// of the chain does (geth rewinds to the last state it persisted).
		keepsAll bool
	}{
		{name: "stop, geth defaults (path, pebble)", keepsAll: true},
		{name: "kill, geth defaults (path, pebble)", kill: true},
		{name: "kill, hash scheme and leveldb", cfg: Config{StateScheme: "hash", DBEngine: "leveldb"}, kill: true, keepsAll: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			cfg := tc.cfg
			cfg.Genesis, cfg.Name = NewGenesis(), "sequencer"
			node, seq, refs := startSequencer(ctx, t, cfg, 20)
			require.NoError(t, seq.SetLabels(ctx, refs[14], refs[9]))
			http, auth := node.HTTP(), node.AuthRPC()

			begin := time.Now()
			if tc.kill {
				node.Kill()
			} else {
				node.Stop()
			}
			require.False(t, node.Running())
			node.Restart(t)
			require.True(t, node.Running())
			t.Logf("timing: stop and restart %s", time.Since(begin).Round(time.Millisecond))
			require.Equal(t, http, node.HTTP(), "ports kept when free")
			require.Equal(t, auth, node.AuthRPC())

			after := NewSequencer(t, node)
			t.Logf("after restart: head %d (was 20), safe %d (was 15), finalized %d (was 10)",
				after.Head().Number, after.Safe().Number, after.Finalized().Number)
			l2 := node.L2(t)
			for _, ref := range refs[:after.Head().Number] {
				got, err := l2.L2BlockRefByNumber(ctx, ref.Number)
				require.NoError(t, err)
				require.Equal(t, ref, got, "blocks up to the head are the ones built")
			}
			if !tc.keepsAll {
				// With the path scheme the state lives in memory until a clean
				// stop: geth rewinds to the last state on disk (genesis here),
				// keeps the headers pebble flushed, switches to snap sync and
				// ignores newPayload until an FCU starts a sync from a peer.
				return
			}
			require.Equal(t, refs[19], after.Head())
			require.Equal(t, refs[9], after.Finalized())
			// geth does not persist the safe label: it restarts at finalized.
			require.Equal(t, refs[9], after.Safe())
			next, err := after.Build(ctx, 2, nil)
			require.NoError(t, err)
			require.Equal(t, refs[19].Hash, next[0].ParentHash)
			require.Equal(t, next[1], after.Head())
		})
	}
}

// requireLabels checks unsafe, safe and finalized as client c reports them.
func requireLabels(ctx context.Context, t *testing.T, c interface {
	L2BlockRefByLabel(context.Context, eth.BlockLabel) (eth.L2BlockRef, error)
}, unsafe, safe, finalized eth.L2BlockRef) {
	t.Helper()
	for label, want := range map[eth.BlockLabel]eth.L2BlockRef{eth.Unsafe: unsafe, eth.Safe: safe, eth.Finalized: finalized} {
		got, err := c.L2BlockRefByLabel(ctx, label)
		require.NoError(t, err, label)
		require.Equal(t, want, got, label)
	}
}

// requireValidWithin repeats fc until the engine answers VALID. While it
// syncs, geth answers SYNCING or, as its sync restarts, the RPC error
// "beacon syncer reorging".
func requireValidWithin(ctx context.Context, t *testing.T, e *sources.EngineClient, fc eth.ForkchoiceState, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		res, err := e.ForkchoiceUpdate(ctx, &fc, nil)
		if err == nil && res.PayloadStatus.Status == eth.ExecutionValid {
			return
		}
		if err == nil {
			require.Equal(t, eth.ExecutionSyncing, res.PayloadStatus.Status)
		}
		require.True(t, time.Now().Before(deadline), "not VALID after %s for head %s: %v %v", d, fc.HeadBlockHash, res, err)
		time.Sleep(50 * time.Millisecond)
	}
}
