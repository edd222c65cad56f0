package reorg

import (
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/safesource"
)

// SyncMode is how the engine catches up when the source is ahead of it.
type SyncMode int

const (
	// ELSync: a forkchoice update to the source's safe head; the engine fetches
	// the missing blocks from its p2p peers.
	ELSync SyncMode = iota
	// Backfill: the adapter inserts the missing payloads with newPayload, then
	// sends the forkchoice update. No p2p needed.
	Backfill
)

// Lookup is the engine's canonical block at one height.
type Lookup struct {
	Ref eth.L2BlockRef
	// Found is false when the engine has no block at that height.
	Found bool
	// Err is set when the read failed (not for a missing block).
	Err error
}

// Input is everything Decide looks at.
type Input struct {
	// Heads is what the source said; ignored when SourceErr is set.
	Heads     safesource.Heads
	SourceErr error
	// Local is the adapter's view: the engine's head and the labels it set.
	Local Local
	// ELAtSafe and ELAtFinalized are the engine's canonical blocks at the heights
	// of Heads.Safe and Heads.Finalized.
	ELAtSafe      Lookup
	ELAtFinalized Lookup
	// ELAtLocalSafe is the engine's block at Local.Safe's height, read when the
	// source's safe head is below it (to keep the higher local safe only if the
	// engine holds it).
	ELAtLocalSafe Lookup
	// Ancestor is the result of the search a NeedAncestor decision asked for;
	// nil until then.
	Ancestor *AncestorResult
	Mode     SyncMode
	// Rejected reports whether the engine called a block INVALID; nil: none was.
	Rejected func(common.Hash) bool
}

// AncestorResult is the outcome of FindCommonAncestor.
type AncestorResult struct {
	Ref eth.L2BlockRef
	Err error
}

// Decide returns what to do about the source's heads, and why. It implements the
// decision table in docs/DESIGN.md; the comments name its rows.
func Decide(in Input) Decision {
	d := decide(in)
	// Row: finalized ≤ safe in every update. A source behind the local
	// finalized head, while the engine lacks the blocks that would keep the
	// local labels, would otherwise send its safe head below local finalized:
	// nothing the source says can help until it passes local finalized.
	if d.SendsForkchoice() && d.Next.Safe.Number < d.Next.Finalized.Number {
		return Decision{Action: Hold, Reason: fmt.Sprintf(
			"source safe %d (%s) is below local finalized %d, and the engine lacks the local heads; waiting for the source to pass local finalized",
			in.Heads.Safe.Number, in.Heads.Safe.Hash, in.Local.Finalized.Number)}
	}
	// Row: nothing the engine called INVALID is sent again, whichever label it
	// would travel in.
	if d.SendsForkchoice() && in.Rejected != nil {
		fc := d.Forkchoice
		for _, h := range [...]common.Hash{fc.HeadBlockHash, fc.SafeBlockHash, fc.FinalizedBlockHash} {
			if in.Rejected(h) {
				return skip(false, fmt.Errorf("%s would send %s, which the engine declared INVALID: %w", d.Action, h, ErrRejected))
			}
		}
	}
	return d
}

func decide(in Input) Decision {
	s, l := in.Heads, in.Local

	// Row: source error, or heads inconsistent: skip, keep state.
	if in.SourceErr != nil {
		return skip(true, in.SourceErr)
	}
	if err := s.Check(); err != nil {
		return skip(true, err)
	}
	if in.ELAtSafe.Err != nil {
		return skip(false, fmt.Errorf("engine read at source safe height %d: %w", s.Safe.Number, in.ELAtSafe.Err))
	}
	if in.ELAtFinalized.Err != nil {
		return skip(false, fmt.Errorf("engine read at source finalized height %d: %w", s.Finalized.Number, in.ELAtFinalized.Err))
	}
	if in.ELAtLocalSafe.Err != nil {
		return skip(false, fmt.Errorf("engine read at local safe height %d: %w", l.Safe.Number, in.ELAtLocalSafe.Err))
	}
	if in.Rejected != nil {
		for _, ref := range [...]eth.L2BlockRef{s.Safe, s.Finalized} {
			if in.Rejected(ref.Hash) {
				return skip(true, fmt.Errorf("source head %d (%s): %w", ref.Number, ref.Hash, ErrRejected))
			}
		}
	}

	// Row: source finalized (or safe) conflicts with the local finalized chain: halt.
	if reason := finalizedConflict(in); reason != "" {
		return Decision{Action: Halt, Reason: reason}
	}
	if a := in.Ancestor; a != nil {
		switch {
		case errors.Is(a.Err, ErrNoCommonAncestor):
			return Decision{Action: Halt, Reason: fmt.Sprintf(
				"source chain leaves the local finalized chain at finalized %d (%s): %v",
				l.Finalized.Number, l.Finalized.Hash, a.Err)}
		case errors.Is(a.Err, safesource.ErrInconsistentHeads):
			return skip(true, fmt.Errorf("common-ancestor search: %w", a.Err))
		case a.Err != nil:
			return skip(false, fmt.Errorf("common-ancestor search: %w", a.Err))
		case a.Ref.Number < l.Finalized.Number: // the search starts at local finalized; kept as a guard
			return Decision{Action: Halt, Reason: fmt.Sprintf(
				"common ancestor %d is below local finalized %d", a.Ref.Number, l.Finalized.Number)}
		}
	}

	elSafe := in.ELAtSafe
	switch {
	case elSafe.Found && elSafe.Ref.Hash == s.Safe.Hash:
		return consolidate(in)
	case elSafe.Found:
		return reorgTo(in)
	case s.Safe.Number <= l.Unsafe.Number:
		return stillSyncing(in)
	default:
		return catchUp(in)
	}
}

