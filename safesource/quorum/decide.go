package quorum

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/safesource"
)

// label names one of the heads a member reports.
type label struct {
	name string
	of   func(safesource.Heads) eth.L2BlockRef
}

var (
	finalizedLabel = label{"finalized", func(h safesource.Heads) eth.L2BlockRef { return h.Finalized }}
	safeLabel      = label{"safe", func(h safesource.Heads) eth.L2BlockRef { return h.Safe }}
	localSafeLabel = label{"local-safe", func(h safesource.Heads) eth.L2BlockRef { return h.LocalSafe }}
	labels         = []label{finalizedLabel, safeLabel, localSafeLabel}
)

// Round is the outcome of one round.
type Round struct {
	// Heads are the agreed heads; zero when Err is set.
	Heads safesource.Heads
	Err   error
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
	// Lookups is how many L2BlockRefByNumber calls the round made.
	Lookups int
	Latency time.Duration
}

// decider works out one round's agreement from the answers, asking members for
// their blocks by number where a lagging claim needs it, at most once per
// member and height. A member whose lookup times out is not asked again in the
// round, and one that does not answer a lookup made for the record within the
// straggler wait is not asked for the record again: a stalled member costs a
// round at most one member timeout and one straggler wait, not one per label
// and candidate.
type decider struct {
	q       *Quorum
	answers []answer

	mu       sync.Mutex
	cache    map[lookupKey]lookup
	lookups  int
	timedOut map[int]bool // a lookup outlasted MemberTimeout: ask nothing more
	slow     map[int]bool // cut off by the record's straggler wait: ask only when needed
}

// errMemberTimeout is the cause of a lookup's context when MemberTimeout ends it.
var errMemberTimeout = errors.New("member timeout")

type lookupKey struct {
	member int
	height uint64
}

func (q *Quorum) decide(ctx context.Context, answers []answer) (r Round) {
	d := &decider{q: q, answers: answers, cache: map[lookupKey]lookup{}, timedOut: map[int]bool{}, slow: map[int]bool{}}
	defer func() { r.TimedOut = d.timedOutNames() }()
	for _, a := range answers {
		if a.err != nil {
			r.Missing = append(r.Missing, q.members[a.member].Name())
		} else {
			r.Answered = append(r.Answered, q.members[a.member].Name())
		}
	}
	safe, safeBy, disagreed, ok := d.agree(ctx, safeLabel)
	r.Disagreed = d.names(disagreed)
	if !ok {
		r.NoQuorum = append(r.NoQuorum, safeLabel.name)
		r.Err = fmt.Errorf("safe: fewer than %d of %d members support any head (answered: %d): %w",
			q.cfg.Threshold, len(q.members), len(r.Answered), ErrNoQuorum)
		r.Lookups = d.lookups
		return r
	}
	r.Supporters = d.names(safeBy)

	fin, finBy, _, ok := d.agree(ctx, finalizedLabel)
	if ok && !d.linked(ctx, fin, finBy, safe, safeBy) {
		ok = false
	}
	if !ok {
		r.NoQuorum = append(r.NoQuorum, finalizedLabel.name)
		// keep the last agreed finalized head if it is still below safe
		last := q.finalized
		if last == (eth.L2BlockRef{}) || last.Number > safe.Number || !d.linked(ctx, last, nil, safe, safeBy) {
			r.Err = fmt.Errorf("finalized: fewer than %d of %d members support a head below the agreed safe %d, and none was agreed before: %w",
				q.cfg.Threshold, len(q.members), safe.Number, ErrNoQuorum)
			r.Lookups = d.lookups
			return r
		}
		fin = last
	}

	localSafe, lsBy, _, ok := d.agree(ctx, localSafeLabel)
	if !ok || !d.linked(ctx, safe, safeBy, localSafe, lsBy) {
		r.NoQuorum = append(r.NoQuorum, localSafeLabel.name)
		localSafe = safe
	}
	r.Heads = safesource.Heads{Safe: safe, LocalSafe: localSafe, Finalized: fin}
	if err := r.Heads.Check(); err != nil {
		r.Heads, r.Err = safesource.Heads{}, fmt.Errorf("agreed heads: %w", err)
	}
	r.Lookups = d.lookups
	return r
}

// agree returns the highest block claimed for label that at least M members
// support, those supporters, and the members at or above it that hold another
// block there. The candidates are the members' claims for label and for the
// labels below it (a finalized block is safe too), tried from the highest down.
// A member supports a candidate it claims itself; one whose head for label is
// above the candidate is asked for its block at that height, only when enough
// members could still support it, and at most once per height in a round.
func (d *decider) agree(ctx context.Context, l label) (eth.L2BlockRef, []int, []int, bool) {
	m := d.q.cfg.Threshold
	below := labelsUpTo(l)
	var candidates []eth.L2BlockRef
	for _, a := range d.answers {
		if a.err != nil {
			continue
		}
		for _, bl := range below {
			if h := bl.of(a.heads); !slices.Contains(candidates, h) {
				candidates = append(candidates, h)
			}
		}
	}
	slices.SortFunc(candidates, func(x, y eth.L2BlockRef) int {
		if x.Number != y.Number {
			return cmpDesc(x.Number, y.Number)
		}
		return x.Hash.Cmp(y.Hash)
	})
	for _, c := range candidates {
		var direct, above, against []int
		for _, a := range d.answers {
			if a.err != nil {
				continue
			}
			h := l.of(a.heads)
			switch {
			case claims(a.heads, below, c):
				direct = append(direct, a.member)
			case h.Number > c.Number:
				above = append(above, a.member)
			case h.Number == c.Number:
				against = append(against, a.member)
			}
		}
		if len(direct)+len(above) < m {
			continue
		}
		if len(direct) >= m {
			// agreed without lookups; members above it are asked, briefly and
			// for the record only, whether their chain holds it
			against = append(against, d.record(ctx, above, c)...)
			return c, direct, against, true
		}
		support, others := d.support(ctx, above, c, m-len(direct))
		support = append(direct, support...)
		against = append(against, others...)
		if len(support) >= m {
			return c, support, against, true
		}
	}
	return eth.L2BlockRef{}, nil, nil, false
}

