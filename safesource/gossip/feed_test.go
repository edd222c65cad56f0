package gossip_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/gossip"
)

func TestSignedBlockIsDeliveredAndServedByHash(t *testing.T) {
	seq := newKey(t)
	w := newWorld(t, gossip.Config{Signer: gossip.FixedSigner(addr(seq))}, opts{})
	b := block(7, time.Now())
	w.pub.publish(t, seq, b)

	got := w.next(t)
	require.Equal(t, b.ExecutionPayload.BlockHash, got.ExecutionPayload.BlockHash)
	byHash, err := w.feed.PayloadByHash(t.Context(), b.ExecutionPayload.BlockHash)
	require.NoError(t, err)
	require.Equal(t, got, byHash)

	_, err = w.feed.PayloadByHash(t.Context(), common.Hash{1})
	require.ErrorIs(t, err, ethereum.NotFound, "the tip path falls back to other feeds or backfill")
	require.ErrorIs(t, err, safesource.ErrNotFound)

	st := w.feed.Status()
	require.Equal(t, uint64(1), st.Accepted)
	require.Equal(t, uint64(1), st.Received)
	require.Equal(t, b.ExecutionPayload.ID(), st.Head)
	require.Contains(t, st.Peers, w.pub.node.Host().ID())
	require.NotEmpty(t, st.ListenAddrs)
	for _, a := range st.ListenAddrs {
		require.True(t, strings.HasSuffix(a.String(), "/p2p/"+st.ID.String()), a.String())
	}
}

// TestRejectedBlocksAreCountedByReason: each block the validator refuses is
// counted under the validator's own reason, in Status and in Prometheus, and
// never delivered.
func TestRejectedBlocksAreCountedByReason(t *testing.T) {
	seq, other := newKey(t), newKey(t)
	reg := prometheus.NewRegistry()
	m, err := gossip.NewPrometheusMetrics(reg, "lightcl")
	require.NoError(t, err)
	w := newWorld(t, gossip.Config{Signer: gossip.FixedSigner(addr(seq))}, opts{metrics: m})
	now := time.Now()

	cases := []struct {
		name, reason string
		publish      func()
	}{
		{"signed by another key", "invalid block signature", func() {
			w.pub.publish(t, other, block(1, now))
		}},
		{"hash does not match the contents", "payload has bad block hash", func() {
			b := block(2, now)
			b.ExecutionPayload.BlockHash = common.Hash{0xba, 0xd}
			w.raw.publish(t, signed(t, seq, b))
		}},
		{"from the far future", "payload is too new", func() {
			w.raw.publish(t, signed(t, seq, block(3, now.Add(time.Minute))))
		}},
		{"older than the threshold", "payload is too old", func() {
			w.raw.publish(t, signed(t, seq, block(4, now.Add(-2*time.Minute))))
		}},
		{"garbage bytes", "invalid snappy compression length data", func() {
			w.raw.publish(t, bytes.Repeat([]byte{0xff}, 100))
		}},
	}
	want := map[string]uint64{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.publish()
			want[c.reason] = 1
			w.waitStatus(t, "rejection counted as "+c.reason, func(st gossip.Status) bool { return st.Rejected[c.reason] == 1 })
		})
	}

	good := block(5, now)
	w.pub.publish(t, seq, good)
	require.Equal(t, good.ExecutionPayload.BlockHash, w.next(t).ExecutionPayload.BlockHash, "only the good block is delivered")
	w.requireNothingMore(t)

	st := w.feed.Status()
	require.Equal(t, want, st.Rejected)
	require.Equal(t, uint64(1), st.Accepted)
	require.Equal(t, uint64(len(cases)+1), st.Received)
	require.NoError(t, promtest.GatherAndCompare(reg, strings.NewReader(`
# HELP lightcl_gossip_blocks_rejected_total Blocks rejected or ignored, by reason (op-node's validator log message, or pubsub's reason).
# TYPE lightcl_gossip_blocks_rejected_total counter
lightcl_gossip_blocks_rejected_total{reason="invalid block signature"} 1
lightcl_gossip_blocks_rejected_total{reason="invalid snappy compression length data"} 1
lightcl_gossip_blocks_rejected_total{reason="payload has bad block hash"} 1
lightcl_gossip_blocks_rejected_total{reason="payload is too new"} 1
lightcl_gossip_blocks_rejected_total{reason="payload is too old"} 1
# HELP lightcl_gossip_blocks_received_total Block messages received from peers, whatever became of them.
# TYPE lightcl_gossip_blocks_received_total counter
lightcl_gossip_blocks_received_total 6
# HELP lightcl_gossip_peers Connected peers.
# TYPE lightcl_gossip_peers gauge
lightcl_gossip_peers 2
`), "lightcl_gossip_blocks_rejected_total", "lightcl_gossip_blocks_received_total", "lightcl_gossip_peers"))
}

