package engineadapter

import (
	"context"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
)

// Engine is what the adapter needs from the execution engine: the Engine API's
// forkchoice update and newPayload (for backfill), and block reads.
type Engine interface {
	ForkchoiceUpdate(ctx context.Context, state *eth.ForkchoiceState, attr *eth.PayloadAttributes) (*eth.ForkchoiceUpdatedResult, error)
	NewPayload(ctx context.Context, payload *eth.ExecutionPayload, parentBeaconBlockRoot *common.Hash) (*eth.PayloadStatusV1, error)
	L2BlockRefByLabel(ctx context.Context, label eth.BlockLabel) (eth.L2BlockRef, error)
	L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error)
}

var _ Engine = (*sources.EngineClient)(nil)

// HeaderReader is an engine's header-only read of a label; sources.EngineClient
// has it. With it, a tick whose engine head is still the head the adapter
// holds (read whole before, or a block it took whole from its source) costs a
// header, not a whole block.
type HeaderReader interface {
	InfoByLabel(ctx context.Context, label eth.BlockLabel) (eth.BlockInfo, error)
}

var _ HeaderReader = (*sources.EngineClient)(nil)

// PayloadBuilder is what the adapter also needs from the engine to build a
// block a deriving source asks for (safesource.Builder): getPayload.
// sources.EngineClient has it.
type PayloadBuilder interface {
	GetPayload(ctx context.Context, payloadInfo eth.PayloadInfo) (*eth.ExecutionPayloadEnvelope, error)
}

var _ PayloadBuilder = (*sources.EngineClient)(nil)
