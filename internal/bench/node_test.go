package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
)

var (
	nodePoll   = flag.Duration("node.poll", 20*time.Millisecond, "BenchmarkMinimalNodeHour: the node's poll interval, and how often the chain advances one block")
	nodeBlocks = flag.Int("node.blocks", 1800, "BenchmarkMinimalNodeHour: how many blocks to replay (1,800 is an hour of 2 s blocks)")
)

// The chain's labels trail its unsafe head as a healthy OP chain's do: safe a
// few blocks behind, finalized further behind safe.
const (
	nodeSafeLag      = 4
	nodeFinalizedLag = 32
)

// BenchmarkMinimalNodeHour replays an hour of chain (1,800 blocks at 2 s)
// through the real minimal-node binary, a separate process, at a fast poll so
// that the hour takes under a minute, and measures the process from outside.
// Nothing but the binary writes into its engine: the engine learns every
// block from the binary's own tip feed.
//
// The binary is built once with go build. Each iteration starts, on
// 127.0.0.1: an in-memory EL with a JWT secret and no peers (the binary's
// --engine and --jwt-secret); the remote, as a fake rollup node
// (--l2.follow.source; the rollup config is read from it) and its public L2
// EL, an in-memory EL without JWT that holds the remote's chain
// (--l2.unsafe.source, its websocket, through a relay that counts the calls,
// wsCounter); and an in-memory L1 whose blocks are the chain's L1 origins
// (--l1: every head's L1 origin is checked canonical on it and finality is not
// claimed ahead of it, as an operator would run). The binary runs with
// --poll-interval -node.poll (20ms), and every poll interval the chain
// advances one block: first the remote's L2 EL takes the new block as its
// head, with safe 4 below it and finalized 32 below safe (Insert,
// SetForkchoice; its newHeads subscription tells the binary's tip feed, which
// fetches the payload and has the adapter insert it with newPayload and
// forkchoiceUpdated); then L1's head moves to one block above the unsafe
// head's origin, its safe and finalized blocks to the origins of the remote's
// next safe and finalized heads (set before the rollup node moves, so the
// remote never claims ahead of L1); then the rollup node's heads move to the
// same unsafe, safe and finalized blocks. After the last block the benchmark
// waits until the engine's head, safe and finalized blocks are the remote's;
// it fails after a minute, printing the binary's log tail. Then it stops the
// binary with SIGTERM and requires exit code 0. The timed part (ns/op) is the
// replay and that wait; setup and shutdown are not timed.
//
// From the child process it measures:
//   - rss-early-MB, rss-end-MB: VmRSS in /proc/<pid>/status (MiB) after 10%
//     of the blocks and once the engine has converged, and rss-end/early their
//     ratio;
//   - cpu-us/tick: utime+stime from /proc/<pid>/stat (clock ticks, CLK_TCK
//     from getconf, 100 on Linux) over the process's whole life, start-up
//     included, divided by the ticks the node made; it includes the tip path
//     (one payload fetch, hash check, newPayload and forkchoice update a block);
//   - ticks: the node's completed ticks, the "ticks" of its status RPC's
//     lightcl_status (--rpc.port 0), read just before SIGTERM;
//   - remote-req/tick, el-req/tick, l1-req/tick, tip-req/tick: JSON-RPC calls
//     the rollup node, the engine, L1 and the remote's L2 EL (over the
//     websocket) received, start-up checks included (each element of a
//     batch is one call, so L1's head and finalized block, read in one
//     batched request, are two), divided by ticks. The fake L1's blocks do
//     not name their predecessor as parent, so each new L1 head also costs a
//     read by number (one tick in six) that a real, linked L1 would not.
//
// The log also gives the same figures for the steady part alone (from 10% of
// the blocks to the last block), the calls by method, the forkchoice updates
// by how far their head is above their safe block, the node's tip status and
// its log lines by message and action.
//
// Measured on the project's 2-core machine, with other tests running: three
// runs of 300 blocks and one of 1,800. No tick caught up or searched for a
// common ancestor: every safe head move the node logged was a consolidation
// (1,793 in the 1,803 ticks of the long run, whose engine received 3,593
// forkchoice updates for 1,800 tip blocks inserted), and no reorg or sync
// was logged; the remote made 1.007 calls a tick over
// 300 blocks (3 of 3 runs; the start-up's optimism_rollupConfig and one more
// optimism_syncStatus) and 1.001 over 1,800, one optimism_syncStatus a tick
// in the steady part; no forkchoice update pulled the head back to the safe
// block (none with head minus safe 0); the tip feed stayed subscribed, made one eth_getBlockByHash per block
// (1,801 over 1,800 blocks, the head at start included) and the tip path
// inserted all 1,800 blocks. The engine took 6.00 calls a tick in the steady
// part of the 1,800-block run (5.77–6.00 in the 300-block runs):
// newPayload and a forkchoice update from the tip path, the head, two blocks
// by number and a forkchoice update from the tick. RSS went from 41.7 MiB
// after 180 blocks to 48.1 MiB at the end (×1.16); CPU was 4.6 ms a tick
// (4.7–4.8 ms over 300 blocks). Metrics are means over the iterations. Run it
// with
//
//	go test ./internal/bench -run '^$' -bench BenchmarkMinimalNodeHour -benchtime 1x
//
// and add -node.blocks 300 for a quick run. Linux only (/proc).
func BenchmarkMinimalNodeHour(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads the child's /proc/<pid>/status and /proc/<pid>/stat")
	}
	blocks, poll := *nodeBlocks, *nodePoll
	if blocks < 10 {
		b.Fatalf("-node.blocks %d: want at least 10, so that the early sample comes after a block", blocks)
	}
	if poll <= 0 {
		b.Fatalf("-node.poll %s: must be positive", poll)
	}
	bin := nodeBuild(b)
	hz := nodeClockTicks(b)

	var sum nodeResult
	b.ResetTimer()
	for range b.N {
		r := nodeReplay(b, bin, hz, blocks, poll)
		sum.rssEarlyMB += r.rssEarlyMB
		sum.rssEndMB += r.rssEndMB
		sum.cpuPerTick += r.cpuPerTick
		sum.remotePerTick += r.remotePerTick
		sum.elPerTick += r.elPerTick
		sum.l1PerTick += r.l1PerTick
		sum.tipPerTick += r.tipPerTick
		sum.ticks += r.ticks
	}
	n := float64(b.N)
	b.ReportMetric(sum.rssEarlyMB/n, "rss-early-MB")
	b.ReportMetric(sum.rssEndMB/n, "rss-end-MB")
	b.ReportMetric(sum.rssEndMB/sum.rssEarlyMB, "rss-end/early")
	b.ReportMetric(sum.cpuPerTick/n, "cpu-us/tick")
	b.ReportMetric(sum.remotePerTick/n, "remote-req/tick")
	b.ReportMetric(sum.elPerTick/n, "el-req/tick")
	b.ReportMetric(sum.l1PerTick/n, "l1-req/tick")
	b.ReportMetric(sum.tipPerTick/n, "tip-req/tick")
	b.ReportMetric(sum.ticks/n, "ticks")
}

