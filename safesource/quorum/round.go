package quorum

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"

	"github.com/lightcl/lightcl/safesource"
)

// errNoAnswer marks a member that had not answered when the round decided.
var errNoAnswer = errors.New("no answer before the round decided")

// answer is one member's Heads answer in a round.
type answer struct {
	member int
	heads  safesource.Heads
	err    error
	took   time.Duration
}

// gather asks every member for its heads in parallel. It returns when all have
// answered; or when at least M have, and either the answers settle the outcome
// (early) or the straggler wait has passed; or when ctx ends. Members that had
// not answered carry errNoAnswer. Every call it started has returned when it
// returns.
func (q *Quorum) gather(ctx context.Context) (answers []answer, early bool) {
	n := len(q.members)
	rctx, cancel := context.WithCancel(ctx)
	results := make(chan answer, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i, m := range q.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mctx, cancel := context.WithTimeout(rctx, q.cfg.MemberTimeout)
			defer cancel()
			h, err := m.Heads(mctx)
			if err == nil {
				err = h.Check() // a member's own heads must hang together to count
			}
			results <- answer{member: i, heads: h, err: err, took: time.Since(start)}
		}()
	}
	defer func() {
		cancel() // stragglers give up; a member must honour its context
		wg.Wait()
	}()

	answers = make([]answer, n)
	for i := range answers {
		answers[i] = answer{member: i, err: errNoAnswer}
	}
	var straggler <-chan time.Time
	for got, ok := 0, 0; got < n; {
		select {
		case a := <-results:
			answers[a.member] = a
			got++
			if a.err != nil {
				continue
			}
			ok++
			if ok < q.cfg.Threshold {
				continue
			}
			if settled(answers, q.cfg.Threshold, n-got) {
				return answers, got < n
			}
			if straggler == nil {
				t := time.NewTimer(q.cfg.StragglerWait)
				defer t.Stop()
				straggler = t.C
			}
		case <-straggler:
			return answers, false
		case <-ctx.Done():
			return answers, false
		}
	}
	return answers, false
}

// settled reports whether the answers so far fix the outcome whatever the
// outstanding members say: for every label, the highest head any member
// claimed is claimed, block for block, by at least m members, and fewer than m
// members are outstanding (so no higher head can gather m supporters).
func settled(answers []answer, m, outstanding int) bool {
	if outstanding >= m {
		return false
	}
	for _, label := range labels {
		var top eth.L2BlockRef
		for _, a := range answers {
			if h := label.of(a.heads); a.err == nil && h.Number > top.Number {
				top = h
			}
		}
		count := 0
		for _, a := range answers {
			if a.err != nil {
				continue
			}
			switch h := label.of(a.heads); {
			case h == top:
				count++
			case h.Number == top.Number:
				return false // two blocks claimed at the top height
			}
		}
		if count < m {
			return false
		}
	}
	return true
}

func isNotFound(err error) bool { return errors.Is(err, ethereum.NotFound) }
