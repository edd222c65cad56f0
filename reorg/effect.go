package reorg

import (
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/safesource"
)

// Effect is something Step asks its caller to do. Effects are carried out in
// the order given; those that read or write the engine, the source or a feed
// are answered by exactly one event, which goes to the next Step call.
type Effect interface{ effect() }

// ReadEngineHead: read the engine's unsafe head. Answer: EngineHeadRead.
type ReadEngineHead struct{}

// ReadEngineLabels: read the engine's safe and finalized heads. Answer:
// EngineLabelsRead.
type ReadEngineLabels struct{}

// ReadSource: read the safe source's heads. Answer: SourceRead.
type ReadSource struct{}

// ReadHeads: read the engine's unsafe head and the safe source's heads; the
// two do not depend on each other, so they may be read at the same time.
// Answer: HeadsRead.
type ReadHeads struct{}

// ReadEngineAt: read the engine's canonical blocks at these heights. Answer:
// EngineBlocksRead, one Lookup per height.
type ReadEngineAt struct{ Heights []uint64 }

// FindAncestor: run Search for the NeedAncestor decision on Input. Answer:
// AncestorFound.
type FindAncestor struct {
	Decision Decision
	Input    Input
}

// BackfillBlocks: insert the payloads Decision.BackfillFrom..BackfillTo in order
// with newPayload, moving the engine's head forward (keeping Local's safe and
// finalized labels) as windows land. Answer: Backfilled.
type BackfillBlocks struct {
	Decision Decision
	Local    Local
}

// Purpose says what a forkchoice update is for, so the caller can count it.
type Purpose int

const (
	// ForTick is a tick's update (a decision of the safe path).
	ForTick Purpose = iota
	// ForTip moves the head to a tip.
	ForTip
	// ForRestore puts the engine's head back after it refused a state.
	ForRestore
)

// SendForkchoice: send engine_forkchoiceUpdated without attributes. Once
// decided it must be sent and answered even if the caller is stopping.
// Answer: ForkchoiceAnswered.
type SendForkchoice struct {
	State   eth.ForkchoiceState
	Purpose Purpose
}

// ReadBuildRequest: ask the deriving source for the block it wants built.
// Answer: BuildRequestRead.
type ReadBuildRequest struct{}

// BuildBlock: build Request on Decision.BuildParent (forkchoiceUpdated with
// the attributes, getPayload, newPayload, forkchoiceUpdated to the new block),
// and read the block back. Answer: BlockBuilt.
type BuildBlock struct {
	Decision Decision
	Request  safesource.BuildRequest
}

// FetchTipParent: fetch the block Hash from the tip feed and check it is
// Child's parent. Answer: TipParentFetched.
type FetchTipParent struct {
	Hash  common.Hash
	Child *eth.ExecutionPayload
}

// InsertTips: send Chain in order with newPayload, stopping at a block the
// engine calls INVALID. Answer: TipsInserted.
type InsertTips struct {
	Decision TipDecision
	Chain    []*eth.ExecutionPayloadEnvelope
}

// Reject: remember Hash as called INVALID by the engine (Descendant: as
// building on such a block); it is never sent again.
type Reject struct {
	Hash       common.Hash
	Descendant bool
}

// Forgive: forget the engine's INVALID answer for Ref, which the source
// vouches for after the engine lost its state.
type Forgive struct{ Ref eth.L2BlockRef }

// DropBlocksAbove: have the engine forget the blocks it holds above Head, its
// head block, where it can (op-geth: debug_setHead). Step asks for it when the
// engine went back below the safe label: an engine that restarted without its
// state (op-geth's default path scheme after SIGKILL) may still hold the blocks
// above its head, and it answers VALID to their payloads without executing
// them, so neither a backfill nor its own sync can bring it forward. No
// answer; a caller that cannot drop blocks does nothing.
type DropBlocksAbove struct{ Head eth.L2BlockRef }

// Report: tell the operator what happened (log, metrics, events).
type Report struct{ Note Note }

// Done ends the operation: the tick's (or the tip's) decision and error.
// Inserted counts tip blocks the engine took; TickNow asks for a tick at once
// (a block was built, or a tip moved the head with TickOnTip).
type Done struct {
	Decision Decision
	Tip      TipDecision
	IsTip    bool
	Inserted uint64
	TickNow  bool
	Err      error
}

