package reorg

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/safesource"
)

// counted wraps a lookup and counts its calls.
func counted(f func(context.Context, uint64) (eth.L2BlockRef, error), n *int) func(context.Context, uint64) (eth.L2BlockRef, error) {
	return func(ctx context.Context, h uint64) (eth.L2BlockRef, error) {
		*n++
		return f(ctx, h)
	}
}

// maxLookups is the bound FindCommonAncestor promises for a range: two lookups
// (one per side) per probed height, at most Probes of the whole range.
func maxLookups(lo, hi uint64) int {
	return 2 * Probes(hi-lo)
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

// TestAncestorLookupsGrowWithDepth: the heights probed grow with the depth of
// the fork below the top of the range, not with the range: a fork at depth d
// costs the same in a range of d, 2d or a million blocks, within Probes(d), and
// at most 20 per side at depth 10,000. The counts are the ones the README
// reports; they are counts, not times, so CI checks them.
func TestAncestorLookupsGrowWithDepth(t *testing.T) {
	ctx := context.Background()
	want := map[uint64]int{1: 2, 100: 14, 10000: 20} // the most probes seen over the ranges below
	for _, depth := range []uint64{1, 100, 10000} {
		worst := 0
		for _, extra := range []uint64{0, 1, 7, depth, 3 * depth, 1_000_000} {
			base := newChain(1, depth+extra)
			hi := uint64(len(base) - 1)
			other := base.fork(hi-depth, 2, depth)
			var a, b int
			got, err := FindCommonAncestor(ctx, counted(base.lookup, &a), counted(other.lookup, &b), hi-depth-extra, hi)
			require.NoError(t, err)
			require.Equal(t, base[hi-depth], got)
			require.Equal(t, a, b, "one lookup per side per probed height")
			require.LessOrEqual(t, a, Probes(depth), "depth %d, range %d", depth, depth+extra)
			worst = max(worst, a)
		}
		t.Logf("fork %d below the top: at most %d probes (one lookup on each chain each), bound %d", depth, worst, Probes(depth))
		require.LessOrEqual(t, worst, want[depth], "depth %d", depth)
	}
}

// TestSearchReadsTheSourceOncePerProbe: Search checks the source's block at its
// safe height first, and that read answers the search's probe there, so the
// source is asked once per probed height in all.
func TestSearchReadsTheSourceOncePerProbe(t *testing.T) {
	const depth = 10000
	local := newChain(1, 3*depth)
	source := local.fork(2*depth, 2, depth) // both up to 3·depth; fork depth below the top
	in := Input{
		Heads: safesource.Heads{Safe: source[3*depth], LocalSafe: source[3*depth], Finalized: source[depth]},
		Local: Local{Unsafe: local[3*depth], Safe: local[3*depth], Finalized: local[depth]},
	}
	d := Decision{Action: NeedAncestor, SearchLo: depth, SearchHi: 3 * depth}
	var engineReads, sourceReads int
	res := Search(context.Background(), d, in, counted(local.lookup, &engineReads), counted(source.lookup, &sourceReads))
	require.NoError(t, res.Err)
	require.Equal(t, local[2*depth], res.Ref)
	t.Logf("depth %d: %d source reads, %d engine reads", depth, sourceReads, engineReads)
	require.LessOrEqual(t, sourceReads, 20)
	require.Equal(t, engineReads, sourceReads+1,
		"the probe at the top reads the engine, not the source again; the engine is read once more at the local finalized height")
}

// TestSearchHaltsWhenTheSharedChainLostFinalized: the engine's chain and the
// source's agree above the local finalized height but hold another block at
// it (the engine was moved off the local finalized chain, and the source is on
// that other chain): the search must not report an ancestor.
func TestSearchHaltsWhenTheSharedChainLostFinalized(t *testing.T) {
	remembered := newChain(1, 100)
	other := remembered.fork(40, 2, 60) // both up to 100; different from 41 up
	source := other.fork(90, 3, 10)     // the source shares the other chain up to 90
	in := Input{
		Heads: safesource.Heads{Safe: source[100], LocalSafe: source[100], Finalized: source[50]},
		Local: Local{Unsafe: other[100], Safe: remembered[50], Finalized: remembered[50]},
	}
	d := Decision{Action: NeedAncestor, SearchLo: 50, SearchHi: 100}
	res := Search(context.Background(), d, in, other.lookup, source.lookup)
	require.ErrorIs(t, res.Err, ErrNoCommonAncestor)

	// the same with the engine still on the remembered chain: ancestor 90
	source = remembered.fork(90, 3, 10)
	in.Heads = safesource.Heads{Safe: source[100], LocalSafe: source[100], Finalized: source[50]}
	in.Local.Unsafe = remembered[100]
	res = Search(context.Background(), d, in, remembered.lookup, source.lookup)
	require.NoError(t, res.Err)
	require.Equal(t, remembered[90], res.Ref)
}

// TestProbesBoundsTheLargestRanges: the bound holds where the gallop's steps
// stop growing, near the top of the height range.
func TestProbesBoundsTheLargestRanges(t *testing.T) {
	const hi = math.MaxUint64
	hash := func(tag byte, n uint64) common.Hash {
		h := common.Hash{0: tag}
		binary.BigEndian.PutUint64(h[24:], n)
		return h
	}
	for _, anc := range []uint64{0, 1, 1 << 20, 1 << 59, 1 << 62, hi - (1 << 61)} {
		var calls int
		ref := func(n uint64) eth.L2BlockRef {
			tag, parentTag := byte(1), byte(1)
			if n > anc {
				tag = 2
			}
			if n > anc+1 {
				parentTag = 2
			}
			return eth.L2BlockRef{Number: n, Hash: hash(tag, n), ParentHash: hash(parentTag, n-1)}
		}
		a := func(_ context.Context, n uint64) (eth.L2BlockRef, error) {
			calls++
			return eth.L2BlockRef{Number: n, Hash: hash(1, n), ParentHash: hash(1, n-1)}, nil
		}
		b := func(_ context.Context, n uint64) (eth.L2BlockRef, error) {
			calls++
			return ref(n), nil
		}
		got, err := FindCommonAncestor(context.Background(), a, b, 0, hi)
		require.NoError(t, err)
		require.Equal(t, anc, got.Number)
		require.LessOrEqual(t, calls/2, Probes(hi-anc), "ancestor %d", anc)
		require.LessOrEqual(t, calls/2, Probes(hi), "ancestor %d", anc)
		t.Logf("ancestor %d below %d: %d probes, bound %d", anc, uint64(hi), calls/2, Probes(hi-anc))
	}
}
