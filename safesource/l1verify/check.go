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

// verdict is the outcome of one check.
type verdict struct {
	// heads are the heads to pass on: the source's, with the current L1 block
	// dropped when above the L1 head.
	heads safesource.Heads
	// result is the result for metrics (ResultOK, ...).
	result string
	// err lists every failed claim; nil when all passed.
	err error
	// finalityLag is set when the only failure is that the finalized head's
	// L1 origin is above L1's finalized block (or L1 has none yet): every
	// origin is canonical and at or below the L1 head, so the source is ahead
	// of this L1's finality, not lying. The caller may then hold finalized
	// back instead of dropping the heads.
	finalityLag bool
	// l1Finalized is L1's finalized block the finalized claim was checked
	// against; set with finalityLag.
	l1Finalized eth.L1BlockRef
	// heldClaim is, with ResultFinalizedHeld, the source's finalized claim
	// that heads.Finalized replaces (see Source.holdFinalized).
	heldClaim eth.L2BlockRef
}

// check verifies h against L1 as seen in vw, reading only what the cache
// lacks, in parallel.
func (v *Verifier) check(ctx context.Context, h safesource.Heads, vw view) verdict {
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
				hash, exists, err := v.canonical(gctx, n, vw)
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
				f, err := v.readFinalized(gctx, vw)
				l1Finalized = f
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return verdict{heads: h, result: ResultL1Error, err: err}
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
	var finality error
	if checkFinality {
		switch {
		case l1Finalized == (eth.L1BlockRef{}):
			finality = fmt.Errorf("%s, but L1 has no finalized block yet: %w", claims[2], safesource.ErrAheadOfL1)
		case fin > l1Finalized.Number:
			finality = fmt.Errorf("%s above L1's finalized block %d (%s): %w",
				claims[2], l1Finalized.Number, l1Finalized.Hash, safesource.ErrAheadOfL1)
		}
	}
	switch {
	case len(fails) == 0 && finality == nil:
		return verdict{heads: h, result: ResultOK}
	case len(fails) == 0:
		return verdict{heads: h, result: ResultAheadOfL1, err: checkErrors{finality}, finalityLag: true, l1Finalized: l1Finalized}
	}
	if finality != nil {
		fails = append(fails, finality)
	}
	if errors.Is(fails, safesource.ErrL1Mismatch) {
		return verdict{heads: h, result: ResultL1Mismatch, err: fails}
	}
	return verdict{heads: h, result: ResultAheadOfL1, err: fails}
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
