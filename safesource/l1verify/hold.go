package l1verify

import (
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// holdFinalized answers a verdict whose only failure is a finalized claim
// ahead of L1's finality (finalityLag). That is a lag, not a lie: every
// origin is canonical, and L1's finality may simply trail the source's L1
// node. So the heads pass with their safe and local-safe heads, and finalized
// held at the last finalized head verified in full for this source.
//
// Holding is safe: the held head was passed on before, its L1 origin is at or
// below L1's finalized block (so it cannot leave L1), and a finalized head
// below the local one is never taken (the adapter keeps the higher local
// finalized head). The verdict stands, and the heads are dropped, when there
// is nothing to hold at: no finalized head verified yet and no genesis set
// (Config.Genesis, or WrapChain's; a zero head would fail
// safesource.Heads.Check), a held head not below the claim (the source has
// left the chain it was verified on), or one that does not fit the new heads
// by safesource.Heads.Check (it is above the safe head, or next to it or at
// its height without being its ancestor).
func (s *Source) holdFinalized(vd verdict) verdict {
	s.mu.Lock()
	held := s.status.VerifiedFinalized
	s.mu.Unlock()
	if held == (eth.L2BlockRef{}) {
		held = s.genesisRef() // final by definition; zero when not configured
	}
	claim := vd.heads.Finalized
	switch {
	case held == (eth.L2BlockRef{}):
		vd.err = fmt.Errorf("%w; no finalized head verified yet to hold finalized at (no genesis set: Config.Genesis or WrapChain)", vd.err)
		return vd
	case held.Number >= claim.Number:
		vd.err = fmt.Errorf("%w; the last verified finalized head %d (%s) is not below the claim, so finalized is not held at it",
			vd.err, held.Number, held.Hash)
		return vd
	}
	h := vd.heads
	h.Finalized = held
	if err := h.Check(); err != nil {
		vd.err = fmt.Errorf("%w; the last verified finalized head %d (%s) does not fit the heads, so finalized is not held at it: %v",
			vd.err, held.Number, held.Hash, err)
		return vd
	}
	return verdict{heads: h, result: ResultFinalizedHeld, l1Finalized: vd.l1Finalized, heldClaim: claim}
}

// genesisRef returns the L2 genesis block of s's chain: the one given to
// WrapChain, else Config.Genesis; zero when neither is set.
func (s *Source) genesisRef() eth.L2BlockRef {
	if s.genesis != (eth.L2BlockRef{}) {
		return s.genesis
	}
	return s.v.cfg.Genesis
}

// passed records heads passed on: a finalized head verified in full, or one
// held. It logs when finalized starts being held, when the held claim changes,
// and when a finalized claim is verified again, not on every call.
func (s *Source) passed(vd verdict) {
	s.mu.Lock()
	st := &s.status
	st.LastHeads = vd.heads
	prev := st.HeldFinalizedClaim
	if vd.result == ResultFinalizedHeld {
		st.HeldFinalizedClaim = vd.heldClaim
	} else {
		st.VerifiedFinalized = vd.heads.Finalized
		st.HeldFinalizedClaim = eth.L2BlockRef{}
	}
	s.mu.Unlock()

	switch held := vd.heads.Finalized; {
	case vd.result == ResultFinalizedHeld && vd.heldClaim != prev:
		s.log.Info("Finalized held at the last verified head: the source's finalized claim is ahead of L1's finality",
			"held", held.Number, "held_hash", held.Hash,
			"claimed", vd.heldClaim.Number, "claimed_hash", vd.heldClaim.Hash,
			"claimed_l1_origin", vd.heldClaim.L1Origin.Number, "l1_finalized", vd.l1Finalized.Number)
	case vd.result != ResultFinalizedHeld && prev != (eth.L2BlockRef{}):
		s.log.Info("Finalized verified again: L1's finality caught up with the source's claim",
			"finalized", held.Number, "hash", held.Hash, "l1_origin", held.L1Origin.Number)
	}
}
