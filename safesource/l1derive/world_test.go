package l1derive_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/internal/testutil/opgeth"
	"github.com/lightcl/lightcl/internal/testutil/opstack"
	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource/l1derive"
)

// world is a mini OP Stack (L1, sequencer, batcher) and a follower: an
// op-geth with no peers, driven by an adapter whose source derives from L1.
type world struct {
	stack    *opstack.Stack
	follower *opgeth.Node
	engine   *sources.EngineClient
	l1       *sources.L1Client
	src      *l1derive.Source
	adapter  *engineadapter.Adapter
	events   []engineadapter.Event
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{stack: opstack.New(t, opstack.DefaultConfig())}
	w.follower = w.stack.StartFollower(t)
	w.l1 = testutil.DialL1(t, w.stack.L1URL())
	w.start(t)
	return w
}

// start makes a new source and adapter over the follower, as a restarted
// node would.
func (w *world) start(t *testing.T) {
	t.Helper()
	w.engine = w.follower.Engine(t)
	var err error
	w.src, err = l1derive.New(l1derive.Config{}, w.stack.RollupConfig(), w.l1, nil, w.engine, testLogger(t), nil)
	require.NoError(t, err)
	w.adapter, err = engineadapter.New(engineadapter.Config{}, w.engine, w.src, testLogger(t), nil)
	require.NoError(t, err)
	w.adapter.OnEvent(func(e engineadapter.Event) { w.events = append(w.events, e) })
}

func testLogger(t *testing.T) log.Logger {
	if testing.Verbose() {
		return log.NewLogger(log.NewTerminalHandlerWithLevel(testWriter{t}, log.LevelInfo, false))
	}
	return log.NewLogger(log.DiscardHandler())
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// build has the sequencer build n blocks with a transfer each.
func (w *world) build(ctx context.Context, t *testing.T, n int) []eth.L2BlockRef {
	t.Helper()
	nonce := w.stack.SequencerHead().Number // one transfer per block from genesis on
	refs, err := w.stack.BuildL2(ctx, n, func(i int) [][]byte {
		return opgeth.TransferTxs(opgeth.FundedKey(), w.stack.RollupConfig().L2ChainID, nonce+uint64(i), 1)
	})
	require.NoError(t, err)
	return refs
}

func (w *world) post(ctx context.Context, t *testing.T, upTo uint64, kind opstack.BatchKind) eth.L1BlockRef {
	t.Helper()
	ref, err := w.stack.PostBatches(ctx, upTo, kind)
	require.NoError(t, err)
	return ref
}

// follow ticks the adapter until the source's safe head is safe and the
// adapter has applied it, or fails the test after 200 ticks.
func (w *world) follow(ctx context.Context, t *testing.T, safe uint64) {
	t.Helper()
	for range 200 {
		d, err := w.adapter.Step(ctx)
		st := w.adapter.Status()
		if st.Safe.Number == safe && st.SourceHeads.Safe.Number == safe && d.Action != reorg.Build && err == nil {
			return
		}
	}
	st := w.adapter.Status()
	t.Fatalf("not at safe %d after 200 ticks: adapter safe %d unsafe %d, source %+v, last %s: %s (err %v)",
		safe, st.Safe.Number, st.Unsafe.Number, w.src.Status(), st.LastAction, st.LastReason, st.LastError)
}

// requireSequencersChain checks that the follower holds the sequencer's
// blocks 0..upTo, and nothing above.
func (w *world) requireSequencersChain(ctx context.Context, t *testing.T, upTo uint64) {
	t.Helper()
	seq := w.stack.Sequencer().L2(t)
	for n := uint64(0); n <= upTo; n++ {
		want, err := seq.L2BlockRefByNumber(ctx, n)
		require.NoError(t, err)
		got, err := w.engine.L2BlockRefByNumber(ctx, n)
		require.NoError(t, err, "follower block %d", n)
		require.Equal(t, want.Hash, got.Hash, "follower block %d", n)
	}
	_, err := w.engine.L2BlockRefByNumber(ctx, upTo+1)
	require.True(t, errors.Is(err, ethereum.NotFound), "follower has block %d, never posted: %v", upTo+1, err)
}

func (w *world) count(kind engineadapter.EventKind) int {
	n := 0
	for _, e := range w.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}
