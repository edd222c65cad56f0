package reorg

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/safesource"
)

// fuzzReader hands out a fuzzed input one byte at a time; past the end it
// reads zeros, so every input decodes to some case.
type fuzzReader []byte

func (r *fuzzReader) next() byte {
	if len(*r) == 0 {
		return 0
	}
	b := (*r)[0]
	*r = (*r)[1:]
	return b
}

// upTo returns a number in [0, n].
func (r *fuzzReader) upTo(n uint64) uint64 { return uint64(r.next()) % (n + 1) }

// fuzzExtend is chain.extend with hashes that depend only on tag and height,
// so that one input always decodes to the same blocks. Within a case every
// chain has its own tag, so no two blocks share a hash.
func fuzzExtend(c chain, tag uint64, n uint64) chain {
	return c.extendIDs(tag, n, func() uint64 { return 0 })
}

func fuzzFork(c chain, at uint64, tag uint64, n uint64) chain {
	return fuzzExtend(append(chain{}, c[:at+1]...), tag, n)
}

// ancestor modes of a decide case
const (
	ancestorNone     = iota // decide once; NeedAncestor is the answer
	ancestorSearch          // decide, run the real Search, decide again
	ancestorInBounds        // decide, answer with any block between SearchLo and SearchHi, decide again
	ancestorErr             // decide, answer with a search error, decide again
	ancestorUpFront         // an arbitrary ancestor result in the first input
	ancestorModes
)

// decideCase is one fuzzed Decide input with what the invariants need.
type decideCase struct {
	el, src chain // the engine's chain (its view is el[:Local.Unsafe+1]) and the source's
	lookups chain // what the source's lookups answer from in a search; nil: they fail
	in      Input
	rejects []common.Hash
	ancMode int
	inBound uint64 // picks the in-bounds ancestor
	ancTag  byte   // picks the chain and error of a fabricated ancestor
	tr      tree
}

var errFuzzRead = errors.New("fuzzed read failure")

