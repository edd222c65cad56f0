package opgeth

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ethereum-optimism/optimism/op-core/predeploys"
	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
)

// blocksPerEpoch is how many L2 blocks share one synthetic L1 origin: L2
// block n has origin L1Header(n/blocksPerEpoch) and sequence number
// n%blocksPerEpoch, whatever fork it is on.
const blocksPerEpoch = l1BlockTime / BlockTime

// Sequencer builds blocks on one Node through the Engine API, the way
// op-node's sequencer does: forkchoiceUpdated with attributes whose first
// transaction is the L1-info deposit, getPayload, newPayload,
// forkchoiceUpdated to the new block. It keeps the head, safe and finalized
// labels it last sent. Its methods may be called from any goroutine; they
// run one at a time.
type Sequencer struct {
	engine *sources.EngineClient
	cfg    *rollup.Config

	op sync.Mutex // serialises Build, Fork and SetLabels

	mu                    sync.Mutex
	head, safe, finalized eth.L2BlockRef
}

// NewSequencer returns a Sequencer for node that starts from the node's
// current head, safe and finalized blocks (genesis for a label geth has not
// been given yet). Its Engine API client is bound to node's current AuthRPC
// URL: after a Restart that had to change ports, make a new Sequencer.
func NewSequencer(t testing.TB, node *Node) *Sequencer {
	t.Helper()
	s := &Sequencer{engine: node.Engine(t), cfg: node.Genesis().RollupConfig()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	head, err := s.engine.L2BlockRefByLabel(ctx, eth.Unsafe)
	if err != nil {
		t.Fatalf("opgeth: sequencer on %s: head: %v", node.name, err)
	}
	genesis, err := s.engine.L2BlockRefByNumber(ctx, 0)
	if err != nil {
		t.Fatalf("opgeth: sequencer on %s: genesis: %v", node.name, err)
	}
	label := func(l eth.BlockLabel) eth.L2BlockRef {
		ref, err := s.engine.L2BlockRefByLabel(ctx, l)
		if err != nil {
			// geth answers "safe block not found" (or finalized) until an
			// FCU names one.
			return genesis
		}
		return ref
	}
	s.head, s.safe, s.finalized = head, label(eth.Safe), label(eth.Finalized)
	return s
}

// Head returns the head block the Sequencer last made canonical.
func (s *Sequencer) Head() eth.L2BlockRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head
}

// Safe returns the safe block the Sequencer last sent.
func (s *Sequencer) Safe() eth.L2BlockRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.safe
}

// Finalized returns the finalized block the Sequencer last sent.
func (s *Sequencer) Finalized() eth.L2BlockRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finalized
}

// Build builds n blocks on the head, each made canonical in turn, and
// returns their refs. Block i (0-based within this call) carries the L1-info
// deposit followed by txs(i), raw signed transactions (e.g. TransferTxs);
// txs may be nil. A transaction geth cannot include fails the build.
func (s *Sequencer) Build(ctx context.Context, n int, txs func(i int) [][]byte) ([]eth.L2BlockRef, error) {
	s.op.Lock()
	defer s.op.Unlock()
	return s.extend(ctx, s.Head(), n, 0, txs)
}

// Fork builds n (≥ 1) deposit-only blocks on at, which need not be the head,
// and makes the last one canonical: the blocks above at are reorged out.
// salt (≠ 0) goes into each block's prevRandao, so the blocks differ from
// those Build made (salt 0) at the same heights, and from other salts. Safe
// and finalized labels above at are lowered to at.
//
// A peered follower reaches the fork by EL sync only once the fork's head is
// above the follower's head: with op-geth v1.101702.3-rc.7, an FCU to a fork
// head below the follower's current head leaves geth's skeleton sync
// restarting for good (SYNCING, or the error "beacon syncer reorging").
func (s *Sequencer) Fork(ctx context.Context, at eth.L2BlockRef, n int, salt uint64) ([]eth.L2BlockRef, error) {
	if n < 1 {
		return nil, fmt.Errorf("opgeth: Fork of %d blocks: need at least 1", n)
	}
	if salt == 0 {
		return nil, errors.New("opgeth: Fork with salt 0 would rebuild Build's blocks")
	}
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.Lock()
	if s.safe.Number > at.Number {
		s.safe = at
	}
	if s.finalized.Number > at.Number {
		s.finalized = at
	}
	s.mu.Unlock()
	return s.extend(ctx, at, n, salt, nil)
}