// nodeResult is what one replay measured.
type nodeResult struct {
	rssEarlyMB, rssEndMB                            float64
	cpuPerTick                                      float64 // microseconds
	remotePerTick, elPerTick, l1PerTick, tipPerTick float64
	ticks                                           float64
}

// nodeSample is the child and the fakes at one moment.
type nodeSample struct {
	rssKB                   int64
	cpu                     int64 // utime+stime, clock ticks
	ticks                   uint64
	remote, el, l1, tip     map[string]int // calls by method
	remoteN, elN, l1N, tipN int
	lastAction, lastErr     string
	tipStatus               json.RawMessage // lightcl_status's tip part
}

// nodeWorld is one replay's outside: the chain, the fakes and the child.
type nodeWorld struct {
	b      *testing.B
	hz     int64
	tree   *fakechain.Tree
	chain  []*types.Block // chain[i] is block i+1
	el     *fakeel.EL     // the node's engine
	remote *fakerollup.RollupNode
	l1     *fakel1.L1

	// remoteEL is the remote's public L2 EL, the node's tip source; it holds
	// the chain up to the remote's unsafe head. tipCalls relays the node's
	// websocket to it and counts the calls.
	remoteEL *fakeel.EL
	tipCalls *wsCounter

	cmd     *exec.Cmd
	log     *nodeLog
	done    chan struct{} // closed when the child has exited
	waitErr error         // cmd.Wait's error, set before done closes
	status  *rpc.Client   // the child's status RPC
}

