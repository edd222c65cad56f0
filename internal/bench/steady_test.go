package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/reorg"
)

// BenchmarkSteadyState counts what a tick costs: HTTP requests to the remote
// rollup node, to the EL and to L1 (a JSON-RPC batch is one request), counted
// by a proxy in front of each, with the adapter, the remote source and L1
// verification (l1verify.RPCSource) as minimal-node wires them, stepped by
// hand (Step; no sleeps: a tick is what it would be at any poll interval). Two
// cases:
//
//	unchanged  nothing moves: the cost of a tick that finds nothing new;
//	moving     one hour of chain at 2 s: every tick the remote's unsafe and
//	           safe heads and the EL's head move one block, and finalized moves
//	           64 blocks every 64 ticks.
//
// Reported per tick: remote-req, el-req, l1-req; per hour at a 2 s interval
// (1,800 ticks): the same ×1,800, as req/hour; and cpu-us/tick, the process's
// CPU time per tick, which includes the in-process fake servers and proxies,
// so it is an upper bound on the adapter's. op-node's follow source, for
// comparison, makes one optimism_syncStatus request and three to four serial
// L1 requests (eth_getBlockByNumber for the local-safe, safe and finalized
// heads' L1 origins and currentL1) every poll (op-node/rollup/driver/driver.go,
// followUpstream).
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
	r := newRig(b, rigConfig{blocks: unsafe0 + ticks + 10, unsafe: unsafe0, safe: safe0, fin: fin0, verify: true, count: true})
	ctx := context.Background()
	for range 3 { // settle: the first ticks read the engine's labels
		if _, err := r.a.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
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
			if err := r.el.Gossip(r.tree, r.chain[unsafe-1].Hash()); err != nil {
				b.Fatal(err)
			}
			r.follow(unsafe, safe, fin)
		}
		if _, err := r.a.Step(ctx); err != nil {
			b.Fatalf("tick %d: %v", i, err)
		}
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	_, elSafe, elFin := r.el.Labels()
	if elSafe.Number != uint64(safe) || elFin.Number != uint64(fin) {
		b.Fatalf("the EL is at safe %d, finalized %d; the remote at %d, %d", elSafe.Number, elFin.Number, safe, fin)
	}
	n := float64(ticks)
	per := func(c int64) float64 { return float64(c) / n }
	remote, el, l1 := per(r.remoteReq.Load()-remote0), per(r.elReq.Load()-el0), per(r.l1Req.Load()-l10)
	b.ReportMetric(remote, "remote-req/tick")
	b.ReportMetric(el, "el-req/tick")
	b.ReportMetric(l1, "l1-req/tick")
	b.ReportMetric((remote+el+l1)*1800, "req/hour")
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-us/tick")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s, %d ticks: per tick %.3f remote, %.3f EL, %.3f L1 requests; %.0f requests per hour at 2 s; %s CPU (with the fakes)",
		map[bool]string{false: "unchanged", true: "moving"}[moving], ticks, remote, el, l1, (remote+el+l1)*1800, cpu)
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
// tick (as by gossip) and the source's heads follow it, so every tick
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
					engine.head = chain.available // gossiped: the engine's head leads the source's safe head
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
