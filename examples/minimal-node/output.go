package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// outputTimeout bounds all the engine calls of one optimism_outputAtBlock
// answer (the block, its header, the proof of the message passer's storage),
// as startTimeout bounds each check at start.
const outputTimeout = startTimeout

// OutputAtBlock answers optimism_outputAtBlock in op-node's shape: the
// version-0 output root of the engine's canonical block at number, computed
// from the local engine (its state root and the L2ToL1MessagePasser's storage
// root, proven against it), with the block's ref and optimism_syncStatus's
// answer. A block the engine does not have answers an error that says whether
// it is above the engine's head; an engine failure is wrapped with the block.
func (api *statusAPI) OutputAtBlock(ctx context.Context, number hexutil.Uint64) (*eth.OutputResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, outputTimeout)
	defer cancel()
	status, err := api.SyncStatus(ctx)
	if err != nil {
		return nil, err
	}
	engine := api.n.engine
	ref, err := engine.L2BlockRefByNumber(ctx, uint64(number))
	if errors.Is(err, ethereum.NotFound) {
		return nil, api.missingBlock(ctx, uint64(number))
	}
	if err != nil {
		return nil, fmt.Errorf("block %d: the engine: %w", number, err)
	}
	output, err := engine.OutputV0AtBlock(ctx, ref.Hash)
	if err != nil {
		return nil, fmt.Errorf("block %d (%s): computing its output from the engine: %w", number, ref.Hash, err)
	}
	return &eth.OutputResponse{
		Version:               output.Version(),
		OutputRoot:            eth.OutputRoot(output),
		BlockRef:              ref,
		WithdrawalStorageRoot: common.Hash(output.MessagePasserStorageRoot),
		StateRoot:             common.Hash(output.StateRoot),
		Status:                status,
	}, nil
}

// missingBlock says why the engine has no canonical block at number: it is
// above the engine's head, or below it and missing (the engine pruned or is
// still syncing it). Both wrap ethereum.NotFound.
func (api *statusAPI) missingBlock(ctx context.Context, number uint64) error {
	head, err := api.n.engine.L2BlockRefByLabel(ctx, eth.Unsafe)
	if err != nil {
		return fmt.Errorf("block %d not found on the engine's canonical chain; reading the engine's head: %w", number, err)
	}
	if number > head.Number {
		return fmt.Errorf("block %d is above the engine's head %d: %w", number, head.Number, ethereum.NotFound)
	}
	return fmt.Errorf("block %d not found on the engine's canonical chain (head %d): %w", number, head.Number, ethereum.NotFound)
}