// record asks members, for the record only and for at most the straggler
// wait, whether their chain holds c, and returns those whose chain holds
// another block there. Members that did not answer in time are not asked for
// the record again in the round.
func (d *decider) record(ctx context.Context, members []int, c eth.L2BlockRef) []int {
	d.mu.Lock()
	members = slices.DeleteFunc(slices.Clone(members), func(m int) bool { return d.slow[m] })
	d.mu.Unlock()
	if len(members) == 0 {
		return nil
	}
	bctx, cancel := context.WithTimeout(ctx, d.q.cfg.StragglerWait)
	defer cancel()
	yes, no := d.support(bctx, members, c, len(members))
	if ctx.Err() != nil {
		return no
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range members {
		if !slices.Contains(yes, m) && !slices.Contains(no, m) {
			d.slow[m] = true
		}
	}
	return no
}

// labelsUpTo is l and the labels below it.
func labelsUpTo(l label) []label {
	for i, x := range labels {
		if x.name == l.name {
			return labels[:i+1]
		}
	}
	return nil
}

// claims reports whether a member's own heads for the given labels include c.
func claims(h safesource.Heads, ls []label, c eth.L2BlockRef) bool {
	for _, l := range ls {
		if l.of(h) == c {
			return true
		}
	}
	return false
}

// linked reports whether lower is an ancestor of (or equal to) upper by the
// word of at least M members that support upper: a member counts when it
// supports lower too, by its own claim (among lowerBy) or by its canonical
// block at lower's height.
func (d *decider) linked(ctx context.Context, lower eth.L2BlockRef, lowerBy []int, upper eth.L2BlockRef, upperBy []int) bool {
	if lower.Number > upper.Number {
		return false
	}
	if lower.Number == upper.Number {
		return lower.Hash == upper.Hash
	}
	count := 0
	var ask []int
	for _, member := range upperBy {
		if slices.Contains(lowerBy, member) {
			count++
		} else {
			ask = append(ask, member)
		}
	}
	if count >= d.q.cfg.Threshold {
		return true
	}
	more, _ := d.support(ctx, ask, lower, d.q.cfg.Threshold-count)
	count += len(more)
	return count >= d.q.cfg.Threshold
}

// support asks members for their block at c's height, in parallel, and
// returns those whose block is c (the whole record, not just its hash) and
// those whose block is not. It stops waiting as soon as need members support c
// or too few are left to get there; answers are cached per member and height
// for the round, except those cut short. A member whose lookup outlasts
// MemberTimeout is neither for nor against, and is not asked again in the
// round: it supports nothing more.
func (d *decider) support(ctx context.Context, members []int, c eth.L2BlockRef, need int) (yes, no []int) {
	type result struct {
		member int
		l      lookup
	}
	results := make(chan result, len(members))
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	pending := 0
	for _, member := range members {
		key := lookupKey{member, c.Number}
		d.mu.Lock()
		cached, ok := d.cache[key]
		timedOut := d.timedOut[member]
		d.mu.Unlock()
		if timedOut {
			continue
		}
		if ok {
			results <- result{member, cached}
			pending++
			continue
		}
		pending++
		wg.Add(1)
		go func() {
			defer wg.Done()
			mctx, mcancel := context.WithTimeoutCause(lctx, d.q.cfg.MemberTimeout, errMemberTimeout)
			defer mcancel()
			ref, err := d.q.members[member].L2BlockRefByNumber(mctx, c.Number)
			if err == nil && ref.Number != c.Number {
				err = fmt.Errorf("answered block %d for height %d", ref.Number, c.Number)
			}
			// the member's own timeout, not a wait of the caller's cut short
			timedOut := err != nil && errors.Is(context.Cause(mctx), errMemberTimeout)
			l := lookup{member: member, ref: ref, err: err, timedOut: timedOut}
			if lctx.Err() == nil { // an answer cut short is not the member's
				d.mu.Lock()
				d.cache[key] = l
				d.lookups++
				if timedOut {
					d.timedOut[member] = true
				}
				d.mu.Unlock()
			}
			results <- result{member, l}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	for ; pending > 0 && len(yes) < need && len(yes)+pending >= need; pending-- {
		select {
		case r := <-results:
			switch {
			case r.l.err == nil && r.l.ref == c:
				yes = append(yes, r.member)
			case r.l.err != nil && ctx.Err() != nil, r.l.timedOut:
				// cut short by the caller, or silent: neither for nor against
			default:
				no = append(no, r.member)
			}
		case <-ctx.Done():
			return yes, no
		}
	}
	return yes, no
}

func (d *decider) timedOutNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for m := range d.timedOut {
		out = append(out, d.q.members[m].Name())
	}
	slices.Sort(out)
	return out
}

func (d *decider) names(members []int) []string {
	out := make([]string, 0, len(members))
	for _, m := range members {
		out = append(out, d.q.members[m].Name())
	}
	slices.Sort(out)
	return out
}

func cmpDesc(a, b uint64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}