// nodeReplay runs one replay of blocks blocks, one every poll, against the
// binary bin and returns what it measured.
func nodeReplay(b *testing.B, bin string, hz int64, blocks int, poll time.Duration) nodeResult {
	b.StopTimer()
	w := &nodeWorld{b: b, hz: hz, tree: fakechain.NewTree()}
	w.chain = w.tree.Extend(w.tree.Genesis().Hash(), blocks, 1)
	secret := fakeel.NewJWTSecret()
	jwtPath := filepath.Join(b.TempDir(), "jwt.hex")
	if err := os.WriteFile(jwtPath, []byte(hexutil.Encode(secret[:])), 0o600); err != nil {
		b.Fatal(err)
	}
	var err error
	// Start*, not New*: the fakes live for one iteration, not the whole benchmark.
	// no Peer: every block the engine gets comes from the node
	if w.el, err = fakeel.StartEL(w.tree, fakeel.ELConfig{JWTSecret: secret}); err != nil {
		b.Fatal(err)
	}
	defer w.el.Close()
	if w.remoteEL, err = fakeel.StartEL(w.tree, fakeel.ELConfig{NoAuth: true}); err != nil {
		b.Fatal(err)
	}
	defer w.remoteEL.Close()
	if w.tipCalls, err = startWSCounter(w.remoteEL.WSURL()); err != nil {
		b.Fatal(err)
	}
	defer w.tipCalls.Close()
	if w.remote, err = fakerollup.StartRollupNode(w.tree, fakerollup.RollupNodeConfig{}); err != nil {
		b.Fatal(err)
	}
	defer w.remote.Close()
	if w.l1, err = fakel1.StartL1(fakel1.L1Config{Head: 1}); err != nil {
		b.Fatal(err)
	}
	defer w.l1.Close()

	w.start(bin, "--engine", w.el.URL(), "--jwt-secret", jwtPath,
		"--l2.follow.source", w.remote.URL(), "--l2.unsafe.source", w.tipCalls.URL(), "--l1", w.l1.URL(),
		"--poll-interval", poll.String(), "--rpc.addr", "127.0.0.1", "--rpc.port", "0")
	defer w.kill()
	startCPU := w.sample(false).cpu

	b.StartTimer()
	started := time.Now()
	early := blocks / 10
	var earlySample nodeSample
	t := time.NewTicker(poll)
	for step := 1; step <= blocks; step++ {
		select {
		case <-t.C:
		case <-w.done:
			t.Stop()
			w.fatalf("minimal-node exited at block %d of %d (%v)", step, blocks, w.waitErr)
		}
		w.advance(uint64(step))
		if step == early {
			earlySample = w.sample(true)
		}
	}
	t.Stop()
	last := w.sample(true)
	replayed := time.Since(started)

	wantUnsafe, wantSafe, wantFin := nodeHeads(uint64(blocks))
	deadline := time.Now().Add(time.Minute)
	for {
		unsafe, safe, fin := w.el.Labels()
		if unsafe.Hash == w.block(wantUnsafe).Hash() && safe.Hash == w.block(wantSafe).Hash() && fin.Hash == w.block(wantFin).Hash() {
			break
		}
		if time.Now().After(deadline) {
			w.fatalf("the EL's unsafe/safe/finalized are %d/%d/%d a minute after the last block, want %d/%d/%d",
				unsafe.Number, safe.Number, fin.Number, wantUnsafe, wantSafe, wantFin)
		}
		select {
		case <-w.done:
			w.fatalf("minimal-node exited before the EL converged (%v)", w.waitErr)
		case <-time.After(poll):
		}
	}
	b.StopTimer()
	converged := time.Since(started)
	end := w.sample(true)
	w.stop()

	r := nodeResult{
		rssEarlyMB:    float64(earlySample.rssKB) / 1024,
		rssEndMB:      float64(end.rssKB) / 1024,
		cpuPerTick:    w.micros(end.cpu) / float64(end.ticks),
		remotePerTick: float64(end.remoteN) / float64(end.ticks),
		elPerTick:     float64(end.elN) / float64(end.ticks),
		l1PerTick:     float64(end.l1N) / float64(end.ticks),
		tipPerTick:    float64(end.tipN) / float64(end.ticks),
		ticks:         float64(end.ticks),
	}
	steadyTicks := float64(last.ticks - earlySample.ticks)
	b.Logf("minimal-node, %d blocks every %s: replayed in %s, EL converged %s after the first block; %d ticks (lightcl_status), remote optimism_syncStatus calls %d",
		blocks, poll, replayed.Round(time.Millisecond), converged.Round(time.Millisecond), end.ticks, end.remote["optimism_syncStatus"])
	b.Logf("RSS: %.1f MiB after %d blocks (tick %d), %.1f MiB after block %d, %.1f MiB at the end (ratio end/early %.2f)",
		r.rssEarlyMB, early, earlySample.ticks, float64(last.rssKB)/1024, blocks, r.rssEndMB, r.rssEndMB/r.rssEarlyMB)
	b.Logf("CPU: %.2f s in all (%.2f s up to the end of start-up), %.0f us/tick over the whole life; steady (blocks %d..%d, %.0f ticks): %.0f us/tick",
		w.micros(end.cpu)/1e6, w.micros(startCPU)/1e6, r.cpuPerTick, early, blocks, steadyTicks,
		w.micros(last.cpu-earlySample.cpu)/steadyTicks)
	b.Logf("calls per tick, whole life: remote %.2f, EL %.2f, L1 %.2f, tip %.2f; steady: remote %.2f, EL %.2f, L1 %.2f, tip %.2f",
		r.remotePerTick, r.elPerTick, r.l1PerTick, r.tipPerTick,
		float64(last.remoteN-earlySample.remoteN)/steadyTicks, float64(last.elN-earlySample.elN)/steadyTicks,
		float64(last.l1N-earlySample.l1N)/steadyTicks, float64(last.tipN-earlySample.tipN)/steadyTicks)
	for _, f := range []struct {
		name               string
		early, last, atEnd map[string]int
	}{
		{"remote", earlySample.remote, last.remote, end.remote},
		{"EL", earlySample.el, last.el, end.el},
		{"L1", earlySample.l1, last.l1, end.l1},
		{"tip (remote EL, websocket)", earlySample.tip, last.tip, end.tip},
	} {
		b.Logf("  %s calls, whole life [steady per tick]: %s", f.name, nodeByMethod(f.early, f.last, f.atEnd, steadyTicks))
	}
	b.Logf("forkchoice updates by head minus safe (blocks): %s", w.forkchoiceGaps())
	b.Logf("node at the end: last action %q, last error %q; tip %s; its log lines by level, message and action: %s",
		end.lastAction, end.lastErr, end.tipStatus, w.log.summary())
	return r
}

