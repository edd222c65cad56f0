package fakel1

import (
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/lightcl/lightcl/internal/fake/fakerpc"
)

// Include queues signed transactions (legacy, access-list or dynamic-fee:
// the L1 is pre-Cancun) for the next block that Advance, or SetHead
// extending the chain, appends to the head's fork. That block carries them
// in order, each with a successful receipt (status 1, its intrinsic gas used,
// no logs), and valid transaction and receipts roots. Nothing else is
// checked: nonces, balances and fees are not. Include needs a Linked L1; a
// nil or blob or set-code transaction, or an L1 that is not Linked, is a
// setup mistake.
func (l *L1) Include(txs ...*types.Transaction) {
	if !l.cfg.Linked {
		l.fail("testutil: L1.Include: needs a Linked L1 (L1Config.Linked), whose blocks can carry transactions")
		return
	}
	for i, tx := range txs {
		switch {
		case tx == nil:
			l.fail("testutil: L1.Include: transaction %d is nil", i)
			return
		case tx.Type() > types.DynamicFeeTxType:
			l.fail("testutil: L1.Include: transaction %d (%s) has type %d; the L1 is pre-Cancun", i, tx.Hash(), tx.Type())
			return
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, txs...)
}

// takePendingLocked returns the queued transactions for a chain extension of
// k blocks and empties the queue; with k = 0 no block is built and the queue
// is kept. Callers hold l.mu.
func (l *L1) takePendingLocked(k int) []*types.Transaction {
	if k <= 0 {
		return nil
	}
	txs := l.pending
	l.pending = nil
	return txs
}

// linkedL1BlockWithTxs builds a post-merge L1 block at height n on parent
// carrying txs (maybe none), an empty withdrawals list and the tag in its
// extra data, and returns it with its receipts, their derived fields filled.
func linkedL1BlockWithTxs(parent common.Hash, n uint64, tag uint64, txs []*types.Transaction, chainID uint64) (*types.Block, types.Receipts) {
	header := linkedL1Header(parent, n, tag)
	receipts := make(types.Receipts, len(txs))
	var cumulative uint64
	for i, tx := range txs {
		used := intrinsicGas(tx)
		cumulative += used
		receipts[i] = &types.Receipt{
			Type:              tx.Type(),
			Status:            types.ReceiptStatusSuccessful,
			CumulativeGasUsed: cumulative,
			Logs:              []*types.Log{},
		}
	}
	header.GasUsed = cumulative
	body := &types.Body{Transactions: txs, Withdrawals: []*types.Withdrawal{}}
	b := types.NewBlock(header, body, receipts, trie.NewStackTrie(nil), types.DefaultBlockConfig)
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(chainID))
	var prev uint64
	for i, r := range receipts {
		r.DeriveFields(signer, types.DeriveReceiptContext{
			BlockHash:   b.Hash(),
			BlockNumber: n,
			BlockTime:   b.Time(),
			BaseFee:     b.BaseFee(),
			GasUsed:     r.CumulativeGasUsed - prev,
			Tx:          txs[i],
			TxIndex:     uint(i),
		})
		prev = r.CumulativeGasUsed
	}
	return b, receipts
}

// intrinsicGas is the gas a transaction that runs no code uses: its
// intrinsic gas (Shanghai rules), at most its gas limit.
func intrinsicGas(tx *types.Transaction) uint64 {
	gas, err := core.IntrinsicGas(tx.Data(), tx.AccessList(), nil, tx.To() == nil, true, true, true)
	if err != nil || gas > tx.Gas() {
		return tx.Gas()
	}
	return gas
}

// marshalBlockLocked encodes b like geth's eth_getBlockBy*: with fullTx, each
// transaction as geth's RPC transaction object (its fields plus blockHash,
// blockNumber, blockTimestamp, from, transactionIndex and the effective
// gasPrice). Callers hold l.mu.
func (l *L1) marshalBlockLocked(b *types.Block, fullTx bool) (json.RawMessage, error) {
	raw, err := fakerpc.MarshalBlock(b, fullTx)
	if err != nil || !fullTx || len(b.Transactions()) == 0 {
		return raw, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("re-reading block %s: %w", b.Hash(), err)
	}
	txs := make([]json.RawMessage, len(b.Transactions()))
	for i, tx := range b.Transactions() {
		if txs[i], err = l.marshalTx(b, i, tx); err != nil {
			return nil, err
		}
	}
	if fields["transactions"], err = json.Marshal(txs); err != nil {
		return nil, fmt.Errorf("encoding transactions of block %s: %w", b.Hash(), err)
	}
	return json.Marshal(fields)
}

