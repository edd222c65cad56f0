package reorg

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/safesource"
)

var blockIDs atomic.Uint64

// chain is a test chain of synthetic block refs; index i is block number i.
type chain []eth.L2BlockRef

// newChain returns blocks 0..n on a chain named by tag.
func newChain(tag uint64, n uint64) chain {
	return chain{}.extend(tag, n+1)
}

// fork returns the blocks of c up to and including height at, then n new blocks
// named by tag.
func (c chain) fork(at uint64, tag uint64, n uint64) chain {
	base := append(chain{}, c[:at+1]...)
	return base.extend(tag, n)
}

// extend appends n blocks named by tag; every block gets a fresh id, so no
// two blocks share a hash.
func (c chain) extend(tag uint64, n uint64) chain {
	return c.extendIDs(tag, n, func() uint64 { return blockIDs.Add(1) })
}

// extendIDs appends n blocks whose hashes carry tag, the height and id().
func (c chain) extendIDs(tag uint64, n uint64, id func() uint64) chain {
	for i := uint64(0); i < n; i++ {
		num := uint64(len(c))
		var parent common.Hash
		if num > 0 {
			parent = c[num-1].Hash
		}
		var h common.Hash
		binary.BigEndian.PutUint64(h[:8], tag)
		binary.BigEndian.PutUint64(h[8:16], num)
		binary.BigEndian.PutUint64(h[16:24], id())
		h[31] = 0xf0 // never zero, even for tag 0 at height 0
		c = append(c, eth.L2BlockRef{
			Hash:       h,
			Number:     num,
			ParentHash: parent,
			Time:       num * 2,
			L1Origin:   eth.BlockID{Number: num / 4},
		})
	}
	return c
}

func (c chain) tip() eth.L2BlockRef { return c[len(c)-1] }

func (c chain) at(n uint64) Lookup {
	if n >= uint64(len(c)) {
		return Lookup{}
	}
	return Lookup{Ref: c[n], Found: true}
}

func (c chain) lookup(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	if n >= uint64(len(c)) {
		return eth.L2BlockRef{}, fmt.Errorf("height %d: %w", n, safesource.ErrNotFound)
	}
	return c[n], nil
}

func heads(c chain, finalized, safe uint64) safesource.Heads {
	return safesource.Heads{Finalized: c[finalized], Safe: c[safe], LocalSafe: c[safe]}
}

func local(c chain, finalized, safe, unsafe uint64) Local {
	return Local{Finalized: c[finalized], Safe: c[safe], Unsafe: c[unsafe]}
}

// input builds the Input the adapter would gather: the engine (el, up to the
// local unsafe head) read at the source's safe and finalized heights.
func input(el chain, l Local, h safesource.Heads) Input {
	el = el[:l.Unsafe.Number+1]
	in := Input{Heads: h, Local: l, ELAtSafe: el.at(h.Safe.Number), ELAtFinalized: el.at(h.Finalized.Number)}
	if h.Safe.Number < l.Safe.Number {
		in.ELAtLocalSafe = el.at(l.Safe.Number)
	}
	return in
}

// withAncestor runs the search a NeedAncestor decision asked for and decides again.
func withAncestor(in Input, d Decision, el, src chain) Decision {
	if d.Action != NeedAncestor {
		return d
	}
	el = el[:in.Local.Unsafe.Number+1]
	in.Ancestor = Search(context.Background(), d, in, el.lookup, src.lookup)
	return Decide(in)
}