// forkchoiceGaps counts the EL's forkchoice updates by how far their head
// is above their safe block: 0 is a head pulled back to the safe head, which
// rewinds the unsafe blocks the tip path gave the EL.
func (w *nodeWorld) forkchoiceGaps() string {
	gaps, other := map[int64]int{}, 0
	for _, fc := range w.el.ForkchoiceUpdates() {
		head, ok1 := w.tree.Block(fc.HeadBlockHash)
		safe, ok2 := w.tree.Block(fc.SafeBlockHash)
		if !ok1 || !ok2 {
			other++ // not blocks of the chain
			continue
		}
		gaps[int64(head.NumberU64())-int64(safe.NumberU64())]++
	}
	keys := make([]int64, 0, len(gaps))
	for k := range gaps {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d: %d", k, gaps[k])
	}
	if other > 0 {
		parts = append(parts, fmt.Sprintf("head or safe not a block of the chain: %d", other))
	}
	return strings.Join(parts, ", ")
}

// nodeHeads are the remote's unsafe, safe and finalized heights after step:
// safe nodeSafeLag below the unsafe head, finalized nodeFinalizedLag below safe.
func nodeHeads(step uint64) (unsafe, safe, fin uint64) {
	unsafe = step
	if unsafe > nodeSafeLag {
		safe = unsafe - nodeSafeLag
	}
	if safe > nodeFinalizedLag {
		fin = safe - nodeFinalizedLag
	}
	return unsafe, safe, fin
}