// decodeDecideCase turns fuzzed bytes into an engine chain and local view, a
// source chain sharing a prefix with it (or following it), source heads on it
// (sometimes made inconsistent or mixed with the engine's chain), the engine's
// lookups (found, missing or failing), the source's lookups for the search
// (its chain, the engine's chain, a chain forking below local finalized, or
// failing), an ancestor mode, a sync mode and a set of rejected hashes.
func decodeDecideCase(data []byte) decideCase {
	r := fuzzReader(data)
	var dc decideCase
	n := 2 + r.upTo(40)
	el := fuzzExtend(nil, 1, n+1)

	// the local view: labels f ≤ s; the head at or above s, or below it when
	// the engine lost blocks
	s := r.upTo(n)
	f := r.upTo(s)
	u := s + r.upTo(n-s)
	flags := r.next()
	if flags&1 != 0 { // the engine lost blocks: its head is anywhere
		u = r.upTo(n)
	}
	l := local(el, f, s, u)
	if flags&2 != 0 { // no finalized head yet
		l.Finalized = eth.L2BlockRef{}
	}

	// the source's chain
	var src chain
	switch kind := r.next() % 4; kind {
	case 0: // the engine's chain, maybe further
		src = fuzzExtend(append(chain{}, el...), 1, r.upTo(30))
	default: // a fork at any height, above or below local finalized
		src = fuzzFork(el, r.upTo(n), 2, 1+r.upTo(40))
	}
	tip := uint64(len(src) - 1)
	ss := r.upTo(tip)
	sf := r.upTo(ss)
	ls := ss + r.upTo(tip-ss)
	h := safesource.Heads{Finalized: src[sf], Safe: src[ss], LocalSafe: src[ls]}
	pick := func(c chain, n uint64) eth.L2BlockRef { return c[min(n, uint64(len(c)-1))] }
	switch r.next() % 12 {
	case 0: // finalized above safe
		h.Finalized = pick(src, ss+1)
	case 1: // finalized from the engine's chain
		h.Finalized = pick(el, sf)
	case 2: // safe from the engine's chain
		h.Safe = pick(el, ss)
	case 3: // a zero hash
		h.Safe.Hash = common.Hash{}
	case 4: // local-safe from the engine's chain
		h.LocalSafe = pick(el, ls)
	}
	if flags&4 != 0 {
		dc.in.SourceErr = errors.New("fuzzed source error")
	}

	// the engine's lookups: found (its block there), missing or failing
	view := el[:l.Unsafe.Number+1]
	engine := func(n uint64, read bool) Lookup {
		switch m := r.next() % 8; {
		case !read:
			return Lookup{}
		case m == 6:
			return Lookup{} // not found: still syncing, or lost
		case m == 7:
			return Lookup{Err: errFuzzRead}
		}
		return view.at(n)
	}
	dc.in.ELAtSafe = engine(h.Safe.Number, true)
	dc.in.ELAtFinalized = engine(h.Finalized.Number, true)
	dc.in.ELAtLocalSafe = engine(l.Safe.Number, h.Safe.Number < l.Safe.Number)

	// the source's lookups in a search
	switch r.next() % 6 {
	case 0:
		dc.lookups = el
	case 1:
		dc.lookups = fuzzFork(el, r.upTo(l.Finalized.Number), 9, n+r.upTo(30))
	case 2:
		dc.lookups = nil
	default:
		dc.lookups = src
	}

	dc.ancMode = int(r.next()) % ancestorModes
	dc.inBound = uint64(r.next())
	dc.ancTag = r.next()
	if dc.ancMode == ancestorUpFront {
		if dc.ancTag&4 != 0 {
			dc.in.Ancestor = dc.fabricatedErr()
		} else {
			dc.in.Ancestor = dc.fabricatedRef(el, src, 0, tip)
		}
	}
	dc.in.Mode = SyncMode(r.next() % 2)

	// rejected hashes: blocks of either chain, by height
	for k := r.next() % 4; k > 0; k-- {
		c := el
		if r.next()%2 == 1 {
			c = src
		}
		dc.rejects = append(dc.rejects, pick(c, r.upTo(uint64(len(c)-1))).Hash)
	}
	if len(dc.rejects) > 0 {
		rejects := dc.rejects
		dc.in.Rejected = func(h common.Hash) bool {
			for _, x := range rejects {
				if x == h {
					return true
				}
			}
			return false
		}
	}

	dc.el, dc.src = el, src
	dc.in.Heads, dc.in.Local = h, l
	dc.tr = tree{}
	dc.tr.add(el)
	dc.tr.add(src)
	dc.tr.add(dc.lookups)
	return dc
}

// fabricatedRef is an ancestor result no search produced: a block of either
// chain at a height in [lo, hi] (or the chain's tip, when it ends below).
func (dc *decideCase) fabricatedRef(el, src chain, lo, hi uint64) *AncestorResult {
	c := el
	if dc.ancTag%2 == 1 {
		c = src
	}
	n := lo + dc.inBound%(hi-lo+1)
	if n >= uint64(len(c)) {
		n = uint64(len(c) - 1)
	}
	return &AncestorResult{Ref: c[n]}
}

// fabricatedErr is one of the errors a search returns.
func (dc *decideCase) fabricatedErr() *AncestorResult {
	switch dc.ancTag % 4 {
	case 0:
		return &AncestorResult{Err: fmt.Errorf("fuzzed: %w", ErrNoCommonAncestor)}
	case 1:
		return &AncestorResult{Err: fmt.Errorf("fuzzed: %w", safesource.ErrInconsistentHeads)}
	case 2:
		return &AncestorResult{Err: fmt.Errorf("fuzzed: %w", ErrAncestorUnknown)}
	}
	return &AncestorResult{Err: errFuzzRead}
}

func (dc *decideCase) rejected(h common.Hash) bool {
	for _, x := range dc.rejects {
		if x == h {
			return true
		}
	}
	return false
}

