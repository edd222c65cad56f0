package e2e_test

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/testutil/opgeth"
	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

// world is a sequencer op-geth with a chain built on it, and the remote source
// that follows it (its public HTTP JSON-RPC, as an L2 EL).
type world struct {
	t       testing.TB
	ctx     context.Context
	genesis *opgeth.Genesis
	seq     *opgeth.Node
	builder *opgeth.Sequencer
	source  *remotel2.Source
	nonce   uint64
}

func newWorld(t testing.TB) *world { return newWorldOfChain(t, opgeth.NewGenesis()) }

// newWorldOfChain is newWorld on genesis g (another chain id, for several
// chains side by side).
func newWorldOfChain(t testing.TB, g *opgeth.Genesis) *world {
	if testing.Short() {
		t.Skip("end-to-end test: runs op-geth processes (built from the module cache on first use); skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute+*soakFor) // TestSoak runs for -soak
	t.Cleanup(cancel)
	w := &world{t: t, ctx: ctx, genesis: g}
	w.seq = opgeth.Start(t, opgeth.Config{Genesis: w.genesis, Name: fmt.Sprintf("sequencer-%d", g.ChainID())})
	w.builder = opgeth.NewSequencer(t, w.seq)
	src, err := remotel2.New(ctx, remotel2.Config{URL: w.seq.HTTP(), Kind: remotel2.KindEL, RollupConfig: w.genesis.RollupConfig()}, testLogger(t), nil)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	w.source = src
	return w
}

// build adds n blocks with txsPerBlock transfers each, and returns them.
func (w *world) build(n, txsPerBlock int) []eth.L2BlockRef {
	chainID := new(big.Int).SetUint64(w.genesis.ChainID())
	refs, err := w.builder.Build(w.ctx, n, func(i int) [][]byte {
		txs := opgeth.TransferTxs(opgeth.FundedKey(), chainID, w.nonce, txsPerBlock)
		w.nonce += uint64(txsPerBlock)
		return txs
	})
	require.NoError(w.t, err)
	return refs
}

func (w *world) label(safe, finalized eth.L2BlockRef) {
	require.NoError(w.t, w.builder.SetLabels(w.ctx, safe, finalized))
}

// follower starts an op-geth on the same genesis, peered with the sequencer
// when p2p is set; opts adjust its config (storage flags).
func (w *world) follower(name string, p2p bool, opts ...func(*opgeth.Config)) *opgeth.Node {
	cfg := opgeth.Config{Genesis: w.genesis, Name: name}
	for _, o := range opts {
		o(&cfg)
	}
	if p2p {
		cfg.Peer = w.seq
	}
	return opgeth.Start(w.t, cfg)
}

// adapter drives follower from the world's source, recording every forkchoice
// update it sends.
func (w *world) adapter(follower *opgeth.Node, mode string, window int) (*engineadapter.Adapter, *recorder) {
	rec := &recorder{Engine: follower.Engine(w.t)}
	cfg := engineadapter.DefaultConfig()
	cfg.PollInterval = 200 * time.Millisecond
	if mode == "backfill" {
		cfg.SyncMode = reorg.Backfill
		cfg.Payloads = w.seq.L2(w.t)
		cfg.BackfillWindow = window
	}
	a, err := engineadapter.New(cfg, rec, w.source, testLogger(w.t), nil)
	require.NoError(w.t, err)
	return a, rec
}

// converge steps a until the follower's safe and finalized heads are the
// sequencer's, or fails after timeout.
func (w *world) converge(a *engineadapter.Adapter, follower *opgeth.Node, timeout time.Duration) {
	l2 := follower.L2(w.t)
	want := [2]eth.L2BlockRef{w.builder.Safe(), w.builder.Finalized()}
	var got [2]eth.L2BlockRef
	var lastErr error
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		_, lastErr = a.Step(w.ctx)
		got[0], _ = l2.L2BlockRefByLabel(w.ctx, eth.Safe)
		got[1], _ = l2.L2BlockRefByLabel(w.ctx, eth.Finalized)
		if got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.Failf(w.t, "follower did not converge", "safe/finalized %d/%d, want %d/%d; last error: %v; follower log:\n%s",
		got[0].Number, got[1].Number, want[0].Number, want[1].Number, lastErr, follower.LogTail(40))
}

// recorder is an Engine that records the forkchoice updates sent through it.
type recorder struct {
	engineadapter.Engine
	mu  sync.Mutex
	fcs []eth.ForkchoiceState
}

func (r *recorder) ForkchoiceUpdate(ctx context.Context, fc *eth.ForkchoiceState, attr *eth.PayloadAttributes) (*eth.ForkchoiceUpdatedResult, error) {
	r.mu.Lock()
	r.fcs = append(r.fcs, *fc)
	r.mu.Unlock()
	return r.Engine.ForkchoiceUpdate(ctx, fc, attr)
}

func (r *recorder) updates() []eth.ForkchoiceState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]eth.ForkchoiceState(nil), r.fcs...)
}

// requireFinalizedNeverBack checks, block numbers looked up on the sequencer,
// that no forkchoice update moved finalized backwards.
func (w *world) requireFinalizedNeverBack(rec *recorder) {
	l2 := w.seq.L2(w.t)
	var last uint64
	for i, fc := range rec.updates() {
		if fc.FinalizedBlockHash == (common.Hash{}) {
			continue
		}
		ref, err := l2.L2BlockRefByHash(w.ctx, fc.FinalizedBlockHash)
		require.NoError(w.t, err, "update %d: finalized %s", i, fc.FinalizedBlockHash)
		require.GreaterOrEqual(w.t, ref.Number, last, "update %d moved finalized back", i)
		last = ref.Number
	}
}

func testLogger(t testing.TB) log.Logger {
	return log.NewLogger(log.NewTerminalHandlerWithLevel(testWriter{t}, log.LevelInfo, false))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}
