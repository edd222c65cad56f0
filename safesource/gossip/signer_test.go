package gossip_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-node/node/runcfg"
	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/safesource/gossip"
)

// fakeL1 is an L1 whose head moves at each read and whose SystemConfig holds
// signer in its unsafeBlockSigner slot.
type fakeL1 struct {
	mu     sync.Mutex
	head   uint64
	signer common.Address
}

func (l *fakeL1) setSigner(a common.Address) { l.mu.Lock(); l.signer = a; l.mu.Unlock() }

func (l *fakeL1) L1BlockRefByLabel(_ context.Context, label eth.BlockLabel) (eth.L1BlockRef, error) {
	if label != eth.Unsafe {
		return eth.L1BlockRef{}, errors.New("only the head is asked for")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.head++
	return eth.L1BlockRef{Number: l.head, Hash: common.BigToHash(new(big.Int).SetUint64(l.head))}, nil
}

func (l *fakeL1) ReadStorageAt(_ context.Context, address common.Address, slot common.Hash, _ common.Hash) (common.Hash, error) {
	if address != rollupConfig().L1SystemConfigAddress || slot != runcfg.UnsafeBlockSignerAddressSystemConfigStorageSlot {
		return common.Hash{}, errors.New("not the SystemConfig's unsafeBlockSigner slot")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return common.BytesToHash(l.signer.Bytes()), nil
}

// TestSignerChangeOnL1: the signer is re-read from L1 while the feed runs.
// As in op-node, the old key is still accepted after the change until a
// block by the new key is (or for 3 hours), and rejected from then on.
func TestSignerChangeOnL1(t *testing.T) {
	oldKey, nextKey := newKey(t), newKey(t)
	l1 := &fakeL1{signer: addr(oldKey)}
	signer := gossip.NewL1Signer(quiet, l1, rollupConfig())
	require.Equal(t, common.Address{}, signer.P2PSequencerAddress(), "nothing is read before the first refresh")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- signer.Run(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	require.Eventually(t, func() bool { return signer.P2PSequencerAddress() == addr(oldKey) }, 5*time.Second, 5*time.Millisecond)

	w := newWorld(t, gossip.Config{Signer: signer}, opts{})
	deliver := func(key *ecdsa.PrivateKey, number uint64) {
		t.Helper()
		b := block(number, time.Now())
		w.pub.publish(t, key, b)
		require.Equal(t, b.ExecutionPayload.BlockHash, w.next(t).ExecutionPayload.BlockHash)
	}
	reject := func(key *ecdsa.PrivateKey, number uint64, rejectedBefore uint64) {
		t.Helper()
		w.pub.publish(t, key, block(number, time.Now()))
		w.waitStatus(t, "rejected", func(st gossip.Status) bool { return st.Rejected["invalid block signature"] == rejectedBefore+1 })
	}

	deliver(oldKey, 1)
	reject(nextKey, 2, 0)

	l1.setSigner(addr(nextKey))
	require.Eventually(t, func() bool { return signer.P2PSequencerAddress() == addr(nextKey) }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, addr(oldKey), signer.PreviousP2PSequencerAddress(), "the grace period started")
	deliver(oldKey, 3)  // in the grace period
	deliver(nextKey, 4) // confirms the new signer, which ends the grace period
	require.Equal(t, common.Address{}, signer.PreviousP2PSequencerAddress())
	reject(oldKey, 5, 1)
	w.requireNothingMore(t)
}

func TestL1SignerRefreshReadsAtTheGivenBlock(t *testing.T) {
	k := newKey(t)
	signer := gossip.NewL1Signer(nil, &fakeL1{signer: addr(k)}, rollupConfig())
	require.NoError(t, signer.Refresh(t.Context(), eth.L1BlockRef{Number: 9, Hash: common.Hash{9}}))
	require.Equal(t, addr(k), signer.P2PSequencerAddress())
	require.Error(t, gossip.NewL1Signer(nil, &fakeL1{}, rollupConfig()).Run(t.Context(), 0), "a zero interval is refused")
}
