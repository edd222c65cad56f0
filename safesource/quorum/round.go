package quorum

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"

	"github.com/lightcl/lightcl/internal/fanout"
	"github.com/lightcl/lightcl/safesource"
)

// Round is the outcome of one round.
type Round struct {
	// Heads are the agreed heads; zero when Err is set.
	Heads safesource.Heads
	// Err says why the round agreed on no heads; it wraps ErrNoQuorum, or
	// safesource.ErrInconsistentHeads when the agreed heads do not hang
	// together.
	Err error
	// Supporters of the agreed safe head, and Disagreed: members at or above it
	// whose chain holds another block there.
	Supporters, Disagreed []string
	// Answered and Missing name the members that answered, and that erred or
	// had not answered when the round decided.
	Answered, Missing []string
	// NoQuorum names the labels no head gathered M supporters for.
	NoQuorum []string
	// TimedOut names the members whose lookup outlasted MemberTimeout; the
	// round asked them nothing more after that.
	TimedOut []string
	// Lookups is how many L2BlockRefByNumber calls the round made and heard
	// back from.
	Lookups int
	// Latency is how long the round took.
	Latency time.Duration
}

// errNoAnswer marks a member that had not answered when the round decided.
var errNoAnswer = errors.New("no answer before the round decided")

// answer is one member's Heads answer in a round.
type answer struct {
	member int
	heads  safesource.Heads
	err    error
}

// round runs one round: it gathers the members' heads, then works out the
// agreement with decide, making the lookups decide asks for.
func (q *Quorum) round(ctx context.Context) (Round, []answer, bool) {
	start := time.Now()
	answers, early := q.gather(ctx)
	out, lookups := q.settle(ctx, answers)
	r := Round{
		Heads: out.heads, Err: out.err,
		Supporters: q.names(out.supporters), Disagreed: q.names(out.disagreed),
		NoQuorum: out.noQuorum, TimedOut: q.names(out.timedOut),
		Lookups: lookups,
	}
	for _, a := range answers {
		if a.err != nil {
			r.Missing = append(r.Missing, q.members[a.member].Name())
		} else {
			r.Answered = append(r.Answered, q.members[a.member].Name())
		}
	}
	r.Latency = time.Since(start)
	return r, answers, early || ctx.Err() != nil
}

// gather asks every member for its heads in parallel. It returns when all have
// answered; or when at least M have, and either the answers settle the outcome
// (early) or the straggler wait has passed; or when ctx ends. Members that had
// not answered carry errNoAnswer. Every call it started has returned when it
// returns.
func (q *Quorum) gather(ctx context.Context) (answers []answer, early bool) {
	n := len(q.members)
	calls := fanout.Start[int, safesource.Heads](ctx, fanout.Config{Timeout: q.cfg.MemberTimeout})
	defer calls.Stop() // stragglers give up; a member must honour its context
	for i, m := range q.members {
		calls.Go(i, func(ctx context.Context) (safesource.Heads, error) {
			h, err := m.Heads(ctx)
			if err == nil {
				err = h.Check() // a member's own heads must hang together to count
			}
			return h, err
		})
	}

	answers = make([]answer, n)
	for i := range answers {
		answers[i] = answer{member: i, err: errNoAnswer}
	}
	var straggler <-chan time.Time
	for got, ok := 0, 0; got < n; {
		select {
		case r := <-calls.Results():
			answers[r.Key] = answer{member: r.Key, heads: r.Value, err: r.Err}
			got++
			if r.Err != nil {
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

// settle calls decide until the round is decided, making the lookups it asks
// for in parallel, each at most once, and handing their results back as they
// come (all those already in at once). Lookups asked for the record are waited for at most the
// straggler wait; once ctx ends, no more are waited for. It returns decide's
// outcome and the number of lookups answered. Every call it started has
// returned when it returns.
func (q *Quorum) settle(ctx context.Context, answers []answer) (outcome, int) {
	in := input{threshold: q.cfg.Threshold, answers: answers, lastFinalized: q.finalized}
	calls := fanout.Start[lookupKey, eth.L2BlockRef](ctx, fanout.Config{Timeout: q.cfg.MemberTimeout})
	defer calls.Stop()
	asked := map[lookupKey]bool{}
	running, answered := 0, 0
	var recordWait <-chan time.Time
	recordWaitStarted := false
	for {
		out := decide(in)
		if out.done() {
			return out, answered
		}
		for _, k := range out.need {
			if asked[k] {
				continue // still running: its answer is on the way
			}
			asked[k] = true
			running++
			m := q.members[k.member]
			calls.Go(k, func(ctx context.Context) (eth.L2BlockRef, error) {
				ref, err := m.L2BlockRefByNumber(ctx, k.height)
				if err == nil && ref.Number != k.height {
					err = fmt.Errorf("%s answered block %d for height %d", m.Name(), ref.Number, k.height)
				}
				return ref, err
			})
		}
		if out.record && !recordWaitStarted {
			recordWaitStarted = true
			t := time.NewTimer(q.cfg.StragglerWait)
			defer t.Stop()
			recordWait = t.C
		}
		if running == 0 {
			// nothing in flight can answer what decide waits for; decide asks
			// only for lookups not answered, so this does not happen
			in.final = true
			continue
		}
		select {
		case r := <-calls.Results():
			// take every answer already in, so decide runs once for them all
			for more := true; more; {
				running--
				if r.Err != nil && ctx.Err() != nil {
					in.final = true // cut short by the caller: not the member's answer
					break
				}
				answered++
				in.lookups = append(in.lookups, lookupResult{lookupKey: r.Key, ref: r.Value, err: r.Err, timedOut: r.TimedOut})
				select {
				case r = <-calls.Results():
				default:
					more = false
				}
			}
		case <-recordWait:
			recordWait = nil
			if out.record {
				for _, k := range out.need {
					in.lookups = append(in.lookups, lookupResult{lookupKey: k, late: true})
				}
			}
		case <-ctx.Done():
			in.final = true
		}
	}
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

// names returns the members' names, sorted; nil for none.
func (q *Quorum) names(members []int) []string {
	if len(members) == 0 {
		return nil
	}
	out := make([]string, 0, len(members))
	for _, m := range members {
		out = append(out, q.members[m].Name())
	}
	slices.Sort(out)
	return out
}

func isNotFound(err error) bool { return errors.Is(err, ethereum.NotFound) }
