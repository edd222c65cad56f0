package reorg

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"

	"github.com/lightcl/lightcl/safesource"
)

// ErrNoCommonAncestor is wrapped when two chains already differ at the lowest
// height of a search.
var ErrNoCommonAncestor = errors.New("no common ancestor in range")

// FindCommonAncestor returns the highest block in [lo, hi] on which a and b
// agree, assuming that they agree on a prefix of the range (two chains that fork
// once). It checks hi first, then lo, then bisects: at most
// 2·(⌈log2(hi−lo)⌉+2) lookups, never a walk. A height that one side does not have
// counts as disagreement; any other lookup error ends the search. When a and b
// differ at lo the error wraps ErrNoCommonAncestor.
func FindCommonAncestor(ctx context.Context, a, b safesource.BlockRefByNumber, lo, hi uint64) (eth.L2BlockRef, error) {
	if lo > hi {
		return eth.L2BlockRef{}, fmt.Errorf("common-ancestor search: empty range [%d, %d]", lo, hi)
	}
	same := func(n uint64) (eth.L2BlockRef, bool, error) {
		ra, err := a(ctx, n)
		if missing(err) {
			return eth.L2BlockRef{}, false, nil
		} else if err != nil {
			return eth.L2BlockRef{}, false, fmt.Errorf("common-ancestor search at %d: %w", n, err)
		}
		rb, err := b(ctx, n)
		if missing(err) {
			return ra, false, nil
		} else if err != nil {
			return eth.L2BlockRef{}, false, fmt.Errorf("common-ancestor search at %d: %w", n, err)
		}
		return ra, ra.Hash == rb.Hash, nil
	}
	ref, ok, err := same(hi)
	if err != nil || ok {
		return ref, err
	}
	if lo == hi {
		return eth.L2BlockRef{}, fmt.Errorf("chains differ at %d: %w", lo, ErrNoCommonAncestor)
	}
	best, ok, err := same(lo)
	if err != nil {
		return eth.L2BlockRef{}, err
	}
	if !ok {
		return eth.L2BlockRef{}, fmt.Errorf("chains differ at %d: %w", lo, ErrNoCommonAncestor)
	}
	// invariant: agree at lo (best), disagree at hi
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ref, ok, err := same(mid)
		if err != nil {
			return eth.L2BlockRef{}, err
		}
		if ok {
			lo, best = mid, ref
		} else {
			hi = mid
		}
	}
	return best, nil
}

func missing(err error) bool {
	return err != nil && (errors.Is(err, ethereum.NotFound) || errors.Is(err, safesource.ErrNotFound))
}