// decide runs Decide as the adapter does, answering a NeedAncestor decision
// the way the case's ancestor mode says. It returns the decisions in order.
func (dc *decideCase) decide() []Decision {
	in := dc.in
	d := Decide(in)
	out := []Decision{d}
	if d.Action != NeedAncestor {
		return out
	}
	switch dc.ancMode {
	case ancestorSearch:
		engine := dc.el[:in.Local.Unsafe.Number+1].lookup
		source := func(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
			return eth.L2BlockRef{}, fmt.Errorf("fuzzed lookup failure at %d", n)
		}
		if dc.lookups != nil {
			source = dc.lookups.lookup
		}
		in.Ancestor = Search(context.Background(), d, in, engine, source)
	case ancestorInBounds:
		in.Ancestor = dc.fabricatedRef(dc.el, dc.src, d.SearchLo, d.SearchHi)
	case ancestorErr:
		in.Ancestor = dc.fabricatedErr()
	default:
		return out
	}
	return append(out, Decide(in))
}

// checkDecision asserts what every decision promises, whatever the input:
// Skip, Halt, Hold and NeedAncestor send nothing; a forkchoice update (and a
// safe-label move) keeps finalized ≤ safe ≤ head by number and never moves
// finalized below the local finalized head; the update carries exactly the
// labels of Next; no rejected hash is sent; backfill fields only in backfill
// mode.
func checkDecision(t *testing.T, dc *decideCase, in Input, d Decision) {
	t.Helper()
	l := in.Local
	if d.Reason == "" {
		t.Fatalf("%s without a reason", d.Action)
	}
	switch d.Action {
	case Skip, Halt, Hold, NeedAncestor:
		if d.SendsForkchoice() || d.Forkchoice != (eth.ForkchoiceState{}) || d.Next != (Local{}) {
			t.Fatalf("%s sends something: %+v, next %+v (%s)", d.Action, d.Forkchoice, d.Next, d.Reason)
		}
		if d.Action == Skip && d.Err == nil {
			t.Fatalf("skip without an error: %s", d.Reason)
		}
		if d.Action == NeedAncestor && d.SearchLo > d.SearchHi {
			t.Fatalf("search range [%d, %d] is empty", d.SearchLo, d.SearchHi)
		}
		if d.BackfillFrom != 0 || d.BackfillTo != 0 {
			t.Fatalf("%s asks for backfill", d.Action)
		}
		return
	case SafeLabelOnly:
		if d.SendsForkchoice() || d.Forkchoice != (eth.ForkchoiceState{}) {
			t.Fatalf("safe-label-only sends a forkchoice update: %+v", d.Forkchoice)
		}
		if d.Next.Unsafe != l.Unsafe || d.Next.Finalized != l.Finalized {
			t.Fatalf("safe-label-only moves more than safe: %+v from %+v", d.Next, l)
		}
	case CatchUp, Consolidate, Reorg:
		if !d.SendsForkchoice() {
			t.Fatalf("%s sends no forkchoice update", d.Action)
		}
		if d.Forkchoice != forkchoice(d.Next) {
			t.Fatalf("forkchoice %+v is not the next labels %+v", d.Forkchoice, d.Next)
		}
		fc := d.Forkchoice
		for _, h := range []common.Hash{fc.HeadBlockHash, fc.SafeBlockHash, fc.FinalizedBlockHash} {
			if dc.rejected(h) {
				t.Fatalf("%s sends %s, which the engine declared INVALID (%s)", d.Action, h, d.Reason)
			}
		}
		if fc.HeadBlockHash == (common.Hash{}) || fc.SafeBlockHash == (common.Hash{}) {
			t.Fatalf("%s sends a zero head or safe hash: %+v", d.Action, fc)
		}
	default:
		t.Fatalf("Decide answered %s", d.Action)
	}
	n := d.Next
	if n.Finalized.Number > n.Safe.Number || n.Safe.Number > n.Unsafe.Number {
		t.Fatalf("%s: next finalized %d, safe %d, head %d out of order (%s)",
			d.Action, n.Finalized.Number, n.Safe.Number, n.Unsafe.Number, d.Reason)
	}
	if hasFinalized(l) && (n.Finalized.Number < l.Finalized.Number || !hasFinalized(n)) {
		t.Fatalf("%s moves finalized from %d to %d (%s)", d.Action, l.Finalized.Number, n.Finalized.Number, d.Reason)
	}
	if n.Finalized != l.Finalized && n.Finalized != in.Heads.Finalized {
		t.Fatalf("%s: finalized %+v is neither the local nor the source's", d.Action, n.Finalized)
	}
	if (d.BackfillFrom != 0 || d.BackfillTo != 0) && (in.Mode != Backfill || (d.Action != CatchUp && d.Action != Reorg)) {
		t.Fatalf("%s in mode %d asks for backfill %d..%d", d.Action, in.Mode, d.BackfillFrom, d.BackfillTo)
	}
}

