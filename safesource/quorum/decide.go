package quorum

import (
	"fmt"
	"slices"

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

// lookupKey names one lookup: a member's canonical block at a height.
type lookupKey struct {
	member int
	height uint64
}

// lookupResult is one lookup's answer, as the round hands it to decide.
type lookupResult struct {
	lookupKey
	ref eth.L2BlockRef
	err error
	// timedOut: the member did not answer within MemberTimeout. It is neither
	// for nor against, and the member is asked nothing more in the round.
	timedOut bool
	// late: asked for the record only, the lookup was not answered within the
	// straggler wait, and the round waits for it no longer. Its answer may
	// still follow, as a result of its own.
	late bool
}

// input is what decide works a round's agreement out from.
type input struct {
	threshold int
	// answers are the members' heads answers, in member order; a member that
	// failed or had not answered carries an error.
	answers []answer
	// lastFinalized is the finalized head the last agreeing round reported.
	lastFinalized eth.L2BlockRef
	// lookups are the lookup results so far, in the order they came.
	lookups []lookupResult
	// final: no more lookups will be made (the caller gave up); a lookup not
	// answered is neither for nor against.
	final bool
}

// outcome is what decide returns: the lookups the agreement waits for, or,
// when it waits for none, the agreement.
type outcome struct {
	// need lists the lookups the agreement waits for, none already answered;
	// they may all be made at once. Empty once the round is decided.
	need []lookupKey
	// record: need is asked for the record only, to name the members that
	// disagree with a safe head agreed by claims alone. The round waits for
	// these at most the straggler wait, then hands back the unanswered ones
	// late.
	record bool

	// heads are the agreed heads; zero when err is set.
	heads safesource.Heads
	err   error
	// supporters of the agreed safe head, and disagreed: members at or above
	// it whose chain holds another block there. Member indices, ascending.
	supporters, disagreed []int
	// noQuorum names the labels no head gathered M supporters for.
	noQuorum []string
	// timedOut are the members a lookup of which timed out, ascending.
	timedOut []int
}

// done reports whether the round is decided.
func (o outcome) done() bool { return len(o.need) == 0 }

// decide works out a round's agreement from the members' heads answers and
// the lookups answered so far. It does no I/O and keeps no state: where the
// agreement depends on a member's block at some height that is not in
// in.lookups, it returns the lookups it needs, and the caller makes them and
// calls it again with their results added. Results only add to what is
// known, so each call goes at least as far as the one before.
//
// For each label (safe first, then finalized, then local-safe) the agreed
// head is the highest candidate that at least M members support. The
// candidates are the members' claims for that label and for the labels below
// it (a finalized block is safe too), tried from the highest down. A member
// supports a candidate it claims itself, or when its own head for the label
// is above the candidate and its canonical block at that height is the
// candidate (the whole record, not just its hash). Lookups are asked only
// when enough members could still support the candidate, at most once per
// member and height in a round (the caller keeps that promise: it never asks
// a lookup twice), and never of a member that timed out on one: its answers
// already given still count, it is asked nothing more. Finalized must be an
// ancestor of safe, and safe of local-safe, by the word of M of the upper
// head's supporters. Finalized without a quorum stays at in.lastFinalized
// when that is still an ancestor of the agreed safe head; local-safe without
// one is reported as safe. When the safe head is agreed by claims alone, the
// members above it are asked, for the record only, whether their chain holds
// it, to name those that disagree.
func decide(in input) outcome {
	d := newDecider(in)
	out := d.run()
	if d.waiting() {
		out = outcome{need: d.need, record: d.record}
	}
	for m := range d.timedOut {
		out.timedOut = append(out.timedOut, m)
	}
	slices.Sort(out.timedOut)
	return out
}

// decider is one decide call's view of its input.
type decider struct {
	in       input
	answered map[lookupKey]lookupResult // the latest answer per lookup; late ones are not answers
	late     map[lookupKey]bool
	timedOut map[int]bool
	need     []lookupKey // set when the agreement waits for lookups
	record   bool
}

func newDecider(in input) *decider {
	d := &decider{in: in, answered: map[lookupKey]lookupResult{}, late: map[lookupKey]bool{}, timedOut: map[int]bool{}}
	for _, l := range in.lookups {
		switch {
		case l.late:
			d.late[l.lookupKey] = true
		default:
			d.answered[l.lookupKey] = l
			if l.timedOut {
				d.timedOut[l.member] = true
			}
		}
	}
	return d
}

// waiting reports whether the agreement waits for lookups. Every step checks
// it after a call that may ask for some, and returns at once when it does.
func (d *decider) waiting() bool { return len(d.need) > 0 }

// wait records that the agreement waits for members' blocks at height.
func (d *decider) wait(members []int, height uint64, record bool) {
	for _, m := range members {
		d.need = append(d.need, lookupKey{m, height})
	}
	d.record = record
}

func (d *decider) run() outcome {
	m, n := d.in.threshold, len(d.in.answers)
	answered := 0
	for _, a := range d.in.answers {
		if a.err == nil {
			answered++
		}
	}
	safe, safeBy, disagreed, ok := d.agree(safeLabel)
	if d.waiting() {
		return outcome{}
	}
	if !ok {
		return outcome{noQuorum: []string{safeLabel.name}, disagreed: disagreed,
			err: fmt.Errorf("safe: fewer than %d of %d members support any head (answered: %d): %w", m, n, answered, ErrNoQuorum)}
	}
	out := outcome{supporters: sorted(safeBy), disagreed: sorted(disagreed)}

	fin, finBy, _, ok := d.agree(finalizedLabel)
	if ok && !d.waiting() {
		ok = d.linked(fin, finBy, safe, safeBy)
	}
	if d.waiting() {
		return outcome{}
	}
	if !ok {
		out.noQuorum = append(out.noQuorum, finalizedLabel.name)
		// keep the last agreed finalized head if it is still below safe
		last := d.in.lastFinalized
		keep := last != (eth.L2BlockRef{}) && last.Number <= safe.Number && d.linked(last, nil, safe, safeBy)
		if d.waiting() {
			return outcome{}
		}
		if !keep {
			out.err = fmt.Errorf("finalized: fewer than %d of %d members support a head below the agreed safe %d, and none was agreed before: %w",
				m, n, safe.Number, ErrNoQuorum)
			return out
		}
		fin = last
	}

	localSafe, lsBy, _, ok := d.agree(localSafeLabel)
	if ok && !d.waiting() {
		ok = d.linked(safe, safeBy, localSafe, lsBy)
	}
	if d.waiting() {
		return outcome{}
	}
	if !ok {
		out.noQuorum = append(out.noQuorum, localSafeLabel.name)
		localSafe = safe
	}
	out.heads = safesource.Heads{Safe: safe, LocalSafe: localSafe, Finalized: fin}
	if err := out.heads.Check(); err != nil {
		out.heads, out.err = safesource.Heads{}, fmt.Errorf("agreed heads: %w", err)
	}
	return out
}

// agree returns the highest candidate for label l that at least M members
// support, those supporters, and the members at or above it whose chain holds
// another block there (for the safe label, those asked for the record too).
func (d *decider) agree(l label) (eth.L2BlockRef, []int, []int, bool) {
	m := d.in.threshold
	below := labelsUpTo(l)
	var candidates []eth.L2BlockRef
	for _, a := range d.in.answers {
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
		for _, a := range d.in.answers {
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
			// agreed without lookups; for the safe head, whose dissenters the
			// round names, the members above it are asked for the record
			if l.name == safeLabel.name {
				against = append(against, d.dissent(above, c)...)
			}
			return c, direct, against, !d.waiting()
		}
		yes, no := d.support(above, c, m-len(direct))
		if d.waiting() {
			return eth.L2BlockRef{}, nil, nil, false
		}
		if len(direct)+len(yes) >= m {
			return c, append(direct, yes...), append(against, no...), true
		}
	}
	return eth.L2BlockRef{}, nil, nil, false
}

// support returns, among members, those whose block at c's height is c (yes)
// and those whose block is another or whose lookup failed (no). A member that
// timed out, on this lookup or another, is neither. When fewer than need say
// yes and the members not asked yet could make up the difference, the
// agreement waits for their lookups.
func (d *decider) support(members []int, c eth.L2BlockRef, need int) (yes, no []int) {
	var ask []int
	for _, member := range members {
		r, ok := d.answered[lookupKey{member, c.Number}]
		switch {
		case ok && r.err == nil && r.ref == c:
			yes = append(yes, member)
		case ok && r.timedOut:
		case ok:
			no = append(no, member)
		case d.timedOut[member], d.in.final:
		default:
			ask = append(ask, member)
		}
	}
	if len(yes) < need && len(yes)+len(ask) >= need {
		d.wait(ask, c.Number, false)
	}
	return yes, no
}

// dissent returns, among members, those whose block at c's height is
// another: asked for the record only, every lookup of them once, and not
// waited for past the straggler wait (those come back late).
func (d *decider) dissent(members []int, c eth.L2BlockRef) (no []int) {
	var ask []int
	for _, member := range members {
		key := lookupKey{member, c.Number}
		r, ok := d.answered[key]
		switch {
		case ok && (r.timedOut || r.err == nil && r.ref == c):
		case ok:
			no = append(no, member)
		case d.late[key], d.timedOut[member], d.in.final:
		default:
			ask = append(ask, member)
		}
	}
	if len(ask) > 0 {
		d.wait(ask, c.Number, true)
	}
	return no
}

// linked reports whether lower is an ancestor of (or equal to) upper by the
// word of at least M members that support upper: a member counts when it
// supports lower too, by its own claim (among lowerBy) or by its canonical
// block at lower's height.
func (d *decider) linked(lower eth.L2BlockRef, lowerBy []int, upper eth.L2BlockRef, upperBy []int) bool {
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
	if count >= d.in.threshold {
		return true
	}
	more, _ := d.support(ask, lower, d.in.threshold-count)
	return count+len(more) >= d.in.threshold
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

// sorted returns members in ascending order, as a new slice.
func sorted(members []int) []int {
	out := slices.Clone(members)
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
