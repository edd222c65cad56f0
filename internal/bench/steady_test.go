package main

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/reorg"
)

// BenchmarkSteadyState counts what a tick costs: HTTP requests to the remote
// rollup node, to the EL and to L1 (a JSON-RPC batch is one request), counted
// by a proxy in front of each, and calls to the remote's L2 EL over the tip
// feed's websocket, counted by a relay (wsCounter), with the adapter, the
// remote source, L1 verification (l1verify.RPCSource) and a tip feed
// (tipfeed.Remote on the remote EL's websocket, Config.Tip) as minimal-node
// wires them, stepped by hand (no sleeps and no Run: a tick is what it would
// be at any poll interval). The feed runs; each block it delivers is handed
// to Adapter.Tip, as Run does between ticks. Two cases:
//
//	unchanged  nothing moves: the cost of a tick that finds nothing new;
//	moving     one hour of chain at 2 s: every tick the remote's L2 EL takes
//	           one new block as its head (Insert, SetForkchoice: the feed is
//	           told over its subscription), the rollup node's unsafe and safe
//	           heads move one block, and finalized moves 64 blocks every 64
//	           ticks; the tick waits for the feed to deliver the new block,
//	           hands it to Tip (which inserts it into the EL), then Steps.
//
// Reported per tick: remote-req, el-req, l1-req and tip-req (the feed's
// calls; it batches none, so a call is a request), el-req including the tip
// path's newPayload and forkchoice update; per hour at a 2 s interval (1,800
// ticks): the four ×1,800, as req/hour; and cpu-us/tick, the process's CPU
// time per tick, which includes the in-process fake servers, proxies and
// relay, so it is an upper bound on the adapter's. op-node's follow source,
// for comparison, makes one optimism_syncStatus request and three to four
// serial L1 requests (eth_getBlockByNumber for the local-safe, safe and
// finalized heads' L1 origins and currentL1) every poll
// (op-node/rollup/driver/driver.go, followUpstream).
//
//	go test ./internal/bench -run '^$' -bench BenchmarkSteadyState -benchtime 1x
func BenchmarkSteadyState(b *testing.B) {
	ticks := 1800
	if *quick {
		ticks = 300
	}
	for _, moving := range []bool{false, true} {
		name := "unchanged"
		if moving {
			name = "moving"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				benchSteadyState(b, ticks, moving)
			}
		})
	}
}

