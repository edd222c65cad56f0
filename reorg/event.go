package reorg

import (
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/safesource"
)

// Event is an input to Step: a tick or a tip block that starts an operation,
// or the answer to an effect Step asked for.
type Event interface{ event() }

// Tick starts a tick: read the engine and the source, decide, act.
// AfterTip says the tick comes right after the tip whose Done asked for it
// (TickNow): the head that tip set need not be read back.
type Tick struct{ AfterTip bool }

// TipArrived starts the tip path for one unsafe block from a tip feed.
type TipArrived struct{ Payload *eth.ExecutionPayloadEnvelope }

// EngineHeadRead answers ReadEngineHead.
type EngineHeadRead struct {
	Head eth.L2BlockRef
	Err  error
}

// EngineLabelsRead answers ReadEngineLabels; a label the engine has none for
// yet is the zero ref.
type EngineLabelsRead struct {
	Safe, Finalized eth.L2BlockRef
	Err             error
}

// SourceRead answers ReadSource.
type SourceRead struct {
	Heads safesource.Heads
	Err   error
}

// HeadsRead answers ReadHeads.
type HeadsRead struct {
	Engine EngineHeadRead
	Source SourceRead
}

// EngineBlocksRead answers ReadEngineAt: one Lookup per height asked for, in
// the same order.
type EngineBlocksRead struct{ Lookups []Lookup }

// AncestorFound answers FindAncestor.
type AncestorFound struct{ Result AncestorResult }

// Backfilled answers BackfillBlocks. Head is the last block the engine's head was
// moved to on the way (a checkpoint), zero if none; Invalid is a block the
// engine called INVALID, and TargetBuildsOnIt says it is the source's block, so
// the target builds on it too.
type Backfilled struct {
	Head             eth.L2BlockRef
	Invalid          common.Hash
	TargetBuildsOnIt bool
	Err              error
}

// ForkchoiceAnswered answers SendForkchoice. Refused is the engine's -38002
// (safe or finalized not on the head's chain); Err any other failure.
type ForkchoiceAnswered struct {
	Status          eth.ExecutePayloadStatus
	ValidationError string
	Refused         bool
	Err             error
}

// BuildRequestRead answers ReadBuildRequest; OK is false when the source
// wants nothing built.
type BuildRequestRead struct {
	Request safesource.BuildRequest
	OK      bool
}

// BlockBuilt answers BuildBlock. Built is the block the engine holds as its
// head now; Syncing says the engine was syncing and built nothing;
// EngineInvalid says the engine rejected the build (the attributes, the
// parent or the built block), and Invalid is the block it called INVALID, if
// any, never to be sent again.
type BlockBuilt struct {
	Built         eth.L2BlockRef
	Syncing       bool
	EngineInvalid bool
	Invalid       common.Hash
	Err           error
}

// TipParentFetched answers FetchTipParent, with the block checked to be the
// one asked for.
type TipParentFetched struct {
	Payload *eth.ExecutionPayloadEnvelope
	Err     error
}

// TipsInserted answers InsertTips: how many blocks the engine took, and the
// block it called INVALID, if any (the insertion stops there).
type TipsInserted struct {
	Inserted        uint64
	Invalid         common.Hash
	Status          eth.ExecutePayloadStatus // the engine's answer for Invalid
	ValidationError string
	Err             error
}

func (Tick) event()               {}
func (TipArrived) event()         {}
func (EngineHeadRead) event()     {}
func (EngineLabelsRead) event()   {}
func (SourceRead) event()         {}
func (HeadsRead) event()          {}
func (EngineBlocksRead) event()   {}
func (AncestorFound) event()      {}
func (Backfilled) event()         {}
func (ForkchoiceAnswered) event() {}
func (BuildRequestRead) event()   {}
func (BlockBuilt) event()         {}
func (TipParentFetched) event()   {}
func (TipsInserted) event()       {}
