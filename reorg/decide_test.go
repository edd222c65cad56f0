package reorg

import (
	"errors"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/safesource"
)

// The fixture: the engine holds chain a up to 20, safe 10, finalized 5. Chain b
// forks from a after block 12; chain c forks from a after block 3, below the
// local finalized head.
var (
	a = newChain(1, 40)
	b = a.fork(12, 2, 30)
	c = a.fork(3, 3, 30)
)

func TestDecideTable(t *testing.T) {
	l := local(a, 5, 10, 20)
	tests := []struct {
		name   string
		in     Input
		src    chain // the source's chain, for the ancestor search
		action Action
		check  func(t *testing.T, d Decision)
	}{
		{
			name:   "source error is skipped",
			in:     Input{SourceErr: errors.New("connection refused"), Local: l},
			action: Skip,
		},
		{
			name: "source finalized above safe is skipped",
			in: input(a, l, func() (h safesource.Heads) {
				h = heads(a, 5, 15)
				h.Finalized = a[16]
				return h
			}()),
			action: Skip,
		},
		{
			name: "source safe above local-safe is skipped",
			in: input(a, l, func() (h safesource.Heads) {
				h = heads(a, 5, 15)
				h.LocalSafe = a[14]
				return h
			}()),
			action: Skip,
		},
		{
			name: "engine read failure is skipped",
			in: func() Input {
				in := input(a, l, heads(a, 5, 15))
				in.ELAtSafe = Lookup{Err: errors.New("timeout")}
				return in
			}(),
			action: Skip,
		},
		{
			name: "head the engine called INVALID is skipped",
			in: func() Input {
				in := input(a, l, heads(a, 5, 15))
				in.Rejected = func(h common.Hash) bool { return h == a[15].Hash }
				return in
			}(),
			action: Skip,
		},
		{
			name:   "source finalized conflicts with local finalized: halt",
			in:     input(a, l, heads(c, 5, 15)),
			action: Halt,
		},
		{
			name:   "source finalized below local finalized on another chain: halt",
			in:     input(a, l, heads(c, 4, 15)),
			action: Halt,
		},
		{
			name: "source safe leaves the finalized chain below it, finalized behind: halt after search",
			in: func() Input {
				// the source claims a's block 2 as finalized but its safe head is on c
				h := heads(c, 2, 16)
				h.Finalized = a[2]
				return input(a, l, h)
			}(),
			src:    c,
			action: Halt,
		},
		{
			name:   "source behind local on the same chain: never move backwards",
			in:     input(a, l, heads(a, 3, 8)),
			action: Hold,
		},
		{
			name: "source finalized behind but safe ahead: finalized kept",
			in:   input(a, l, heads(a, 3, 15)),
			src:  a,
			check: func(t *testing.T, d Decision) {
				require.Equal(t, a[5], d.Next.Finalized)
				require.Equal(t, a[15], d.Next.Safe)
			},
			action: Consolidate,
		},
		{
			name: "source safe behind local safe on a different chain: safe reorg",
			in: func() Input {
				l := local(a, 5, 16, 20)
				return input(a, l, heads(b, 5, 14))
			}(),
			src:    b,
			action: Reorg,
			check: func(t *testing.T, d Decision) {
				require.Equal(t, b[14], d.Next.Safe)
				require.Equal(t, b[14], d.Next.Unsafe)
				require.Equal(t, a[5], d.Next.Finalized)
				require.Equal(t, uint64(8), d.Depth)
			},
		},
		{
			name:   "source safe ahead of local unsafe: catch up by EL sync",
			in:     input(a, l, heads(a, 8, 30)),
			src:    a,
			action: CatchUp,
			check: func(t *testing.T, d Decision) {
				require.Equal(t, eth.ForkchoiceState{HeadBlockHash: a[30].Hash, SafeBlockHash: a[30].Hash, FinalizedBlockHash: a[8].Hash}, d.Forkchoice)
				require.Zero(t, d.Depth)
				require.Zero(t, d.BackfillTo, "no backfill in EL-sync mode")
			},
		},
		{
			name: "source safe ahead of local unsafe: catch up by backfill",
			in: func() Input {
				in := input(a, l, heads(a, 8, 30))
				in.Mode = Backfill
				return in
			}(),
			src:    a,
			action: CatchUp,
			check: func(t *testing.T, d Decision) {
				require.Equal(t, uint64(21), d.BackfillFrom)
				require.Equal(t, uint64(30), d.BackfillTo)
			},
		},
		{
			name:   "source safe ahead of local unsafe on another chain: catch up with reorg depth",
			in:     input(a, l, heads(b, 5, 35)),
			src:    b,
			action: CatchUp,
			check: func(t *testing.T, d Decision) {
				require.Equal(t, a[12], d.Ancestor)
				require.Equal(t, uint64(8), d.Depth)
				require.Equal(t, b[35].Hash, d.Forkchoice.HeadBlockHash)
				require.Equal(t, a[5].Hash, d.Forkchoice.FinalizedBlockHash)
			},
		},
		{
			name: "EL still syncing: move the safe label only",
			in: func() Input {
				in := input(a, l, heads(a, 5, 15))
				in.ELAtSafe = Lookup{} // the engine reports head 20 but lacks block 15
				in.ELAtFinalized = Lookup{}
				return in
			}(),
			src:    a,
			action: SafeLabelOnly,
			check: func(t *testing.T, d Decision) {
				require.Equal(t, Local{Unsafe: a[20], Safe: a[15], Finalized: a[5]}, d.Next)
				require.False(t, d.SendsForkchoice())
			},
		},
		{
			name:   "EL block at safe height equals source safe: consolidate",
			in:     input(a, l, heads(a, 5, 15)),
			action: Consolidate,
			check: func(t *testing.T, d Decision) {
				require.Equal(t, eth.ForkchoiceState{HeadBlockHash: a[20].Hash, SafeBlockHash: a[15].Hash, FinalizedBlockHash: a[5].Hash}, d.Forkchoice)
			},
		},
		{
			name:   "consolidate advances finalized",
			in:     input(a, l, heads(a, 9, 15)),
			action: Consolidate,
			check: func(t *testing.T, d Decision) {
				require.Equal(t, a[9], d.Next.Finalized)
			},
		},
		{
			name:   "source equals local: up to date",
			in:     input(a, l, heads(a, 5, 10)),
			action: Hold,
		},
		{
			name:   "EL block at safe height differs: reorg, unsafe reset to safe",
			in:     input(a, l, heads(b, 5, 18)),
			src:    b,
			action: Reorg,
			check: func(t *testing.T, d Decision) {
				require.Equal(t, Local{Unsafe: b[18], Safe: b[18], Finalized: a[5]}, d.Next)
				require.Equal(t, a[12], d.Ancestor)
				require.Equal(t, uint64(8), d.Depth)
				require.Equal(t, eth.ForkchoiceState{HeadBlockHash: b[18].Hash, SafeBlockHash: b[18].Hash, FinalizedBlockHash: a[5].Hash}, d.Forkchoice)
			},
		},
		{
			name: "EL still syncing, source off the finalized chain: halt, the safe label stays",
			in: func() Input {
				in := input(a, l, heads(c, 5, 15))
				in.Heads.Finalized = a[5] // claims local finalized, but its chain is c
				in.ELAtSafe = Lookup{}
				return in
			}(),
			src:    c,
			action: Halt,
		},
		{
			name: "source lagging behind a local safe the engine does not hold: safe follows the source",
			in: func() Input {
				l := local(a, 5, 16, 20)
				in := input(a, l, heads(a, 5, 12))
				in.ELAtLocalSafe = Lookup{} // the label moved while the engine synced
				return in
			}(),
			action: Consolidate,
			check: func(t *testing.T, d Decision) {
				require.Equal(t, a[12], d.Next.Safe)
			},
		},
		{
			name: "source lookups contradict its safe head: skipped as the source's fault",
			in:   input(a, l, heads(b, 5, 18)),
			src:  a, // the source answers lookups from a, but its safe head is on b
			check: func(t *testing.T, d Decision) {
				require.True(t, d.SourceFault)
				require.ErrorIs(t, d.Err, safesource.ErrInconsistentHeads)
			},
			action: Skip,
		},
		{
			name: "consolidate onto an unsafe head the engine declared INVALID: skipped",
			in: func() Input {
				in := input(a, l, heads(a, 5, 15))
				in.Rejected = func(h common.Hash) bool { return h == a[20].Hash }
				return in
			}(),
			action: Skip,
			check: func(t *testing.T, d Decision) {
				require.ErrorIs(t, d.Err, ErrRejected)
			},
		},
		{
			name:   "engine without a finalized head yet: source finalized adopted",
			in:     input(a, Local{Unsafe: a[20], Safe: a[0]}, heads(a, 0, 15)),
			action: Consolidate,
			check: func(t *testing.T, d Decision) {
				require.Equal(t, a[0], d.Next.Finalized)
			},
		},
		{
			name: "engine lost blocks below local finalized: catch up only to a chain holding it",
			in: func() Input {
				l := Local{Unsafe: a[3], Safe: a[5], Finalized: a[5]}
				return input(a, l, heads(a, 8, 30))
			}(),
			src:    a,
			action: CatchUp,
			check: func(t *testing.T, d Decision) {
				require.Equal(t, a[5].Hash, d.Forkchoice.FinalizedBlockHash)
				require.Equal(t, a[30].Hash, d.Forkchoice.HeadBlockHash)
			},
		},
		{
			name:   "reorg whose common ancestor is below local finalized: halt",
			in:     input(a, l, heads(c, 2, 18)),
			src:    c,
			action: Halt,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.in)
			if tt.src != nil {
				d = withAncestor(tt.in, d, a, tt.src)
			}
			require.Equal(t, tt.action, d.Action, d.Reason)
			require.NotEmpty(t, d.Reason)
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

func TestDecideAsksForAncestorBeforeReorg(t *testing.T) {
	l := local(a, 5, 10, 20)
	d := Decide(input(a, l, heads(b, 5, 18)))
	require.Equal(t, NeedAncestor, d.Action)
	require.Equal(t, uint64(5), d.SearchLo)
	require.Equal(t, uint64(18), d.SearchHi)
	require.False(t, d.SendsForkchoice())
}

func TestDecideAncestorSearchErrorSkips(t *testing.T) {
	l := local(a, 5, 10, 20)
	in := input(a, l, heads(b, 5, 18))
	in.Ancestor = &AncestorResult{Err: errors.New("source timeout")}
	require.Equal(t, Skip, Decide(in).Action)
}

func TestApply(t *testing.T) {
	prev := local(a, 5, 10, 20)
	d := Decide(input(a, prev, heads(a, 9, 15)))
	require.Equal(t, Consolidate, d.Action)

	t.Run("VALID moves the labels", func(t *testing.T) {
		o := Apply(prev, d, eth.ExecutionValid)
		require.Equal(t, d.Next, o.Local)
		require.False(t, o.Syncing)
	})
	t.Run("SYNCING keeps the target for the next tick", func(t *testing.T) {
		o := Apply(prev, d, eth.ExecutionSyncing)
		require.Equal(t, prev, o.Local)
		require.True(t, o.Syncing)
		require.Zero(t, o.Rejected)
	})
	t.Run("INVALID rejects the head for good", func(t *testing.T) {
		o := Apply(prev, d, eth.ExecutionInvalid)
		require.Equal(t, prev, o.Local)
		require.Equal(t, d.Forkchoice.HeadBlockHash, o.Rejected)
	})
}