// ErrRejected is wrapped when a decision would send a block the engine declared
// INVALID.
var ErrRejected = errors.New("declared INVALID by the engine")

// skip is the "skip; keep state" row. sourceFault says whether the source is to
// blame (an error of its own, or heads or lookups that contradict themselves).
func skip(sourceFault bool, err error) Decision {
	return Decision{Action: Skip, Reason: err.Error(), Err: err, SourceFault: sourceFault}
}

func hasFinalized(l Local) bool { return l.Finalized.Hash != (common.Hash{}) }

// finalizedConflict names the first source head at or below the local finalized
// height that is not on the local finalized chain. Below local finalized the
// engine's canonical chain is the finalized chain, so the engine's blocks there
// are the reference.
func finalizedConflict(in Input) string {
	if !hasFinalized(in.Local) {
		return "" // the engine has no finalized head yet
	}
	fin := in.Local.Finalized
	check := func(label string, ref eth.L2BlockRef, el Lookup) string {
		switch {
		case ref.Number == fin.Number && ref.Hash != fin.Hash:
			return fmt.Sprintf("source %s %d (%s) conflicts with local finalized %d (%s)",
				label, ref.Number, ref.Hash, fin.Number, fin.Hash)
		case ref.Number < fin.Number && el.Found && el.Ref.Hash != ref.Hash:
			return fmt.Sprintf("source %s %d (%s) conflicts with the finalized chain, which has %s there",
				label, ref.Number, ref.Hash, el.Ref.Hash)
		}
		return ""
	}
	if r := check("finalized", in.Heads.Finalized, in.ELAtFinalized); r != "" {
		return r
	}
	return check("safe", in.Heads.Safe, in.ELAtSafe)
}

// nextFinalized is the finalized label to send: the source's finalized head when
// it is above the local one and the engine holds it at or below limit (a height
// known to be shared by the chain the update goes to), else the local one.
func nextFinalized(in Input, limit uint64) eth.L2BlockRef {
	s, l := in.Heads.Finalized, in.Local.Finalized
	if (s.Number > l.Number || !hasFinalized(in.Local)) && s.Number <= limit && in.ELAtFinalized.Found && in.ELAtFinalized.Ref.Hash == s.Hash {
		return s
	}
	return l
}

// consolidate: rows "EL block at safe height == source safe" and "source behind
// the local heads on the same chain".
func consolidate(in Input) Decision {
	s, l := in.Heads, in.Local
	safe := s.Safe
	held := in.ELAtLocalSafe.Found && in.ELAtLocalSafe.Ref.Hash == l.Safe.Hash
	if l.Safe.Number > safe.Number && held {
		safe = l.Safe // never move backwards on the same chain
	}
	head := l.Unsafe
	if head.Number < safe.Number {
		head = safe
	}
	fin := nextFinalized(in, safe.Number)
	if safe == l.Safe && fin == l.Finalized {
		if s.Safe.Number < l.Safe.Number {
			return Decision{Action: Hold, Reason: fmt.Sprintf(
				"source safe %d is behind local safe %d on the same chain; keeping local", s.Safe.Number, l.Safe.Number)}
		}
		return Decision{Action: Hold, Reason: fmt.Sprintf("up to date at safe %d, finalized %d", safe.Number, fin.Number)}
	}
	next := Local{Unsafe: head, Safe: safe, Finalized: fin}
	return Decision{
		Action:     Consolidate,
		Reason:     fmt.Sprintf("engine holds source safe %d (%s); safe %d, finalized %d", s.Safe.Number, s.Safe.Hash, safe.Number, fin.Number),
		Forkchoice: forkchoice(next),
		Next:       next,
	}
}

