package main

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// BenchmarkFollowLag measures follow lag: the time from a remote's safe head
// moving to the local EL's safe label showing it. The adapter runs (Run, its
// own ticker) against a fake remote rollup node over loopback HTTP and an
// in-memory EL behind the JWT check, through op-service's clients. The EL
// already holds the block (as unsafe), so each change costs one tick's
// consolidation. Changes come at phases of the poll spread evenly over the
// interval (in shuffled order): after a change is seen, that is just after a
// tick, the benchmark waits (k+½)/samples of an interval before the next.
//
// The floor is what any poller pays: half the poll interval (the mean wait for
// the next tick), plus one source round trip (the median of 30 Heads calls)
// plus one forkchoice round trip (the median of 30 no-op forkchoice updates),
// both measured in the same run before the adapter starts. Reported per
// interval:
//
//	p50-ms, p99-ms      the lag's median and 99th percentile
//	floor-ms            the floor
//	p50/floor, p99/floor
//	samples
//
// The 99th percentile of a wait spread over the interval is near a whole
// interval, so p99/floor is near 2 by construction; p50/floor is the figure
// to judge.
//
//	go test ./internal/bench -run '^$' -bench BenchmarkFollowLag -benchtime 1x
func BenchmarkFollowLag(b *testing.B) {
	for _, iv := range []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second} {
		samples := max(20, int(20*time.Second/iv)) // 200, 40, 20: 20-40 s each
		if *quick {
			samples = max(3, samples/10)
		}
		b.Run(fmt.Sprintf("interval=%s", iv), func(b *testing.B) {
			for range b.N {
				benchFollowLag(b, iv, samples)
			}
		})
	}
}

func benchFollowLag(b *testing.B, iv time.Duration, samples int) {
	const safe0 = 100
	r := newRig(b, rigConfig{blocks: safe0 + samples + 10, unsafe: safe0 + samples + 10, safe: safe0, fin: safe0 - 20, interval: iv})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// the floor, measured before the adapter runs
	srcRTT := median(30, func() error { _, err := r.source.Heads(ctx); return err }, b)
	unsafe, safe, fin := r.el.Labels()
	fc := eth.ForkchoiceState{HeadBlockHash: unsafe.Hash, SafeBlockHash: safe.Hash, FinalizedBlockHash: fin.Hash}
	fcuRTT := median(30, func() error { _, err := r.engine.ForkchoiceUpdate(ctx, &fc, nil); return err }, b)
	floor := iv/2 + srcRTT + fcuRTT

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = r.a.Run(ctx)
	}()
	defer wg.Wait()
	defer cancel()
	waitSafe(b, r, safe0, 10*iv+5*time.Second)

	// the phases of the changes are spread evenly over the interval, in a
	// shuffled order: a tick has just happened when a change is seen
	phases := rand.New(rand.NewSource(1)).Perm(samples)
	lags := make([]time.Duration, 0, samples)
	b.ResetTimer()
	for i := range samples {
		time.Sleep(time.Duration((float64(phases[i]) + 0.5) / float64(samples) * float64(iv)))
		target := safe0 + i + 1
		start := time.Now()
		r.follow(len(r.chain), target, safe0-20)
		lags = append(lags, waitSafe(b, r, target, 10*iv+5*time.Second).Sub(start))
	}
	b.StopTimer()
	slices.Sort(lags)
	p50, p99 := quantile(lags, 0.50), quantile(lags, 0.99)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(ms(floor), "floor-ms")
	b.ReportMetric(float64(p50)/float64(floor), "p50/floor")
	b.ReportMetric(float64(p99)/float64(floor), "p99/floor")
	b.ReportMetric(float64(samples), "samples")
	b.ReportMetric(0, "ns/op")
	b.Logf("interval %s: %d samples, lag p50 %.2f ms, p99 %.2f ms; floor %.2f ms (source round trip %.3f ms, forkchoice round trip %.3f ms)",
		iv, samples, ms(p50), ms(p99), ms(floor), ms(srcRTT), ms(fcuRTT))
}

