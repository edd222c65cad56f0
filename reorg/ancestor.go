package reorg

import (
	"context"
	"errors"
	"fmt"

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
// once). It checks hi first, then lo, then bisects: at most
// 2·(⌈log2(hi−lo)⌉+2) lookups, never a walk. Above lo, a height that one side
// does not have counts as disagreement; any other lookup error ends the search.
//
// Errors: a and b differ at lo: ErrNoCommonAncestor; one has no block at lo:
// ErrAncestorUnknown; b's block right above the answer does not name the answer
// as its parent (b's lookups contradict each other):
// safesource.ErrInconsistentHeads.
func FindCommonAncestor(ctx context.Context, a, b safesource.BlockRefByNumber, lo, hi uint64) (eth.L2BlockRef, error) {
	if lo > hi {
		return eth.L2BlockRef{}, fmt.Errorf("common-ancestor search: empty range [%d, %d]", lo, hi)
	}
	// probe returns both sides' blocks at n; found is false for a missing one.
	type side struct {
		ref   eth.L2BlockRef
		found bool
	}
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
	agree := func(ra, rb side) bool { return ra.found && rb.found && ra.ref.Hash == rb.ref.Hash }

	ra, rb, err := probe(hi)
	if err != nil {
		return eth.L2BlockRef{}, err
	}
	if agree(ra, rb) {
		return ra.ref, nil
	}
	above := rb // b's block just above the best agreement found so far
	if lo < hi {
		ra, rb, err = probe(lo)
		if err != nil {
			return eth.L2BlockRef{}, err
		}
	}
	switch {
	case !ra.found || !rb.found:
		return eth.L2BlockRef{}, fmt.Errorf("at height %d: %w", lo, ErrAncestorUnknown)
	case !agree(ra, rb):
		return eth.L2BlockRef{}, fmt.Errorf("chains hold %s and %s at %d: %w", ra.ref.Hash, rb.ref.Hash, lo, ErrNoCommonAncestor)
	}
	best := ra.ref
	// invariant: agree at lo (best), disagree at hi (b's block there is above)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ra, rb, err := probe(mid)
		if err != nil {
			return eth.L2BlockRef{}, err
		}
		if agree(ra, rb) {
			lo, best = mid, ra.ref
		} else {
			hi, above = mid, rb
		}
	}
	if above.found && above.ref.ParentHash != best.Hash {
		return eth.L2BlockRef{}, fmt.Errorf("block %d (%s) names parent %s, not the common ancestor %d (%s): %w",
			above.ref.Number, above.ref.Hash, above.ref.ParentHash, best.Number, best.Hash, safesource.ErrInconsistentHeads)
	}
	return best, nil
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
	anc, err := FindCommonAncestor(ctx, LocalChain(in.Local, engine), source, d.SearchLo, d.SearchHi)
	return &AncestorResult{Ref: anc, Err: err}
}
