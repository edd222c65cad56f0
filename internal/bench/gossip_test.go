package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	gcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/testutil/p2ppub"
	"github.com/lightcl/lightcl/safesource/gossip"
)

// gossipThreshold is the gossip feeds' timestamp threshold here: the fake
// chain's blocks are from November 2023 (fakechain.GenesisTime), and
// op-node's default of 60 s would reject them all as too old.
const gossipThreshold = 100_000 * time.Hour

// BenchmarkTipLagGossip measures tip lag with blocks gossiped: the time from
// a publisher on loopback starting to publish block n (p2ppub: op-node's own
// p2p node signs it, checks it with its own validator and flood-publishes
// it) to the local engine's head being block n. The adapter runs (Run,
// PollInterval 2 s) with Config.Tip a gossip.Feed (op-node's p2p host and
// validator, peer scoring on, as minimal-node runs it) whose one static
// peer is the publisher; the safe source is a fake rollup node whose safe
// head stays put, so only the tip path moves the head. The engine is the
// in-memory EL behind the JWT check of BenchmarkTipLagPush. Blocks come at
// phases spread evenly over the tick interval (shuffled), as there.
//
// The floor is the work a gossiped tip cannot skip, each part the median of
// 31 measured in the same run before the adapter starts: publish-to-receive
// (the same publisher publishing to a bare gossip.Feed whose Run hands the
// block to a channel; blocks of a side chain at the same heights, so that
// neither validator has seen the measured blocks), one newPayload of a
// measured block into a second in-memory engine holding the same chain, and
// one no-op forkchoice round trip to that engine (measureEngineFloor, as
// measureTipFloor): nothing but the adapter writes into the measured engine. Reported: samples, p50-ms, p99-ms, floor-ms, p50/floor,
// and the floor's parts receive-ms, newpayload-ms, forkchoice-ms.
//
//	go test ./internal/bench -run '^$' -bench BenchmarkTipLagGossip -benchtime 1x
func BenchmarkTipLagGossip(b *testing.B) {
	samples := 30
	if *quick {
		samples = 10
	}
	for range b.N {
		benchTipLagGossip(b, samples)
	}
}

// gossipFloor is the work a gossiped tip cannot skip, measured part by part.
type gossipFloor struct {
	receive, newPayload, forkchoice time.Duration
}

func (f gossipFloor) total() time.Duration { return f.receive + f.newPayload + f.forkchoice }

func benchTipLagGossip(b *testing.B, samples int) {
	b.StopTimer()
	const unsafe0, safe0, fin0 = 100, 90, 50
	r := newRig(b, rigConfig{blocks: unsafe0 + samples + 40, unsafe: unsafe0, safe: safe0, fin: fin0, interval: tipTick})
	cfg := r.tree.RollupConfig()
	key, err := gcrypto.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	pub, err := p2ppub.New(p2ppub.Config{RollupConfig: cfg})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pub.Close() })
	floor := measureGossipFloor(b, r, pub, key, unsafe0)

	feed := startGossipFeed(b, cfg, gcrypto.PubkeyToAddress(key.PublicKey), pub.Addrs())
	if err := pub.WaitPeer(context.Background(), feed.Status().ID); err != nil {
		b.Fatal(err)
	}
	r.a, err = engineadapter.New(engineadapter.Config{PollInterval: tipTick, Tip: feed}, r.engine, r.source, discard, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = r.a.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	phases := rand.New(rand.NewSource(1)).Perm(samples)
	lags := make([]time.Duration, 0, samples)
	b.StartTimer()
	for i := range samples {
		time.Sleep(time.Duration((float64(phases[i]) + 0.5) / float64(samples) * float64(tipTick)))
		n := unsafe0 + i + 1
		r.follow(n, safe0, fin0)
		env := payloadEnv(b, cfg, r.chain[n-1])
		start := time.Now()
		if err := pub.Publish(ctx, key, env); err != nil {
			b.Fatal(err)
		}
		lags = append(lags, waitGossipHead(b, r, feed, n, 10*time.Second).Sub(start))
	}
	b.StopTimer()
	waitInserted(b, r, uint64(samples)) // the head moved before the last Tip returned
	if _, s, _ := r.el.Labels(); s.Number != safe0 {
		b.Fatalf("engine safe %d, want %d: a tip moved it", s.Number, safe0)
	}
	slices.Sort(lags)
	p50, p99 := quantile(lags, 0.50), quantile(lags, 0.99)
	b.ReportMetric(float64(samples), "samples")
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(ms(floor.total()), "floor-ms")
	b.ReportMetric(float64(p50)/float64(floor.total()), "p50/floor")
	b.ReportMetric(ms(floor.receive), "receive-ms")
	b.ReportMetric(ms(floor.newPayload), "newpayload-ms")
	b.ReportMetric(ms(floor.forkchoice), "forkchoice-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d samples: tip lag p50 %.3f ms, p99 %.3f ms, min %.3f ms; floor %.3f ms (publish-to-receive %.3f, newPayload %.3f, forkchoice %.3f); adapter tip status %+v; feed %+v",
		samples, ms(p50), ms(p99), ms(lags[0]), ms(floor.total()), ms(floor.receive), ms(floor.newPayload), ms(floor.forkchoice),
		r.a.Status().Tip, feed.Status())
}