// waitSafe waits until the EL's safe label is at height n and returns when it
// saw it, polling the in-process EL every 50 µs.
func waitSafe(b *testing.B, r *rig, n int, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for {
		now := time.Now()
		if _, safe, _ := r.el.Labels(); safe.Number == uint64(n) {
			return now
		}
		if now.After(deadline) {
			_, safe, _ := r.el.Labels()
			b.Fatalf("the EL's safe label did not reach %d within %s (at %d; adapter: %+v)", n, timeout, safe.Number, r.a.Status())
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// median runs f n times and returns the median duration.
func median(n int, f func() error, b *testing.B) time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		ds[i] = time.Since(start)
	}
	slices.Sort(ds)
	return ds[n/2]
}

// quantile returns the q-quantile of sorted ds, interpolating between the
// two nearest ranks.
func quantile(ds []time.Duration, q float64) time.Duration {
	pos := q * float64(len(ds)-1)
	i := int(pos)
	if i+1 >= len(ds) {
		return ds[len(ds)-1]
	}
	return ds[i] + time.Duration((pos-float64(i))*float64(ds[i+1]-ds[i]))
}

// BenchmarkFollowLagPush measures follow lag when the source is an L2 EL that
// pushes: the source is the remote's L2 EL itself (remotel2, kind el, over
// HTTP) and the tip feed its websocket (tipfeed.Remote, Config.Tip), with
// Config.TickOnTip on, as minimal-node wires an L2 EL source, and a
// PollInterval of 2 s. Each change moves the remote EL's head one block and
// its safe label with it (SetForkchoice: head n, safe n-4); the lag is the
// time from that to the local engine's safe label being block n-4. The feed
// announces the new head as it is pushed, the adapter starts a tick at once
// (the engine's head and the source's labels read together) while the feed
// fetches the payload, and the tip is inserted after. Changes come at phases
// spread evenly over the 2 s interval (shuffled), as in BenchmarkFollowLag.
//
// The floor is what the tick itself must pay, measured in the same run before
// the adapter starts: one source round trip (the median of 31 Heads calls)
// plus one forkchoice round trip (the median of 31 no-op updates); the issue's
// goal is p50 at most 1.3× that. It leaves out the push itself: notify-ms is
// the one-way trip of a new head to a newHeads subscriber of the remote
// (measureNotify), which no design can skip, and p50/(floor+notify) the ratio
// with it. serial-floor-ms is the cost of the calls of the tip path and a
// tick one after another (payload fetch, newPayload, forkchoice; source, a
// block read, forkchoice), as the adapter did before it took announcements:
// p50/serial-floor below 1 is what the overlap buys.
//
//	go test ./internal/bench -run '^$' -bench BenchmarkFollowLagPush -benchtime 1x
func BenchmarkFollowLagPush(b *testing.B) {
	samples := 30
	if *quick {
		samples = 10
	}
	for range b.N {
		benchFollowLagPush(b, samples)
	}
}

func benchFollowLagPush(b *testing.B, samples int) {
	b.StopTimer()
	const unsafe0, safe0, fin0 = 100, 96, 50
	r := newRig(b, rigConfig{blocks: unsafe0 + samples + 40, unsafe: unsafe0, safe: safe0, fin: fin0,
		interval: tipTick, tip: "ws", elSource: true, tickOnTip: true})
	ctx := context.Background()
	tipFloor := measureTipFloor(b, r, unsafe0)
	srcRTT := median(31, func() error { _, err := r.source.Heads(ctx); return err }, b)
	floor := srcRTT + tipFloor.forkchoice
	notify := measureNotify(b, r, unsafe0)
	blockRead := median(31, func() error { _, err := r.engine.L2BlockRefByNumber(ctx, safe0); return err }, b)
	serial := tipFloor.total() + srcRTT + blockRead + tipFloor.forkchoice
	stop := runAdapter(b, r)
	defer stop()
	waitSafe(b, r, safe0, 10*time.Second)

	phases := rand.New(rand.NewSource(1)).Perm(samples)
	lags := make([]time.Duration, 0, samples)
	heads := make([]time.Duration, 0, samples) // when the engine's head was block n
	engine0, remote0 := nodeCount(r.el.Calls()), nodeCount(r.remoteEL.Calls())
	b.StartTimer()
	for i := range samples {
		time.Sleep(time.Duration((float64(phases[i]) + 0.5) / float64(samples) * float64(tipTick)))
		n := unsafe0 + i + 1
		r.insertRemote(n)
		start := time.Now()
		r.moveEL(n, n-4, fin0)
		head, safe := waitHeadThenSafe(b, r, n, n-4, 10*tipTick+5*time.Second)
		lags = append(lags, safe.Sub(start))
		heads = append(heads, head.Sub(start))
	}
	b.StopTimer()
	st := r.a.Status()
	engine, remote := diffCounts(nodeCount(r.el.Calls()), engine0), diffCounts(nodeCount(r.remoteEL.Calls()), remote0)
	slices.Sort(lags)
	slices.Sort(heads)
	p50, p99 := quantile(lags, 0.50), quantile(lags, 0.99)
	b.ReportMetric(float64(samples), "samples")
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(ms(floor), "floor-ms")
	b.ReportMetric(float64(p50)/float64(floor), "p50/floor")
	b.ReportMetric(ms(notify), "notify-ms")
	b.ReportMetric(float64(p50)/float64(floor+notify), "p50/(floor+notify)")
	b.ReportMetric(ms(serial), "serial-floor-ms")
	b.ReportMetric(float64(p50)/float64(serial), "p50/serial-floor")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d samples: safe lag p50 %.3f ms, p99 %.3f ms, min %.3f ms (the engine's head was the new block after p50 %.3f ms); floor %.3f ms (source %.3f, forkchoice %.3f); newHeads notification %.3f ms; tip path floor %.3f ms (payload fetch %.3f, newPayload %.3f, forkchoice %.3f); block read %.3f ms; serial floor %.3f ms; ticks %d; adapter tip status %+v",
		samples, ms(p50), ms(p99), ms(lags[0]), ms(quantile(heads, 0.5)), ms(floor), ms(srcRTT), ms(tipFloor.forkchoice), ms(notify), ms(tipFloor.total()),
		ms(tipFloor.fetch), ms(tipFloor.newPayload), ms(tipFloor.forkchoice), ms(blockRead), ms(serial), st.Ticks, st.Tip)
	b.Logf("calls over the %d samples: engine %v; remote EL over HTTP (the source) %v", samples, engine, remote)
}

// waitHeadThenSafe waits until the engine's head is block head and its safe
// label block safe, and returns when it saw each: woken by each forkchoice
// update the in-process EL takes, so the wait costs no CPU the adapter could
// use.
func waitHeadThenSafe(b *testing.B, r *rig, head, safe int, timeout time.Duration) (headAt, safeAt time.Time) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		now := time.Now()
		u, s, _ := r.el.Labels()
		if headAt.IsZero() && u.Number >= uint64(head) {
			headAt = now
		}
		if s.Number == uint64(safe) && s.Hash == r.chain[safe-1].Hash() {
			if headAt.IsZero() {
				headAt = now
			}
			return headAt, now
		}
		select {
		case <-r.el.ForkchoiceTaken():
		case <-deadline.C:
			b.Fatalf("the engine's head and safe label did not reach %d and %d within %s (at %d, %d; adapter: %+v)",
				head, safe, timeout, u.Number, s.Number, r.a.Status())
		}
	}
}
