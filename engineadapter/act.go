package engineadapter

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/lightcl/lightcl/reorg"
)

// act carries out a decision and reports what happened.
func (a *Adapter) act(ctx context.Context, in reorg.Input, d reorg.Decision) error {
	old := a.local
	switch d.Action {
	case reorg.Skip:
		err := d.Err
		if err == nil {
			err = errors.New(d.Reason)
		}
		err = fmt.Errorf("skipped tick: %w", err)
		kind := Skipped
		if d.SourceFault {
			kind = SourceFailed
		}
		logf := a.log.Warn
		if ctx.Err() != nil {
			logf = a.log.Debug // stopping: the tick in flight was cut short, nothing is wrong
		}
		logf("Skipped tick", "reason", d.Reason, "source_safe", in.Heads.Safe.Number,
			"source_safe_hash", in.Heads.Safe.Hash, "source_finalized", in.Heads.Finalized.Number)
		a.emit(Event{Kind: kind, Decision: d, Old: old, New: old, Err: err})
		return err

	case reorg.Hold:
		a.log.Debug("Nothing to do", "reason", d.Reason, "safe", old.Safe.Number, "finalized", old.Finalized.Number)
		return nil

	case reorg.Halt:
		err := fmt.Errorf("%w: %s", ErrHalted, d.Reason)
		a.log.Error("Halted: not following the source", "reason", d.Reason,
			"finalized", old.Finalized.Number, "finalized_hash", old.Finalized.Hash,
			"source_safe", in.Heads.Safe.Number, "source_safe_hash", in.Heads.Safe.Hash,
			"source_finalized", in.Heads.Finalized.Number, "source_finalized_hash", in.Heads.Finalized.Hash)
		a.emit(Event{Kind: Halted, Decision: d, Old: old, New: old, Err: err})
		return err

	case reorg.SafeLabelOnly:
		a.local = d.Next
		a.headOnSafe = false // the engine's head is not on the new safe head's chain yet
		a.log.Info("Engine still syncing; safe label moved", "safe", d.Next.Safe.Number, "hash", d.Next.Safe.Hash,
			"unsafe", old.Unsafe.Number)
		a.emit(Event{Kind: SafeAdvanced, Decision: d, Old: old, New: a.local})
		return nil

	case reorg.CatchUp, reorg.Consolidate, reorg.Reorg:
		a.forgetEngineBlocks()
		if d.BackfillTo > 0 {
			if err := a.backfill(ctx, d); err != nil {
				a.log.Error("Backfill stopped", "err", err)
				if errors.Is(err, ErrBackfillInvalid) {
					a.metrics.RecordForkchoice("backfill-invalid")
					a.emit(Event{Kind: EngineInvalid, Decision: d, Old: a.local, New: a.local, Err: err})
				}
				return err
			}
		}
		return a.forkchoice(ctx, d)
	}
	return fmt.Errorf("engineadapter: decision %s cannot be carried out", d.Action)
}