// measureGossipFloor measures, before the adapter runs, the median of 31
// publish-to-receive trips to a bare gossip.Feed (blocks of a side chain
// forking at from, so that the measured blocks stay unseen), then the
// engine's part with blocks from+1 .. (measureEngineFloor).
func measureGossipFloor(b *testing.B, r *rig, pub *p2ppub.Publisher, key *ecdsa.PrivateKey, from int) gossipFloor {
	const n = 31
	ctx := context.Background()
	cfg := r.tree.RollupConfig()
	var f gossipFloor

	bare := startGossipFeed(b, cfg, gcrypto.PubkeyToAddress(key.PublicKey), pub.Addrs())
	if err := pub.WaitPeer(ctx, bare.Status().ID); err != nil {
		b.Fatal(err)
	}
	out := make(chan *eth.ExecutionPayloadEnvelope, 1)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bare.Run(rctx, out) }()
	side := r.tree.Extend(r.chain[from-1].Hash(), n, 2)
	i := 0
	f.receive = median(n, func() error {
		env := payloadEnv(b, cfg, side[i])
		i++
		if err := pub.Publish(ctx, key, env); err != nil {
			return err
		}
		select {
		case got := <-out:
			if got.ExecutionPayload.BlockHash != env.ExecutionPayload.BlockHash {
				return fmt.Errorf("the bare feed delivered block %s, want %s", got.ExecutionPayload.BlockHash, env.ExecutionPayload.BlockHash)
			}
			return nil
		case <-time.After(10 * time.Second):
			return fmt.Errorf("the bare feed did not deliver block %d within 10s: %+v", uint64(env.ExecutionPayload.BlockNumber), bare.Status())
		}
	}, b)
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if err := bare.Close(); err != nil {
		b.Fatal(err)
	}

	envs := make([]*eth.ExecutionPayloadEnvelope, n)
	for i := range envs {
		envs[i] = payloadEnv(b, cfg, r.chain[from+i])
	}
	f.newPayload, f.forkchoice = measureEngineFloor(b, r, from, envs)
	return f
}