func (ReadEngineHead) effect()   {}
func (ReadEngineLabels) effect() {}
func (ReadSource) effect()       {}
func (ReadHeads) effect()        {}
func (ReadEngineAt) effect()     {}
func (FindAncestor) effect()     {}
func (BackfillBlocks) effect()   {}
func (SendForkchoice) effect()   {}
func (ReadBuildRequest) effect() {}
func (BuildBlock) effect()       {}
func (FetchTipParent) effect()   {}
func (InsertTips) effect()       {}
func (Reject) effect()           {}
func (Forgive) effect()          {}
func (DropBlocksAbove) effect()  {}
func (Report) effect()           {}
func (Done) effect()             {}

// NoteKind names what a Report tells.
type NoteKind int

const (
	// NoteEngineRead: the engine's labels were read at start.
	NoteEngineRead NoteKind = iota
	// NoteEngineWentBack: the engine's head is below the safe label (it
	// restarted and lost blocks or its state); FinalizedKept says its finalized
	// head is below the local one, which is kept.
	NoteEngineWentBack
	// NoteDecided: a decision was taken (Decision or Tip).
	NoteDecided
	// NoteSkipped, NoteHeld, NoteHalted, NoteSafeLabelOnly: a tick's decision
	// of that kind.
	NoteSkipped
	NoteHeld
	NoteHalted
	NoteSafeLabelOnly
	// NoteBackfillFailed: a backfill stopped with Err.
	NoteBackfillFailed
	// NoteRefused: the engine refused a forkchoice state (-38002).
	NoteRefused
	// NoteRestored and NoteRestoreFailed: the head was (not) put back on
	// New after a refused state.
	NoteRestored
	NoteRestoreFailed
	// NoteInvalid: the engine called Block INVALID.
	NoteInvalid
	// NoteSyncing: the engine answered SYNCING to a target.
	NoteSyncing
	// NoteReorged: local unsafe blocks were abandoned for the source's chain.
	NoteReorged
	// NoteSafeAdvanced and NoteFinalizedAdvanced: a label moved.
	NoteSafeAdvanced
	NoteFinalizedAdvanced
	// NoteBuilt: a block the source derived was built.
	NoteBuilt
	// NoteTipIgnored and NoteUnsafeAdvanced: the tip path's outcomes.
	NoteTipIgnored
	NoteUnsafeAdvanced
)

var noteNames = [...]string{"engine-read", "engine-went-back", "decided", "skipped", "held", "halted", "safe-label-only",
	"backfill-failed", "refused", "restored", "restore-failed", "invalid", "syncing", "reorged", "safe-advanced",
	"finalized-advanced", "built", "tip-ignored", "unsafe-advanced"}

// String returns the note's name.
func (k NoteKind) String() string {
	if k < 0 || int(k) >= len(noteNames) {
		return fmt.Sprintf("note(%d)", int(k))
	}
	return noteNames[k]
}

// Note is what a Report tells; which fields are set depends on Kind.
type Note struct {
	Kind     NoteKind
	Decision Decision
	// Tip is the decision of the tip path, when IsTip.
	Tip   TipDecision
	IsTip bool
	// Old and New are the local views before and after.
	Old, New Local
	// Heads is the source's answer the decision was taken on: set for
	// NoteSkipped, NoteHalted, NoteSafeLabelOnly, NoteSafeAdvanced and
	// NoteBuilt.
	Heads safesource.Heads
	// Engine is what the engine said its labels were (NoteEngineRead,
	// NoteEngineWentBack); FinalizedKept as in NoteEngineWentBack.
	Engine        Local
	FinalizedKept bool
	// Block and Status name the block the engine answered about, and how.
	Block           eth.L2BlockRef
	Status          eth.ExecutePayloadStatus
	ValidationError string
	Depth           uint64
	Err             error
	// EngineLost is set on NoteInvalid while the engine is below the safe
	// label since it went back (View.EngineLost): it may be calling good
	// blocks INVALID, as op-geth does after a failed sync until it restarts.
	EngineLost bool
}
