package reorg

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"

	"github.com/lightcl/lightcl/safesource"
)

// ErrNoCommonAncestor is wrapped when two chains hold different blocks at the
// lowest height of a search: they share nothing in the range.
var ErrNoCommonAncestor = errors.New("no common ancestor in range")

// ErrAncestorUnknown is wrapped when one side has no block at the lowest height
// of a search, so nothing can be said about the range.
var ErrAncestorUnknown = errors.New("common ancestor unknown: a block is missing at the lowest height")

// FindCommonAncestor returns the highest block in [lo, hi] on which a and b
// agree, assuming that they agree on a prefix of the range (two chains that fork
// once). It checks hi first, then gallops down from hi (hi−1, hi−32, hi−1024, …)
// until the chains agree, then bisects between the last disagreement and the
// first agreement; lo is read only when the answer would be lo. So the cost
// grows with the depth d of the fork below hi, not with the range: each probed
// height costs one lookup on a and one on b, and a search probes at most
// Probes(d) heights (see Probes). Lookups that do not fit one fork (chains
// that agree, differ and agree again going down) still cost at most
// Probes(hi−lo). Above lo, a height that one side does not have counts as
// disagreement; any other lookup error ends the search.
//
// Errors (lo is read only when no height above it agrees): a and b differ at
// lo: ErrNoCommonAncestor; one has no block at lo: ErrAncestorUnknown; b's
// block right above the answer does not name the answer as its parent (b's
// lookups contradict each other): safesource.ErrInconsistentHeads.
func FindCommonAncestor(ctx context.Context, a, b safesource.BlockRefByNumber, lo, hi uint64) (eth.L2BlockRef, error) {
	if lo > hi {
		return eth.L2BlockRef{}, fmt.Errorf("common-ancestor search: empty range [%d, %d]", lo, hi)
	}
	// probe returns both sides' blocks at n; found is false for a missing one.
	probe := func(n uint64) (ra, rb side, err error) {
		for _, s := range []struct {
			f   safesource.BlockRefByNumber
			out *side
		}{{a, &ra}, {b, &rb}} {
			ref, err := s.f(ctx, n)
			switch {
			case missing(err):
			case err != nil:
				return side{}, side{}, fmt.Errorf("common-ancestor search at %d: %w", n, err)
			default:
				*s.out = side{ref: ref, found: true}
			}
		}
		return ra, rb, nil
	}

	ra, rb, err := probe(hi)
	if err != nil {
		return eth.L2BlockRef{}, err
	}
	if agree(ra, rb) {
		return ra.ref, nil
	}
	if lo == hi {
		return eth.L2BlockRef{}, atLo(lo, ra, rb)
	}
	// invariant: the chains disagree at top (b's block there is above) and
	// agree at bottom, where bottomKnown says whether that was read or is
	// assumed (bottom == lo, unread)
	top, above := hi, rb
	bottom, best, bottomKnown := lo, eth.L2BlockRef{}, false
	for step := uint64(1); step < hi-lo; step *= gallop {
		n := hi - step
		ra, rb, err := probe(n)
		if err != nil {
			return eth.L2BlockRef{}, err
		}
		if agree(ra, rb) {
			bottom, best, bottomKnown = n, ra.ref, true
			break
		}
		top, above = n, rb
		if step > (hi-lo)/gallop {
			break
		}
	}
	for top-bottom > 1 {
		mid := bottom + (top-bottom)/2
		ra, rb, err := probe(mid)
		if err != nil {
			return eth.L2BlockRef{}, err
		}
		if agree(ra, rb) {
			bottom, best, bottomKnown = mid, ra.ref, true
		} else {
			top, above = mid, rb
		}
	}
	if !bottomKnown { // the answer is lo: read it
		ra, rb, err := probe(lo)
		if err != nil {
			return eth.L2BlockRef{}, err
		}
		if !agree(ra, rb) {
			return eth.L2BlockRef{}, atLo(lo, ra, rb)
		}
		best = ra.ref
	}
	if above.found && above.ref.ParentHash != best.Hash {
		return eth.L2BlockRef{}, fmt.Errorf("block %d (%s) names parent %s, not the common ancestor %d (%s): %w",
			above.ref.Number, above.ref.Hash, above.ref.ParentHash, best.Number, best.Hash, safesource.ErrInconsistentHeads)
	}
	return best, nil
}

// gallop is the factor by which the search's steps down from hi grow.
const gallop = 32