// BuildAttributes builds one block on parent, which must be the head, from
// attrs, the caller's own payload attributes (e.g. from op-node's attributes
// builder, with the timestamp, L1-info deposit and L1 origin the caller
// chose for that parent), makes it canonical and returns its ref. The
// payload must hold exactly the attributes' transactions: set NoTxPool.
func (s *Sequencer) BuildAttributes(ctx context.Context, parent eth.L2BlockRef, attrs *eth.PayloadAttributes) (eth.L2BlockRef, error) {
	if attrs == nil {
		return eth.L2BlockRef{}, errors.New("opgeth: BuildAttributes: nil attributes")
	}
	s.op.Lock()
	defer s.op.Unlock()
	if head := s.Head(); head != parent {
		return eth.L2BlockRef{}, fmt.Errorf("opgeth: BuildAttributes on %s: the head is %s", parent, head)
	}
	ref, err := s.buildWith(ctx, parent, attrs)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("opgeth: building block %d on %s: %w", parent.Number+1, parent, err)
	}
	return ref, nil
}

// SetLabels marks safe and finalized through a forkchoiceUpdated that keeps
// the head. Both must be on the canonical chain.
func (s *Sequencer) SetLabels(ctx context.Context, safe, finalized eth.L2BlockRef) error {
	s.op.Lock()
	defer s.op.Unlock()
	fc := eth.ForkchoiceState{HeadBlockHash: s.Head().Hash, SafeBlockHash: safe.Hash, FinalizedBlockHash: finalized.Hash}
	if _, err := s.forkchoice(ctx, fc, nil); err != nil {
		return fmt.Errorf("opgeth: marking safe %s, finalized %s: %w", safe, finalized, err)
	}
	s.mu.Lock()
	s.safe, s.finalized = safe, finalized
	s.mu.Unlock()
	return nil
}

// extend builds n blocks on parent with salt; the caller holds s.op.
func (s *Sequencer) extend(ctx context.Context, parent eth.L2BlockRef, n int, salt uint64, txs func(i int) [][]byte) ([]eth.L2BlockRef, error) {
	refs := make([]eth.L2BlockRef, 0, n)
	for i := range n {
		var user [][]byte
		if txs != nil {
			user = txs(i)
		}
		ref, err := s.buildOn(ctx, parent, salt, user)
		if err != nil {
			return refs, fmt.Errorf("opgeth: building block %d on %s: %w", parent.Number+1, parent, err)
		}
		refs = append(refs, ref)
		parent = ref
	}
	return refs, nil
}

// buildOn builds one block on parent and makes it the head.
func (s *Sequencer) buildOn(ctx context.Context, parent eth.L2BlockRef, salt uint64, user [][]byte) (eth.L2BlockRef, error) {
	attrs, err := s.attributes(parent, salt, user)
	if err != nil {
		return eth.L2BlockRef{}, err
	}
	return s.buildWith(ctx, parent, attrs)
}