// TestValidatorLogsPassThrough: the records op-node logs reach the caller's
// logger as they are (with the topic op-node's child logger adds), at the
// caller's level only, while the rejections are counted.
func TestValidatorLogsPassThrough(t *testing.T) {
	seq := newKey(t)
	var buf lockedBuffer
	logger := log.NewLogger(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	w := newWorld(t, gossip.Config{Signer: gossip.FixedSigner(addr(seq))}, opts{logger: logger})
	w.pub.publish(t, newKey(t), block(1, time.Now()))
	w.waitStatus(t, "rejection counted", func(st gossip.Status) bool { return st.Rejected["invalid block signature"] == 1 })

	logs := buf.String()
	require.Contains(t, logs, `"level":"WARN","msg":"invalid block signature","topic":"blocksV4","peer":"`+w.pub.node.Host().ID().String())
	require.Contains(t, logs, `"msg":"started p2p host"`, "op-node's info records pass")
	require.NotContains(t, logs, `"msg":"validated blockv4"`, "debug records stay below the caller's level")
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDuplicateIsDeliveredOnce: the same signed block from a second peer is
// dropped by gossipsub as already seen.
func TestDuplicateIsDeliveredOnce(t *testing.T) {
	seq := newKey(t)
	w := newWorld(t, gossip.Config{Signer: gossip.FixedSigner(addr(seq))}, opts{})
	b := block(1, time.Now())
	w.pub.publish(t, seq, b)
	require.Equal(t, b.ExecutionPayload.BlockHash, w.next(t).ExecutionPayload.BlockHash)

	w.raw.publish(t, signed(t, seq, b)) // the same bytes: op-node's signatures are deterministic
	w.waitStatus(t, "duplicate counted", func(st gossip.Status) bool { return st.Duplicates == 1 })
	w.requireNothingMore(t)
	st := w.feed.Status()
	require.Equal(t, uint64(1), st.Accepted)
	require.Empty(t, st.Rejected)
}

// TestSlowConsumerDropsTheOldest: while nobody takes the blocks, the buffer
// keeps the newest; PayloadByHash still has the dropped ones.
func TestSlowConsumerDropsTheOldest(t *testing.T) {
	seq := newKey(t)
	w := newWorld(t, gossip.Config{Signer: gossip.FixedSigner(addr(seq)), BufferSize: 2}, opts{noRun: true})
	var blocks []common.Hash
	for i := range uint64(4) {
		b := block(i+1, time.Now())
		blocks = append(blocks, b.ExecutionPayload.BlockHash)
		w.pub.publish(t, seq, b)
		w.waitStatus(t, "block accepted", func(st gossip.Status) bool { return st.Accepted == i+1 })
	}
	require.Equal(t, uint64(2), w.feed.Status().Dropped)

	w.run()
	require.Equal(t, blocks[2], w.next(t).ExecutionPayload.BlockHash)
	require.Equal(t, blocks[3], w.next(t).ExecutionPayload.BlockHash)
	w.requireNothingMore(t)
	_, err := w.feed.PayloadByHash(t.Context(), blocks[0])
	require.NoError(t, err)
}

func TestRunTwiceFails(t *testing.T) {
	w := newWorld(t, gossip.Config{Signer: gossip.FixedSigner(common.Address{1})}, opts{noRun: true})
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	require.NoError(t, w.feed.Run(ended, w.out), "Run returns nil when ctx ends")
	require.Error(t, w.feed.Run(t.Context(), w.out))
}

// TestCloseLeavesNoGoroutine: after Run returned and Close, nothing the feed
// started runs on, but for gossipsub's blacklist sweep, which cannot be
// stopped: one per host (the feed and its two peers here).
func TestCloseLeavesNoGoroutine(t *testing.T) {
	before := goleak.IgnoreCurrent()
	sweepsBefore := countGoroutines(blacklistSweep)
	t.Run("feed and peers", func(t *testing.T) {
		seq := newKey(t)
		w := newWorld(t, gossip.Config{Signer: gossip.FixedSigner(addr(seq))}, opts{})
		w.pub.publish(t, seq, block(1, time.Now()))
		w.next(t)
	}) // the subtest's cleanups stop Run and close every host
	goleak.VerifyNone(t, before, goleak.IgnoreTopFunction(blacklistSweep))
	require.Eventually(t, func() bool { return countGoroutines(blacklistSweep)-sweepsBefore == 3 }, 5*time.Second, 10*time.Millisecond,
		"the seen-message caches' sweeps end with their host; only the blacklist's stay")
}

// countGoroutines counts the goroutines with fn on top of their stack.
func countGoroutines(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if lines := strings.SplitN(g, "\n", 3); len(lines) > 1 && strings.HasPrefix(lines[1], fn+"(") {
			count++
		}
	}
	return count
}

// TestHostKeyFromFile: a key file in op-node's format (hex, maybe with 0x)
// gives the host a stable peer id; without a key each start has a new one.
func TestHostKeyFromFile(t *testing.T) {
	raw := bytes.Repeat([]byte{0x42}, 32)
	path := filepath.Join(t.TempDir(), "p2p_priv.txt")
	require.NoError(t, os.WriteFile(path, []byte("0x"+hex.EncodeToString(raw)+"\n"), 0o600))
	priv, err := crypto.UnmarshalSecp256k1PrivateKey(raw)
	require.NoError(t, err)
	want, err := peer.IDFromPrivateKey(priv)
	require.NoError(t, err)

	start := func(cfg gossip.Config) peer.ID {
		cfg.RollupConfig, cfg.Signer, cfg.ListenIP = rollupConfig(), gossip.FixedSigner(common.Address{1}), net.IPv4(127, 0, 0, 1)
		f, err := gossip.New(t.Context(), cfg, nil, nil)
		require.NoError(t, err)
		defer func() { require.NoError(t, f.Close()) }()
		return f.Status().ID
	}
	require.Equal(t, want, start(gossip.Config{PrivateKeyPath: path}))
	require.Equal(t, want, start(gossip.Config{PrivateKey: raw}))
	require.NotEqual(t, start(gossip.Config{}), start(gossip.Config{}), "a generated key")
}

func TestConfigCheck(t *testing.T) {
	ok := gossip.Config{RollupConfig: rollupConfig(), Signer: gossip.FixedSigner(common.Address{1})}
	require.NoError(t, ok.Check())

	bootnodes := ok
	bootnodes.Bootnodes = []string{"enode://abc@127.0.0.1:30303"}
	require.True(t, errors.Is(bootnodes.Check(), gossip.ErrDiscoveryUnsupported))

	for name, edit := range map[string]func(*gossip.Config){
		"no rollup config":    func(c *gossip.Config) { c.RollupConfig = nil },
		"no signer":           func(c *gossip.Config) { c.Signer = nil },
		"short key":           func(c *gossip.Config) { c.PrivateKey = []byte{1, 2, 3} },
		"peer without its id": func(c *gossip.Config) { c.StaticPeers = []string{"/ip4/127.0.0.1/tcp/9222"} },
		"not a multiaddr":     func(c *gossip.Config) { c.StaticPeers = []string{"127.0.0.1:9222"} },
		"negative buffer":     func(c *gossip.Config) { c.BufferSize = -1 },
	} {
		c := ok
		edit(&c)
		require.Error(t, c.Check(), name)
	}
}