// Probes is the most heights FindCommonAncestor probes when the chains fork
// depth blocks below hi (the common ancestor is at hi−depth) in a range
// reaching at least that far down: hi, the gallop's steps down to the first
// one at or past the ancestor, the bisection of the last step, and lo when the
// answer is lo. Each probe is one lookup on each side.
func Probes(depth uint64) int {
	if depth == 0 {
		return 1
	}
	probes, step := 1, uint64(1)
	for {
		probes++ // the probe at hi−step
		if step >= depth || step > math.MaxUint64/gallop {
			break
		}
		step *= gallop
	}
	// the bisection between the last two steps (or hi and the first step);
	// when the steps stopped growing short of depth, down to the lowest height
	span := step - step/gallop
	switch {
	case step == 1:
		span = 0
	case step < depth:
		span = math.MaxUint64 - step
	}
	return probes + bits.Len64(span) + 1
}

// side is one chain's block at a probed height; found is false for a missing one.
type side struct {
	ref   eth.L2BlockRef
	found bool
}

func agree(ra, rb side) bool { return ra.found && rb.found && ra.ref.Hash == rb.ref.Hash }

// atLo is the error for two chains that do not agree at the lowest height.
func atLo(lo uint64, ra, rb side) error {
	if !ra.found || !rb.found {
		return fmt.Errorf("at height %d: %w", lo, ErrAncestorUnknown)
	}
	return fmt.Errorf("chains hold %s and %s at %d: %w", ra.ref.Hash, rb.ref.Hash, lo, ErrNoCommonAncestor)
}

func missing(err error) bool {
	return err != nil && (errors.Is(err, ethereum.NotFound) || errors.Is(err, safesource.ErrNotFound))
}

// LocalChain is the local side of a common-ancestor search: the engine's
// canonical chain, except that at the local finalized height the answer is the
// local finalized block itself. Finalized is a fact the adapter holds, not
// something to ask an engine that may have lost it.
func LocalChain(l Local, engine safesource.BlockRefByNumber) safesource.BlockRefByNumber {
	return func(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
		if n == l.Finalized.Number && l.Finalized.Hash != (eth.L2BlockRef{}).Hash {
			return l.Finalized, nil
		}
		return engine(ctx, n)
	}
}

// Search runs the common-ancestor search that a NeedAncestor decision d asks
// for, between the local chain (LocalChain over engine) and the source's chain,
// and returns the result to put in Input.Ancestor. It first checks that the
// source's lookup at its own safe height answers its safe head: a source whose
// lookups and heads disagree cannot be searched, and the result wraps
// safesource.ErrInconsistentHeads.
func Search(ctx context.Context, d Decision, in Input, engine, source safesource.BlockRefByNumber) *AncestorResult {
	safe := in.Heads.Safe
	ref, err := source(ctx, safe.Number)
	switch {
	case err != nil:
		return &AncestorResult{Err: fmt.Errorf("source block at its safe height %d: %w", safe.Number, err)}
	case ref.Hash != safe.Hash:
		return &AncestorResult{Err: fmt.Errorf("source holds %s at %d but calls %s its safe head: %w",
			ref.Hash, safe.Number, safe.Hash, safesource.ErrInconsistentHeads)}
	}
	// the block just read answers the search's own lookup at that height
	known := func(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
		if n == safe.Number {
			return ref, nil
		}
		return source(ctx, n)
	}
	anc, err := FindCommonAncestor(ctx, LocalChain(in.Local, engine), known, d.SearchLo, d.SearchHi)
	if err == nil {
		err = keepsFinalized(ctx, in.Local, engine, d.SearchLo, anc)
	}
	return &AncestorResult{Ref: anc, Err: err}
}

// keepsFinalized checks, after a search that found the ancestor anc above lo
// without reading lo, that the source's chain holds the local finalized block
// when lo is its height. The source's chain shares anc with the engine's, so
// at lo it holds the engine's block, which LocalChain does not read there (it
// answers the remembered finalized block): one engine read shows whether the
// two are the same. They differ when the engine's chain (and with it the
// source's) no longer holds the local finalized block: ErrNoCommonAncestor, as
// when the search reads lo and the chains differ there.
func keepsFinalized(ctx context.Context, l Local, engine safesource.BlockRefByNumber, lo uint64, anc eth.L2BlockRef) error {
	if anc.Number <= lo || lo != l.Finalized.Number || l.Finalized.Hash == (eth.L2BlockRef{}).Hash {
		return nil
	}
	ref, err := engine(ctx, lo)
	switch {
	case missing(err):
		return fmt.Errorf("engine has no block at the local finalized height %d below the ancestor %d: %w", lo, anc.Number, ErrAncestorUnknown)
	case err != nil:
		return fmt.Errorf("engine block at the local finalized height %d: %w", lo, err)
	case ref.Hash != l.Finalized.Hash:
		return fmt.Errorf("the source's chain shares block %d with the engine's, which holds %s at %d, not the local finalized %s: %w",
			anc.Number, ref.Hash, lo, l.Finalized.Hash, ErrNoCommonAncestor)
	}
	return nil
}
