package testutil

import (
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// ethAPI serves the eth_ namespace. Every exported method is an RPC method.
type ethAPI struct{ el *EL }

// ChainId serves eth_chainId: ELConfig.ChainID, or the Tree's chain id.
func (a *ethAPI) ChainId() *hexutil.Big {
	if id := a.el.cfg.ChainID; id != 0 {
		return (*hexutil.Big)(new(big.Int).SetUint64(id))
	}
	return (*hexutil.Big)(a.el.rollup.L2ChainID)
}

// BlockNumber serves eth_blockNumber: the canonical head's number.
func (a *ethAPI) BlockNumber() hexutil.Uint64 {
	e := a.el
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceSync()
	return hexutil.Uint64(len(e.canon) - 1)
}

// GetBlockByNumber serves eth_getBlockByNumber for a label (latest, pending,
// safe, finalized, earliest) or a 0x number on the canonical chain; null when
// absent.
func (a *ethAPI) GetBlockByNumber(numberOrLabel string, fullTx bool) (json.RawMessage, error) {
	e := a.el
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceSync()
	var hash common.Hash
	switch numberOrLabel {
	case "latest", "pending":
		hash = e.head()
	case "safe", "finalized":
		hash = e.safe
		if numberOrLabel == "finalized" {
			hash = e.finalized
		}
		if hash == (common.Hash{}) { // op-geth's answer before the first forkchoice update sets it
			return nil, fmt.Errorf("%s block not found", numberOrLabel)
		}
	case "earliest":
		hash = e.canon[0]
	default:
		n, err := hexutil.DecodeUint64(numberOrLabel)
		if err != nil {
			return nil, &rpcError{code: -32602, msg: fmt.Sprintf("invalid block number or label %q: %v", numberOrLabel, err)}
		}
		if n >= uint64(len(e.canon)) {
			return nil, nil
		}
		hash = e.canon[n]
	}
	return marshalBlock(e.blocks[hash], fullTx)
}

// GetBlockByHash serves eth_getBlockByHash for any block the EL has,
// canonical or not; null when absent.
func (a *ethAPI) GetBlockByHash(hash common.Hash, fullTx bool) (json.RawMessage, error) {
	e := a.el
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceSync()
	b, ok := e.blocks[hash]
	if !ok {
		return nil, nil
	}
	return marshalBlock(b, fullTx)
}

// marshalBlock encodes b like op-geth's eth_getBlockBy*: the header fields
// and hash, then transactions as objects (fullTx) or hashes.
func marshalBlock(b *types.Block, fullTx bool) (json.RawMessage, error) {
	hdr, err := json.Marshal(b.Header())
	if err != nil {
		return nil, fmt.Errorf("encoding header of block %s: %w", b.Hash(), err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &fields); err != nil {
		return nil, fmt.Errorf("re-reading header of block %s: %w", b.Hash(), err)
	}
	txs := make([]any, len(b.Transactions()))
	for i, tx := range b.Transactions() {
		if fullTx {
			txs[i] = tx
		} else {
			txs[i] = tx.Hash()
		}
	}
	set := func(name string, v any) {
		if err == nil {
			fields[name], err = json.Marshal(v)
		}
	}
	set("transactions", txs)
	set("uncles", []common.Hash{})
	set("size", hexutil.Uint64(b.Size()))
	if w := b.Withdrawals(); w != nil {
		set("withdrawals", w)
	}
	if err != nil {
		return nil, fmt.Errorf("encoding block %s: %w", b.Hash(), err)
	}
	return json.Marshal(fields)
}
