package e2e_test

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	gcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/testutil/p2ppub"
)

// gossipThreshold is the node's --p2p.gossip.timestamp.threshold: the test
// chain's timestamps start at opgeth.GenesisTime (November 2023) and advance
// 2 s a block however fast it is built, so op-node's default of 60 s would
// reject every block as too old.
const gossipThreshold = "100000h"

// TestMinimalNodeFollowsTheTipByGossip runs minimal-node between a peerless
// follower op-geth (backfill mode: nothing reaches it but what the node
// inserts) and a sequencer op-geth that makes a block every ~200 ms, safe
// 10 blocks behind its head and finalized 20. The node follows the
// sequencer's EL for safe and finalized; after each block the test's
// publisher (p2ppub, the node's one static peer) gossips the sequencer's
// payload signed by the key the node is given as --p2p.unsafe-block-signer.
//
// Gossip alone (no --l2.unsafe.source: with gossip on, the followed EL is no
// tip feed):
//   - over 40 blocks the follower's latest stays within 2 blocks of the
//     sequencer's, with the sequencer's hash;
//   - a sibling block signed by another key is never inserted, and neither
//     is the sequencer's next block re-signed by another key, sent before
//     the real one: both are counted in lightcl_status as gossip.rejected
//     ["invalid block signature"]; the real one, signed by the right key, is
//     then inserted before safe reaches it; bytes that are not snappy are
//     counted as rejected too;
//   - every block reaches the engine by exactly one newPayload.
//
// Gossip and the remote feed (--l2.unsafe.source, the sequencer's
// websocket): both deliver every block, and each block still reaches the
// engine by exactly one newPayload; lightcl_status's tip.inserted counts
// each once.
//
// The newPayload calls are counted by a proxy in front of the follower's
// Engine API, by block hash: op-geth counts none, and the node's own
// counters cannot tell a second insertion of a block by another path.
func TestMinimalNodeFollowsTheTipByGossip(t *testing.T) {
	t.Run("gossip alone", func(t *testing.T) { followByGossip(t, false) })
	t.Run("gossip and the remote feed", func(t *testing.T) { followByGossip(t, true) })
}

// measuredBlocks is how many blocks the sequencer builds while the lag is
// sampled.
const measuredBlocks = 40

