package reorg

import (
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// Action is what the adapter must do after a decision.
type Action int

const (
	// Skip: send nothing and keep the local state; the input was unusable
	// (source error, inconsistent heads, engine read failed, rejected block).
	Skip Action = iota
	// Hold: the local state already reflects the source, or the source is behind
	// on the same chain; send nothing.
	Hold
	// Halt: the source contradicts the local finalized chain. Send nothing; this
	// is an error for the operator, finalized is never reorged.
	Halt
	// NeedAncestor: search the common ancestor of the engine and the source
	// between SearchLo and SearchHi, put it in Input.Ancestor and decide again.
	NeedAncestor
	// CatchUp: the source's safe head is above the local unsafe head. In EL-sync
	// mode send Forkchoice (the engine fetches the blocks itself); in backfill mode
	// insert blocks BackfillFrom..BackfillTo first.
	CatchUp
	// SafeLabelOnly: the engine is still syncing and has no block at the source's
	// safe height; move the tracked safe label, send nothing, leave unsafe alone.
	SafeLabelOnly
	// Consolidate: the engine holds the source's safe block; send Forkchoice,
	// which keeps the unsafe head and moves safe (and finalized).
	Consolidate
	// Reorg: the engine holds a different block at the source's safe height;
	// reset unsafe to the source's safe head and send Forkchoice.
	Reorg
	// Build: the source derived the block after BuildParent itself and the
	// engine lacks it (or holds another block there); send Forkchoice (head
	// BuildParent) with the source's attributes, then getPayload, newPayload
	// and a forkchoice update to the built block. See DecideBuild.
	Build
)

var actionNames = [...]string{"skip", "hold", "halt", "need-ancestor", "catch-up", "safe-label-only", "consolidate", "reorg", "build"}

// String returns the action's name as used in logs and metric labels.
func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return fmt.Sprintf("action(%d)", int(a))
	}
	return actionNames[a]
}

// Local is the adapter's view of the engine: the engine's head and the safe and
// finalized labels the adapter last set. A zero Finalized hash means the engine
// has no finalized head yet.
type Local struct {
	Unsafe    eth.L2BlockRef
	Safe      eth.L2BlockRef
	Finalized eth.L2BlockRef
}

// Decision is the result of Decide.
type Decision struct {
	Action Action
	// Reason says why, in words fit for a log line.
	Reason string
	// Err is the cause of a Skip, for errors.Is; SourceFault says whether the
	// source is to blame for it (rather than the engine or the adapter).
	Err         error
	SourceFault bool
	// Forkchoice is the forkchoice update to send, for actions that send one.
	Forkchoice eth.ForkchoiceState
	// Next is the local view once Forkchoice is answered VALID (for SafeLabelOnly:
	// at once).
	Next Local
	// Ancestor is the common ancestor of the engine and the source (Reorg and
	// CatchUp), and Depth the number of local unsafe blocks above it that the
	// action abandons.
	Ancestor eth.L2BlockRef
	Depth    uint64
	// SearchLo and SearchHi bound the common-ancestor search NeedAncestor asks for.
	SearchLo, SearchHi uint64
	// BackfillFrom and BackfillTo are the heights backfill mode must insert, in
	// order, before Forkchoice (CatchUp and Reorg in backfill mode; zero
	// otherwise).
	BackfillFrom, BackfillTo uint64
	// BackfillBase is the block the first backfilled payload builds on, when
	// it is not Ancestor: the engine's head, when the engine lost blocks below
	// the local finalized head.
	BackfillBase eth.L2BlockRef
	// BuildParent is the block Build builds on; Next.Unsafe is it too until
	// the built block is known.
	BuildParent eth.L2BlockRef
}

// SendsForkchoice reports whether the adapter must send Forkchoice.
func (d Decision) SendsForkchoice() bool {
	switch d.Action {
	case CatchUp, Consolidate, Reorg:
		return true
	}
	return false
}
