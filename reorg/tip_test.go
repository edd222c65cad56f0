package reorg

import (
	"errors"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"
)

// tipInput is what the adapter gathers for a tip chain: the engine (el, up to
// the local unsafe head) read below the chain's lowest block when that height
// is above local safe and at or below the head.
func tipInput(el chain, l Local, tips ...eth.L2BlockRef) TipInput {
	in := TipInput{Local: l, Chain: tips, Window: 8, Mode: ELSync, HeadOnSafe: true}
	el = el[:l.Unsafe.Number+1]
	if p := tips[0].Number - 1; tips[0].Number > 0 && p > l.Safe.Number && p <= l.Unsafe.Number {
		in.ELAtParent = el.at(p)
	}
	if n := tips[len(tips)-1].Number; n > l.Safe.Number && n <= l.Unsafe.Number {
		in.ELAtTip = el.at(n)
	}
	return in
}

// The tip table, on the decision table's fixture: the engine holds chain a up
// to 20, safe 10, finalized 5; b forks from a after 12 (above safe), c after 3
// (below finalized).
func TestDecideTipTable(t *testing.T) {
	l := local(a, 5, 10, 20)
	d := a.fork(8, 4, 30)  // forks after 8, below local safe 10
	e := a.fork(10, 5, 30) // forks at local safe
	rejected := func(h common.Hash) bool { return h == b[14].Hash }
	for _, tc := range []struct {
		name   string
		in     TipInput
		action TipAction
		check  func(t *testing.T, d TipDecision)
	}{
		{name: "tip extends the local head", in: tipInput(a, l, a[21]), action: TipInsert,
			check: func(t *testing.T, d TipDecision) {
				require.Equal(t, a[21], d.Next.Unsafe)
				require.Zero(t, d.Depth)
			}},
		{name: "tip chain of three extends the local head", in: tipInput(a, l, a[21], a[22], a[23]), action: TipInsert,
			check: func(t *testing.T, d TipDecision) { require.Equal(t, a[23], d.Next.Unsafe) }},
		{name: "tip ahead with a gap asks for its parent", in: tipInput(a, l, a[23]), action: TipNeedParent,
			check: func(t *testing.T, d TipDecision) { require.Equal(t, a[22].Hash, d.Parent) }},
		{name: "tip is the local head already", in: tipInput(a, l, a[20]), action: TipIgnore},
		{name: "tip below the local head on the local chain is ignored (the feed is behind)", in: tipInput(a, l, a[15]), action: TipIgnore},
		{name: "engine read failure at the tip's height ignores it",
			in: func() TipInput {
				in := tipInput(a, l, b[16])
				in.ELAtTip = Lookup{Err: errors.New("timeout")}
				return in
			}(), action: TipIgnore, check: func(t *testing.T, d TipDecision) { require.Error(t, d.Err) }},
		{name: "tip on a fork above safe asks for its parent", in: tipInput(a, l, b[16]), action: TipNeedParent,
			check: func(t *testing.T, d TipDecision) { require.Equal(t, b[15].Hash, d.Parent) }},
		{name: "tip on a fork above safe, chain down to the fork point, is followed", in: tipInput(a, l, b[13], b[14], b[15], b[16]),
			action: TipInsert, check: func(t *testing.T, d TipDecision) {
				require.Equal(t, b[16], d.Next.Unsafe)
				require.Equal(t, uint64(8), d.Depth, "blocks 13..20 of the local chain are abandoned")
			}},
		{name: "tip on a fork at local safe is followed", in: tipInput(a, l, e[11], e[12]), action: TipInsert,
			check: func(t *testing.T, d TipDecision) { require.Equal(t, uint64(10), d.Depth) }},
		{name: "tip below local safe is ignored", in: tipInput(a, l, a[9]), action: TipIgnore},
		{name: "tip at local safe is ignored", in: tipInput(a, l, a[10]), action: TipIgnore},
		{name: "tip on a fork below local safe is ignored", in: tipInput(a, l, d[9], d[10], d[11], d[12]), action: TipIgnore},
		{name: "tip on a fork below local safe, reaching safe's height, is ignored", in: tipInput(a, l, d[11], d[12]), action: TipIgnore},
		{name: "tip building on a block the engine called INVALID is dropped",
			in: func() TipInput {
				in := tipInput(a, l, b[13], b[14], b[15])
				in.Rejected = rejected
				return in
			}(), action: TipIgnore},
		{name: "tip whose parent the engine called INVALID is dropped",
			in: func() TipInput {
				in := tipInput(a, l, b[15])
				in.Rejected = rejected
				return in
			}(), action: TipIgnore},
		{name: "engine read failure below the tip chain ignores it",
			in: func() TipInput {
				in := tipInput(a, l, b[16])
				in.ELAtParent = Lookup{Err: errors.New("timeout")}
				return in
			}(), action: TipIgnore, check: func(t *testing.T, d TipDecision) { require.Error(t, d.Err) }},
		{name: "tip far ahead in EL-sync mode syncs to it",
			in: func() TipInput {
				in := tipInput(a, l, a[30:38]...)
				in.Window = 8
				return in
			}(), action: TipSync, check: func(t *testing.T, d TipDecision) { require.Equal(t, a[37], d.Next.Unsafe) }},
		{name: "tip far ahead in backfill mode waits",
			in: func() TipInput {
				in := tipInput(a, l, a[30:38]...)
				in.Mode = Backfill
				return in
			}(), action: TipIgnore},
		{name: "head not known to hold safe: a tip extending it asks for its parent",
			in: func() TipInput {
				in := tipInput(a, l, a[21])
				in.HeadOnSafe = false
				return in
			}(), action: TipNeedParent},
		{name: "head not known to hold safe: a chain reaching local safe is followed from it",
			in: func() TipInput {
				in := tipInput(a, l, a[11:22]...)
				in.HeadOnSafe = false
				return in
			}(), action: TipInsert, check: func(t *testing.T, d TipDecision) { require.Equal(t, uint64(10), d.Depth) }},
		{name: "head not known to hold safe: a chain missing local safe is ignored",
			in: func() TipInput {
				in := tipInput(a, local(a, 5, 10, 20), c[11:14]...)
				in.HeadOnSafe = false
				return in
			}(), action: TipIgnore},
		{name: "tip from another genesis is ignored", in: tipInput(a, local(a, 0, 0, 0), newChain(9, 0)[0]), action: TipIgnore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideTip(tc.in)
			require.Equal(t, tc.action, d.Action, "reason: %s", d.Reason)
			require.NotEmpty(t, d.Reason)
			if d.SendsForkchoice() {
				// nothing from a tip feed moves safe or finalized
				require.Equal(t, tc.in.Local.Safe, d.Next.Safe)
				require.Equal(t, tc.in.Local.Finalized, d.Next.Finalized)
				require.Equal(t, tc.in.Local.Safe.Hash, d.Forkchoice.SafeBlockHash)
				require.Equal(t, tc.in.Local.Finalized.Hash, d.Forkchoice.FinalizedBlockHash)
				require.Equal(t, d.Next.Unsafe.Hash, d.Forkchoice.HeadBlockHash)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

// TestDecideTipNeverBelowSafe walks every fork of a from every height back
// down to the fork point, one parent at a time as the adapter does: a chain
// is inserted only when it descends from local safe and is not on the local
// chain already, and never abandons a block at or below local safe.
func TestDecideTipNeverBelowSafe(t *testing.T) {
	l := local(a, 5, 10, 20)
	for forkAt := uint64(0); forkAt < 25; forkAt++ {
		f := a.fork(forkAt, 100+forkAt, 30)
		for top := forkAt + 1; top < uint64(len(f)); top++ {
			chainOf := []eth.L2BlockRef{f[top]}
			for steps := 0; ; steps++ {
				require.Less(t, steps, 64, "fork %d top %d: the walk ends", forkAt, top)
				in := tipInput(a, l, chainOf...)
				in.Window = 64
				d := DecideTip(in)
				if d.Action != TipNeedParent {
					onLocal := top <= forkAt && top <= l.Unsafe.Number // a block the engine holds
					descends := forkAt >= l.Safe.Number && top > l.Safe.Number
					if descends && !onLocal {
						require.Equal(t, TipInsert, d.Action, "fork %d top %d: %s", forkAt, top, d.Reason)
						require.LessOrEqual(t, d.Depth, l.Unsafe.Number-l.Safe.Number, "never below safe")
					} else {
						require.Equal(t, TipIgnore, d.Action, "fork %d top %d: %s", forkAt, top, d.Reason)
					}
					break
				}
				low := chainOf[0]
				require.Equal(t, low.ParentHash, d.Parent)
				chainOf = append([]eth.L2BlockRef{f[low.Number-1]}, chainOf...)
			}
		}
	}
}