// forkchoice sends the decision's forkchoice update and applies the answer.
func (a *Adapter) forkchoice(ctx context.Context, d reorg.Decision) error {
	old := a.local
	fc := d.Forkchoice
	res, refused, err := a.sendForkchoice(ctx, fc)
	if refused {
		// the engine says safe or finalized is not on the head's chain: following
		// this head would leave the local finalized chain
		a.metrics.RecordForkchoice("invalid-forkchoice-state")
		a.invalid.add(fc.HeadBlockHash)
		// the engine made the refused head canonical before refusing: put it
		// back on the local finalized chain, at the local safe head
		a.restoreHead(ctx, reorg.Local{Unsafe: old.Safe, Safe: old.Safe, Finalized: old.Finalized})
		herr := fmt.Errorf("%w: the engine refused head %d (%s) with safe %s and finalized %s: %v",
			ErrHalted, d.Next.Unsafe.Number, fc.HeadBlockHash, fc.SafeBlockHash, fc.FinalizedBlockHash, err)
		a.log.Error("Halted: engine refused the forkchoice state; the head will not be sent again",
			"head", d.Next.Unsafe.Number, "hash", fc.HeadBlockHash, "safe", d.Next.Safe.Number,
			"finalized", d.Next.Finalized.Number, "finalized_hash", fc.FinalizedBlockHash, "err", err)
		a.emit(Event{Kind: Halted, Decision: d, Old: old, New: a.local, Err: herr})
		return herr
	}
	if err != nil {
		a.metrics.RecordForkchoice("error")
		return fmt.Errorf("forkchoice update to head %d (%s): %w", d.Next.Unsafe.Number, fc.HeadBlockHash, err)
	}
	status := res.PayloadStatus.Status
	a.metrics.RecordForkchoice(string(status))
	out := reorg.Apply(old, d, status)
	a.local = out.Local
	switch {
	case status == eth.ExecutionValid:
		a.headOnSafe = true // the engine took the head with safe as its ancestor
		a.engineLost = false
		a.rememberLabels()
	case out.Syncing:
		a.headOnSafe = false // the engine moves its head by itself once it has the target
	}
	a.setSyncing(out.Syncing)

	switch {
	case out.Rejected != (eth.L2BlockRef{}).Hash:
		a.invalid.add(out.Rejected)
		err := fmt.Errorf("engine declared head %d (%s) %s: %s", d.Next.Unsafe.Number, out.Rejected, status,
			validationError(res.PayloadStatus))
		a.log.Error("Engine rejected forkchoice target; it will not be sent again", "head", d.Next.Unsafe.Number,
			"hash", out.Rejected, "status", status, "validation_error", validationError(res.PayloadStatus))
		a.emit(Event{Kind: EngineInvalid, Decision: d, Old: old, New: a.local, Err: err})
		return err
	case out.Syncing:
		a.log.Info("Engine syncing to target", "action", d.Action, "head", d.Next.Unsafe.Number, "hash", fc.HeadBlockHash)
		a.emit(Event{Kind: EngineSyncing, Decision: d, Old: old, New: a.local})
		a.reportReorg(d, old)
		return nil
	case status != eth.ExecutionValid:
		return fmt.Errorf("forkchoice update to head %d (%s): %s", d.Next.Unsafe.Number, fc.HeadBlockHash, out.Reason)
	}

	a.reportReorg(d, old)
	if a.local.Safe != old.Safe {
		a.log.Info("Safe head moved", "action", d.Action, "safe", a.local.Safe.Number, "hash", a.local.Safe.Hash,
			"unsafe", a.local.Unsafe.Number)
		a.emit(Event{Kind: SafeAdvanced, Decision: d, Old: old, New: a.local})
	}
	if a.local.Finalized != old.Finalized {
		a.log.Info("Finalized head moved", "finalized", a.local.Finalized.Number, "hash", a.local.Finalized.Hash)
		a.emit(Event{Kind: FinalizedAdvanced, Decision: d, Old: old, New: a.local})
	}
	return nil
}

// sendForkchoice sends fc, without payload attributes. A decided update is
// sent and answered even if ctx ends meanwhile (bounded by EngineTimeout);
// an empty answer is an error; refused reports the engine's -38002 (safe or
// finalized not on the head's chain).
func (a *Adapter) sendForkchoice(ctx context.Context, fc eth.ForkchoiceState) (res *eth.ForkchoiceUpdatedResult, refused bool, err error) {
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.EngineTimeout)
	defer cancel()
	res, err = a.engine.ForkchoiceUpdate(ectx, &fc, nil)
	var rpcErr rpc.Error
	if errors.As(err, &rpcErr) && rpcErr.ErrorCode() == engine.InvalidForkChoiceState.ErrorCode() {
		return nil, true, err
	}
	if err == nil && res == nil {
		err = errors.New("empty answer")
	}
	return res, false, err
}

// reportReorg reports a decision that abandons local unsafe blocks, once per
// abandoned chain: when the engine accepts the new head, or when it starts
// syncing to it (the engine then switches chains by itself).
func (a *Adapter) reportReorg(d reorg.Decision, old reorg.Local) {
	if d.Depth == 0 && d.Action != reorg.Reorg {
		return
	}
	// one abandoned head is one reorg, however many targets the engine is sent
	// while it syncs to the source's chain
	if old.Unsafe.Hash == a.lastReorg {
		return
	}
	a.lastReorg = old.Unsafe.Hash
	target := d.Forkchoice.HeadBlockHash
	a.log.Warn("Reorg to the source's chain", "old_head", old.Unsafe.Number, "old_hash", old.Unsafe.Hash,
		"new_head", d.Next.Unsafe.Number, "new_hash", target, "ancestor", d.Ancestor.Number, "depth", d.Depth)
	a.metrics.RecordReorgDepth(d.Depth)
	a.emit(Event{Kind: Reorged, Decision: d, Old: old, New: d.Next, Depth: d.Depth})
}

func validationError(s eth.PayloadStatusV1) string {
	if s.ValidationError == nil {
		return ""
	}
	return *s.ValidationError
}

func (a *Adapter) emit(e Event) {
	a.metrics.RecordEvent(e.Kind.String())
	if a.onEvent != nil {
		a.onEvent(e)
	}
}

func (a *Adapter) setSyncing(on bool) {
	a.statusMu.Lock()
	a.status.Syncing = on
	a.statusMu.Unlock()
}
