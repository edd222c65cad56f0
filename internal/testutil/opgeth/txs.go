package opgeth

import (
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
)

var (
	transferValue = big.NewInt(params.GWei)
	transferTip   = big.NewInt(params.Wei)
	transferCap   = big.NewInt(10 * params.GWei) // far above the base fee of these near-empty blocks
)

// TransferTxs returns count signed EIP-1559 value transfers (1 gwei, 21,000
// gas) from key's account on chain chainID, with nonces nonceStart,
// nonceStart+1, …, each to a fresh recipient, encoded for
// PayloadAttributes.Transactions (e.g. the txs of Sequencer.Build). It
// panics only if key cannot sign.
func TransferTxs(key *ecdsa.PrivateKey, chainID *big.Int, nonceStart uint64, count int) [][]byte {
	signer := types.LatestSignerForChainID(chainID)
	out := make([][]byte, 0, count)
	for i := range uint64(count) {
		nonce := nonceStart + i
		to := common.BytesToAddress(crypto.Keccak256([]byte("lightcl/opgeth recipient"), binary.BigEndian.AppendUint64(nil, nonce)))
		tx, err := types.SignNewTx(key, signer, &types.DynamicFeeTx{
			ChainID:   chainID,
			Nonce:     nonce,
			GasTipCap: transferTip,
			GasFeeCap: transferCap,
			Gas:       params.TxGas,
			To:        &to,
			Value:     transferValue,
		})
		if err != nil {
			panic(fmt.Sprintf("opgeth: signing transfer %d: %v", nonce, err))
		}
		raw, err := tx.MarshalBinary()
		if err != nil {
			panic(fmt.Sprintf("opgeth: encoding transfer %d: %v", nonce, err))
		}
		out = append(out, raw)
	}
	return out
}
