package engineadapter

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/rpc"
	"golang.org/x/sync/errgroup"

	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource"
)

// carry carries out one effect reorg.Step asked for, and returns the event
// that answers it (nil for effects that need no answer).
func (a *Adapter) carry(ctx context.Context, e reorg.Effect) reorg.Event {
	switch e := e.(type) {
	case reorg.ReadEngineHead:
		head, err := a.readLabel(ctx, eth.Unsafe)
		return reorg.EngineHeadRead{Head: head, Err: err}
	case reorg.ReadEngineLabels:
		safe, err := a.readLabel(ctx, eth.Safe)
		if err != nil {
			return reorg.EngineLabelsRead{Err: err}
		}
		fin, err := a.readLabel(ctx, eth.Finalized)
		return reorg.EngineLabelsRead{Safe: safe, Finalized: fin, Err: err}
	case reorg.ReadSource:
		return a.readSource(ctx)
	case reorg.ReadHeads:
		// the source's round trip and the engine's overlap
		var g errgroup.Group
		var src reorg.SourceRead
		g.Go(func() error { src = a.readSource(ctx); return nil })
		head, err := a.readLabel(ctx, eth.Unsafe)
		_ = g.Wait()
		return reorg.HeadsRead{Engine: reorg.EngineHeadRead{Head: head, Err: err}, Source: src}
	case reorg.ReadEngineAt:
		got := make([]reorg.Lookup, len(e.Heights))
		for i, n := range e.Heights {
			ref, err := a.engineLookup(ctx, n)
			switch {
			case errors.Is(err, ethereum.NotFound):
			case err != nil:
				got[i] = reorg.Lookup{Err: err}
			default:
				got[i] = reorg.Lookup{Ref: ref, Found: true}
			}
		}
		return reorg.EngineBlocksRead{Lookups: got}
	case reorg.FindAncestor:
		return reorg.AncestorFound{Result: *reorg.Search(ctx, e.Decision, e.Input, a.engineLookup, a.sourceLookup)}
	case reorg.BackfillBlocks:
		return a.backfill(ctx, e.Decision, e.Local)
	case reorg.SendForkchoice:
		return a.forkchoice(ctx, e)
	case reorg.ReadBuildRequest:
		b, ok := a.source.(safesource.Builder)
		if !ok {
			return reorg.BuildRequestRead{}
		}
		req, ok := b.PendingBuild()
		return reorg.BuildRequestRead{Request: req, OK: ok}
	case reorg.BuildBlock:
		return a.build(ctx, e.Decision, e.Request)
	case reorg.FetchTipParent:
		p, err := a.tipParent(a.tipCtx, e.Hash, e.Child)
		return reorg.TipParentFetched{Payload: p, Err: err}
	case reorg.InsertTips:
		return a.insertTips(ctx, e.Chain)
	case reorg.Reject:
		if e.Descendant {
			a.descendants.add(e.Hash)
		} else {
			a.invalid.add(e.Hash)
		}
	case reorg.Forgive:
		a.invalid.remove(e.Ref.Hash)
		a.descendants.remove(e.Ref.Hash)
		a.log.Warn("Forgetting the engine's INVALID answer for a block the source vouches for: the engine lost its state since",
			"number", e.Ref.Number, "hash", e.Ref.Hash)
	case reorg.DropBlocksAbove:
		a.dropAbove(ctx, e.Head)
	case reorg.Report:
		a.report(ctx, e.Note)
	default:
		a.log.Error("Effect not carried out: unknown to the adapter", "effect", fmt.Sprintf("%T", e))
	}
	return nil
}

func (a *Adapter) readSource(ctx context.Context) reorg.SourceRead {
	sctx, cancel := context.WithTimeout(ctx, a.cfg.SourceTimeout)
	defer cancel()
	heads, err := a.source.Heads(sctx)
	return reorg.SourceRead{Heads: heads, Err: err}
}

// forkchoice sends a forkchoice update and counts the answer.
func (a *Adapter) forkchoice(ctx context.Context, e reorg.SendForkchoice) reorg.ForkchoiceAnswered {
	res, refused, err := a.sendForkchoice(ctx, e.State)
	var ans reorg.ForkchoiceAnswered
	switch {
	case refused:
		ans = reorg.ForkchoiceAnswered{Refused: true, Err: err}
	case err != nil:
		ans = reorg.ForkchoiceAnswered{Err: err}
	default:
		ans = reorg.ForkchoiceAnswered{Status: res.PayloadStatus.Status, ValidationError: validationError(res.PayloadStatus)}
	}
	if e.Purpose == reorg.ForRestore {
		return ans
	}
	switch {
	case ans.Refused:
		a.metrics.RecordForkchoice("invalid-forkchoice-state")
	case ans.Err != nil:
		a.metrics.RecordForkchoice("error")
	default:
		a.metrics.RecordForkchoice(string(ans.Status))
	}
	return ans
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

func validationError(s eth.PayloadStatusV1) string {
	if s.ValidationError == nil {
		return ""
	}
	return *s.ValidationError
}
