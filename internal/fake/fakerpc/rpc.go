package fakerpc

import (
	"encoding/json"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// Error is a JSON-RPC error with a code, as a fake server's method returns it.
type Error struct {
	// Code is the JSON-RPC error code, e.g. -32602 for invalid params.
	Code int
	// Msg is the error message.
	Msg string
}

// Error returns e.Msg.
func (e *Error) Error() string { return e.Msg }

// ErrorCode returns e.Code; go-ethereum's rpc server sends it as the error code.
func (e *Error) ErrorCode() int { return e.Code }

// MarshalBlock encodes b like op-geth's eth_getBlockBy*: the header fields
// and hash, then transactions as objects (fullTx) or hashes.
func MarshalBlock(b *types.Block, fullTx bool) (json.RawMessage, error) {
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
