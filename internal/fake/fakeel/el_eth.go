package fakeel

import (
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/lightcl/lightcl/internal/fake/fakerpc"
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
			return nil, &fakerpc.Error{Code: -32602, Msg: fmt.Sprintf("invalid block number or label %q: %v", numberOrLabel, err)}
		}
		if n >= uint64(len(e.canon)) {
			return nil, nil
		}
		hash = e.canon[n]
	}
	return fakerpc.MarshalBlock(e.blocks[hash], fullTx)
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
	return fakerpc.MarshalBlock(b, fullTx)
}
