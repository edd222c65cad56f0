package e2e_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/testutil/opgeth"
)

var soakFor = flag.Duration("soak", 40*time.Second, "how long TestSoak drives faults (the README's figure is from -soak 5m)")

// TestSoak runs the minimal-node binary between a follower op-geth and a
// sequencer op-geth that keeps building, while a fault driver kills (SIGKILL)
// and restarts the follower's op-geth, stalls and restores the remote, and
// forks the sequencer's unsafe chain. Afterwards the follower's safe and
// finalized heads must be the sequencer's, and no forkchoice update the
// binary sent may have moved finalized back. CI runs it for 40 s; -soak 5m
// is the long run.
func TestSoak(t *testing.T) {
	w := newWorld(t)
	refs := w.build(30, 1)
	w.label(refs[19], refs[9])
	follower := w.follower("follower", false, func(c *opgeth.Config) { c.StateScheme, c.DBEngine = "hash", "leveldb" })

	remote := newSwitchProxy(t, func() string { return w.seq.HTTP() })
	engine := newSwitchProxy(t, func() string { return follower.AuthRPC() }) // records the forkchoice updates

	rollupPath := writeRollupJSON(t, w.genesis.RollupConfig())
	node := startNode(t, "--engine", engine.URL, "--jwt-secret", follower.JWTPath(),
		"--l2.follow.source", remote.URL, "--l2.follow.kind", "el", "--rollup.config", rollupPath,
		"--sync.mode", "backfill", "--l2.follow.timeout", "1s", "--poll-interval", "200ms")
	stderr := node.stderr
	// no fault before the node is up: its start-up is tested on its own
	node.waitStarted(60 * time.Second)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	counts := map[string]int{}
	deadline := time.Now().Add(*soakFor)
	for time.Now().Before(deadline) {
		node.requireRunning()
		// the chain goes on: a block, labels following a few blocks behind
		head := w.build(1, 0)[0] // no transfers: a fork would leave their nonces behind
		switch r := rng.IntN(20); {
		case r == 0:
			counts["follower op-geth SIGKILL and restart"]++
			follower.Kill()
			time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
			follower.Restart(t)
		case r == 1:
			counts["remote stalled"]++
			remote.stall(true)
			time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
			remote.stall(false)
		case r == 2 && head.Number > w.builder.Safe().Number+3:
			// the sequencer's unsafe chain forks above its safe head
			counts["remote unsafe fork"]++
			at, err := w.seq.L2(t).L2BlockRefByNumber(w.ctx, head.Number-2)
			require.NoError(t, err)
			_, err = w.builder.Fork(w.ctx, at, 3, rng.Uint64())
			require.NoError(t, err)
		}
		head = w.builder.Head()
		safe, err := w.seq.L2(t).L2BlockRefByNumber(w.ctx, head.Number-4)
		require.NoError(t, err)
		fin, err := w.seq.L2(t).L2BlockRefByNumber(w.ctx, head.Number-10)
		require.NoError(t, err)
		w.label(safe, fin)
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("soak of %s: faults %v; %d forkchoice updates", *soakFor, counts, len(engine.forkchoices()))

	// the faults stop: the follower must reach the sequencer's heads
	l2 := follower.L2(t)
	want := [2]eth.L2BlockRef{w.builder.Safe(), w.builder.Finalized()}
	var got [2]eth.L2BlockRef
	var errs [2]error
	if !assert.Eventually(t, func() bool {
		if node.exited() {
			return true // failed below, with the log
		}
		l2 = follower.L2(t) // ports may have moved in a restart
		got[0], errs[0] = l2.L2BlockRefByLabel(w.ctx, eth.Safe)
		got[1], errs[1] = l2.L2BlockRefByLabel(w.ctx, eth.Finalized)
		return got == want
	}, 90*time.Second, 200*time.Millisecond) || got != want {
		node.requireRunning()
		t.Fatalf("follower safe/finalized %d/%d (read errors: %v, %v), want %d/%d; minimal-node log (%d bytes):\n%s",
			got[0].Number, got[1].Number, errs[0], errs[1], want[0].Number, want[1].Number, len(stderr.String()), stderr.String())
	}
	node.stop()

	// no forkchoice update moved finalized back
	seq := w.seq.L2(t)
	var last uint64
	for i, fc := range engine.forkchoices() {
		if fc.FinalizedBlockHash == (common.Hash{}) {
			continue
		}
		ref, err := seq.L2BlockRefByHash(w.ctx, fc.FinalizedBlockHash)
		require.NoError(t, err, "update %d: finalized %s is not on the sequencer's chain", i, fc.FinalizedBlockHash)
		require.GreaterOrEqual(t, ref.Number, last, "update %d moved finalized back", i)
		last = ref.Number
	}
}

// switchProxy forwards HTTP JSON-RPC to a target that may move (a restarted
// op-geth), can be made to stall, and records the forkchoice updates that
// pass through it.
type switchProxy struct {
	*httptest.Server
	target  func() string
	stalled atomic.Bool
	mu      sync.Mutex
	fcs     []eth.ForkchoiceState
}

func newSwitchProxy(t *testing.T, target func() string) *switchProxy {
	p := &switchProxy{target: target}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *switchProxy) stall(on bool) { p.stalled.Store(on) }

func (p *switchProxy) serve(w http.ResponseWriter, r *http.Request) {
	for p.stalled.Load() {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.record(body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	u, err := url.Parse(p.target())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		http.Error(w, err.Error(), http.StatusBadGateway) // the target is down (a killed op-geth): expected here
	}
	proxy.ServeHTTP(w, r)
}

// record keeps the forkchoice state of an engine_forkchoiceUpdated call.
func (p *switchProxy) record(body []byte) {
	var msg struct {
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil || len(msg.Params) == 0 || len(msg.Method) < len("engine_forkchoiceUpdated") ||
		msg.Method[:len("engine_forkchoiceUpdated")] != "engine_forkchoiceUpdated" {
		return
	}
	var fc eth.ForkchoiceState
	if json.Unmarshal(msg.Params[0], &fc) == nil {
		p.mu.Lock()
		p.fcs = append(p.fcs, fc)
		p.mu.Unlock()
	}
}

func (p *switchProxy) forkchoices() []eth.ForkchoiceState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]eth.ForkchoiceState(nil), p.fcs...)
}
