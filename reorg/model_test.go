package reorg

import (
	"context"
	"flag"
	"math/rand"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/safesource"
)

var modelCases = flag.Int("model.cases", 20000, "random cases for TestModel")
var modelSeed = flag.Int64("model.seed", 1, "first seed for TestModel")

// tree indexes every block of a case for ancestry checks.
type tree map[common.Hash]eth.L2BlockRef

func (tr tree) add(c chain) {
	for _, r := range c {
		tr[r.Hash] = r
	}
}

// descends reports whether y is x or a descendant of x.
func (tr tree) descends(x, y eth.L2BlockRef) bool {
	for y.Number > x.Number {
		p, ok := tr[y.ParentHash]
		if !ok {
			return false
		}
		y = p
	}
	return y.Hash == x.Hash
}

// modelCase is one random engine/source pair.
type modelCase struct {
	el, src  chain
	l        Local
	h        safesource.Heads
	honest   bool // heads consistent, on the source chain, and the chain keeps local finalized
	rejected common.Hash
	syncing  bool  // the engine lacks blocks below its head
	lookups  chain // what the source's L2BlockRefByNumber answers from; nil: src
	mode     SyncMode
}

func (mc modelCase) lookup() func(context.Context, uint64) (eth.L2BlockRef, error) {
	if mc.lookups != nil {
		return mc.lookups.lookup
	}
	return mc.src.lookup
}

func randomCase(rng *rand.Rand) modelCase {
	n := uint64(5 + rng.Intn(200))
	el := newChain(1, n)
	var mc modelCase
	u := uint64(rng.Int63n(int64(n) + 1))
	s := uint64(rng.Int63n(int64(u) + 1))
	f := uint64(rng.Int63n(int64(s) + 1))
	mc.el, mc.l = el, local(el, f, s, u)

	switch r := rng.Intn(10); {
	case r < 3: // the source follows the same chain, maybe further
		mc.src = el.extend(1, uint64(rng.Intn(50)))
	case r < 8: // a fork above local finalized
		at := f + uint64(rng.Int63n(int64(n-f)+1))
		mc.src = el.fork(at, 2+uint64(rng.Intn(3)), 1+uint64(rng.Intn(150)))
	default: // a fork below local finalized, when there is room
		if f == 0 {
			mc.src = el.fork(0, 7, 1+uint64(rng.Intn(150)))
		} else {
			mc.src = el.fork(uint64(rng.Int63n(int64(f))), 7, n+uint64(rng.Intn(50)))
		}
	}
	tip := uint64(len(mc.src) - 1)
	ss := uint64(rng.Int63n(int64(tip) + 1))
	sf := uint64(rng.Int63n(int64(ss) + 1))
	mc.h = heads(mc.src, sf, ss)
	mc.honest = true
	keepsFinalized := uint64(len(mc.src)) > f && mc.src[f].Hash == el[f].Hash

	switch rng.Intn(20) {
	case 0: // finalized above safe
		if ss+1 < uint64(len(mc.src)) {
			mc.h.Finalized = mc.src[ss+1]
			mc.honest = false
		}
	case 1: // labels from different chains
		mc.h.Finalized = el[min(sf, n)]
		mc.honest = mc.h.Finalized.Hash == mc.src[min(sf, tip)].Hash
	case 2: // a zero hash
		mc.h.Safe.Hash = common.Hash{}
		mc.honest = false
	case 3:
		mc.rejected = mc.h.Safe.Hash
	case 4:
		mc.syncing = true
	case 5: // the engine declared its own head INVALID
		mc.rejected = el[u].Hash
	case 6: // lookups answered from the engine's chain, not the source's
		mc.lookups = el
		mc.honest = mc.honest && uint64(len(el)) == uint64(len(mc.src)) && el.tip() == mc.src.tip()
	case 7: // lookups answered from a chain that forks below local finalized
		mc.lookups = el.fork(uint64(rng.Int63n(int64(f)+1)), 9, n)
		mc.honest = false
	}
	mc.honest = mc.honest && keepsFinalized
	if rng.Intn(2) == 0 {
		mc.mode = Backfill
	}
	return mc
}

// gather builds the adapter's input for the engine chain el up to the local
// unsafe head.
func (mc modelCase) gather(el chain, l Local) Input {
	in := input(el, l, mc.h)
	in.Mode = mc.mode
	if mc.syncing {
		in.ELAtSafe, in.ELAtFinalized = Lookup{}, Lookup{}
	}
	if mc.rejected != (common.Hash{}) {
		rej := mc.rejected
		in.Rejected = func(h common.Hash) bool { return h == rej }
	}
	return in
}

