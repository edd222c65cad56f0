package engineadapter

import (
	"context"
	"errors"

	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/reorg"
)

// report tells the operator what a Report effect says: a log line, metrics,
// and the event for OnEvent.
func (a *Adapter) report(ctx context.Context, n reorg.Note) {
	d, old, next := n.Decision, n.Old, n.New
	switch n.Kind {
	case reorg.NoteEngineRead:
		e := n.Engine
		a.log.Info("Read engine heads", "unsafe", e.Unsafe.Number, "unsafe_hash", e.Unsafe.Hash,
			"safe", e.Safe.Number, "safe_hash", e.Safe.Hash, "finalized", e.Finalized.Number, "finalized_hash", e.Finalized.Hash)

	case reorg.NoteEngineWentBack:
		e := n.Engine
		if n.FinalizedKept {
			a.log.Error("Engine's finalized head is below the local one; keeping the local one and catching up to it",
				"finalized", old.Finalized.Number, "finalized_hash", old.Finalized.Hash, "engine_head", e.Unsafe.Number,
				"engine_finalized", e.Finalized.Number, "engine_finalized_hash", e.Finalized.Hash)
		}
		a.log.Error("ALARM: the engine went back below the safe label: it likely restarted and lost blocks or its state "+
			"(op-geth with its default path-scheme database rewinds after an unclean stop); catching it up again. "+
			"Remedy: stop it cleanly, or run op-geth with --state.scheme hash",
			"head", e.Unsafe.Number, "head_hash", e.Unsafe.Hash, "safe", old.Safe.Number, "safe_hash", old.Safe.Hash,
			"engine_safe", e.Safe.Number, "engine_safe_hash", e.Safe.Hash)

	case reorg.NoteDecided:
		if n.IsTip {
			a.metrics.RecordDecision(n.Tip.Action.String())
		} else {
			a.metrics.RecordDecision(d.Action.String())
		}

	case reorg.NoteSkipped:
		kind := Skipped
		if d.SourceFault {
			kind = SourceFailed
		}
		logf := a.log.Warn
		if ctx.Err() != nil {
			logf = a.log.Debug // stopping: the tick in flight was cut short, nothing is wrong
		}
		logf("Skipped tick", "reason", d.Reason, "source_safe", n.Heads.Safe.Number,
			"source_safe_hash", n.Heads.Safe.Hash, "source_finalized", n.Heads.Finalized.Number)
		a.emit(Event{Kind: kind, Decision: d, Old: old, New: next, Err: n.Err})

	case reorg.NoteHeld:
		a.log.Debug("Nothing to do", "reason", d.Reason, "safe", old.Safe.Number, "finalized", old.Finalized.Number)

	case reorg.NoteHalted:
		a.log.Error("Halted: not following the source", "reason", d.Reason,
			"finalized", old.Finalized.Number, "finalized_hash", old.Finalized.Hash,
			"source_safe", n.Heads.Safe.Number, "source_safe_hash", n.Heads.Safe.Hash,
			"source_finalized", n.Heads.Finalized.Number, "source_finalized_hash", n.Heads.Finalized.Hash)
		a.emit(Event{Kind: Halted, Decision: d, Old: old, New: next, Err: n.Err})

	case reorg.NoteSafeLabelOnly:
		a.log.Info("Engine still syncing; safe label moved", "safe", next.Safe.Number, "hash", next.Safe.Hash,
			"unsafe", old.Unsafe.Number)
		a.emit(Event{Kind: SafeAdvanced, Decision: d, Old: old, New: next, Heads: n.Heads})

	case reorg.NoteBackfillFailed:
		a.log.Error("Backfill stopped", "err", n.Err)
		if errors.Is(n.Err, ErrBackfillInvalid) {
			a.metrics.RecordForkchoice("backfill-invalid")
			a.emit(Event{Kind: EngineInvalid, Decision: d, Old: old, New: next, Err: n.Err})
		}

	case reorg.NoteRefused:
		a.log.Error("Halted: engine refused the forkchoice state; the head will not be sent again",
			"head", d.Next.Unsafe.Number, "hash", d.Forkchoice.HeadBlockHash, "safe", d.Next.Safe.Number,
			"finalized", d.Next.Finalized.Number, "finalized_hash", d.Forkchoice.FinalizedBlockHash, "err", n.ValidationError)
		a.emit(Event{Kind: Halted, Decision: d, Old: old, New: next, Err: n.Err})

	case reorg.NoteRestored:
		a.log.Warn("Engine head put back after a refused forkchoice state", "head", next.Unsafe.Number, "hash", next.Unsafe.Hash,
			"safe", next.Safe.Number, "finalized", next.Finalized.Number)

	case reorg.NoteRestoreFailed:
		if next.Unsafe.Hash == (common.Hash{}) {
			a.log.Error("No local head to put back after a refused forkchoice state; the engine's head may be on the refused chain")
			return
		}
		a.log.Error("Could not put the engine's head back after a refused forkchoice state; its head may be on the refused chain",
			"head", next.Unsafe.Number, "hash", next.Unsafe.Hash, "err", n.Err)

	case reorg.NoteInvalid:
		if n.EngineLost {
			a.log.Error("ALARM: the engine, which went back below the safe label, calls a block INVALID; it likely lost "+
				"its state and failed to sync (op-geth remembers the blocks it rejected until it restarts, and answers "+
				"\"links to previously rejected block\"). The node forgives blocks the source vouches for. Remedy: restart it "+
				"cleanly once the blocks it holds without their state were dropped (the node does that when it has the "+
				"engine's debug RPC), or run op-geth with --state.scheme hash",
				"number", n.Block.Number, "hash", n.Block.Hash, "validation_error", n.ValidationError)
		}
		switch {
		case n.IsTip:
			a.log.Error("Engine rejected a tip block; it and its descendants are dropped", "number", n.Block.Number,
				"hash", n.Block.Hash, "status", n.Status, "validation_error", n.ValidationError, "feed", a.tipFeedName())
			a.emit(Event{Kind: EngineInvalid, Tip: n.Tip, Old: old, New: next, Err: n.Err})
			return
		case d.Action != reorg.Build: // the build logs its own
			a.log.Error("Engine rejected forkchoice target; it will not be sent again", "head", n.Block.Number,
				"hash", n.Block.Hash, "status", n.Status, "validation_error", n.ValidationError)
		}
		a.emit(Event{Kind: EngineInvalid, Decision: d, Old: old, New: next, Err: n.Err})

	case reorg.NoteSyncing:
		switch {
		case n.IsTip:
			a.log.Info("Engine syncing to the tip", "number", n.Block.Number, "hash", n.Block.Hash, "reason", n.Tip.Reason)
			a.emit(Event{Kind: EngineSyncing, Tip: n.Tip, Old: old, New: next})
			return
		case d.Action == reorg.Build:
			a.log.Info("Engine syncing; build waits", "number", n.Block.Number+1, "parent", n.Block.Number)
		default:
			a.log.Info("Engine syncing to target", "action", d.Action, "head", n.Block.Number, "hash", n.Block.Hash)
		}
		a.emit(Event{Kind: EngineSyncing, Decision: d, Old: old, New: next})

	case reorg.NoteReorged:
		a.log.Warn("Reorg to the source's chain", "old_head", old.Unsafe.Number, "old_hash", old.Unsafe.Hash,
			"new_head", next.Unsafe.Number, "new_hash", next.Unsafe.Hash, "ancestor", d.Ancestor.Number, "depth", n.Depth)
		a.metrics.RecordReorgDepth(n.Depth)
		a.emit(Event{Kind: Reorged, Decision: d, Old: old, New: next, Depth: n.Depth})

	case reorg.NoteSafeAdvanced:
		a.log.Info("Safe head moved", "action", d.Action, "safe", next.Safe.Number, "hash", next.Safe.Hash,
			"unsafe", next.Unsafe.Number)
		a.emit(Event{Kind: SafeAdvanced, Decision: d, Old: old, New: next, Heads: n.Heads})

	case reorg.NoteFinalizedAdvanced:
		a.log.Info("Finalized head moved", "finalized", next.Finalized.Number, "hash", next.Finalized.Hash)
		a.emit(Event{Kind: FinalizedAdvanced, Decision: d, Old: old, New: next})

	case reorg.NoteBuilt: // the build logs the block
		a.emit(Event{Kind: Built, Decision: d, Old: old, New: next, Heads: n.Heads})

	case reorg.NoteTipIgnored:
		a.log.Debug("Tip ignored", "number", n.Block.Number, "hash", n.Block.Hash, "reason", n.Tip.Reason)

	case reorg.NoteUnsafeAdvanced:
		if n.Depth > 0 {
			a.log.Warn("Unsafe reorg to the tip feed's chain", "old_head", old.Unsafe.Number, "old_hash", old.Unsafe.Hash,
				"new_head", next.Unsafe.Number, "new_hash", next.Unsafe.Hash, "depth", n.Depth, "feed", a.tipFeedName())
		} else {
			a.log.Debug("Tip inserted", "number", next.Unsafe.Number, "hash", next.Unsafe.Hash)
		}
		a.emit(Event{Kind: UnsafeAdvanced, Tip: n.Tip, Old: old, New: next, Depth: n.Depth})
	}
}

func (a *Adapter) emit(e Event) {
	a.metrics.RecordEvent(e.Kind.String())
	if a.onEvent != nil {
		a.onEvent(e)
	}
}
