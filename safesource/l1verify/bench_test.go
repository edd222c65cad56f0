package l1verify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/l1verify"
)

// BenchmarkTick measures what L1 verification adds to one tick (one Heads
// call) of a remote rollup node source, all over loopback HTTP: the remote is
// testutil's rollup node, the L1 testutil's in-memory L1 read through
// op-service's L1Client. The heads' four L1 origins (safe, local-safe,
// finalized, current L1) are at four distinct heights. Reported per tick:
//
//	l1-calls/tick  JSON-RPC calls the L1 node received
//	x-unverified   latency / the unverified source's latency (measured first, in the same run)
//
// Each runs twice: over bare loopback, where every call is CPU-bound (client
// and servers share the machine's cores, so parallel calls barely overlap),
// and with every request to the remote and to L1 held 2 ms first, as a
// network would, where parallel calls do overlap.
//
// "unverified": the remote alone. "verified-steady": wrapped, L1 unchanged
// between ticks. "verified-after-L1-reorg": wrapped, and before every tick
// L1 replaces its head block (above the origins, so the heads still pass):
// the cache is dropped and every origin read again. "op-node-style": the
// remote, then each origin read from L1 one after another, as op-node's
// follow source does on every poll.
func BenchmarkTick(b *testing.B) {
	ctx := context.Background()
	w := newWorld(b)
	node := w.rollupNode(b)
	inner := remote(b, node.URL())
	l1 := testutil.DialL1(b, w.l1.URL())
	tick := func(b *testing.B, s safesource.SafeHeadSource) {
		if _, err := s.Heads(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for _, delay := range []time.Duration{0, 2 * time.Millisecond} {
		net := "loopback"
		if delay > 0 {
			net = fmt.Sprintf("delay=%s", delay)
		}
		// every request to the remote and to L1 waits delay, as over a network
		node.Faults().Stall(delay)
		w.l1.Faults().Stall(delay)
		var unverifiedNs float64
		report := func(b *testing.B, calls int, unverified bool) {
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if unverified {
				unverifiedNs = ns
			}
			b.ReportMetric(float64(calls)/float64(b.N), "l1-calls/tick")
			b.ReportMetric(ns/unverifiedNs, "x-unverified")
		}

		b.Run(net+"/unverified", func(b *testing.B) {
			before := serverCalls(w.l1)
			for range b.N {
				tick(b, inner)
			}
			report(b, serverCalls(w.l1)-before, true)
		})
		b.Run(net+"/verified-steady", func(b *testing.B) {
			s := wrap(b, inner, l1, l1verify.Config{})
			tick(b, s) // warm the cache
			b.ResetTimer()
			before := serverCalls(w.l1)
			for range b.N {
				tick(b, s)
			}
			report(b, serverCalls(w.l1)-before, false)
		})
		b.Run(net+"/verified-after-L1-reorg", func(b *testing.B) {
			s := wrap(b, inner, l1, l1verify.Config{})
			tick(b, s)
			b.ResetTimer()
			before := serverCalls(w.l1)
			for i := range b.N {
				b.StopTimer()
				w.l1.Reorg(24, uint64(1+i%2))
				b.StartTimer()
				tick(b, s)
			}
			b.StopTimer()
			report(b, serverCalls(w.l1)-before, false)
			if got := s.Status().L1.L1Reorgs; got != b.N {
				b.Fatalf("%d L1 reorgs seen, want %d", got, b.N)
			}
			w.l1.Reorg(24, 0)
		})
		b.Run(net+"/op-node-style", func(b *testing.B) {
			before := serverCalls(w.l1)
			for range b.N {
				if err := serialCheck(ctx, inner, l1); err != nil {
					b.Fatal(err)
				}
			}
			report(b, serverCalls(w.l1)-before, false)
		})
	}
}

// serialCheck is op-node's follow-source check: the heads, then the L1 block
// at each origin's height, one call after another.
func serialCheck(ctx context.Context, inner safesource.SafeHeadSource, l1 l1verify.L1Source) error {
	h, err := inner.Heads(ctx)
	if err != nil {
		return err
	}
	for _, id := range []eth.BlockID{h.LocalSafe.L1Origin, h.Safe.L1Origin, h.Finalized.L1Origin, h.CurrentL1.ID()} {
		ref, err := l1.L1BlockRefByNumber(ctx, id.Number)
		if err != nil {
			return err
		}
		if ref.Hash != id.Hash {
			return fmt.Errorf("L1 block %d is %s, not %s", id.Number, ref.Hash, id.Hash)
		}
	}
	return nil
}
