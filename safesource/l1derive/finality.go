package l1derive

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
)

// finality applies op-node's finalizer rule: an L2 block is final once the L1
// block it was derived from (the last L1 block whose data it needed) is at
// or below L1's finalized block.
type finality struct {
	max       int            // entries kept
	entries   []finalityData // ascending by L1 block
	finalized eth.L2BlockRef // never moves back
}

// finalityData is the last safe block derived while at one L1 block.
type finalityData struct {
	l2 eth.L2BlockRef
	l1 eth.BlockID
}

// derived records that safe block l2 was derived from L1 block from.
func (f *finality) derived(l2 eth.L2BlockRef, from eth.L1BlockRef) {
	if n := len(f.entries); n > 0 && f.entries[n-1].l1.Number >= from.Number {
		f.entries[n-1].l2 = l2
		return
	}
	f.entries = append(f.entries, finalityData{l2: l2, l1: from.ID()})
	if len(f.entries) > f.max {
		f.entries = f.entries[len(f.entries)-f.max:]
	}
}

// reset forgets what was derived (the pipeline restarts) and takes the
// engine's finalized head if it is higher.
func (f *finality) reset(engineFinalized eth.L2BlockRef) {
	f.entries = f.entries[:0]
	if engineFinalized.Number > f.finalized.Number || f.finalized == (eth.L2BlockRef{}) {
		f.finalized = engineFinalized
	}
}

// restart forgets what was derived and restarts the finalized head at l2,
// a block the caller knows final, even if that is below the current one.
func (f *finality) restart(l2 eth.L2BlockRef) {
	f.entries = f.entries[:0]
	f.finalized = l2
}

// finalize reads L1's finalized block and moves the finalized head up to the
// highest safe block derived from L1 blocks at or below it. Both L1 blocks
// are checked canonical first; if the derived-from block is not, L1
// reorged under the derivation, which the pipeline sees on its next step.
func (s *Source) finalize(ctx context.Context) error {
	f := &s.fin
	if len(f.entries) == 0 {
		return nil
	}
	l1Fin, err := s.l1.L1BlockRefByLabel(ctx, eth.Finalized)
	if errors.Is(err, ethereum.NotFound) {
		return nil // L1 has no finalized block yet
	}
	if err != nil {
		return fmt.Errorf("reading L1's finalized block: %w", err)
	}
	best := -1
	for i, e := range f.entries {
		if e.l1.Number <= l1Fin.Number && e.l2.Number > f.finalized.Number {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	e := f.entries[best]
	at, err := s.l1.L1BlockRefByNumber(ctx, e.l1.Number)
	if err != nil {
		return fmt.Errorf("reading L1 block %d: %w", e.l1.Number, err)
	}
	if at.Hash != e.l1.Hash {
		return fmt.Errorf("L2 block %d was derived from L1 block %d (%s), no longer canonical (%s)", e.l2.Number, e.l1.Number, e.l1.Hash, at.Hash)
	}
	f.finalized = e.l2
	f.entries = f.entries[best+1:]
	s.log.Info("Finalized from L1", "finalized", e.l2.Number, "hash", e.l2.Hash, "derived_from", e.l1.Number, "l1_finalized", l1Fin.Number)
	return nil
}