// reorgTo: row "EL block at safe height ≠ source safe": reset unsafe to the
// source's safe head.
func reorgTo(in Input) Decision {
	s, l := in.Heads, in.Local
	if in.Ancestor == nil {
		return Decision{
			Action:   NeedAncestor,
			Reason:   fmt.Sprintf("engine has %s at source safe %d, source has %s", in.ELAtSafe.Ref.Hash, s.Safe.Number, s.Safe.Hash),
			SearchLo: l.Finalized.Number,
			SearchHi: s.Safe.Number,
		}
	}
	anc := in.Ancestor.Ref
	if anc.Number >= s.Safe.Number {
		return skip(true, fmt.Errorf("the source's block at %d agrees with the engine's, but its safe head there is %s: %w",
			anc.Number, s.Safe.Hash, safesource.ErrInconsistentHeads))
	}
	next := Local{Unsafe: s.Safe, Safe: s.Safe, Finalized: nextFinalized(in, anc.Number)}
	d := Decision{
		Action: Reorg,
		Reason: fmt.Sprintf("engine diverges from source at safe %d: reset unsafe %d (%s) to source safe %d (%s), common ancestor %d",
			s.Safe.Number, l.Unsafe.Number, l.Unsafe.Hash, s.Safe.Number, s.Safe.Hash, anc.Number),
		Forkchoice: forkchoice(next),
		Next:       next,
		Ancestor:   anc,
		Depth:      depth(l.Unsafe, anc),
	}
	if in.Mode == Backfill {
		d.BackfillFrom, d.BackfillTo = anc.Number+1, s.Safe.Number
	}
	return d
}

// stillSyncing: row "EL has no block at the safe height though unsafe ≥ safe".
// The source's chain must first be shown to hold the local finalized head.
func stillSyncing(in Input) Decision {
	s, l := in.Heads, in.Local
	if s.Safe.Number <= l.Safe.Number {
		return Decision{Action: Hold, Reason: fmt.Sprintf(
			"engine has no block at source safe %d, which is not above local safe %d", s.Safe.Number, l.Safe.Number)}
	}
	if in.Ancestor == nil {
		return Decision{
			Action:   NeedAncestor,
			Reason:   fmt.Sprintf("engine has no block at source safe %d; checking the source holds local finalized %d", s.Safe.Number, l.Finalized.Number),
			SearchLo: l.Finalized.Number,
			SearchHi: l.Finalized.Number,
		}
	}
	next := Local{Unsafe: l.Unsafe, Safe: s.Safe, Finalized: l.Finalized}
	return Decision{
		Action: SafeLabelOnly,
		Reason: fmt.Sprintf("engine still syncing: no block at source safe %d below unsafe %d; safe label moves, unsafe stays",
			s.Safe.Number, l.Unsafe.Number),
		Next: next,
	}
}

// catchUp: row "source safe above local unsafe". The common-ancestor search
// below the local unsafe head proves the source's chain keeps the local finalized
// head before anything is sent.
func catchUp(in Input) Decision {
	s, l := in.Heads, in.Local
	if in.Ancestor == nil {
		return Decision{
			Action:   NeedAncestor,
			Reason:   fmt.Sprintf("source safe %d is above local unsafe %d", s.Safe.Number, l.Unsafe.Number),
			SearchLo: l.Finalized.Number,
			SearchHi: max(l.Unsafe.Number, l.Finalized.Number), // an engine that lost blocks may be below finalized
		}
	}
	anc := in.Ancestor.Ref
	next := Local{Unsafe: s.Safe, Safe: s.Safe, Finalized: nextFinalized(in, anc.Number)}
	d := Decision{
		Action: CatchUp,
		Reason: fmt.Sprintf("source safe %d (%s) above local unsafe %d; common ancestor %d",
			s.Safe.Number, s.Safe.Hash, l.Unsafe.Number, anc.Number),
		Forkchoice: forkchoice(next),
		Next:       next,
		Ancestor:   anc,
		Depth:      depth(l.Unsafe, anc),
	}
	if in.Mode == Backfill {
		d.BackfillFrom, d.BackfillTo = anc.Number+1, s.Safe.Number
		if l.Unsafe.Number < anc.Number { // the engine lost blocks below finalized
			d.BackfillFrom, d.BackfillBase = l.Unsafe.Number+1, l.Unsafe
		}
	}
	return d
}

func depth(unsafe, ancestor eth.L2BlockRef) uint64 {
	if unsafe.Number < ancestor.Number {
		return 0
	}
	return unsafe.Number - ancestor.Number
}

func forkchoice(l Local) eth.ForkchoiceState {
	return eth.ForkchoiceState{HeadBlockHash: l.Unsafe.Hash, SafeBlockHash: l.Safe.Hash, FinalizedBlockHash: l.Finalized.Hash}
}
