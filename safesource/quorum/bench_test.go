package quorum_test

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/lightcl/lightcl/safesource/quorum"
)

// BenchmarkRound measures a round over N members whose answer latencies are
// drawn each round from one fixed distribution (2 ms plus an exponential tail
// of mean 3 ms, seeded), with one member stalled for good. The physical limit
// of a round is the latency of the M-th fastest member: no rule can decide on
// M answers before the M-th arrives. Reported per round:
//
//	x-Mth-fastest  round latency / M-th fastest member's latency (mean)
//	calls/round    Heads plus L2BlockRefByNumber calls to the members
//
// "agree": all answering members report the same heads, so M agreeing answers
// settle the round. "lagging": every member is at its own height, so the round
// waits the straggler wait (20 ms) for the rest once M have answered; its limit
// is the M-th fastest latency plus that wait. "stalled-lookups": as lagging,
// with local-safe 2 above safe, but the last member, a liar on a fork above
// them all, answers its heads at once and stalls on every lookup; the round
// must wait out one member timeout (50 ms) before it knows the liar's word is
// missing where a candidate needs it, so its limit is the time the straggler
// rule takes to hear the answers (the M-th fastest plus the wait, or the last
// answer if sooner) plus that one timeout.
func BenchmarkRound(b *testing.B) {
	for _, kind := range []string{"agree", "lagging", "stalled-lookups"} {
		for _, n := range []int{3, 9, 33, 65} {
			b.Run(fmt.Sprintf("%s/N=%d", kind, n), func(b *testing.B) { benchRound(b, n, kind) })
		}
	}
}

func benchRound(b *testing.B, n int, kind string) {
	const wait, liarTimeout = 20 * time.Millisecond, 50 * time.Millisecond
	lagging, liar := kind != "agree", kind == "stalled-lookups"
	rng := rand.New(rand.NewSource(1))
	ms := make([]*member, n)
	for i := range ms {
		safe := uint64(150)
		if lagging {
			safe -= uint64(i)
		}
		localSafe := safe
		if liar {
			localSafe += 2
		}
		ms[i] = newMember(fmt.Sprintf("m%d", i), honest, safe-20, safe, localSafe)
	}
	timeout := 5 * time.Second
	if liar {
		ms[n-1] = newMember(fmt.Sprintf("m%d", n-1), honest.fork(60, 140), 150, 170, 172)
		ms[n-1].slowLookups = true
		timeout = liarTimeout
	} else {
		ms[n-1].stall = true
	}
	q, err := quorum.New(quorum.Config{StragglerWait: wait, MemberTimeout: timeout}, sources(ms...), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	m := q.Threshold()
	var ratio float64
	calls := 0
	b.ResetTimer()
	for range b.N {
		lat := make([]time.Duration, 0, n)
		for _, mem := range ms[:n-1] {
			d := 2*time.Millisecond + time.Duration(rng.ExpFloat64()*float64(3*time.Millisecond))
			mem.delay = d
			lat = append(lat, d)
		}
		if liar {
			lat = append(lat, 0) // the liar's heads come at once
		}
		slices.Sort(lat)
		limit := lat[m-1]
		switch {
		case liar:
			limit = min(limit+wait, lat[len(lat)-1]) + liarTimeout
		case lagging:
			limit += wait
		}
		before := totalCalls(ms)
		start := time.Now()
		if _, err := q.Heads(context.Background()); err != nil {
			b.Fatal(err)
		}
		ratio += float64(time.Since(start)) / float64(limit)
		calls += totalCalls(ms) - before
	}
	b.ReportMetric(ratio/float64(b.N), "x-Mth-fastest")
	b.ReportMetric(float64(calls)/float64(b.N), "calls/round")
}

func totalCalls(ms []*member) int {
	total := 0
	for _, m := range ms {
		h, l := m.calls()
		total += h + l
	}
	return total
}
