package fakel1_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/params"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/testutil"
)

var testInbox = common.HexToAddress("0x00000000000000000000000000000000000face1")

// calldataTxs signs count dynamic-fee transactions to testInbox carrying
// data, from key on the L1 chain, with nonces from nonce.
func calldataTxs(t *testing.T, nonce uint64, count int, data []byte) []*types.Transaction {
	t.Helper()
	key, err := crypto.ToECDSA(crypto.Keccak256([]byte("lightcl/testutil L1 sender")))
	require.NoError(t, err)
	signer := types.LatestSignerForChainID(big.NewInt(fakechain.L1ChainID))
	txs := make([]*types.Transaction, count)
	for i := range txs {
		txs[i], err = types.SignNewTx(key, signer, &types.DynamicFeeTx{
			ChainID:   big.NewInt(fakechain.L1ChainID),
			Nonce:     nonce + uint64(i),
			GasTipCap: big.NewInt(2),
			GasFeeCap: big.NewInt(params.GWei),
			Gas:       100_000,
			To:        &testInbox,
			Data:      data,
		})
		require.NoError(t, err)
	}
	return txs
}

// l1ClientOfKind is an L1Client with hash checks on that fetches receipts
// the way kind does.
func l1ClientOfKind(t *testing.T, l1 *fakel1.L1, kind sources.RPCProviderKind) *sources.L1Client {
	t.Helper()
	c, err := sources.NewL1Client(testutil.DialNoAuth(t, l1.URL(), 5*time.Second), log.NewLogger(log.DiscardHandler()), nil,
		sources.L1ClientSimpleConfig(false, kind, 10))
	require.NoError(t, err)
	return c
}

func TestL1IncludeServesTransactionsAndReceipts(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		kind   sources.RPCProviderKind
		method string
	}{
		{name: "eth_getBlockReceipts (standard)", kind: sources.RPCKindStandard, method: "eth_getBlockReceipts"},
		{name: "batched eth_getTransactionReceipt (basic)", kind: sources.RPCKindBasic, method: "eth_getTransactionReceipt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l1 := testutil.NewL1(t, fakel1.L1Config{Head: 2, Linked: true})
			c := l1ClientOfKind(t, l1, tc.kind)
			txs := calldataTxs(t, 0, 3, []byte{0, 1, 2, 3, 0, 0, 7})
			l1.Include(txs...)
			l1.Advance(2)
			withTxs := l1.Ref(3)

			info, got, err := c.InfoAndTxsByHash(ctx, withTxs.Hash)
			require.NoError(t, err, "block, transactions root and tx objects verify")
			require.Equal(t, withTxs, eth.InfoToL1BlockRef(info))
			require.Len(t, got, 3)
			for i := range txs {
				require.Equal(t, txs[i].Hash(), got[i].Hash())
			}
			_, receipts, err := c.FetchReceipts(ctx, withTxs.Hash)
			require.NoError(t, err, "receipts verify against the block's receipts root")
			require.Positive(t, l1.CallCount(tc.method))
			// 21,000 + 3 zero bytes × 4 + 4 non-zero bytes × 16
			const perTx = 21_000 + 3*4 + 4*16
			for i, r := range receipts {
				require.Equal(t, types.ReceiptStatusSuccessful, r.Status)
				require.Equal(t, uint64(perTx), r.GasUsed)
				require.Equal(t, uint64(perTx*(i+1)), r.CumulativeGasUsed)
				require.Equal(t, txs[i].Hash(), r.TxHash)
				require.Equal(t, uint(i), r.TransactionIndex)
			}
			_, receipts, err = c.FetchReceipts(ctx, l1.Ref(4).Hash)
			require.NoError(t, err)
			require.Empty(t, receipts, "only the first block of an Advance carries the queue")

			_, _, err = c.FetchReceipts(ctx, common.Hash{1})
			require.ErrorIs(t, err, ethereum.NotFound)
		})
	}
}