// TestModel drives Decide over random engine/source chain pairs with forks at
// random heights and checks the invariants of docs/DESIGN.md on every decision:
// finalized ≤ safe ≤ unsafe; finalized never regresses nor leaves the local
// finalized chain; every forkchoice update's finalized is an ancestor of its
// safe and its safe of its head; a rejected head is never sent; the ancestor
// search stays within its logarithmic bound. It also checks progress: honest
// heads are acted on, and after the engine applies the update, deciding again on
// the same heads changes nothing.
func TestModel(t *testing.T) {
	ctx := context.Background()
	seen := map[Action]int{}
	for i := 0; i < *modelCases; i++ {
		seed := *modelSeed + int64(i)
		rng := rand.New(rand.NewSource(seed))
		mc := randomCase(rng)
		tr := tree{}
		tr.add(mc.el)
		tr.add(mc.src)

		el, l := mc.el, mc.l
		for step := 0; step < 3; step++ {
			in := mc.gather(el, l)
			d := Decide(in)
			if d.Action == NeedAncestor {
				require.LessOrEqual(t, d.SearchLo, d.SearchHi, "seed %d", seed)
				var calls int
				elView := el[:l.Unsafe.Number+1]
				in.Ancestor = Search(ctx, d, in, counted(elView.lookup, &calls), counted(mc.lookup(), &calls))
				require.LessOrEqual(t, calls, 1+maxLookups(d.SearchLo, d.SearchHi), "seed %d", seed)
				d = Decide(in)
				require.NotEqual(t, NeedAncestor, d.Action, "seed %d: asked for the ancestor twice", seed)
			}
			seen[d.Action]++
			require.NotEmpty(t, d.Reason)

			if step == 0 && mc.honest && mc.rejected == (common.Hash{}) && !mc.syncing && mc.lookups == nil {
				require.NotContains(t, []Action{Skip, Halt}, d.Action, "seed %d: honest heads not acted on: %s", seed, d.Reason)
			}
			if !mc.honest && d.SendsForkchoice() {
				// a dishonest source may still be followed where what it says is
				// true of the engine's chain, but never off the local finalized chain
				require.True(t, tr.descends(mc.l.Finalized, tr[d.Forkchoice.HeadBlockHash]), "seed %d", seed)
			}
			if d.Action == SafeLabelOnly || d.SendsForkchoice() {
				n := d.Next
				require.LessOrEqual(t, n.Finalized.Number, n.Safe.Number, "seed %d", seed)
				require.LessOrEqual(t, n.Safe.Number, n.Unsafe.Number, "seed %d", seed)
				require.True(t, tr.descends(l.Finalized, n.Finalized), "seed %d: finalized regressed or left its chain", seed)
				require.True(t, tr.descends(mc.l.Finalized, n.Safe), "seed %d: safe label left the finalized chain", seed)
			}
			if d.Action == SafeLabelOnly {
				l = d.Next
				continue // deciding again on the same heads must settle
			}
			if !d.SendsForkchoice() {
				break
			}
			if mc.mode == Backfill && (d.Action == CatchUp || d.Action == Reorg) {
				// backfill inserts exactly the blocks between what the engine
				// holds and the target, building on a block it holds
				require.Equal(t, d.Next.Unsafe.Number, d.BackfillTo, "seed %d", seed)
				base := d.Ancestor
				if d.BackfillBase != (eth.L2BlockRef{}) {
					base = d.BackfillBase
				}
				require.Equal(t, base.Number+1, d.BackfillFrom, "seed %d", seed)
				require.LessOrEqual(t, base.Number, l.Unsafe.Number, "seed %d: backfill builds on a block the engine lacks", seed)
				require.True(t, tr.descends(base, tr[d.Forkchoice.HeadBlockHash]), "seed %d: the target does not build on the backfill base", seed)
			} else {
				require.Zero(t, d.BackfillTo, "seed %d: backfill outside backfill mode", seed)
			}
			fc := d.Forkchoice
			for _, h := range []common.Hash{fc.HeadBlockHash, fc.SafeBlockHash, fc.FinalizedBlockHash} {
				require.NotEqual(t, mc.rejected, h, "seed %d: rejected block sent", seed)
			}
			head, safe, fin := tr[fc.HeadBlockHash], tr[fc.SafeBlockHash], tr[fc.FinalizedBlockHash]
			require.True(t, tr.descends(fin, safe), "seed %d: finalized not an ancestor of safe", seed)
			require.True(t, tr.descends(safe, head), "seed %d: safe not an ancestor of head", seed)
			require.True(t, tr.descends(mc.l.Finalized, fin), "seed %d: finalized left the local finalized chain", seed)

			// the engine applies the update: its chain becomes the head's chain
			if tr.descends(head, mc.src.tip()) {
				el = mc.src
			}
			l = Apply(l, d, eth.ExecutionValid).Local
			mc.syncing = false
			require.Less(t, step, 2, "seed %d: no fixed point after two updates: %s", seed, d.Reason)
		}
	}
	t.Logf("%d cases, actions: %v", *modelCases, seen)
	for _, a := range []Action{Skip, Hold, Halt, CatchUp, SafeLabelOnly, Consolidate, Reorg} {
		require.Positive(t, seen[a], "the model never produced %s", a)
	}
}