func followByGossip(t *testing.T, withRemote bool) {
	w := newWorld(t)
	refs := w.build(20, 0)
	w.label(refs[9], refs[0])
	follower := w.follower("follower", false)
	engine := newPayloadCounter(t, follower.AuthRPC())
	seqKey, otherKey := newKey(t), newKey(t)
	pub, err := p2ppub.New(p2ppub.Config{RollupConfig: w.genesis.RollupConfig()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })

	args := []string{"--engine", engine.URL, "--jwt-secret", follower.JWTPath(),
		"--l2.follow.source", w.seq.HTTP(), "--l2.follow.kind", "el", "--rollup.config", writeRollupJSON(t, w.genesis.RollupConfig()),
		"--sync.mode", "backfill", "--poll-interval", "1s", "--rpc.port", "0",
		"--p2p.listen.ip", "127.0.0.1", "--p2p.listen.tcp", "0", "--p2p.static", strings.Join(pub.Addrs(), ","),
		"--p2p.unsafe-block-signer", gcrypto.PubkeyToAddress(seqKey.PublicKey).Hex(),
		"--p2p.gossip.timestamp.threshold", gossipThreshold}
	if withRemote {
		args = append(args, "--l2.unsafe.source", w.seq.WS())
	}
	node := startNode(t, args...)
	node.waitStarted(60 * time.Second)
	require.Regexp(t, `minimal-node starting.* gossip=/ip4/127\.0\.0\.1/tcp/\d+/p2p/`, node.stderr.String(), "the start-up line names the gossip address")
	api := dialRollupAPI(t, node)
	st := gossipStatusOf(t, api)
	require.Equal(t, gcrypto.PubkeyToAddress(seqKey.PublicKey).Hex(), st.Gossip.Signer)
	id, err := peer.Decode(st.Gossip.ID)
	require.NoError(t, err)
	for _, a := range st.Gossip.ListenAddrs {
		require.True(t, strings.HasPrefix(a, "/ip4/127.0.0.1/"), "listens on loopback only: %s", a)
	}
	require.NoError(t, pub.WaitPeer(w.ctx, id), "the node dials its static peer")
	require.NoError(t, pub.ConnectRaw(w.ctx, st.Gossip.ListenAddrs))

	seqL2, l2 := w.seq.L2(t), follower.L2(t)
	published := 0 // blocks gossiped with the sequencer's key
	// next builds a block on the sequencer, moves its labels and gossips it;
	// before gossiping, bad (if set) publishes what the node must reject.
	next := func(bad func(env *eth.ExecutionPayloadEnvelope)) *eth.ExecutionPayloadEnvelope {
		t.Helper()
		head := w.build(1, 0)[0]
		safe, err1 := seqL2.L2BlockRefByNumber(w.ctx, head.Number-10)
		fin, err2 := seqL2.L2BlockRefByNumber(w.ctx, head.Number-20)
		require.NoError(t, err1)
		require.NoError(t, err2)
		w.label(safe, fin)
		env, err := seqL2.PayloadByHash(w.ctx, head.Hash)
		require.NoError(t, err)
		if bad != nil {
			bad(env)
		}
		require.NoError(t, pub.Publish(w.ctx, seqKey, env))
		published++
		return env
	}
	lagOf := func() (lag uint64, sameHash bool) {
		s, err := seqL2.L2BlockRefByLabel(w.ctx, eth.Unsafe)
		require.NoError(t, err)
		f, err := l2.L2BlockRefByLabel(w.ctx, eth.Unsafe)
		require.NoError(t, err)
		if f.Number > s.Number {
			return 0, false
		}
		at, err := seqL2.L2BlockRefByNumber(w.ctx, f.Number)
		return s.Number - f.Number, err == nil && at.Hash == f.Hash
	}

	// start-up: the node backfills to safe; the first gossiped blocks wait
	// until safe reaches one the feed holds the parent of (its cache)
	warm := time.Now().Add(60 * time.Second)
	for {
		node.requireRunning()
		next(nil)
		time.Sleep(200 * time.Millisecond)
		if lag, same := lagOf(); lag <= 2 && same {
			break
		}
		require.True(t, time.Now().Before(warm), "follower reaches the sequencer's head within 60 s; node log:\n%s", node.stderr.String())
	}
	waitHead(t, w, l2, node)
	before := gossipStatusOf(t, api)
	head0, err := l2.L2BlockRefByLabel(w.ctx, eth.Unsafe)
	require.NoError(t, err)

	// 40 blocks at ~200 ms, the lag sampled as each is gossiped and 100 and
	// 200 ms after; halfway, gossip alone gets what it must reject
	var lags []uint64
	var sibling *eth.ExecutionPayloadEnvelope
	for i := range measuredBlocks {
		var bad func(env *eth.ExecutionPayloadEnvelope)
		if i == measuredBlocks/2 && !withRemote {
			bad = func(env *eth.ExecutionPayloadEnvelope) {
				sibling = siblingOf(t, env)
				require.NoError(t, pub.Publish(w.ctx, otherKey, sibling))
				require.NoError(t, pub.PublishUnchecked(w.ctx, otherKey, env))
				require.NoError(t, pub.PublishBytes(w.ctx, uint64(env.ExecutionPayload.Timestamp), bytes.Repeat([]byte{0xff}, 100)))
			}
		}
		env := next(bad)
		if bad != nil {
			// the real block comes by gossip, signed by the right key: the
			// follower has it while safe is still below it
			hash, number := env.ExecutionPayload.BlockHash, uint64(env.ExecutionPayload.BlockNumber)
			require.Eventually(t, func() bool { _, err := l2.L2BlockRefByHash(w.ctx, hash); return err == nil },
				5*time.Second, 5*time.Millisecond, "block %d signed by the right key is inserted; node log:\n%s", number, node.stderr.String())
			safe, err := l2.L2BlockRefByLabel(w.ctx, eth.Safe)
			require.NoError(t, err)
			require.Less(t, safe.Number, number, "block %d came by gossip, not by the safe path", number)
		}
		for i := range 3 {
			if i > 0 {
				time.Sleep(100 * time.Millisecond)
			}
			lag, same := lagOf()
			require.True(t, same, "the follower's head is on the sequencer's chain")
			lags = append(lags, lag)
		}
	}
	worst := uint64(0)
	for _, l := range lags {
		worst = max(worst, l)
	}
	t.Logf("tip lag over %d blocks, %d samples: worst %d blocks; lags %v", measuredBlocks, len(lags), worst, lags)
	require.LessOrEqual(t, worst, uint64(2), "latest within 2 blocks of the sequencer's; lags %v", lags)

	head1 := waitHead(t, w, l2, node)
	after := gossipStatusOf(t, api)
	blocks := head1.Number - head0.Number
	require.Equal(t, uint64(measuredBlocks), blocks)
	t.Logf("gossip status at the end: %+v; tip: %+v", *after.Gossip, after.Tip)
	require.Equal(t, uint64(published), after.Gossip.Accepted, "every block gossiped after the node joined is accepted")
	require.Equal(t, before.Gossip.Accepted+blocks, after.Gossip.Accepted)
	require.Zero(t, after.Gossip.Dropped)
	require.Equal(t, head1.ID(), after.Gossip.Head)
	require.Equal(t, 2, after.Gossip.Peers, "the publisher's signing and raw hosts")
	require.NotNil(t, after.Tip, "tip following is on with gossip alone too")
	require.Equal(t, blocks, after.Tip.Inserted-before.Tip.Inserted, "each block inserted once by the tip path")
	require.Equal(t, "gossip", after.Tip.Feeds[0].Mode, "gossip is the first of tip.feeds")
	require.Equal(t, blocks, after.Tip.Feeds[0].Delivered-before.Tip.Feeds[0].Delivered, "gossip delivered every block")
	if withRemote {
		require.Empty(t, after.Gossip.Rejected)
		require.Len(t, after.Tip.Feeds, 2, "gossip and the remote feed")
		require.Equal(t, blocks, after.Tip.Feeds[1].Delivered-before.Tip.Feeds[1].Delivered, "the remote feed delivered every block too")
	} else {
		require.Len(t, after.Tip.Feeds, 1, "gossip alone")
		require.Equal(t, map[string]uint64{"invalid block signature": 2, "invalid snappy compression length data": 1}, after.Gossip.Rejected)
		_, err := l2.L2BlockRefByHash(w.ctx, sibling.ExecutionPayload.BlockHash)
		require.ErrorContains(t, err, "not found", "the follower never has the sibling signed by another key")
	}
	// every block reached the engine by exactly one newPayload
	calls := engine.calls()
	for n := uint64(1); n <= head1.Number; n++ {
		ref, err := seqL2.L2BlockRefByNumber(w.ctx, n)
		require.NoError(t, err)
		require.Equal(t, 1, calls[ref.Hash], "newPayload calls for block %d", n)
	}
	require.Len(t, calls, int(head1.Number), "no newPayload of any other block")

	if sibling != nil {
		// the check above could fail: the sibling is a block op-geth takes
		res, err := follower.Engine(t).NewPayload(w.ctx, sibling.ExecutionPayload, sibling.ParentBeaconBlockRoot)
		require.NoError(t, err)
		require.Equal(t, eth.ExecutionValid, res.Status, "the sibling is a valid block: %v", res.ValidationError)
	}
	node.stop()
}

