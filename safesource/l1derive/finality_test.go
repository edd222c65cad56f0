package l1derive

import (
	"context"
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"
)

// fakeL1 answers the two reads finalize makes.
type fakeL1 struct {
	L1Fetcher // the rest is not called
	canon     map[uint64]common.Hash
	finalized uint64
	noFinal   bool
}

func (f *fakeL1) L1BlockRefByLabel(_ context.Context, label eth.BlockLabel) (eth.L1BlockRef, error) {
	if label != eth.Finalized || f.noFinal {
		return eth.L1BlockRef{}, ethereum.NotFound
	}
	return f.L1BlockRefByNumber(context.Background(), f.finalized)
}

func (f *fakeL1) L1BlockRefByNumber(_ context.Context, n uint64) (eth.L1BlockRef, error) {
	h, ok := f.canon[n]
	if !ok {
		return eth.L1BlockRef{}, fmt.Errorf("block %d: %w", n, ethereum.NotFound)
	}
	return eth.L1BlockRef{Number: n, Hash: h}, nil
}

func l1Hash(n, fork uint64) common.Hash { return common.BigToHash(new(big.Int).SetUint64(n<<8 | fork)) }

func l2(n uint64) eth.L2BlockRef {
	return eth.L2BlockRef{Number: n, Hash: common.BigToHash(new(big.Int).SetUint64(1000 + n))}
}

func from(n uint64) eth.L1BlockRef { return eth.L1BlockRef{Number: n, Hash: l1Hash(n, 0)} }

// TestFinalityRule checks op-node's finalizer rule as the source applies it:
// an L2 block is final once the L1 block it was derived from is finalized;
// finalized never moves back, not even across a reset.
func TestFinalityRule(t *testing.T) {
	ctx := context.Background()
	l1 := &fakeL1{canon: map[uint64]common.Hash{}}
	for n := uint64(0); n <= 20; n++ {
		l1.canon[n] = l1Hash(n, 0)
	}
	s := &Source{l1: l1, log: log.NewLogger(log.DiscardHandler()), fin: finality{max: 4}}

	// L2 blocks 1..3 from L1 block 5, 4..6 from 6, 7 from 9
	for _, d := range []struct{ l2, l1 uint64 }{{1, 5}, {2, 5}, {3, 5}, {4, 6}, {5, 6}, {6, 6}, {7, 9}} {
		s.fin.derived(l2(d.l2), from(d.l1))
	}
	require.Len(t, s.fin.entries, 3, "one entry per L1 block")

	l1.finalized = 4
	require.NoError(t, s.finalize(ctx))
	require.Zero(t, s.fin.finalized.Number, "nothing derived from L1 at or below 4")

	l1.finalized = 5
	require.NoError(t, s.finalize(ctx))
	require.Equal(t, l2(3), s.fin.finalized, "the last block derived from L1 block 5")

	l1.finalized = 8
	require.NoError(t, s.finalize(ctx))
	require.Equal(t, l2(6), s.fin.finalized)

	l1.noFinal = true
	require.NoError(t, s.finalize(ctx), "no finalized L1 block: nothing changes")
	require.Equal(t, l2(6), s.fin.finalized)
	l1.noFinal = false

	// L1 reorged under block 9: not finalized from it
	l1.canon[9] = l1Hash(9, 1)
	l1.finalized = 10
	require.Error(t, s.finalize(ctx))
	require.Equal(t, l2(6), s.fin.finalized)

	// a reset to an engine whose finalized label is lower keeps the higher one
	s.fin.reset(l2(2))
	require.Equal(t, l2(6), s.fin.finalized)
	require.Empty(t, s.fin.entries)
	s.fin.reset(l2(8))
	require.Equal(t, l2(8), s.fin.finalized)

	// the window keeps the newest max L1 blocks' entries
	for n := uint64(11); n <= 18; n++ {
		s.fin.derived(l2(n), from(n))
	}
	require.Len(t, s.fin.entries, 4)
	require.Equal(t, uint64(15), s.fin.entries[0].l1.Number)
	l1.finalized = 16
	require.NoError(t, s.finalize(ctx))
	require.Equal(t, l2(16), s.fin.finalized)
}
