package safesource

import (
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// Heads is what a source says about the L2 chain.
type Heads struct {
	// Safe is the cross-safe head.
	Safe eth.L2BlockRef
	// LocalSafe equals Safe where the source does not tell the two apart.
	LocalSafe eth.L2BlockRef
	// Finalized is the finalized head.
	Finalized eth.L2BlockRef
	// CurrentL1 is the L1 block the source has read up to; zero when unknown.
	CurrentL1 eth.L1BlockRef
}

// Check reports whether the heads are consistent with one another: non-zero
// hashes, finalized ≤ safe ≤ local-safe by number, one block per height across
// the labels and one height per hash, and, where two labels are adjacent, a
// linking parent hash. The
// error wraps ErrInconsistentHeads. Check cannot tell whether the labels lie on
// one chain when they are further apart; the adapter verifies that against the
// engine.
func (h Heads) Check() error {
	labels := [...]struct {
		name string
		ref  eth.L2BlockRef
	}{{"finalized", h.Finalized}, {"safe", h.Safe}, {"local-safe", h.LocalSafe}}
	for _, l := range labels {
		if l.ref.Hash == (eth.L2BlockRef{}).Hash {
			return fmt.Errorf("%s head has a zero hash: %w", l.name, ErrInconsistentHeads)
		}
	}
	for i := 0; i+1 < len(labels); i++ {
		lo, hi := labels[i], labels[i+1]
		if err := checkPair(lo.name, lo.ref, hi.name, hi.ref); err != nil {
			return err
		}
	}
	// finalized and local-safe are not adjacent in the list but may still share a height
	if err := checkPair("finalized", h.Finalized, "local-safe", h.LocalSafe); err != nil {
		return err
	}
	return nil
}

// checkPair checks that lo is not above hi, that equal heights carry one hash, and
// that a block directly above lo names lo as its parent.
func checkPair(loName string, lo eth.L2BlockRef, hiName string, hi eth.L2BlockRef) error {
	switch {
	case lo.Number > hi.Number:
		return fmt.Errorf("%s %d above %s %d: %w", loName, lo.Number, hiName, hi.Number, ErrInconsistentHeads)
	case lo.Number == hi.Number && lo.Hash != hi.Hash:
		return fmt.Errorf("%s and %s both at %d with different hashes %s and %s: %w",
			loName, hiName, lo.Number, lo.Hash, hi.Hash, ErrInconsistentHeads)
	case lo.Number != hi.Number && lo.Hash == hi.Hash:
		return fmt.Errorf("%s %d and %s %d carry one hash %s: %w",
			loName, lo.Number, hiName, hi.Number, lo.Hash, ErrInconsistentHeads)
	case lo.Number+1 == hi.Number && hi.ParentHash != lo.Hash:
		return fmt.Errorf("%s %d (%s) is not the parent of %s %d (parent %s): %w",
			loName, lo.Number, lo.Hash, hiName, hi.Number, hi.ParentHash, ErrInconsistentHeads)
	case lo.Number == hi.Number && lo.L1Origin != hi.L1Origin:
		return fmt.Errorf("%s and %s are one block at %d with two L1 origins: %w", loName, hiName, lo.Number, ErrInconsistentHeads)
	case lo.L1Origin.Number > hi.L1Origin.Number:
		return fmt.Errorf("%s L1 origin %d above %s L1 origin %d: %w",
			loName, lo.L1Origin.Number, hiName, hi.L1Origin.Number, ErrInconsistentHeads)
	}
	return nil
}
