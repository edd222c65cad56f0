package fakeel

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakerpc"
)

// errPayloadBuilding answers an FCU with payload attributes: the EL only follows.
var errPayloadBuilding = engine.GenericServerError.With(errors.New("testutil EL: payload building not supported"))

// engineAPI serves the engine_ namespace. Every exported method is an RPC method.
type engineAPI struct{ el *EL }

// ForkchoiceUpdatedV1 serves engine_forkchoiceUpdatedV1.
func (a *engineAPI) ForkchoiceUpdatedV1(state eth.ForkchoiceState, attrs *eth.PayloadAttributes) (*eth.ForkchoiceUpdatedResult, error) {
	return a.el.forkchoiceUpdated(state, attrs)
}

// ForkchoiceUpdatedV2 serves engine_forkchoiceUpdatedV2.
func (a *engineAPI) ForkchoiceUpdatedV2(state eth.ForkchoiceState, attrs *eth.PayloadAttributes) (*eth.ForkchoiceUpdatedResult, error) {
	return a.el.forkchoiceUpdated(state, attrs)
}

// ForkchoiceUpdatedV3 serves engine_forkchoiceUpdatedV3.
func (a *engineAPI) ForkchoiceUpdatedV3(state eth.ForkchoiceState, attrs *eth.PayloadAttributes) (*eth.ForkchoiceUpdatedResult, error) {
	return a.el.forkchoiceUpdated(state, attrs)
}

// NewPayloadV2 serves engine_newPayloadV2.
func (a *engineAPI) NewPayloadV2(payload *eth.ExecutionPayload) (*eth.PayloadStatusV1, error) {
	return a.el.newPayload(payload, nil)
}

// NewPayloadV3 serves engine_newPayloadV3.
func (a *engineAPI) NewPayloadV3(payload *eth.ExecutionPayload, _ []common.Hash, beaconRoot *common.Hash) (*eth.PayloadStatusV1, error) {
	return a.el.newPayload(payload, beaconRoot)
}

// NewPayloadV4 serves engine_newPayloadV4.
func (a *engineAPI) NewPayloadV4(payload *eth.ExecutionPayload, _ []common.Hash, beaconRoot *common.Hash, _ []hexutil.Bytes) (*eth.PayloadStatusV1, error) {
	return a.el.newPayload(payload, beaconRoot)
}

func status(s eth.ExecutePayloadStatus, latestValid *common.Hash, msg string) eth.PayloadStatusV1 {
	out := eth.PayloadStatusV1{Status: s, LatestValidHash: latestValid}
	if msg != "" {
		out.ValidationError = &msg
	}
	return out
}

// forkchoiceUpdated follows op-geth: an unknown head starts a sync and answers
// SYNCING; a known head becomes canonical before safe and finalized are
// checked, so a bad label fails with -38002 after the head moved.
func (e *EL) forkchoiceUpdated(state eth.ForkchoiceState, attrs *eth.PayloadAttributes) (*eth.ForkchoiceUpdatedResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fcus = append(e.fcus, state)
	e.advanceSync()
	syncing := &eth.ForkchoiceUpdatedResult{PayloadStatus: status(eth.ExecutionSyncing, nil, "")}
	head := state.HeadBlockHash
	switch {
	case e.forceSyncing:
		return syncing, nil
	case head == common.Hash{}:
		return &eth.ForkchoiceUpdatedResult{PayloadStatus: status(eth.ExecutionInvalid, nil, "forkchoice head is the zero hash")}, nil
	case e.invalid[head]:
		return &eth.ForkchoiceUpdatedResult{PayloadStatus: status(eth.ExecutionInvalid, e.knownParent(head), "head block is invalid")}, nil
	}
	if _, ok := e.blocks[head]; !ok {
		if _, ok := e.lookup(head); ok {
			e.startSync(head)
		}
		return syncing, nil
	}
	e.sync = nil // a known head supersedes any sync under way
	e.setCanonical(head)
	safe, finalized := state.SafeBlockHash, state.FinalizedBlockHash
	if safe == (common.Hash{}) {
		safe = e.safe
	}
	if finalized == (common.Hash{}) {
		finalized = e.finalized
	}
	if err := e.checkLabels(safe, finalized); err != nil {
		return &eth.ForkchoiceUpdatedResult{PayloadStatus: status(eth.ExecutionInvalid, nil, "")}, engine.InvalidForkChoiceState.With(err)
	}
	e.safe, e.finalized = safe, finalized
	select {
	case e.fcuTaken <- struct{}{}:
	default:
	}
	if attrs != nil {
		return nil, errPayloadBuilding
	}
	return &eth.ForkchoiceUpdatedResult{PayloadStatus: status(eth.ExecutionValid, &head, "")}, nil
}

