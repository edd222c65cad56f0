package engineadapter

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource"
)

// ErrCannotBuild is wrapped when a source asks for a block to be built and the
// engine has no getPayload.
var ErrCannotBuild = errors.New("engine cannot build blocks (no GetPayload)")

// build carries out a Build decision: forkchoiceUpdated to the parent with the
// attributes, getPayload, newPayload, and forkchoiceUpdated to the new block.
// Once started it runs to the end even if ctx ends (bounded by EngineTimeout
// per call), so the engine is never left half-way. It answers with the block
// built; an engine still syncing is no error, and builds nothing.
func (a *Adapter) build(ctx context.Context, d reorg.Decision, req safesource.BuildRequest) reorg.BlockBuilt {
	pb, ok := a.engine.(PayloadBuilder)
	if !ok {
		return reorg.BlockBuilt{Err: ErrCannotBuild}
	}
	parent := d.BuildParent
	number := parent.Number + 1
	call := func(fn func(context.Context) error) error {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.EngineTimeout)
		defer cancel()
		return fn(ectx)
	}
	fail := func(status string, err error) reorg.BlockBuilt {
		a.metrics.RecordForkchoice(status)
		return reorg.BlockBuilt{Err: fmt.Errorf("building block %d on %d (%s): %w", number, parent.Number, parent.Hash, err)}
	}
	invalid := func(status string, bad common.Hash, err error) reorg.BlockBuilt {
		b := fail(status, err)
		b.EngineInvalid, b.Invalid = true, bad
		return b
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
		return invalid("build-invalid-attributes", common.Hash{}, err)
	case err != nil:
		return fail("error", fmt.Errorf("forkchoiceUpdated with attributes: %w", err))
	case res == nil:
		return fail("error", errors.New("forkchoiceUpdated with attributes: empty answer"))
	}
	switch st := res.PayloadStatus.Status; {
	case st == eth.ExecutionSyncing || st == eth.ExecutionAccepted:
		a.metrics.RecordForkchoice(string(st))
		return reorg.BlockBuilt{Syncing: true}
	case st != eth.ExecutionValid:
		err := fmt.Errorf("forkchoiceUpdated to the parent answered %s: %s", st, validationError(res.PayloadStatus))
		return invalid(string(st), parent.Hash, err)
	case res.PayloadID == nil:
		return fail("error", errors.New("forkchoiceUpdated with attributes returned no payload id"))
	}

	var env *eth.ExecutionPayloadEnvelope
	err = call(func(ctx context.Context) (err error) {
		env, err = pb.GetPayload(ctx, eth.PayloadInfo{ID: *res.PayloadID, Timestamp: uint64(req.Attributes.Timestamp)})
		return err
	})
	switch {
	case err != nil:
		return fail("error", fmt.Errorf("getPayload: %w", err))
	case env == nil || env.ExecutionPayload == nil:
		return fail("error", errors.New("getPayload: empty answer"))
	}
	payload := env.ExecutionPayload
	if payload.ParentHash != parent.Hash || uint64(payload.BlockNumber) != number {
		return fail("error", fmt.Errorf("getPayload gave block %d on %s", uint64(payload.BlockNumber), payload.ParentHash))
	}
	if a.rejectedHash(payload.BlockHash) {
		// the same attributes build the same block: never send it again
		return fail("build-rejected", fmt.Errorf("the engine built %s, which it declared INVALID before", payload.BlockHash))
	}
	var status *eth.PayloadStatusV1
	err = call(func(ctx context.Context) (err error) {
		status, err = a.engine.NewPayload(ctx, payload, env.ParentBeaconBlockRoot)
		return err
	})
	switch {
	case err != nil:
		return fail("error", fmt.Errorf("newPayload %s: %w", payload.BlockHash, err))
	case status == nil:
		return fail("error", fmt.Errorf("newPayload %s: empty answer", payload.BlockHash))
	case status.Status == eth.ExecutionInvalid || status.Status == eth.ExecutionInvalidBlockHash:
		err := fmt.Errorf("newPayload %s answered %s: %s", payload.BlockHash, status.Status, validationError(*status))
		return invalid(string(status.Status), payload.BlockHash, err)
	case status.Status != eth.ExecutionValid:
		return fail(string(status.Status), fmt.Errorf("newPayload %s answered %s", payload.BlockHash, status.Status))
	}

	fc.HeadBlockHash = payload.BlockHash
	err = call(func(ctx context.Context) (err error) {
		res, err = a.engine.ForkchoiceUpdate(ctx, &fc, nil)
		return err
	})
	switch {
	case err != nil:
		return fail("error", fmt.Errorf("forkchoiceUpdated to the built block %s: %w", payload.BlockHash, err))
	case res == nil || res.PayloadStatus.Status != eth.ExecutionValid:
		return fail("error", fmt.Errorf("forkchoiceUpdated to the built block %s: not VALID", payload.BlockHash))
	}
	a.metrics.RecordForkchoice("build-valid")
	built, err := a.engineLookup(ctx, number)
	if err != nil {
		return reorg.BlockBuilt{Err: fmt.Errorf("reading the built block %d: %w", number, err)}
	}
	if built.Hash != payload.BlockHash {
		return reorg.BlockBuilt{Err: fmt.Errorf("the engine holds %s at %d, not the built block %s", built.Hash, number, payload.BlockHash)}
	}
	a.log.Debug("Built derived block", "number", built.Number, "hash", built.Hash, "parent", parent.Number,
		"txs", len(payload.Transactions), "derived_from", req.DerivedFrom.Number)
	return reorg.BlockBuilt{Built: built}
}
