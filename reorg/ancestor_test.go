package reorg

import (
	"context"
	"errors"
	"math/bits"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/stretchr/testify/require"
)

// counted wraps a lookup and counts its calls.
func counted(f func(context.Context, uint64) (eth.L2BlockRef, error), n *int) func(context.Context, uint64) (eth.L2BlockRef, error) {
	return func(ctx context.Context, h uint64) (eth.L2BlockRef, error) {
		*n++
		return f(ctx, h)
	}
}

// maxLookups is the bound FindCommonAncestor promises for a range: two lookups
// per probed height, heights hi and lo plus one per halving.
func maxLookups(lo, hi uint64) int {
	return 2 * (bits.Len64(hi-lo) + 2)
}

func TestFindCommonAncestor(t *testing.T) {
	ctx := context.Background()
	base := newChain(1, 20000)
	tests := []struct {
		name   string
		b      chain
		lo, hi uint64
		want   uint64
	}{
		{"same chain answers hi", base, 0, 20000, 20000},
		{"fork one below hi", base.fork(19999, 2, 10), 0, 20000, 19999},
		{"fork at lo", base.fork(100, 2, 19950), 100, 20000, 100},
		{"deep fork", base.fork(10, 2, 19990), 0, 20000, 10},
		{"depth 1", base.fork(9999, 2, 1), 0, 10000, 9999},
		{"depth 100", base.fork(9900, 2, 100), 0, 10000, 9900},
		{"depth 10000", base.fork(10000, 2, 10000), 0, 20000, 10000},
		{"single height", base, 7, 7, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			got, err := FindCommonAncestor(ctx, counted(base.lookup, &calls), counted(tt.b.lookup, &calls), tt.lo, tt.hi)
			require.NoError(t, err)
			require.Equal(t, base[tt.want], got)
			require.LessOrEqual(t, calls, maxLookups(tt.lo, tt.hi))
			t.Logf("range [%d, %d], ancestor %d: %d lookups (bound %d)", tt.lo, tt.hi, tt.want, calls, maxLookups(tt.lo, tt.hi))
		})
	}
}

func TestFindCommonAncestorDisagreeAtLo(t *testing.T) {
	base := newChain(1, 100)
	other := base.fork(3, 2, 97)
	_, err := FindCommonAncestor(context.Background(), base.lookup, other.lookup, 5, 100)
	require.ErrorIs(t, err, ErrNoCommonAncestor)
	_, err = FindCommonAncestor(context.Background(), base.lookup, other.lookup, 50, 50)
	require.ErrorIs(t, err, ErrNoCommonAncestor)
}

func TestFindCommonAncestorMissingCountsAsDisagreement(t *testing.T) {
	base := newChain(1, 100)
	short := base[:61] // the other side has nothing above 60
	got, err := FindCommonAncestor(context.Background(), base.lookup, short.lookup, 0, 100)
	require.NoError(t, err)
	require.Equal(t, base[60], got)
}

func TestFindCommonAncestorLookupError(t *testing.T) {
	base := newChain(1, 100)
	boom := errors.New("boom")
	failing := func(ctx context.Context, n uint64) (eth.L2BlockRef, error) { return eth.L2BlockRef{}, boom }
	_, err := FindCommonAncestor(context.Background(), base.lookup, failing, 0, 100)
	require.ErrorIs(t, err, boom)
	require.NotErrorIs(t, err, ErrNoCommonAncestor)
}

func TestFindCommonAncestorEmptyRange(t *testing.T) {
	base := newChain(1, 10)
	_, err := FindCommonAncestor(context.Background(), base.lookup, base.lookup, 5, 4)
	require.Error(t, err)
}
