package engineadapter

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource"
)

// ErrCannotBuild is wrapped when a source asks for a block to be built and the
// engine has no getPayload.
var ErrCannotBuild = errors.New("engine cannot build blocks (no GetPayload)")

// buildPending asks a deriving source for the block it wants built after the
// tick's decision, and builds it. It returns the build decision (zero when
// there was nothing to build) and whether a block was built.
func (a *Adapter) buildPending(ctx context.Context) (reorg.Decision, bool, error) {
	b, ok := a.source.(safesource.Builder)
	if !ok {
		return reorg.Decision{}, false, nil
	}
	req, ok := b.PendingBuild()
	if !ok {
		return reorg.Decision{}, false, nil
	}
	in := reorg.BuildInput{Local: a.local, Request: req, Rejected: a.rejectedHash}
	if req.Parent.Number <= a.local.Unsafe.Number {
		in.ELAtParent = a.engineAt(ctx, req.Parent.Number)
	}
	d := reorg.DecideBuild(in)
	a.metrics.RecordDecision(d.Action.String())
	if d.Action != reorg.Build {
		return d, false, a.act(ctx, reorg.Input{}, d)
	}
	built, err := a.build(ctx, d, req)
	return d, built, err
}

// build carries out a Build decision: forkchoiceUpdated to the parent with the
// attributes, getPayload, newPayload, and forkchoiceUpdated to the new block.
// Once started it runs to the end even if ctx ends (bounded by EngineTimeout
// per call), so the engine is never left half-way. It reports whether the
// block was built; an engine still syncing is no error, and builds nothing.
func (a *Adapter) build(ctx context.Context, d reorg.Decision, req safesource.BuildRequest) (bool, error) {
	pb, ok := a.engine.(PayloadBuilder)
	if !ok {
		return false, ErrCannotBuild
	}
	a.forgetEngineBlocks()
	old := a.local
	parent := d.BuildParent
	number := parent.Number + 1
	call := func(fn func(context.Context) error) error {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.EngineTimeout)
		defer cancel()
		return fn(ectx)
	}
	fail := func(status string, err error) error {
		a.metrics.RecordForkchoice(status)
		return fmt.Errorf("building block %d on %d (%s): %w", number, parent.Number, parent.Hash, err)
	}

	fc := d.Forkchoice
	var res *eth.ForkchoiceUpdatedResult
	err := call(func(ctx context.Context) (err error) {
		res, err = a.engine.ForkchoiceUpdate(ctx, &fc, req.Attributes)
		return err
	})
	var rpcErr rpc.Error
	switch {
	case errors.As(err, &rpcErr) && rpcErr.ErrorCode() == engine.InvalidPayloadAttributes.ErrorCode():
		err = fmt.Errorf("the engine refused the derived attributes: %w", err)
		a.log.Error("Engine refused derived attributes", "number", number, "parent", parent.Number, "parent_hash", parent.Hash, "err", err)
		a.emit(Event{Kind: EngineInvalid, Decision: d, Old: old, New: old, Err: err})
		return false, fail("build-invalid-attributes", err)
	case err != nil:
		return false, fail("error", fmt.Errorf("forkchoiceUpdated with attributes: %w", err))
	case res == nil:
		return false, fail("error", errors.New("forkchoiceUpdated with attributes: empty answer"))
	}
	switch st := res.PayloadStatus.Status; {
	case st == eth.ExecutionSyncing || st == eth.ExecutionAccepted:
		a.metrics.RecordForkchoice(string(st))
		a.setSyncing(true)
		a.log.Info("Engine syncing; build waits", "number", number, "parent", parent.Number)
		a.emit(Event{Kind: EngineSyncing, Decision: d, Old: old, New: old})
		return false, nil
	case st != eth.ExecutionValid:
		a.invalid.add(parent.Hash)
		err := fmt.Errorf("forkchoiceUpdated to the parent answered %s: %s", st, validationError(res.PayloadStatus))
		a.emit(Event{Kind: EngineInvalid, Decision: d, Old: old, New: old, Err: err})
		return false, fail(string(st), err)
	case res.PayloadID == nil:
		return false, fail("error", errors.New("forkchoiceUpdated with attributes returned no payload id"))
	}

	var env *eth.ExecutionPayloadEnvelope
	err = call(func(ctx context.Context) (err error) {
		env, err = pb.GetPayload(ctx, eth.PayloadInfo{ID: *res.PayloadID, Timestamp: uint64(req.Attributes.Timestamp)})
		return err
	})
	switch {
	case err != nil:
		return false, fail("error", fmt.Errorf("getPayload: %w", err))
	case env == nil || env.ExecutionPayload == nil:
		return false, fail("error", errors.New("getPayload: empty answer"))
	}
	payload := env.ExecutionPayload
	if payload.ParentHash != parent.Hash || uint64(payload.BlockNumber) != number {
		return false, fail("error", fmt.Errorf("getPayload gave block %d on %s", uint64(payload.BlockNumber), payload.ParentHash))
	}
	if a.rejectedHash(payload.BlockHash) {
		// the same attributes build the same block: never send it again
		return false, fail("build-rejected", fmt.Errorf("the engine built %s, which it declared INVALID before", payload.BlockHash))
	}
	var status *eth.PayloadStatusV1
	err = call(func(ctx context.Context) (err error) {
		status, err = a.engine.NewPayload(ctx, payload, env.ParentBeaconBlockRoot)
		return err
	})
	switch {
	case err != nil:
		return false, fail("error", fmt.Errorf("newPayload %s: %w", payload.BlockHash, err))
	case status == nil:
		return false, fail("error", fmt.Errorf("newPayload %s: empty answer", payload.BlockHash))
	case status.Status == eth.ExecutionInvalid || status.Status == eth.ExecutionInvalidBlockHash:
		a.invalid.add(payload.BlockHash)
		err := fmt.Errorf("newPayload %s answered %s: %s", payload.BlockHash, status.Status, validationError(*status))
		a.emit(Event{Kind: EngineInvalid, Decision: d, Old: old, New: old, Err: err})
		return false, fail(string(status.Status), err)
	case status.Status != eth.ExecutionValid:
		return false, fail(string(status.Status), fmt.Errorf("newPayload %s answered %s", payload.BlockHash, status.Status))
	}

	fc.HeadBlockHash = payload.BlockHash
	err = call(func(ctx context.Context) (err error) {
		res, err = a.engine.ForkchoiceUpdate(ctx, &fc, nil)
		return err
	})
	switch {
	case err != nil:
		return false, fail("error", fmt.Errorf("forkchoiceUpdated to the built block %s: %w", payload.BlockHash, err))
	case res == nil || res.PayloadStatus.Status != eth.ExecutionValid:
		return false, fail("error", fmt.Errorf("forkchoiceUpdated to the built block %s: not VALID", payload.BlockHash))
	}
	a.metrics.RecordForkchoice("build-valid")
	built, err := a.engineLookup(ctx, number)
	if err != nil {
		return false, fmt.Errorf("reading the built block %d: %w", number, err)
	}
	if built.Hash != payload.BlockHash {
		return false, fmt.Errorf("the engine holds %s at %d, not the built block %s", built.Hash, number, payload.BlockHash)
	}
	a.local = reorg.Local{Unsafe: built, Safe: d.Next.Safe, Finalized: d.Next.Finalized}
	a.headOnSafe = false // not checked here: the tip path reads the engine if it needs to know
	a.setSyncing(false)
	a.log.Debug("Built derived block", "number", built.Number, "hash", built.Hash, "parent", parent.Number,
		"txs", len(payload.Transactions), "derived_from", req.DerivedFrom.Number)
	a.reportReorg(d, old)
	a.emit(Event{Kind: Built, Decision: d, Old: old, New: a.local})
	return true, nil
}