// block is block n of the chain; 0 is genesis.
func (w *nodeWorld) block(n uint64) *types.Block {
	if n == 0 {
		return w.tree.Genesis()
	}
	return w.chain[n-1]
}

// advance moves the world to step: the remote's L2 EL first (it takes the
// new unsafe block as its head, with its safe and finalized labels; its
// newHeads subscribers, the node's tip feed, hear of it), then L1 (its head
// one above the unsafe head's origin, its labels at the safe and finalized
// heads' origins), then the rollup node's heads.
func (w *nodeWorld) advance(step uint64) {
	unsafe, safe, fin := nodeHeads(step)
	w.remoteEL.Insert(w.block(unsafe))
	w.remoteEL.SetForkchoice(w.block(unsafe).Hash(), w.block(safe).Hash(), w.block(fin).Hash())
	if h := unsafe/fakechain.BlocksPerEpoch + 1; h > w.l1.Head().Number {
		w.l1.SetHead(h)
	}
	w.l1.SetLabels(safe/fakechain.BlocksPerEpoch, fin/fakechain.BlocksPerEpoch)
	w.remote.Follow(w.block(unsafe), w.block(safe), w.block(safe), w.block(fin), fakechain.L1Ref(safe/fakechain.BlocksPerEpoch))
}

// sample reads the child's RSS and CPU and the fakes' call logs; with
// status, also the node's ticks from lightcl_status.
func (w *nodeWorld) sample(status bool) nodeSample {
	pid := w.cmd.Process.Pid
	var s nodeSample
	var err error
	if s.rssKB, err = nodeRSS(pid); err != nil {
		w.fatalf("%v", err)
	}
	if s.cpu, err = nodeCPU(pid); err != nil {
		w.fatalf("%v", err)
	}
	remote, el, l1 := w.remote.Calls(), w.el.Calls(), w.l1.Calls()
	s.remote, s.el, s.l1 = nodeCount(remote), nodeCount(el), nodeCount(l1)
	s.remoteN, s.elN, s.l1N = len(remote), len(el), len(l1)
	s.tip, s.tipN = w.tipCalls.Calls()
	if !status {
		return s
	}
	var st struct {
		Ticks      uint64          `json:"ticks"`
		LastAction string          `json:"last_action"`
		LastError  string          `json:"last_error"`
		Tip        json.RawMessage `json:"tip"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.status.CallContext(ctx, &st, "lightcl_status"); err != nil {
		w.fatalf("lightcl_status: %v", err)
	}
	s.ticks, s.lastAction, s.lastErr, s.tipStatus = st.Ticks, st.LastAction, st.LastError, st.Tip
	return s
}

// micros converts clock ticks of CPU time to microseconds.
func (w *nodeWorld) micros(clockTicks int64) float64 {
	return float64(clockTicks) * 1e6 / float64(w.hz)
}