// checkChains asserts, for decisions reached without a fabricated ancestor,
// what TestModel asserts on the chains: every update's finalized is an
// ancestor of its safe and its safe of its head, and neither finalized nor
// safe leaves the local finalized chain; backfill builds the target on a
// block the engine holds, inserting exactly the blocks in between.
func checkChains(t *testing.T, dc *decideCase, in Input, d Decision) {
	t.Helper()
	l, tr := in.Local, dc.tr
	if d.Action != SafeLabelOnly && !d.SendsForkchoice() {
		return
	}
	n := d.Next
	if hasFinalized(l) {
		if !tr.descends(l.Finalized, n.Finalized) {
			t.Fatalf("%s: finalized %d leaves the local finalized chain (%s)", d.Action, n.Finalized.Number, d.Reason)
		}
		if !tr.descends(l.Finalized, n.Safe) {
			t.Fatalf("%s: safe %d leaves the local finalized chain (%s)", d.Action, n.Safe.Number, d.Reason)
		}
	}
	if !d.SendsForkchoice() {
		return
	}
	if hasFinalized(n) && !tr.descends(n.Finalized, n.Safe) {
		t.Fatalf("%s: finalized %d is not an ancestor of safe %d (%s)", d.Action, n.Finalized.Number, n.Safe.Number, d.Reason)
	}
	if !tr.descends(n.Safe, n.Unsafe) {
		t.Fatalf("%s: safe %d is not an ancestor of head %d (%s)", d.Action, n.Safe.Number, n.Unsafe.Number, d.Reason)
	}
	if in.Mode == Backfill && (d.Action == CatchUp || d.Action == Reorg) {
		base := d.Ancestor
		if d.BackfillBase != (eth.L2BlockRef{}) {
			base = d.BackfillBase
		}
		if d.BackfillTo != n.Unsafe.Number || d.BackfillFrom != base.Number+1 {
			t.Fatalf("%s: backfill %d..%d onto base %d for target %d", d.Action, d.BackfillFrom, d.BackfillTo, base.Number, n.Unsafe.Number)
		}
		if base.Number > l.Unsafe.Number || !tr.descends(base, n.Unsafe) {
			t.Fatalf("%s: backfill base %d is not below the engine's head %d and the target", d.Action, base.Number, l.Unsafe.Number)
		}
	}
}

