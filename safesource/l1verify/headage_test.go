package l1verify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource/l1verify"
)

// TestMaxHeadAgeSharesOneL1HeadReadAcrossChains: several chains' sources
// wrapped by one verifier call Heads one after another, as their adapters
// would, each on its own clock. With MaxHeadAge the first call's L1 head read
// serves them all, and a later L1 head is not seen until the read is older
// than MaxHeadAge; without it (the default) each call reads the L1 head
// itself, so that a change of L1 head is seen on the very next call. A
// MaxHeadAge of a minute makes the reuse certain: the calls take far less.
func TestMaxHeadAgeSharesOneL1HeadReadAcrossChains(t *testing.T) {
	const chains = 5
	for _, tt := range []struct {
		name       string
		maxHeadAge time.Duration
		headReads  int
		headAfter  uint64 // the L1 head a call sees after L1 moves on from 40
	}{
		{"MaxHeadAge a minute: one L1 head read serves every chain", time.Minute, 1, 40},
		{"MaxHeadAge zero: each call reads the L1 head", 0, chains, 41},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l1 := testutil.NewL1(t, fakel1.L1Config{Head: 40, Safe: 30, Finalized: 20, Linked: true})
			counted := count(testutil.DialL1(t, l1.URL()))
			v, err := l1verify.New(counted, l1verify.Config{MaxHeadAge: tt.maxHeadAge}, nil, nil)
			require.NoError(t, err)
			var srcs []*l1verify.Source
			for i := range chains {
				n := uint64(i)
				h := synthHeads(l1.Ref(30+n), l1.Ref(31+n), l1.Ref(20-n), l1.Ref(40))
				s, err := v.Wrap(static(t, fmt.Sprintf("chain %d", i), h))
				require.NoError(t, err)
				srcs = append(srcs, s)
				got, err := s.Heads(ctx)
				require.NoError(t, err, "chain %d", i)
				require.Equal(t, h, got, "chain %d", i)
				require.Equal(t, l1verify.ResultOK, s.Status().LastResult, "chain %d", i)
			}
			latest, _, _, _ := counted.calls()
			require.Equal(t, tt.headReads, latest, "L1 head reads for %d chains' calls", chains)

			l1.Advance(1)
			_, err = srcs[0].Heads(ctx)
			require.NoError(t, err)
			require.Equal(t, tt.headAfter, srcs[0].Status().L1.L1Head.Number, "the L1 head the next call was checked against")
		})
	}
}

// slowL1 answers every call after a delay.
type slowL1 struct {
	l1verify.L1Source
	delay time.Duration
}

func (s slowL1) L1BlockRefByLabel(ctx context.Context, label eth.BlockLabel) (eth.L1BlockRef, error) {
	time.Sleep(s.delay)
	return s.L1Source.L1BlockRefByLabel(ctx, label)
}

func (s slowL1) L1BlockRefByNumber(ctx context.Context, n uint64) (eth.L1BlockRef, error) {
	time.Sleep(s.delay)
	return s.L1Source.L1BlockRefByNumber(ctx, n)
}

// TestConcurrentChecksShareL1Reads: chains sharing a verifier whose ticks
// fall together check the same L1 blocks, none of them known yet, at once:
// one read of each height and one of L1's finalized block serve them all.
// L1 answers slowly, so that every check is in flight at once.
func TestConcurrentChecksShareL1Reads(t *testing.T) {
	const chains = 8
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 40, Safe: 30, Finalized: 20, Linked: true})
	counted := count(slowL1{testutil.DialL1(t, l1.URL()), 100 * time.Millisecond})
	v, err := l1verify.New(counted, l1verify.Config{MaxHeadAge: time.Minute}, nil, nil)
	require.NoError(t, err)
	h := synthHeads(l1.Ref(33), l1.Ref(33), l1.Ref(15), l1.Ref(40))
	var g errgroup.Group
	for i := range chains {
		s, err := v.Wrap(static(t, fmt.Sprintf("chain %d", i), h))
		require.NoError(t, err)
		g.Go(func() error {
			got, err := s.Heads(ctx)
			if err == nil && got != h {
				err = fmt.Errorf("chain %d: heads %+v, want %+v", i, got, h)
			}
			return err
		})
	}
	require.NoError(t, g.Wait())
	latest, finalized, byNumber, _ := counted.calls()
	require.Equal(t, [3]int{1, 1, 2}, [3]int{latest, finalized, byNumber},
		"for %d chains: one L1 head read, one of L1's finalized block, one of each origin (33 and 15)", chains)
}