// waitHead waits until the follower's latest is the sequencer's head and
// returns it.
func waitHead(t *testing.T, w *world, l2 *sources.L2Client, node *nodeProc) eth.L2BlockRef {
	t.Helper()
	want := w.builder.Head()
	require.Eventually(t, func() bool {
		node.requireRunning()
		got, err := l2.L2BlockRefByLabel(w.ctx, eth.Unsafe)
		return err == nil && got == want
	}, 10*time.Second, 10*time.Millisecond, "follower reaches the sequencer's head %d; node log:\n%s", want.Number, node.stderr.String())
	return want
}

// siblingOf is a block the sequencer did not make: env with another
// prevRandao (as opgeth's Sequencer.Fork salts its blocks; nothing in a
// block without user transactions reads it, so the state is the same) and
// the hash that goes with it.
func siblingOf(t *testing.T, env *eth.ExecutionPayloadEnvelope) *eth.ExecutionPayloadEnvelope {
	p := *env.ExecutionPayload
	p.PrevRandao = eth.Bytes32(gcrypto.Keccak256Hash([]byte("not the sequencer's"), p.PrevRandao[:]))
	sib := &eth.ExecutionPayloadEnvelope{ExecutionPayload: &p, ParentBeaconBlockRoot: env.ParentBeaconBlockRoot}
	p.BlockHash, _ = sib.CheckBlockHash()
	require.NotEqual(t, env.ExecutionPayload.BlockHash, p.BlockHash)
	return sib
}