// knownParent returns the parent hash of a block the EL has or was sent.
// Callers hold e.mu.
func (e *EL) knownParent(hash common.Hash) *common.Hash {
	b, ok := e.blocks[hash]
	if !ok {
		b, ok = e.remote[hash]
	}
	if !ok {
		return nil
	}
	p := b.ParentHash()
	return &p
}

// newPayload stores a payload whose hash checks out: VALID when its parent
// is known, SYNCING (kept for a later sync) when not.
func (e *EL) newPayload(payload *eth.ExecutionPayload, beaconRoot *common.Hash) (*eth.PayloadStatusV1, error) {
	if payload == nil {
		return nil, &fakerpc.Error{Code: -32602, Msg: "missing execution payload"}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceSync()
	b, err := payloadToBlock(payload, beaconRoot)
	if err != nil {
		s := status(eth.ExecutionInvalid, nil, err.Error())
		return &s, nil
	}
	hash, parent := b.Hash(), b.ParentHash()
	var s eth.PayloadStatusV1
	switch _, parentKnown := e.blocks[parent]; {
	case e.invalid[hash]:
		s = status(eth.ExecutionInvalid, &parent, "block is invalid")
	case e.invalid[parent]:
		s = status(eth.ExecutionInvalid, nil, "parent block is invalid")
	case e.blocks[hash] != nil:
		s = status(eth.ExecutionValid, &hash, "")
	case !parentKnown:
		e.remote[hash] = b
		s = status(eth.ExecutionSyncing, nil, "")
	default:
		if err := e.checkStorable(b); err != nil {
			s = status(eth.ExecutionInvalid, &parent, err.Error())
			break
		}
		e.blocks[hash] = b
		s = status(eth.ExecutionValid, &hash, "")
	}
	return &s, nil
}

// payloadToBlock rebuilds the block of an execution payload and checks that
// its hash is the payload's block hash.
func payloadToBlock(p *eth.ExecutionPayload, beaconRoot *common.Hash) (*types.Block, error) {
	txs := make(types.Transactions, len(p.Transactions))
	for i, raw := range p.Transactions {
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(raw); err != nil {
			return nil, fmt.Errorf("transaction %d: %w", i, err)
		}
		txs[i] = tx
	}
	baseFee, err := hexutil.DecodeBig(p.BaseFeePerGas.String())
	if err != nil {
		return nil, fmt.Errorf("base fee: %w", err)
	}
	header := &types.Header{
		ParentHash:       p.ParentHash,
		UncleHash:        types.EmptyUncleHash,
		Coinbase:         p.FeeRecipient,
		Root:             common.Hash(p.StateRoot),
		TxHash:           types.DeriveSha(txs, trie.NewStackTrie(nil)),
		ReceiptHash:      common.Hash(p.ReceiptsRoot),
		Bloom:            types.Bloom(p.LogsBloom),
		Difficulty:       new(big.Int),
		Number:           new(big.Int).SetUint64(uint64(p.BlockNumber)),
		GasLimit:         uint64(p.GasLimit),
		GasUsed:          uint64(p.GasUsed),
		Time:             uint64(p.Timestamp),
		Extra:            p.ExtraData,
		MixDigest:        common.Hash(p.PrevRandao),
		BaseFee:          baseFee,
		BlobGasUsed:      (*uint64)(p.BlobGasUsed),
		ExcessBlobGas:    (*uint64)(p.ExcessBlobGas),
		ParentBeaconRoot: beaconRoot,
	}
	var withdrawals types.Withdrawals
	if p.WithdrawalsRoot != nil { // Isthmus
		header.WithdrawalsHash = p.WithdrawalsRoot
		header.RequestsHash = &types.EmptyRequestsHash
		withdrawals = types.Withdrawals{}
	} else if p.Withdrawals != nil { // Canyon
		h := types.DeriveSha(*p.Withdrawals, trie.NewStackTrie(nil))
		header.WithdrawalsHash = &h
		withdrawals = *p.Withdrawals
	}
	b := types.NewBlockWithHeader(header).WithBody(types.Body{Transactions: txs, Withdrawals: withdrawals})
	if b.Hash() != p.BlockHash {
		return nil, fmt.Errorf("block hash mismatch: payload says %s, contents hash to %s", p.BlockHash, b.Hash())
	}
	return b, nil
}