func TestL1TransactionJSONIsGeths(t *testing.T) {
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 1, Linked: true})
	txs := calldataTxs(t, 5, 1, []byte("batch"))
	l1.Include(txs...)
	l1.Advance(1)
	b := l1.Ref(2)
	rpcClient := testutil.DialNoAuth(t, l1.URL(), 5*time.Second)

	var block struct {
		Transactions []map[string]any `json:"transactions"`
	}
	require.NoError(t, rpcClient.CallContext(ctx, &block, "eth_getBlockByHash", b.Hash, true))
	require.Len(t, block.Transactions, 1)
	tx := block.Transactions[0]
	sender, err := types.Sender(types.LatestSignerForChainID(big.NewInt(fakechain.L1ChainID)), txs[0])
	require.NoError(t, err)
	require.Equal(t, b.Hash.Hex(), tx["blockHash"])
	require.Equal(t, "0x2", tx["blockNumber"])
	require.Equal(t, "0x0", tx["transactionIndex"])
	require.Equal(t, sender.Hex(), common.HexToAddress(tx["from"].(string)).Hex())
	require.Equal(t, txs[0].Hash().Hex(), tx["hash"])
	require.Equal(t, "0x9", tx["gasPrice"], "base fee 7 + tip 2")
	require.Equal(t, "0x5", tx["nonce"])

	var receipt map[string]any
	require.NoError(t, rpcClient.CallContext(ctx, &receipt, "eth_getTransactionReceipt", txs[0].Hash()))
	require.Equal(t, "0x1", receipt["status"])
	require.Equal(t, b.Hash.Hex(), receipt["blockHash"])
	require.Equal(t, common.HexToAddress(tx["from"].(string)).Hex(), common.HexToAddress(receipt["from"].(string)).Hex())

	receipt = map[string]any{"sentinel": true}
	require.NoError(t, rpcClient.CallContext(ctx, &receipt, "eth_getTransactionReceipt", common.Hash{2}))
	require.Nil(t, receipt, "an unknown transaction is null")
	var receipts []map[string]any
	require.NoError(t, rpcClient.CallContext(ctx, &receipts, "eth_getBlockReceipts", "latest"))
	require.Len(t, receipts, 1, "by label, as geth")
	require.NoError(t, rpcClient.CallContext(ctx, &receipts, "eth_getBlockReceipts", "0x1"))
	require.Empty(t, receipts)
	require.NotNil(t, receipts, "a block without transactions has an empty list")
}

func TestL1ReorgDropsIncludedTransactions(t *testing.T) {
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 4, Linked: true})
	c := testutil.DialL1(t, l1.URL())
	plain := testutil.NewL1(t, fakel1.L1Config{Head: 6, Linked: true})
	require.Equal(t, plain.Ref(4), l1.Ref(4), "a Linked L1 is deterministic")

	l1.Include(calldataTxs(t, 0, 2, []byte{1})...)
	l1.SetHead(6)
	withTxs := l1.Ref(5)
	require.NotEqual(t, plain.Ref(5).Hash, withTxs.Hash, "the transactions are in block 5")
	_, txs, err := c.InfoAndTxsByHash(ctx, withTxs.Hash)
	require.NoError(t, err)
	require.Len(t, txs, 2)

	l1.Reorg(4, 0)
	require.Equal(t, plain.Ref(5), l1.Ref(5), "rebuilt without the transactions")
	require.Equal(t, plain.Ref(6), l1.Ref(6))
	_, txs, err = c.InfoAndTxsByHash(ctx, l1.Ref(5).Hash)
	require.NoError(t, err)
	require.Empty(t, txs)
	_, receipts, err := c.FetchReceipts(ctx, withTxs.Hash)
	require.NoError(t, err, "the reorged-out block keeps its receipts by hash")
	require.Len(t, receipts, 2)

	queued := calldataTxs(t, 2, 1, []byte{2})
	l1.Include(queued...)
	l1.Reorg(4, 1)
	_, txs, err = c.InfoAndTxsByHash(ctx, l1.Ref(5).Hash)
	require.NoError(t, err)
	require.Empty(t, txs, "a Reorg leaves the queue alone")
	l1.Advance(0)
	l1.Advance(1)
	_, txs, err = c.InfoAndTxsByHash(ctx, l1.Head().Hash)
	require.NoError(t, err)
	require.Len(t, txs, 1, "the next Advance takes it")
	require.Equal(t, queued[0].Hash(), txs[0].Hash())
}

func TestL1IncludeSetupMistakesPanic(t *testing.T) {
	synthetic, err := fakel1.StartL1(fakel1.L1Config{Head: 2})
	require.NoError(t, err)
	defer synthetic.Close()
	require.Panics(t, func() { synthetic.Include(calldataTxs(t, 0, 1, nil)...) }, "the Tree's synthetic L1 carries no transactions")

	linked, err := fakel1.StartL1(fakel1.L1Config{Head: 2, Linked: true})
	require.NoError(t, err)
	defer linked.Close()
	require.Panics(t, func() { linked.Include(nil) })
	blob := types.NewTx(&types.BlobTx{})
	require.Panics(t, func() { linked.Include(blob) }, "the L1 is pre-Cancun")
}
