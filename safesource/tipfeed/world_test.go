package tipfeed_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource/tipfeed"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tipFeed is engineadapter's TipFeed, copied so that this package need not
// import the adapter: Remote must keep satisfying it.
type tipFeed interface {
	Name() string
	Run(ctx context.Context, out chan<- *eth.ExecutionPayloadEnvelope) error
	PayloadByHash(ctx context.Context, hash common.Hash) (*eth.ExecutionPayloadEnvelope, error)
}

var _ tipFeed = (*tipfeed.Remote)(nil)

// world is a public in-memory L2 EL whose head the test moves, a feed on it,
// and the channel the feed delivers to.
type world struct {
	tree    *fakechain.Tree
	el      *fakeel.EL
	feed    *tipfeed.Remote
	metrics *recordingMetrics
	out     chan *eth.ExecutionPayloadEnvelope
	head    *types.Block
}

// newWorld starts an EL at genesis and a feed on its websocket (ws) or HTTP
// endpoint with cfg; Run runs until the test ends.
func newWorld(t *testing.T, ws bool, cfg tipfeed.Config) *world {
	t.Helper()
	w := &world{tree: fakechain.NewTree(), metrics: &recordingMetrics{errors: map[string]int{}}}
	w.head = w.tree.Genesis()
	w.el = testutil.NewEL(t, w.tree, fakeel.ELConfig{NoAuth: true})
	cfg.URL = w.el.URL()
	if ws {
		cfg.URL = w.el.WSURL()
	}
	cfg.RollupConfig = w.tree.RollupConfig()
	var err error
	w.feed, err = tipfeed.New(context.Background(), cfg, testLogger(t), w.metrics)
	require.NoError(t, err)
	t.Cleanup(w.feed.Close)
	w.out = make(chan *eth.ExecutionPayloadEnvelope, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.feed.Run(ctx, w.out) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.Equal(t, tipfeed.ModeDown, w.feed.Status().Mode, "a feed whose Run returned is down")
	})
	return w
}

// extend makes n new blocks on the head, one head at a time.
func (w *world) extend(n int) []*types.Block {
	blocks := w.tree.Extend(w.head.Hash(), n, 1)
	for _, b := range blocks {
		w.el.Insert(b)
		w.el.SetForkchoice(b.Hash(), common.Hash{}, common.Hash{})
	}
	w.head = blocks[len(blocks)-1]
	return blocks
}

// next waits for the next delivered payload.
func (w *world) next(t *testing.T) *eth.ExecutionPayloadEnvelope {
	t.Helper()
	select {
	case env := <-w.out:
		return env
	case <-time.After(5 * time.Second):
		t.Fatalf("nothing delivered within 5s; status %+v", w.feed.Status())
		return nil
	}
}

// requireNext requires the next delivered payload to be b.
func (w *world) requireNext(t *testing.T, b *types.Block, msgAndArgs ...any) {
	t.Helper()
	env := w.next(t)
	require.Equal(t, b.Hash(), env.ExecutionPayload.BlockHash, msgAndArgs...)
	_, ok := env.CheckBlockHash()
	require.True(t, ok, "a delivered payload hashes to its block hash")
}

// eventually waits up to 5s for cond.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, 5*time.Millisecond, msg)
}

// recordingMetrics keeps what the feed records, for tests.
type recordingMetrics struct {
	mu        sync.Mutex
	modes     []tipfeed.Mode
	delivered int
	errors    map[string]int
}

func (m *recordingMetrics) RecordMode(_ string, mode tipfeed.Mode) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.modes = append(m.modes, mode)
}

func (m *recordingMetrics) RecordDelivered(string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.delivered++
}

func (m *recordingMetrics) RecordError(_, kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errors[kind]++
}

// modesSeen returns the modes recorded so far, in order.
func (m *recordingMetrics) modesSeen() []tipfeed.Mode {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.modes)
}

// errorCount returns how many errors of kind were recorded.
func (m *recordingMetrics) errorCount(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errors[kind]
}

// testLogger logs to t with -v, else nowhere.
func testLogger(t *testing.T) log.Logger {
	if testing.Verbose() {
		return log.NewLogger(log.NewTerminalHandlerWithLevel(testWriter{t}, log.LevelDebug, false))
	}
	return log.NewLogger(log.DiscardHandler())
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