// startGossipFeed starts a gossip.Feed on 127.0.0.1 that takes blocks
// signed by signer from its static peers, closed at the end of the
// benchmark.
func startGossipFeed(b *testing.B, cfg *rollup.Config, signer common.Address, static []string) *gossip.Feed {
	f, err := gossip.New(context.Background(), gossip.Config{
		RollupConfig: cfg, Signer: gossip.FixedSigner(signer), ListenIP: net.IPv4(127, 0, 0, 1),
		StaticPeers: static, GossipTimestampThreshold: gossipThreshold,
	}, discard, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	return f
}

// payloadEnv is block as an engine payload.
func payloadEnv(b *testing.B, cfg *rollup.Config, block *types.Block) *eth.ExecutionPayloadEnvelope {
	env, err := eth.BlockAsPayloadEnv(block, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return env
}

// waitGossipHead waits until the engine's head is block n of the chain and
// returns when it saw it (as waitHead, with the gossip feed's status on
// failure).
func waitGossipHead(b *testing.B, r *rig, feed *gossip.Feed, n int, timeout time.Duration) time.Time {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	want := r.chain[n-1].Hash()
	for {
		if u, _, _ := r.el.Labels(); u.Hash == want {
			return time.Now()
		}
		select {
		case <-r.el.ForkchoiceTaken():
		case <-deadline.C:
			u, _, _ := r.el.Labels()
			b.Fatalf("the engine's head did not reach %d within %s (at %d; adapter: %+v; feed: %+v)",
				n, timeout, u.Number, r.a.Status(), feed.Status())
		}
	}
}

// BenchmarkGossipCost measures what a running gossip.Feed with one peer
// costs the process that runs it, over a fixed window (30 s; quick: 5 s):
// "idle", the peer connected and nothing published, and "2-blocks-per-s",
// the peer publishing two blocks a second. The peer is a publisher (p2ppub)
// in a child process (this test binary, as TestGossipPublisherProcess), so
// that its own work is not counted. The reference comes first, in the same
// process and over the same windows: no feed, the child running, idle and
// then, at 2 blocks/s, publishing to nobody at the same pace. Then the feed
// starts, the child waits until it sees the feed on the block topics, and
// both windows are measured again. Reported, for each case:
//
//	cpu-ms, ref-cpu-ms  process CPU time (user+system, getrusage) over the
//	                    window, with the feed and in the reference
//	cpu-delta-ms        their difference: the feed's
//	core-%              cpu-delta-ms as a share of one core over the window
//	cpu-us/block        (2 blocks/s) cpu-delta-ms less the idle case's, per
//	                    block received: what a block costs on top of
//	                    keeping the feed running
//	heap-delta-KB       live heap (runtime/metrics /gc/heap/live:bytes just
//	                    after a GC) at the window's end, less the reference's
//	rss-delta-MB        VmRSS of /proc/self/status, the same way (memory
//	                    returned to the OS before the reference)
//	goroutines-delta    goroutines the running feed adds
//
// The live heap after blocks holds op-node's validator buffers (a pool of
// 10 MiB buffers, one per message being validated or hashed, kept until a
// second GC); their pages are mostly never touched, which RSS shows.
//
//	go test ./internal/bench -run '^$' -bench BenchmarkGossipCost -benchtime 1x
func BenchmarkGossipCost(b *testing.B) {
	window := 30 * time.Second
	if *quick {
		window = 5 * time.Second
	}
	const rate = 2
	c := measureGossipCost(b, window, rate)
	report := func(name string, w, ref costWindow, perBlock float64) {
		b.Run(name, func(b *testing.B) {
			delta := w.cpu - ref.cpu
			b.ReportMetric(window.Seconds(), "window-s")
			b.ReportMetric(float64(w.blocks), "blocks")
			b.ReportMetric(ms(w.cpu), "cpu-ms")
			b.ReportMetric(ms(ref.cpu), "ref-cpu-ms")
			b.ReportMetric(ms(delta), "cpu-delta-ms")
			b.ReportMetric(100*float64(delta)/float64(window), "core-%")
			if perBlock > 0 {
				b.ReportMetric(perBlock, "cpu-us/block")
			}
			b.ReportMetric((float64(w.end.heapLive)-float64(c.ref.heapLive))/1024, "heap-delta-KB")
			b.ReportMetric(float64(w.end.rssKB-c.ref.rssKB)/1024, "rss-delta-MB")
			b.ReportMetric(float64(w.end.goroutines-c.ref.goroutines), "goroutines-delta")
			b.ReportMetric(0, "ns/op")
		})
	}
	report("idle", c.idle, c.refIdle, 0)
	extra := (c.paced.cpu - c.refPaced.cpu) - (c.idle.cpu - c.refIdle.cpu)
	report(fmt.Sprintf("%d-blocks-per-s", rate), c.paced, c.refPaced, float64(extra)/float64(time.Microsecond)/float64(c.paced.blocks))
}

// costSample is the process's memory at one moment.
type costSample struct {
	heapLive   uint64 // bytes
	rssKB      int64
	goroutines int
}

// costWindow is one measured window: the CPU time it took, the blocks
// published in it, and the memory at its end.
type costWindow struct {
	cpu    time.Duration
	blocks int
	end    costSample
}

// gossipCost is BenchmarkGossipCost's four windows and its reference memory.
type gossipCost struct {
	ref                            costSample
	refIdle, refPaced, idle, paced costWindow
}

// sampleCost reads the live heap just after a GC, RSS and the goroutines.
func sampleCost(b *testing.B, freeOS bool) costSample {
	runtime.GC()
	if freeOS {
		debug.FreeOSMemory()
	}
	m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(m)
	if m[0].Value.Kind() != metrics.KindUint64 {
		b.Fatalf("runtime/metrics %s is not supported", m[0].Name)
	}
	rss, err := nodeRSS(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	return costSample{heapLive: m[0].Value.Uint64(), rssKB: rss, goroutines: runtime.NumGoroutine()}
}

func measureGossipCost(b *testing.B, window time.Duration, rate int) gossipCost {
	child := startPublisherProcess(b)
	next := 1 // the next block the child publishes
	// run measures the process CPU over the window, the child publishing
	// rate blocks a second (none for 0).
	run := func(rate int) costWindow {
		start := cpuTime(b)
		end := time.Now().Add(window)
		var w costWindow
		if rate == 0 {
			time.Sleep(window)
		} else {
			t := time.NewTicker(time.Second / time.Duration(rate))
			for now := range t.C {
				if now.After(end) {
					break
				}
				child.call(b, "publish", strconv.Itoa(next))
				next++
				w.blocks++
			}
			t.Stop()
		}
		w.cpu = cpuTime(b) - start
		return w
	}

	var c gossipCost
	c.ref = sampleCost(b, true)
	c.refIdle = run(0)
	c.refPaced = run(rate)

	feed, err := gossip.New(context.Background(), gossip.Config{
		RollupConfig: fakechain.NewTree().RollupConfig(), Signer: gossip.FixedSigner(child.signer),
		ListenIP: net.IPv4(127, 0, 0, 1), StaticPeers: child.addrs, GossipTimestampThreshold: gossipThreshold,
	}, discard, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = feed.Close() }()
	var received atomic.Int64
	out := make(chan *eth.ExecutionPayloadEnvelope, 16)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = feed.Run(ctx, out) }()
	go func() { // the consumer, as the adapter's tip path
		defer wg.Done()
		for {
			select {
			case <-out:
				received.Add(1)
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	child.call(b, "wait", feed.Status().ID.String())

	c.idle = run(0)
	c.idle.end = sampleCost(b, false)
	c.paced = run(rate)
	deadline := time.Now().Add(10 * time.Second)
	for received.Load() < int64(c.paced.blocks) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	c.paced.end = sampleCost(b, false)
	st := feed.Status()
	if got := received.Load(); got != int64(c.paced.blocks) || len(st.Peers) != 1 {
		b.Fatalf("the feed delivered %d blocks, %d were published; it has %d peers, want the publisher only: %+v",
			got, c.paced.blocks, len(st.Peers), st)
	}
	b.Logf("window %s: CPU without the feed %.1f ms idle, %.1f ms at %d blocks/s (%d blocks); with it %.1f ms idle, %.1f ms at %d blocks/s (%d blocks); "+
		"live heap %d KB, then %d KB idle, %d KB after the blocks; RSS %d KB, then %d, %d; goroutines %d, then %d, %d; feed %+v",
		window, ms(c.refIdle.cpu), ms(c.refPaced.cpu), rate, c.refPaced.blocks, ms(c.idle.cpu), ms(c.paced.cpu), rate, c.paced.blocks,
		c.ref.heapLive>>10, c.idle.end.heapLive>>10, c.paced.end.heapLive>>10, c.ref.rssKB, c.idle.end.rssKB, c.paced.end.rssKB,
		c.ref.goroutines, c.idle.end.goroutines, c.paced.end.goroutines, st)
	return c
}

// publisherEnv makes this test binary a publisher process
// (TestGossipPublisherProcess).
const publisherEnv = "LIGHTCL_BENCH_GOSSIP_PUBLISHER"

// publisherProc is the child publisher: it answers commands on its stdin,
// one a line, with "p2ppub ok" or "p2ppub err ..." on its stdout.
type publisherProc struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	signer common.Address
	addrs  []string
}

// startPublisherProcess starts the child and reads its signer and address.
func startPublisherProcess(b *testing.B) *publisherProc {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	p := &publisherProc{cmd: exec.Command(exe, "-test.run=^TestGossipPublisherProcess$", "-test.count=1")}
	p.cmd.Env = append(os.Environ(), publisherEnv+"=1")
	p.cmd.Stderr = os.Stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the benchmark
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	p.out = bufio.NewScanner(stdout)
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.in.Close(); _ = p.cmd.Wait() }) // stdin closed: it exits
	f := strings.Fields(p.reply(b))
	if len(f) != 3 || f[0] != "ready" || !common.IsHexAddress(f[1]) {
		b.Fatalf("publisher process: want \"ready <signer> <addrs>\", got %q", f)
	}
	p.signer, p.addrs = common.HexToAddress(f[1]), strings.Split(f[2], ",")
	return p
}

// call sends a command and requires "ok".
func (p *publisherProc) call(b *testing.B, cmd ...string) {
	if _, err := fmt.Fprintln(p.in, strings.Join(cmd, " ")); err != nil {
		b.Fatal(err)
	}
	if r := p.reply(b); r != "ok" {
		b.Fatalf("publisher process: %s: %s", strings.Join(cmd, " "), r)
	}
}

// reply is the child's next protocol line, without its prefix.
func (p *publisherProc) reply(b *testing.B) string {
	for p.out.Scan() {
		if r, ok := strings.CutPrefix(p.out.Text(), "p2ppub "); ok {
			return r
		}
	}
	b.Fatalf("publisher process ended: %v", p.out.Err())
	return ""
}

// TestGossipPublisherProcess is BenchmarkGossipCost's publisher when this
// binary runs with LIGHTCL_BENCH_GOSSIP_PUBLISHER set, and skips otherwise.
// It publishes the fake chain's blocks signed by a key of its own, on
// command: "wait <peer id>" (until the peer is on the block topics),
// "publish <n>" (block n). It ends when its stdin closes.
func TestGossipPublisherProcess(t *testing.T) {
	if os.Getenv(publisherEnv) == "" {
		t.Skip("BenchmarkGossipCost's child process")
	}
	tree := fakechain.NewTree()
	cfg := tree.RollupConfig()
	key, err := gcrypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := p2ppub.New(p2ppub.Config{RollupConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pub.Close() }()
	fmt.Printf("p2ppub ready %s %s\n", gcrypto.PubkeyToAddress(key.PublicKey).Hex(), strings.Join(pub.Addrs(), ","))
	chain := []*types.Block{tree.Genesis()}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := func() error {
			switch f := strings.Fields(sc.Text()); {
			case len(f) == 2 && f[0] == "wait":
				id, err := peer.Decode(f[1])
				if err != nil {
					return err
				}
				return pub.WaitPeer(ctx, id)
			case len(f) == 2 && f[0] == "publish":
				n, err := strconv.Atoi(f[1])
				if err != nil || n < 1 {
					return fmt.Errorf("block %q", f[1])
				}
				for len(chain) <= n {
					chain = append(chain, tree.Child(chain[len(chain)-1].Hash(), 1))
				}
				env, err := eth.BlockAsPayloadEnv(chain[n], cfg)
				if err != nil {
					return err
				}
				return pub.Publish(ctx, key, env)
			default:
				return fmt.Errorf("unknown command %q", sc.Text())
			}
		}()
		cancel()
		if err != nil {
			fmt.Printf("p2ppub err %v\n", err)
		} else {
			fmt.Println("p2ppub ok")
		}
	}
}