// decideSeeds are inputs in decodeDecideCase's byte layout:
//
//	n, s, f, u, flags, [u again when flags&1], source kind, [extension or
//	fork height, fork length], safe, finalized, local-safe, heads fault,
//	ELAtSafe, ELAtFinalized, ELAtLocalSafe, search lookups, [fork height,
//	length], ancestor mode, in-bounds pick, ancestor tag, sync mode,
//	rejected count, [chain, height]...
var decideSeeds = [][]byte{
	// engine at 20, safe 10, finalized 5; the source on the same chain at safe 15: consolidate
	{18, 10, 5, 10, 0, 0, 10, 15, 5, 0, 5, 0, 0, 0, 3, 0, 0, 0, 0, 0},
	// the source ahead of the engine on its chain: catch up, backfill
	{18, 10, 5, 10, 0, 0, 20, 30, 8, 0, 5, 0, 0, 0, 3, ancestorSearch, 0, 0, 1, 0},
	// the source on a fork above local finalized: reorg after the search
	{18, 10, 5, 10, 0, 1, 12, 20, 18, 5, 0, 5, 0, 0, 0, 3, ancestorSearch, 0, 0, 1, 0},
	// the source on a fork below local finalized: halt
	{18, 10, 5, 10, 0, 1, 3, 25, 18, 2, 0, 5, 0, 0, 0, 3, ancestorSearch, 0, 0, 0, 0},
	// the engine still syncing: no block at the source's safe height
	{18, 10, 5, 10, 0, 0, 10, 15, 5, 0, 5, 6, 6, 0, 3, ancestorSearch, 0, 0, 0, 0},
	// the source's safe head rejected by the engine
	{18, 10, 5, 10, 0, 0, 10, 15, 5, 0, 5, 0, 0, 0, 3, ancestorNone, 0, 0, 0, 1, 1, 15},
	// the engine declared its own head INVALID: consolidating onto it is skipped
	{18, 10, 5, 10, 0, 0, 10, 15, 5, 0, 5, 0, 0, 0, 3, ancestorNone, 0, 0, 0, 1, 0, 20},
	// the engine lost blocks below local finalized
	{18, 10, 5, 10, 1, 3, 0, 20, 30, 8, 0, 5, 0, 0, 0, 3, ancestorSearch, 0, 0, 1, 0},
	// no finalized head yet, source on a fork from genesis
	{18, 10, 5, 10, 2, 1, 0, 30, 20, 4, 0, 5, 0, 0, 0, 3, ancestorSearch, 0, 0, 0, 0},
	// lookups from a chain forking below local finalized
	{18, 10, 5, 10, 0, 0, 20, 30, 8, 0, 5, 0, 0, 0, 1, 2, 10, ancestorSearch, 0, 0, 1, 0},
	// a fabricated ancestor in the first input
	{18, 10, 5, 10, 0, 1, 12, 20, 18, 5, 0, 5, 0, 0, 0, 3, ancestorUpFront, 7, 1, 1, 0},
}

// FuzzDecide decodes an Input from fuzzed bytes: the engine's chain and the
// adapter's labels, the source's heads on a shared chain or a fork (sometimes
// inconsistent), engine lookups found, missing or failing, the ancestor result
// of the real search or a fabricated one, the sync mode and a rejected set.
// Every decision must keep the promises checkDecision lists; decisions reached
// without a fabricated ancestor must also keep the chain invariants of
// TestModel (checkChains).
func FuzzDecide(f *testing.F) {
	for _, s := range decideSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dc := decodeDecideCase(data)
		in := dc.in
		ds := dc.decide()
		for i, d := range ds {
			if safeBelowFinalized(in, d) {
				t.Fatalf("%s sends safe %d below local finalized %d (the bug kept in testdata/fuzz/FuzzDecide/bug-*)",
					d.Action, d.Next.Safe.Number, in.Local.Finalized.Number)
			}
			if i > 0 && d.Action == NeedAncestor {
				t.Fatalf("asked for the ancestor twice: %s", d.Reason)
			}
			checkDecision(t, &dc, in, d)
			fabricated := dc.ancMode == ancestorUpFront || (dc.ancMode == ancestorInBounds && i == 1)
			if !fabricated {
				checkChains(t, &dc, in, d)
			}
		}
	})
}

// safeBelowFinalized recognises the bug found by this target, fixed in
// Decide, whose inputs stay in testdata/fuzz/FuzzDecide/bug-*: the source's
// safe head is on the engine's
// chain but below the local finalized head, the engine does not hold the
// blocks that would keep the local labels (its head fell below them, or the
// safe label moved while it synced), and Consolidate or CatchUp sends that
// safe head (CatchUp: as head too) with the local finalized head above it.
func safeBelowFinalized(in Input, d Decision) bool {
	return (d.Action == Consolidate || d.Action == CatchUp) && hasFinalized(in.Local) && d.Next.Safe.Number < in.Local.Finalized.Number
}