func benchSteadyState(b *testing.B, ticks int, moving bool) {
	const unsafe0, safe0, fin0 = 200, 196, 128
	r := newRig(b, rigConfig{blocks: unsafe0 + ticks + 10, unsafe: unsafe0, safe: safe0, fin: fin0, verify: true, count: true, tip: "ws"})
	ctx, cancel := context.WithCancel(context.Background())
	tips := make(chan *eth.ExecutionPayloadEnvelope, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = r.tip.Run(ctx, tips)
	}()
	defer wg.Wait()
	defer cancel()
	// settle: the feed delivers the head it finds on subscribing (the EL has
	// it), and the first ticks read the engine's labels
	steadyTip(b, r, tips, unsafe0)
	for range 3 {
		if _, err := r.a.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	_, tip0 := r.tipCalls.Calls()
	remote0, el0, l10 := r.remoteReq.Load(), r.elReq.Load(), r.l1Req.Load()
	cpu0 := cpuTime(b)
	b.ResetTimer()
	unsafe, safe, fin := unsafe0, safe0, fin0
	for i := range ticks {
		if moving {
			unsafe, safe = unsafe+1, safe+1
			if (i+1)%64 == 0 {
				fin += 64
			}
			r.move(unsafe, safe, fin)
			steadyTip(b, r, tips, unsafe)
		}
		if _, err := r.a.Step(ctx); err != nil {
			b.Fatalf("tick %d: %v", i, err)
		}
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	_, tipN := r.tipCalls.Calls()
	elUnsafe, elSafe, elFin := r.el.Labels()
	if elUnsafe.Number != uint64(unsafe) || elSafe.Number != uint64(safe) || elFin.Number != uint64(fin) {
		b.Fatalf("the EL is at %d/%d/%d (unsafe/safe/finalized); the remote at %d/%d/%d",
			elUnsafe.Number, elSafe.Number, elFin.Number, unsafe, safe, fin)
	}
	n := float64(ticks)
	per := func(c int64) float64 { return float64(c) / n }
	remote, el, l1, tip := per(r.remoteReq.Load()-remote0), per(r.elReq.Load()-el0), per(r.l1Req.Load()-l10), per(int64(tipN-tip0))
	b.ReportMetric(remote, "remote-req/tick")
	b.ReportMetric(el, "el-req/tick")
	b.ReportMetric(l1, "l1-req/tick")
	b.ReportMetric(tip, "tip-req/tick")
	b.ReportMetric((remote+el+l1+tip)*1800, "req/hour")
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-us/tick")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s, %d ticks: per tick %.3f remote, %.3f EL, %.3f L1, %.3f tip requests; %.0f requests per hour at 2 s; %s CPU (with the fakes); tip status %+v",
		map[bool]string{false: "unchanged", true: "moving"}[moving], ticks, remote, el, l1, tip, (remote+el+l1+tip)*1800, cpu, r.a.Status().Tip)
}

// steadyTip waits for the feed to deliver block n and hands it to the
// adapter, as Run does; blocks below n delivered first are handed on too.
func steadyTip(b *testing.B, r *rig, tips <-chan *eth.ExecutionPayloadEnvelope, n int) {
	timeout := time.After(10 * time.Second)
	for {
		select {
		case env := <-tips:
			if _, err := r.a.Tip(context.Background(), env); err != nil {
				b.Fatalf("tip %d: %v", uint64(env.ExecutionPayload.BlockNumber), err)
			}
			if env.ExecutionPayload.BlockHash == r.chain[n-1].Hash() {
				return
			}
		case <-timeout:
			b.Fatalf("the tip feed did not deliver block %d within 10s (feed: %+v)", n, r.tip.Status())
		}
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStep measures one tick of lightcl's own code: the adapter and the
// decision core with the in-process engine and source of
// BenchmarkAdapterMemory (Go calls, no HTTP, nothing stored), so the CPU time
// and allocations reported are the adapter's, not a client's or a server's.
// "unchanged": nothing moves; "moving": the engine's head moves one block per
// tick (set by the benchmark on the in-process engine, standing for a tip
// block inserted) and the source's heads follow it, so every tick
// consolidates a new safe head.
//
//	go test ./internal/bench -run '^$' -bench BenchmarkStep -benchmem
func BenchmarkStep(b *testing.B) {
	for _, moving := range []bool{false, true} {
		name := map[bool]string{false: "unchanged", true: "moving"}[moving]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			chain := &memChain{available: memSafeLag + 100}
			engine := &memEngine{chain: chain}
			a, err := engineadapter.New(engineadapter.DefaultConfig(), engine, &memSource{chain: chain}, discard, nil)
			if err != nil {
				b.Fatal(err)
			}
			for range 3 {
				if _, err := a.Step(ctx); err != nil {
					b.Fatal(err)
				}
			}
			reads0 := engine.reads
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if moving {
					chain.available++
					engine.head = chain.available // a tip block: the engine's head leads the source's safe head
				}
				d, err := a.Step(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if moving && d.Action != reorg.Consolidate {
					b.Fatalf("a moving tick decided %s, not consolidate: %s", d.Action, d.Reason)
				}
			}
			b.StopTimer()
			if engine.safe != chain.safe() {
				b.Fatalf("engine safe %d, source safe %d", engine.safe, chain.safe())
			}
			b.ReportMetric(float64(engine.reads-reads0)/float64(b.N), "engine-reads/tick")
		})
	}
}
