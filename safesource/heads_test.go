package safesource

import (
	"context"
	"errors"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"
)

func ref(n uint64, tag byte, parent common.Hash) eth.L2BlockRef {
	return eth.L2BlockRef{Hash: common.Hash{tag, byte(n >> 8), byte(n), 1}, Number: n, ParentHash: parent}
}

// line returns blocks 0..n, each the parent of the next.
func line(n uint64, tag byte) []eth.L2BlockRef {
	out := []eth.L2BlockRef{ref(0, tag, common.Hash{})}
	for i := uint64(1); i <= n; i++ {
		out = append(out, ref(i, tag, out[i-1].Hash))
	}
	return out
}

func TestHeadsCheck(t *testing.T) {
	c := line(20, 1)
	other := line(20, 2)
	tests := []struct {
		name string
		h    Heads
		ok   bool
	}{
		{"consistent", Heads{Finalized: c[5], Safe: c[10], LocalSafe: c[12]}, true},
		{"all at one block", Heads{Finalized: c[7], Safe: c[7], LocalSafe: c[7]}, true},
		{"adjacent labels that link", Heads{Finalized: c[6], Safe: c[7], LocalSafe: c[8]}, true},
		{"finalized above safe", Heads{Finalized: c[11], Safe: c[10], LocalSafe: c[12]}, false},
		{"safe above local-safe", Heads{Finalized: c[5], Safe: c[13], LocalSafe: c[12]}, false},
		{"zero safe hash", Heads{Finalized: c[5], Safe: eth.L2BlockRef{Number: 10}, LocalSafe: c[12]}, false},
		{"zero finalized hash", Heads{Safe: c[10], LocalSafe: c[12]}, false},
		{"finalized and safe at one height, two hashes", Heads{Finalized: c[10], Safe: other[10], LocalSafe: other[12]}, false},
		{"finalized and local-safe at one height, two hashes", Heads{Finalized: c[10], Safe: c[10], LocalSafe: other[10]}, false},
		{"adjacent labels that do not link", Heads{Finalized: c[9], Safe: other[10], LocalSafe: other[10]}, false},
		{"one hash at two heights", Heads{Finalized: c[5], Safe: c[10], LocalSafe: eth.L2BlockRef{Hash: c[10].Hash, Number: 12,
			ParentHash: c[11].Hash, L1Origin: c[12].L1Origin}}, false},
		{"finalized's hash again at local-safe's height", Heads{Finalized: c[5], Safe: c[10], LocalSafe: eth.L2BlockRef{Hash: c[5].Hash,
			Number: 12, ParentHash: c[11].Hash, L1Origin: c[12].L1Origin}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.Check()
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrInconsistentHeads)
			}
		})
	}
}

func TestStatic(t *testing.T) {
	ctx := context.Background()
	c := line(20, 1)
	s := NewStatic("pushed", nil)
	_, err := s.Heads(ctx)
	require.ErrorIs(t, err, ErrNoHeads)

	good := Heads{Finalized: c[5], Safe: c[10], LocalSafe: c[10]}
	require.NoError(t, s.Set(good))
	require.ErrorIs(t, s.Set(Heads{Finalized: c[11], Safe: c[10], LocalSafe: c[10]}), ErrInconsistentHeads)
	got, err := s.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, good, got, "a refused Set keeps the old heads")

	r, err := s.L2BlockRefByNumber(ctx, 5)
	require.NoError(t, err)
	require.Equal(t, c[5], r)
	_, err = s.L2BlockRefByNumber(ctx, 7)
	require.ErrorIs(t, err, ErrNotFound)

	withLookup := NewStatic("pushed", func(ctx context.Context, n uint64) (eth.L2BlockRef, error) { return c[n], nil })
	r, err = withLookup.L2BlockRefByNumber(ctx, 7)
	require.NoError(t, err)
	require.Equal(t, c[7], r)
}

func TestFunc(t *testing.T) {
	ctx := context.Background()
	c := line(20, 1)
	boom := errors.New("boom")
	f := &Func{SourceName: "fn", HeadsFn: func(context.Context) (Heads, error) {
		return Heads{Finalized: c[12], Safe: c[10], LocalSafe: c[10]}, nil
	}}
	_, err := f.Heads(ctx)
	require.ErrorIs(t, err, ErrInconsistentHeads)
	require.Contains(t, err.Error(), "fn")

	f.HeadsFn = func(context.Context) (Heads, error) { return Heads{}, boom }
	_, err = f.Heads(ctx)
	require.ErrorIs(t, err, boom)

	_, err = f.L2BlockRefByNumber(ctx, 3)
	require.ErrorIs(t, err, ErrNotFound)
	f.BlockRefFn = func(ctx context.Context, n uint64) (eth.L2BlockRef, error) { return c[n+1], nil }
	_, err = f.L2BlockRefByNumber(ctx, 3)
	require.Error(t, err, "a lookup that answers the wrong height is refused")
}