// decodeBuildCase turns fuzzed bytes into a DecideBuild input: the engine's
// chain and labels (with or without a finalized head, maybe having lost
// blocks), a parent from the engine's chain or a fork (or zero), attributes
// missing or timed at, before or after the parent, the engine's lookup at the
// parent's height (found, missing, failing) and a rejected set.
func decodeBuildCase(data []byte) (BuildInput, []common.Hash) {
	r := fuzzReader(data)
	n := 2 + r.upTo(40)
	el := fuzzExtend(nil, 1, n+1)
	s := r.upTo(n)
	f := r.upTo(s)
	u := s + r.upTo(n-s)
	flags := r.next()
	if flags&1 != 0 {
		u = r.upTo(n)
	}
	var in BuildInput
	in.Local = local(el, f, s, u)
	if flags&2 != 0 {
		in.Local.Finalized = eth.L2BlockRef{}
	}
	c := el
	if flags&4 != 0 {
		c = fuzzFork(el, r.upTo(n), 2, 1+r.upTo(20))
	}
	parent := c[r.upTo(uint64(len(c)-1))]
	if flags&8 != 0 {
		parent.Hash = common.Hash{}
	}
	in.Request.Parent = parent
	switch m := r.next() % 8; m {
	case 0: // no attributes
	case 1: // at the parent's time
		in.Request.Attributes = &eth.PayloadAttributes{Timestamp: eth.Uint64Quantity(parent.Time)}
	case 2: // before it
		in.Request.Attributes = &eth.PayloadAttributes{Timestamp: eth.Uint64Quantity(parent.Time - r.upTo(parent.Time))}
	default:
		in.Request.Attributes = &eth.PayloadAttributes{Timestamp: eth.Uint64Quantity(parent.Time + 1 + r.upTo(10))}
	}
	view := el[:in.Local.Unsafe.Number+1]
	switch r.next() % 8 {
	case 6:
	case 7:
		in.ELAtParent = Lookup{Err: errFuzzRead}
	default:
		in.ELAtParent = view.at(parent.Number)
	}
	var rejects []common.Hash
	for k := r.next() % 3; k > 0; k-- {
		rc := el
		if r.next()%2 == 1 {
			rc = c
		}
		rejects = append(rejects, rc[r.upTo(uint64(len(rc)-1))].Hash)
	}
	if len(rejects) > 0 {
		in.Rejected = func(h common.Hash) bool {
			for _, x := range rejects {
				if x == h {
					return true
				}
			}
			return false
		}
	}
	return in, rejects
}

