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
// is the M-th fastest latency plus that wait.
func BenchmarkRound(b *testing.B) {
	for _, kind := range []string{"agree", "lagging"} {
		for _, n := range []int{3, 9, 33, 65} {
			b.Run(fmt.Sprintf("%s/N=%d", kind, n), func(b *testing.B) { benchRound(b, n, kind == "lagging") })
		}
	}
}

func benchRound(b *testing.B, n int, lagging bool) {
	const wait = 20 * time.Millisecond
	rng := rand.New(rand.NewSource(1))
	ms := make([]*member, n)
	for i := range ms {
		safe := uint64(150)
		if lagging {
			safe -= uint64(i)
		}
		ms[i] = newMember(fmt.Sprintf("m%d", i), honest, safe-20, safe, safe)
	}
	ms[n-1].stall = true
	q, err := quorum.New(quorum.Config{StragglerWait: wait, MemberTimeout: 5 * time.Second}, sources(ms...), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	m := q.Threshold()
	var ratio float64
	calls := 0
	b.ResetTimer()
	for range b.N {
		lat := make([]time.Duration, 0, n-1)
		for _, mem := range ms[:n-1] {
			d := 2*time.Millisecond + time.Duration(rng.ExpFloat64()*float64(3*time.Millisecond))
			mem.delay = d
			lat = append(lat, d)
		}
		slices.Sort(lat)
		limit := lat[m-1]
		if lagging {
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
