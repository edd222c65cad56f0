package l1verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/sync/errgroup"

	"github.com/lightcl/lightcl/safesource"
)

// claim is one L1 block that a source's heads vouch for.
type claim struct {
	label  string         // "safe", "local-safe", "finalized" or "current L1"
	l2     eth.L2BlockRef // the head whose origin it is; zero for the current L1 block
	origin eth.BlockID
}

// String names the claim for errors: the head and its origin.
func (c claim) String() string {
	if c.l2 == (eth.L2BlockRef{}) {
		return fmt.Sprintf("%s block %d (%s)", c.label, c.origin.Number, c.origin.Hash)
	}
	return fmt.Sprintf("%s head %d (%s) has L1 origin %d (%s)", c.label, c.l2.Number, c.l2.Hash, c.origin.Number, c.origin.Hash)
}

// found is what L1 holds at one height.
type found struct {
	hash   common.Hash
	exists bool
}

// check verifies h against L1 as seen in vw, reading only what the cache
// lacks, in parallel. It returns the heads to pass on (the current L1 block
// dropped when above the L1 head), the result for metrics, and an error that
// lists every failed claim.
func (v *Verifier) check(ctx context.Context, h safesource.Heads, vw view) (safesource.Heads, string, error) {
	claims := []claim{
		{label: "safe", l2: h.Safe, origin: h.Safe.L1Origin},
		{label: "local-safe", l2: h.LocalSafe, origin: h.LocalSafe.L1Origin},
		{label: "finalized", l2: h.Finalized, origin: h.Finalized.L1Origin},
	}
	if h.CurrentL1 != (eth.L1BlockRef{}) {
		if h.CurrentL1.Number > vw.head.Number {
			// the source's L1 node is ahead of ours: unknown here, not wrong
			v.log.Debug("Current L1 block above the L1 head: reported as unknown",
				"current_l1", h.CurrentL1.Number, "l1_head", vw.head.Number)
			h.CurrentL1 = eth.L1BlockRef{}
		} else {
			claims = append(claims, claim{label: "current L1", origin: h.CurrentL1.ID()})
		}
	}

	var fails checkErrors
	at := map[uint64]found{}
	var missing []uint64
	for _, c := range claims {
		n := c.origin.Number
		if n > vw.head.Number {
			fails = append(fails, fmt.Errorf("%s above the L1 head %d (%s): %w", c, vw.head.Number, vw.head.Hash, safesource.ErrAheadOfL1))
			continue
		}
		if _, ok := at[n]; ok || slices.Contains(missing, n) {
			continue
		}
		if hash, ok := v.cached(n); ok {
			at[n] = found{hash: hash, exists: true}
		} else {
			missing = append(missing, n)
		}
	}
	fin := h.Finalized.L1Origin.Number
	checkFinality := !v.cfg.SkipFinalityCheck && fin <= vw.head.Number
	if checkFinality {
		v.noteFinalizedClaim(fin)
	}
	// L1 finality as read so far: with vw's head when the L1Source batches
	// them, or by another call since
	l1Finalized := v.knownFinalized()
	readFinality := checkFinality && (l1Finalized == (eth.L1BlockRef{}) || fin > l1Finalized.Number)

	if len(missing) > 0 || readFinality {
		g, gctx := errgroup.WithContext(ctx)
		var mu sync.Mutex
		for _, n := range missing {
			g.Go(func() error {
				hash, exists, err := v.canonical(gctx, n)
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				at[n] = found{hash: hash, exists: exists}
				return nil
			})
		}
		if readFinality {
			g.Go(func() error {
				f, err := v.readFinalized(gctx)
				l1Finalized = f
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return h, ResultL1Error, err
		}
	}

	contradicted := map[uint64]bool{}
	for _, c := range claims {
		l1, ok := at[c.origin.Number]
		switch {
		case !ok: // above the L1 head, reported
		case !l1.exists:
			fails = append(fails, fmt.Errorf("%s, but L1 has no block at that height: %w", c, safesource.ErrAheadOfL1))
		case l1.hash != c.origin.Hash:
			contradicted[c.origin.Number] = true
			fails = append(fails, fmt.Errorf("%s, but the canonical L1 block %d is %s: %w", c, c.origin.Number, l1.hash, safesource.ErrL1Mismatch))
		}
	}
	for _, n := range missing {
		if l1 := at[n]; l1.exists && !contradicted[n] {
			v.fileCanonical(n, l1.hash, vw)
		}
	}
	if checkFinality {
		switch {
		case l1Finalized == (eth.L1BlockRef{}):
			fails = append(fails, fmt.Errorf("%s, but L1 has no finalized block yet: %w", claims[2], safesource.ErrAheadOfL1))
		case fin > l1Finalized.Number:
			fails = append(fails, fmt.Errorf("%s above L1's finalized block %d (%s): %w",
				claims[2], l1Finalized.Number, l1Finalized.Hash, safesource.ErrAheadOfL1))
		}
	}
	switch {
	case len(fails) == 0:
		return h, ResultOK, nil
	case errors.Is(fails, safesource.ErrL1Mismatch):
		return h, ResultL1Mismatch, fails
	default:
		return h, ResultAheadOfL1, fails
	}
}

// checkErrors lists every failed claim of one call; errors.Is finds each.
type checkErrors []error

func (e checkErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e checkErrors) Unwrap() []error { return e }