// FuzzDecideBuild decodes a BuildInput from fuzzed bytes and asserts what
// DecideBuild's doc promises. A Build: builds on the requested parent, which
// the engine holds, which is not rejected, whose attributes come after it in
// time, and which is at or above local finalized (nothing is built at or
// below finalized); keeps finalized; lowers safe to the parent when it was
// above it and keeps it otherwise; sends exactly Next with the parent as head;
// reports the abandoned depth. A well-formed request below local finalized
// halts. Skip and Halt send nothing.
func FuzzDecideBuild(f *testing.F) {
	// n, s, f, u, flags, [u], [fork height, length], parent height, attributes, engine lookup, rejected...
	for _, s := range [][]byte{
		{18, 10, 4, 10, 0, 10, 3, 0, 0},              // engine at the parent: build
		{18, 10, 4, 10, 0, 8, 3, 0, 0},               // safe above the parent follows it down
		{18, 8, 6, 10, 0, 5, 3, 0, 0},                // parent below finalized: halt
		{18, 10, 4, 10, 4, 6, 4, 7, 3, 0, 0},         // parent on a fork the engine lacks: skip
		{18, 10, 4, 10, 0, 9, 0, 0, 0},               // no attributes
		{18, 10, 4, 10, 0, 9, 1, 0, 0},               // attributes at the parent's time
		{18, 10, 4, 10, 0, 9, 3, 0, 7},               // engine read fails
		{18, 10, 4, 10, 0, 9, 3, 0, 0, 1, 0, 9},      // parent rejected
		{18, 0, 0, 10, 2, 0, 3, 0, 0},                // no finalized head: build on genesis
		{18, 10, 5, 10, 1, 3, 5, 3, 0, 0},            // engine lost blocks: a parent above its head is skipped
		{18, 10, 5, 10, 1, 3, 3, 3, 0, 0},            // engine lost blocks: a parent it holds below finalized halts
		{18, 10, 4, 10, 8, 9, 3, 0, 0},               // zero parent hash
		{40, 10, 4, 30, 0, 4, 3, 0, 2, 0, 30, 0, 10}, // build at finalized, local labels rejected
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, rejects := decodeBuildCase(data)
		d := DecideBuild(in)
		l, parent := in.Local, in.Request.Parent
		if d.Reason == "" {
			t.Fatalf("%s without a reason", d.Action)
		}
		wellFormed := in.Request.Attributes != nil && parent.Hash != (common.Hash{}) &&
			uint64(in.Request.Attributes.Timestamp) > parent.Time && in.ELAtParent.Err == nil &&
			in.ELAtParent.Found && in.ELAtParent.Ref.Hash == parent.Hash && !slicesContains(rejects, parent.Hash)
		switch d.Action {
		case Skip, Halt:
			if d.SendsForkchoice() || d.Forkchoice != (eth.ForkchoiceState{}) || d.Next != (Local{}) || d.BuildParent != (eth.L2BlockRef{}) {
				t.Fatalf("%s sends something: %+v (%s)", d.Action, d.Forkchoice, d.Reason)
			}
			if d.Action == Skip && (d.Err == nil || wellFormed) {
				t.Fatalf("skip of a well-formed request, or without an error: %s", d.Reason)
			}
			if d.Action == Halt && !(hasFinalized(l) && parent.Number < l.Finalized.Number && wellFormed) {
				t.Fatalf("halt on a request not below local finalized %d: parent %d (%s)", l.Finalized.Number, parent.Number, d.Reason)
			}
			return
		case Build:
		default:
			t.Fatalf("DecideBuild answered %s", d.Action)
		}
		if !wellFormed {
			t.Fatalf("build on a request that is not well formed: %+v, engine %+v (%s)", in.Request, in.ELAtParent, d.Reason)
		}
		if hasFinalized(l) && parent.Number < l.Finalized.Number {
			t.Fatalf("builds block %d at or below local finalized %d", parent.Number+1, l.Finalized.Number)
		}
		n := d.Next
		wantSafe := l.Safe
		if wantSafe.Number > parent.Number {
			wantSafe = parent
		}
		switch {
		case d.BuildParent != parent || n.Unsafe != parent:
			t.Fatalf("build parent %+v, next head %+v, want the request's parent %+v", d.BuildParent, n.Unsafe, parent)
		case n.Finalized != l.Finalized:
			t.Fatalf("build moves finalized from %+v to %+v", l.Finalized, n.Finalized)
		case n.Safe != wantSafe:
			t.Fatalf("build sets safe %d, want %d", n.Safe.Number, wantSafe.Number)
		case n.Finalized.Number > n.Safe.Number || n.Safe.Number > n.Unsafe.Number:
			t.Fatalf("next finalized %d, safe %d, head %d out of order", n.Finalized.Number, n.Safe.Number, n.Unsafe.Number)
		case d.Forkchoice != forkchoice(n):
			t.Fatalf("forkchoice %+v is not the next labels %+v", d.Forkchoice, n)
		}
		wantDepth := uint64(0)
		if l.Unsafe.Number > parent.Number {
			wantDepth = l.Unsafe.Number - parent.Number
		}
		if d.Depth != wantDepth {
			t.Fatalf("depth %d, want %d", d.Depth, wantDepth)
		}
	})
}

func slicesContains(s []common.Hash, h common.Hash) bool {
	for _, x := range s {
		if x == h {
			return true
		}
	}
	return false
}
