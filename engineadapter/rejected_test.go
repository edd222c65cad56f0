package engineadapter

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"
)

func TestRejectedSet(t *testing.T) {
	h := func(i byte) common.Hash { return common.Hash{i} }
	t.Run("forgets the oldest first; adding or looking up does not refresh", func(t *testing.T) {
		r := newRejectedSet(2)
		r.add(h(1))
		r.add(h(2))
		r.add(h(1)) // held: no refresh
		require.True(t, r.has(h(1)))
		r.add(h(3)) // evicts 1, the oldest added
		require.False(t, r.has(h(1)))
		require.True(t, r.has(h(2)))
		require.True(t, r.has(h(3)))
	})
	t.Run("remove frees the slot", func(t *testing.T) {
		r := newRejectedSet(2)
		r.add(h(1))
		r.add(h(2))
		require.True(t, r.remove(h(1)))
		require.False(t, r.remove(h(1)))
		require.False(t, r.has(h(1)))
		r.add(h(3)) // fills the freed slot: nothing evicted
		require.True(t, r.has(h(2)))
		require.True(t, r.has(h(3)))
	})
	t.Run("size 0 remembers nothing", func(t *testing.T) {
		r := newRejectedSet(0)
		r.add(h(1))
		require.False(t, r.has(h(1)))
		require.False(t, r.remove(h(1)))
	})
}