// buildWith builds one block on parent from attrs and makes it the head; the
// caller holds s.op.
func (s *Sequencer) buildWith(ctx context.Context, parent eth.L2BlockRef, attrs *eth.PayloadAttributes) (eth.L2BlockRef, error) {
	s.mu.Lock()
	fc := eth.ForkchoiceState{HeadBlockHash: parent.Hash, SafeBlockHash: s.safe.Hash, FinalizedBlockHash: s.finalized.Hash}
	s.mu.Unlock()
	res, err := s.forkchoice(ctx, fc, attrs)
	if err != nil {
		return eth.L2BlockRef{}, err
	}
	if res.PayloadID == nil {
		return eth.L2BlockRef{}, errors.New("forkchoiceUpdated with attributes returned no payload id")
	}
	env, err := s.engine.GetPayload(ctx, eth.PayloadInfo{ID: *res.PayloadID, Timestamp: uint64(attrs.Timestamp)})
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("getPayload: %w", err)
	}
	payload := env.ExecutionPayload
	if got, want := len(payload.Transactions), len(attrs.Transactions); got != want {
		return eth.L2BlockRef{}, fmt.Errorf("payload %s has %d transactions, attributes had %d", payload.ID(), got, want)
	}
	status, err := s.engine.NewPayload(ctx, payload, env.ParentBeaconBlockRoot)
	if err != nil {
		return eth.L2BlockRef{}, err
	}
	if status.Status != eth.ExecutionValid {
		return eth.L2BlockRef{}, fmt.Errorf("newPayload %s: %s %s", payload.ID(), status.Status, errString(status.ValidationError))
	}
	fc.HeadBlockHash = payload.BlockHash
	if _, err := s.forkchoice(ctx, fc, nil); err != nil {
		return eth.L2BlockRef{}, err
	}
	ref, err := derive.PayloadToBlockRef(s.cfg, payload)
	if err != nil {
		return eth.L2BlockRef{}, err
	}
	s.mu.Lock()
	s.head = ref
	s.mu.Unlock()
	return ref, nil
}

// attributes returns the payload attributes of the child of parent.
func (s *Sequencer) attributes(parent eth.L2BlockRef, salt uint64, user [][]byte) (*eth.PayloadAttributes, error) {
	number := parent.Number + 1
	timestamp := parent.Time + BlockTime
	l1 := eth.HeaderBlockInfo(L1Header(number / blocksPerEpoch))
	// The synthetic L1 has no excess blob gas, so no L1 chain config is read.
	deposit, err := derive.L1InfoDepositBytes(s.cfg, nil, s.cfg.Genesis.SystemConfig, number%blocksPerEpoch, l1, timestamp)
	if err != nil {
		return nil, fmt.Errorf("L1-info deposit: %w", err)
	}
	txs := make([]eth.Data, 0, 1+len(user))
	txs = append(txs, deposit)
	for _, tx := range user {
		txs = append(txs, tx)
	}
	gasLimit := eth.Uint64Quantity(GasLimit)
	return &eth.PayloadAttributes{
		Timestamp:             eth.Uint64Quantity(timestamp),
		PrevRandao:            prevRandao(number, salt),
		SuggestedFeeRecipient: predeploys.SequencerFeeVaultAddr,
		Withdrawals:           &types.Withdrawals{},
		ParentBeaconBlockRoot: &common.Hash{},
		Transactions:          txs,
		NoTxPool:              true,
		GasLimit:              &gasLimit,
	}, nil
}

// forkchoice sends fc (with attrs, if any) and requires VALID.
func (s *Sequencer) forkchoice(ctx context.Context, fc eth.ForkchoiceState, attrs *eth.PayloadAttributes) (*eth.ForkchoiceUpdatedResult, error) {
	res, err := s.engine.ForkchoiceUpdate(ctx, &fc, attrs)
	if err != nil {
		return nil, fmt.Errorf("forkchoiceUpdated(head %s): %w", fc.HeadBlockHash, err)
	}
	if st := res.PayloadStatus; st.Status != eth.ExecutionValid {
		return nil, fmt.Errorf("forkchoiceUpdated(head %s): %s %s", fc.HeadBlockHash, st.Status, errString(st.ValidationError))
	}
	return res, nil
}

func prevRandao(number, salt uint64) eth.Bytes32 {
	return eth.Bytes32(crypto.Keccak256Hash([]byte("lightcl/opgeth prevRandao"),
		binary.BigEndian.AppendUint64(nil, number), binary.BigEndian.AppendUint64(nil, salt)))
}

func errString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
