package opstack

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// ErrL1OriginReorged is returned by BuildL2 once the L1 under the
// sequencer's head changed: the harness does not reorg the sequencer.
var ErrL1OriginReorged = errors.New("opstack: the L1 origin of the sequencer's head was reorged out")

// BuildL2 builds n blocks on the sequencer's head, each made canonical in
// turn, and returns their refs. Block i (0-based within this call) carries
// the attributes op-node's attributes builder makes for it (the L1-info
// deposit) followed by txs(i), raw signed L2 transactions such as
// opgeth.TransferTxs; txs may be nil. A transaction op-geth cannot include
// fails the build.
//
// Before each block the L1 is advanced while its next block's time is not
// after the new L2 block's time; the block's L1 origin is then chosen as
// op-node's sequencer does: the next L1 block once it exists and its time is
// not after the L2 block's, else the parent's origin while within the
// maximum sequencer drift.
func (s *Stack) BuildL2(ctx context.Context, n int, txs func(i int) [][]byte) ([]eth.L2BlockRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	refs := make([]eth.L2BlockRef, 0, n)
	for i := range n {
		var user [][]byte
		if txs != nil {
			user = txs(i)
		}
		ref, err := s.buildOne(ctx, user)
		if err != nil {
			return refs, err
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// buildOne builds one block on the sequencer's head; the caller holds s.mu.
func (s *Stack) buildOne(ctx context.Context, user [][]byte) (eth.L2BlockRef, error) {
	head := s.seq.Head()
	at := head.Time + s.rollupCfg.BlockTime
	s.paceL1(at)
	origin, err := s.nextOrigin(ctx, head)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("opstack: L1 origin for block %d: %w", head.Number+1, err)
	}
	attrs, err := s.builder.PreparePayloadAttributes(ctx, head, origin.ID())
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("opstack: attributes for block %d on %s, origin %s: %w", head.Number+1, head, origin, err)
	}
	attrs.NoTxPool = true // exactly these transactions, as derivation will rebuild them
	for _, tx := range user {
		attrs.Transactions = append(attrs.Transactions, tx)
	}
	ref, err := s.seq.BuildAttributes(ctx, head, attrs)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("opstack: %w", err)
	}
	if ref.L1Origin != origin.ID() || ref.Time != at {
		return eth.L2BlockRef{}, fmt.Errorf("opstack: built %s with origin %s at time %d, want origin %s at time %d", ref, ref.L1Origin, ref.Time, origin, at)
	}
	return ref, nil
}

// paceL1 advances the L1 while its next block's time is not after l2Time.
func (s *Stack) paceL1(l2Time uint64) {
	for s.l1.Head().Time+s.l1BlockTime <= l2Time {
		s.l1.Advance(1)
	}
}

// nextOrigin picks the L1 origin of the child of head, like op-node's
// L1OriginSelector.
func (s *Stack) nextOrigin(ctx context.Context, head eth.L2BlockRef) (eth.L1BlockRef, error) {
	current, err := s.l1Client.L1BlockRefByHash(ctx, head.L1Origin.Hash)
	if err != nil {
		return eth.L1BlockRef{}, fmt.Errorf("reading the current origin %s: %w", head.L1Origin, err)
	}
	switch canon, err := s.l1Client.L1BlockRefByNumber(ctx, current.Number); {
	case errors.Is(err, ethereum.NotFound) || err == nil && canon.Hash != current.Hash:
		return eth.L1BlockRef{}, fmt.Errorf("%w: origin %s is not canonical", ErrL1OriginReorged, current)
	case err != nil:
		return eth.L1BlockRef{}, fmt.Errorf("reading L1 block %d: %w", current.Number, err)
	}
	at := head.Time + s.rollupCfg.BlockTime
	next, err := s.l1Client.L1BlockRefByNumber(ctx, current.Number+1)
	switch {
	case errors.Is(err, ethereum.NotFound):
		// no next origin yet: keep the current one while the drift allows
	case err != nil:
		return eth.L1BlockRef{}, fmt.Errorf("reading L1 block %d: %w", current.Number+1, err)
	case next.ParentHash != current.Hash:
		return eth.L1BlockRef{}, fmt.Errorf("%w: L1 block %s does not build on origin %s", ErrL1OriginReorged, next, current)
	case next.Time <= at:
		return next, nil
	}
	if drift := rollup.NewChainSpec(s.rollupCfg).MaxSequencerDrift(current.Time); at > current.Time+drift {
		return eth.L1BlockRef{}, fmt.Errorf("block time %d is past origin %s by more than the drift %d s, and no next L1 block", at, current, drift)
	}
	return current, nil
}
