package l1verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
)

// RPCSource is an L1Source over op-service's client.RPC that can also read
// the L1 head, safe and finalized blocks in one batched request (L1Heads),
// which a Verifier uses so that a tick costs one request even when L1
// finality moves, and so that its Status reports L1's safe block at no cost.
// Every header is checked as sources.L1Client checks it (the hash recomputed
// from the fields; pre-merge headers allowed), but nothing is cached: the
// Verifier keeps its own cache. Safe for concurrent use.
type RPCSource struct {
	rpc client.RPC
}

var (
	_ L1Source      = (*RPCSource)(nil)
	_ l1HeadsSource = (*RPCSource)(nil)
)

// NewRPCSource returns an RPCSource that reads L1 through c.
func NewRPCSource(c client.RPC) *RPCSource { return &RPCSource{rpc: c} }

// L1BlockRefByLabel returns the block a label ("latest", "safe",
// "finalized") points at; a label the node has no block for yet wraps ethereum.NotFound.
func (s *RPCSource) L1BlockRefByLabel(ctx context.Context, label eth.BlockLabel) (eth.L1BlockRef, error) {
	var hdr *sources.RPCHeader
	err := s.rpc.CallContext(ctx, &hdr, "eth_getBlockByNumber", string(label), false)
	return blockRef(hdr, err, string(label), nil)
}

// L1BlockRefByNumber returns the canonical block at height num; a height the
// node lacks wraps ethereum.NotFound.
func (s *RPCSource) L1BlockRefByNumber(ctx context.Context, num uint64) (eth.L1BlockRef, error) {
	var hdr *sources.RPCHeader
	err := s.rpc.CallContext(ctx, &hdr, "eth_getBlockByNumber", hexutil.EncodeUint64(num), false)
	return blockRef(hdr, err, fmt.Sprintf("block %d", num), &num)
}

// L1Heads reads the L1 head ("latest"), safe and finalized blocks in one
// batched request. safe and finalized are zero when the node has no such
// block yet (a null answer, or geth's "safe block not found"); any other
// failure of any of the three reads is an error.
func (s *RPCSource) L1Heads(ctx context.Context) (latest, safe, finalized eth.L1BlockRef, err error) {
	var latestHdr, safeHdr, finalizedHdr *sources.RPCHeader
	batch := []rpc.BatchElem{
		{Method: "eth_getBlockByNumber", Args: []any{string(eth.Unsafe), false}, Result: &latestHdr},
		{Method: "eth_getBlockByNumber", Args: []any{string(eth.Safe), false}, Result: &safeHdr},
		{Method: "eth_getBlockByNumber", Args: []any{string(eth.Finalized), false}, Result: &finalizedHdr},
	}
	if err := s.rpc.BatchCallContext(ctx, batch); err != nil {
		return eth.L1BlockRef{}, eth.L1BlockRef{}, eth.L1BlockRef{}, fmt.Errorf("reading the L1 head, safe and finalized blocks: %w", err)
	}
	latest, err = blockRef(latestHdr, batch[0].Error, string(eth.Unsafe), nil)
	if err != nil {
		return eth.L1BlockRef{}, eth.L1BlockRef{}, eth.L1BlockRef{}, err
	}
	// safe serves the status only: a bad answer for it leaves it unknown
	// (zero) rather than failing the verification the batch is for
	safe, err = labelRef(safeHdr, batch[1].Error, eth.Safe)
	if err != nil {
		safe = eth.L1BlockRef{}
	}
	finalized, err = labelRef(finalizedHdr, batch[2].Error, eth.Finalized)
	if err != nil {
		return eth.L1BlockRef{}, eth.L1BlockRef{}, eth.L1BlockRef{}, err
	}
	return latest, safe, finalized, nil
}

// labelRef is blockRef for a label L1 may have no block for yet: that gives a
// zero ref, not an error.
func labelRef(hdr *sources.RPCHeader, err error, label eth.BlockLabel) (eth.L1BlockRef, error) {
	ref, err := blockRef(hdr, err, string(label), nil)
	if errors.Is(err, ethereum.NotFound) {
		return eth.L1BlockRef{}, nil
	}
	return ref, err
}

// blockRef checks one eth_getBlockByNumber answer for what (a label, or
// "block n" with want its number) and returns its ref. A null answer, or the
// "not found" errors geth and erigon give for labels not set yet, wrap
// ethereum.NotFound; a header whose fields do not hash to its hash, or of
// another height than asked, is an error.
func blockRef(hdr *sources.RPCHeader, err error, what string, want *uint64) (eth.L1BlockRef, error) {
	if err != nil {
		return eth.L1BlockRef{}, fmt.Errorf("reading L1 %s: %w", what, eth.MaybeAsNotFoundErr(err))
	}
	if hdr == nil {
		return eth.L1BlockRef{}, fmt.Errorf("reading L1 %s: %w", what, ethereum.NotFound)
	}
	info, err := hdr.Info(false /* trustCache: verify the hash */, false /* mustBePostMerge */)
	if err != nil {
		return eth.L1BlockRef{}, fmt.Errorf("reading L1 %s: %w", what, err)
	}
	if want != nil && info.NumberU64() != *want {
		return eth.L1BlockRef{}, fmt.Errorf("reading L1 %s: the node answered block %d (%s)", what, info.NumberU64(), info.Hash())
	}
	return eth.InfoToL1BlockRef(info), nil
}