// marshalTx encodes tx, the i-th transaction of b, like geth's
// RPCTransaction.
func (l *L1) marshalTx(b *types.Block, i int, tx *types.Transaction) (json.RawMessage, error) {
	raw, err := tx.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding transaction %d of block %s: %w", i, b.Hash(), err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("re-reading transaction %d of block %s: %w", i, b.Hash(), err)
	}
	fields["blockHash"] = b.Hash()
	fields["blockNumber"] = (*hexutil.Big)(b.Number())
	fields["blockTimestamp"] = hexutil.Uint64(b.Time())
	fields["transactionIndex"] = hexutil.Uint64(i)
	fields["from"] = l.sender(tx)
	fields["gasPrice"] = (*hexutil.Big)(effectiveGasPrice(tx, b.BaseFee()))
	return json.Marshal(fields)
}

// sender returns tx's signer on this L1's chain, or the zero address for a
// transaction signed for another chain (which Include lets through).
func (l *L1) sender(tx *types.Transaction) common.Address {
	from, err := types.Sender(types.LatestSignerForChainID(new(big.Int).SetUint64(l.cfg.ChainID)), tx)
	if err != nil {
		return common.Address{}
	}
	return from
}

// effectiveGasPrice is what tx pays per gas at base fee baseFee.
func effectiveGasPrice(tx *types.Transaction, baseFee *big.Int) *big.Int {
	if tx.Type() == types.LegacyTxType || tx.Type() == types.AccessListTxType || baseFee == nil {
		return tx.GasPrice()
	}
	return new(big.Int).Add(baseFee, tx.EffectiveGasTipValue(baseFee))
}

// marshalReceipt encodes the i-th receipt of b like geth's MarshalReceipt.
func (l *L1) marshalReceipt(b *types.Block, i int, r *types.Receipt) map[string]any {
	tx := b.Transactions()[i]
	fields := map[string]any{
		"blockHash":         b.Hash(),
		"blockNumber":       hexutil.Uint64(b.NumberU64()),
		"transactionHash":   tx.Hash(),
		"transactionIndex":  hexutil.Uint64(i),
		"from":              l.sender(tx),
		"to":                tx.To(),
		"gasUsed":           hexutil.Uint64(r.GasUsed),
		"cumulativeGasUsed": hexutil.Uint64(r.CumulativeGasUsed),
		"contractAddress":   nil,
		"logs":              r.Logs,
		"logsBloom":         r.Bloom,
		"type":              hexutil.Uint(tx.Type()),
		"effectiveGasPrice": (*hexutil.Big)(r.EffectiveGasPrice),
		"status":            hexutil.Uint(r.Status),
	}
	if r.ContractAddress != (common.Address{}) {
		fields["contractAddress"] = r.ContractAddress
	}
	return fields
}

// GetBlockReceipts serves eth_getBlockReceipts for a block hash (any block
// the L1 built), number or label (canonical chain): null when absent, an
// empty list for a block without transactions.
func (a *l1EthAPI) GetBlockReceipts(blockNrOrHash rpc.BlockNumberOrHash) ([]map[string]any, error) {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *types.Block
	if hash, ok := blockNrOrHash.Hash(); ok {
		b = l.blocks[hash]
	} else if nr, ok := blockNrOrHash.Number(); ok {
		b = l.canonicalLocked(nr)
	}
	if b == nil {
		return nil, nil
	}
	out := make([]map[string]any, 0, len(b.Transactions()))
	for i, r := range l.receipts[b.Hash()] {
		out = append(out, l.marshalReceipt(b, i, r))
	}
	return out, nil
}

// GetTransactionReceipt serves eth_getTransactionReceipt for a transaction
// on the canonical chain; null otherwise.
func (a *l1EthAPI) GetTransactionReceipt(hash common.Hash) (map[string]any, error) {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.canon {
		for i, tx := range e.block.Transactions() {
			if tx.Hash() == hash {
				return l.marshalReceipt(e.block, i, l.receipts[e.block.Hash()][i]), nil
			}
		}
	}
	return nil, nil
}

// canonicalLocked returns the canonical block for a number or label as
// eth_getBlockByNumber reads it, or nil. Callers hold l.mu.
func (l *L1) canonicalLocked(nr rpc.BlockNumber) *types.Block {
	head := uint64(len(l.canon) - 1)
	var n uint64
	switch nr {
	case rpc.LatestBlockNumber, rpc.PendingBlockNumber:
		n = head
	case rpc.SafeBlockNumber:
		n = l.safe
	case rpc.FinalizedBlockNumber:
		n = l.finalized
	case rpc.EarliestBlockNumber:
		n = 0
	default:
		if nr < 0 || uint64(nr) > head {
			return nil
		}
		n = uint64(nr)
	}
	return l.canon[n].block
}
