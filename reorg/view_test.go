package reorg

import (
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"
)

// TestLabelsMadeFromKeepsTheOldChainOverBase: after a backfill from base, the
// blocks made canonical under the old head at or below base stay known under
// the new head, when base is the old head or one of them; otherwise only base
// and the new labels are known.
func TestLabelsMadeFromKeepsTheOldChainOverBase(t *testing.T) {
	ref := func(n uint64, tag byte) eth.L2BlockRef {
		return eth.L2BlockRef{Hash: common.Hash{tag, byte(n)}, Number: n}
	}
	head, safe, fin := ref(10, 1), ref(8, 1), ref(4, 1)
	k := Known{}.labelsMade(Local{Unsafe: head, Safe: safe, Finalized: fin})
	next := Local{Unsafe: ref(11, 1), Safe: ref(11, 1), Finalized: ref(5, 1)}
	heights := func(k Known) []uint64 {
		var out []uint64
		for _, b := range k.Made {
			out = append(out, b.Number)
		}
		return out
	}

	got := k.labelsMadeFrom(head.Hash, head, next) // a one-block catch-up
	require.Equal(t, next.Unsafe.Hash, got.Head)
	require.Equal(t, []uint64{11, 10, 8, 5, 4}, heights(got))

	got = k.labelsMadeFrom(head.Hash, safe, next) // base a block made under head
	require.Equal(t, []uint64{11, 8, 5, 4}, heights(got))

	// base read from the engine, not known by hash: the old blocks are not kept
	got = k.labelsMadeFrom(head.Hash, ref(9, 1), next)
	require.Equal(t, []uint64{11, 9, 5}, heights(got))

	// Known under another head: nothing of it is kept
	got = k.labelsMadeFrom(ref(10, 2).Hash, ref(10, 2), next)
	require.Equal(t, []uint64{11, 10, 5}, heights(got))
}