// nodeGossipStatus is the part of lightcl_status the gossip test reads.
type nodeGossipStatus struct {
	Tip *struct {
		Inserted uint64 `json:"inserted"`
		Feeds    []struct {
			URL       string `json:"url"`
			Mode      string `json:"mode"`
			Delivered uint64 `json:"delivered"`
		} `json:"feeds"`
	} `json:"tip"`
	Gossip *struct {
		ID          string            `json:"id"`
		ListenAddrs []string          `json:"listen_addrs"`
		Peers       int               `json:"peers"`
		Signer      string            `json:"signer"`
		Received    uint64            `json:"received"`
		Accepted    uint64            `json:"accepted"`
		Rejected    map[string]uint64 `json:"rejected"`
		Duplicates  uint64            `json:"duplicates"`
		Dropped     uint64            `json:"dropped"`
		Head        eth.BlockID       `json:"head"`
	} `json:"gossip"`
}

func gossipStatusOf(t *testing.T, api *rollupAPI) nodeGossipStatus {
	t.Helper()
	var st nodeGossipStatus
	require.NoError(t, api.rpc.CallContext(t.Context(), &st, "lightcl_status"))
	require.NotNil(t, st.Gossip, "lightcl_status has a gossip part")
	return st
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := gcrypto.GenerateKey()
	require.NoError(t, err)
	return k
}

// payloadCounter is a proxy in front of an Engine API that counts the
// engine_newPayload calls through it by block hash.
type payloadCounter struct {
	*httptest.Server
	mu sync.Mutex
	n  map[common.Hash]int
}

func newPayloadCounter(t *testing.T, target string) *payloadCounter {
	u, err := url.Parse(target)
	require.NoError(t, err)
	c := &payloadCounter{n: map[common.Hash]int{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	c.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		c.record(body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(rw, r)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *payloadCounter) record(body []byte) {
	var msg struct {
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil || !strings.HasPrefix(msg.Method, "engine_newPayload") || len(msg.Params) == 0 {
		return
	}
	var p struct {
		BlockHash common.Hash `json:"blockHash"`
	}
	if json.Unmarshal(msg.Params[0], &p) == nil {
		c.mu.Lock()
		c.n[p.BlockHash]++
		c.mu.Unlock()
	}
}

func (c *payloadCounter) calls() map[common.Hash]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[common.Hash]int, len(c.n))
	for h, n := range c.n {
		out[h] = n
	}
	return out
}
