package quorum

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/safesource"
)

// refs is a synthetic chain for decide's tests; index i is block i. Blocks
// of one tag are the same on every chain that holds them.
type refs []eth.L2BlockRef

func (c refs) grow(tag uint64, n int) refs {
	for range n {
		num := uint64(len(c))
		var h common.Hash
		binary.BigEndian.PutUint64(h[:8], tag)
		binary.BigEndian.PutUint64(h[8:16], num)
		var parent common.Hash
		if num > 0 {
			parent = c[num-1].Hash
		}
		c = append(c, eth.L2BlockRef{Hash: h, Number: num, ParentHash: parent})
	}
	return c
}

// fork returns c up to height at, then n blocks of tag.
func (c refs) fork(at uint64, tag uint64, n int) refs {
	return append(refs{}, c[:at+1]...).grow(tag, n)
}

func (c refs) heads(fin, safe, localSafe uint64) safesource.Heads {
	return safesource.Heads{Finalized: c[fin], Safe: c[safe], LocalSafe: c[localSafe]}
}

var main200 = refs{}.grow(1, 201)

// lookups says how a scripted member answers lookups.
type lookups int

const (
	fromChain     lookups = iota // its chain's block; a height past its tip is not found
	timesOut                     // no answer within MemberTimeout
	failing                      // an error at once
	lateForRecord                // asked for the record, no answer within the straggler wait; asked in full, its chain's block
)

// scripted is one member as decide's tests see it: its heads answer, its
// chain, and how it answers lookups.
type scripted struct {
	name    string
	heads   safesource.Heads
	down    bool // its heads answer failed
	chain   refs
	lookups lookups
}

func (s scripted) lookup(k lookupKey, record bool) lookupResult {
	r := lookupResult{lookupKey: k}
	switch {
	case s.lookups == timesOut:
		r.err, r.timedOut = context.DeadlineExceeded, true
	case s.lookups == failing:
		r.err = errors.New("connection refused")
	case s.lookups == lateForRecord && record:
		r.late = true
	case k.height >= uint64(len(s.chain)):
		r.err = fmt.Errorf("block %d: %w", k.height, safesource.ErrNotFound)
	default:
		r.ref = s.chain[k.height]
	}
	return r
}

// play runs decide to the end as a round would, answering every lookup it
// asks for at once from the members' scripts, and returns the outcome and
// the lookups asked, by member name and height. It fails the test when
// decide asks a lookup twice (but for one that came back late and is needed
// in full: the round waits for the call still running), asks a member that
// timed out, or asks for lookups after the caller gave up.
func play(t *testing.T, m int, members []scripted, lastFinalized eth.L2BlockRef, final bool) (outcome, []string) {
	t.Helper()
	in := input{threshold: m, lastFinalized: lastFinalized, final: final}
	for i, s := range members {
		a := answer{member: i, heads: s.heads}
		if s.down {
			a.err = errors.New("down")
		}
		in.answers = append(in.answers, a)
	}
	asked := map[lookupKey]bool{}
	late := map[lookupKey]bool{}
	timedOut := map[int]bool{}
	var order []string
	for step := 0; ; step++ {
		require.Less(t, step, 50, "decide does not end")
		out := decide(in)
		if out.done() {
			return out, order
		}
		require.False(t, final, "asked for lookups after the caller gave up: %v", out.need)
		for _, k := range out.need {
			name := members[k.member].name
			require.False(t, asked[k] && !late[k], "asked %s at %d twice", name, k.height)
			require.False(t, timedOut[k.member], "asked %s at %d after it timed out", name, k.height)
			if !asked[k] {
				order = append(order, fmt.Sprintf("%s@%d", name, k.height))
			}
			asked[k] = true
			r := members[k.member].lookup(k, out.record && !late[k])
			late[k] = late[k] || r.late
			timedOut[k.member] = timedOut[k.member] || r.timedOut
			in.lookups = append(in.lookups, r)
		}
	}
}

func TestDecide(t *testing.T) {
	liarFork95 := main200.fork(95, 2, 40)
	liarFork150 := main200.fork(150, 2, 50)
	forged := append(refs{}, main200...)
	forged[100].L1Origin.Number = 999999 // the honest hash, another record
	sharesOnlyGenesis := func(tag uint64) refs { return main200.fork(0, tag, 60) }
	finOnFork := main200.heads(60, 105, 105)
	finOnFork.Finalized = main200.fork(55, 3, 10)[58]
	// claims local-safe 110 with the honest chain, but answers lookups from a fork below the safe head
	lsLiar := scripted{name: "liar", heads: main200.heads(80, 90, 110), chain: main200.fork(85, 2, 40)}

	for _, tc := range []struct {
		name          string
		m             int
		members       []scripted
		lastFinalized eth.L2BlockRef
		final         bool

		want       safesource.Heads
		wantErr    error
		supporters []string
		disagreed  []string
		noQuorum   []string
		timedOut   []string
		asked      []string
	}{
		{
			name: "all three agree at every label: no lookups",
			m:    2,
			members: []scripted{
				{name: "a", heads: main200.heads(80, 100, 104), chain: main200},
				{name: "b", heads: main200.heads(80, 100, 104), chain: main200},
				{name: "c", heads: main200.heads(80, 100, 104), chain: main200},
			},
			want:       main200.heads(80, 100, 104),
			supporters: []string{"a", "b", "c"},
		},
		{
			name: "two of three agree at safe, the third lags",
			m:    2,
			members: []scripted{
				{name: "a", heads: main200.heads(80, 100, 100), chain: main200},
				{name: "b", heads: main200.heads(80, 100, 100), chain: main200},
				{name: "lagging", heads: main200.heads(70, 90, 90), chain: main200[:91]},
			},
			want:       main200.heads(80, 100, 100),
			supporters: []string{"a", "b"},
		},
		{
			name: "the third lags and M is three: the leaders are asked for its blocks, it is not",
			m:    3,
			members: []scripted{
				{name: "a", heads: main200.heads(80, 100, 100), chain: main200},
				{name: "b", heads: main200.heads(80, 100, 100), chain: main200},
				{name: "lagging", heads: main200.heads(70, 90, 90), chain: main200[:91]},
			},
			want:       main200.heads(70, 90, 90),
			supporters: []string{"a", "b", "lagging"},
			asked:      []string{"a@90", "b@90", "a@70", "b@70"},
		},
		{
			name: "three heights: the second highest of each label, held by the leader",
			m:    2,
			members: []scripted{
				{name: "a", heads: main200.heads(90, 120, 125), chain: main200},
				{name: "b", heads: main200.heads(85, 110, 111), chain: main200},
				{name: "c", heads: main200.heads(80, 100, 102), chain: main200},
			},
			want:       main200.heads(85, 110, 111),
			supporters: []string{"a", "b"},
			asked:      []string{"a@110", "a@85", "a@111"},
		},
		{
			name: "liar with a fork below: outvoted, and named for the record",
			m:    2,
			members: []scripted{
				{name: "a", heads: main200.heads(80, 100, 100), chain: main200},
				{name: "b", heads: main200.heads(80, 100, 100), chain: main200},
				{name: "liar", heads: liarFork95.heads(90, 110, 112), chain: liarFork95},
			},
			want:       main200.heads(80, 100, 100),
			supporters: []string{"a", "b"},
			disagreed:  []string{"liar"},
			asked:      []string{"liar@100"},
		},
		{
			name: "liar with a fork below and M is three: agreed below the fork, where it holds the honest blocks",
			m:    3,
			members: []scripted{
				{name: "a", heads: main200.heads(80, 100, 100), chain: main200},
				{name: "b", heads: main200.heads(80, 100, 100), chain: main200},
				{name: "liar", heads: liarFork95.heads(90, 110, 112), chain: liarFork95},
			},
			want:       main200.heads(80, 90, 90),
			supporters: []string{"a", "b", "liar"},
			asked:      []string{"liar@100", "a@90", "b@90", "liar@80"},
		},
		{
			name: "member timed out is not asked again",
			m:    3,
			members: []scripted{
				{name: "liar", heads: liarFork150.heads(110, 190, 190), chain: liarFork150, lookups: timesOut},
				{name: "a", heads: main200.heads(80, 100, 100), chain: main200},
				{name: "b", heads: main200.heads(79, 99, 99), chain: main200},
				{name: "c", heads: main200.heads(78, 98, 98), chain: main200},
			},
			want:       main200.heads(78, 98, 98),
			supporters: []string{"a", "b", "c"},
			timedOut:   []string{"liar"},
			asked:      []string{"liar@99", "a@99", "a@98", "b@98", "a@78", "b@78"},
		},
		{
			name: "record lookup not answered within the straggler wait is not waited for",
			m:    3,
			members: []scripted{
				{name: "liar", heads: liarFork150.heads(110, 190, 190), chain: liarFork150, lookups: lateForRecord},
				{name: "a", heads: main200.heads(80, 100, 104), chain: main200},
				{name: "b", heads: main200.heads(80, 100, 104), chain: main200},
				{name: "c", heads: main200.heads(80, 100, 104), chain: main200},
			},
			want:       main200.heads(80, 100, 104),
			supporters: []string{"a", "b", "c"},
			asked:      []string{"liar@100"},
		},
		{
			name: "forged record of the honest hash is not support",
			m:    2,
			members: []scripted{
				{name: "liar", heads: forged.heads(80, 100, 100), chain: forged},
				{name: "a", heads: main200.heads(80, 110, 110), chain: main200},
				{name: "b", heads: main200.heads(80, 100, 100), chain: main200},
			},
			want:       main200.heads(80, 100, 100),
			supporters: []string{"a", "b"},
			disagreed:  []string{"liar"},
			asked:      []string{"a@100"},
		},
		{
			name: "failed lookups are not support: the agreement falls to what both claim",
			m:    2,
			members: []scripted{
				{name: "a", heads: main200.heads(80, 110, 110), chain: main200, lookups: failing},
				{name: "b", heads: main200.heads(80, 100, 100), chain: main200},
			},
			want:       main200.heads(80, 80, 80),
			supporters: []string{"a", "b"},
			asked:      []string{"a@100"},
		},
		{
			name: "member down counts for nothing",
			m:    2,
			members: []scripted{
				{name: "a", heads: main200.heads(80, 100, 100), chain: main200},
				{name: "down", heads: main200.heads(90, 120, 120), chain: main200, down: true},
				{name: "b", heads: main200.heads(80, 100, 100), chain: main200},
			},
			want:       main200.heads(80, 100, 100),
			supporters: []string{"a", "b"},
		},
		{
			name: "two chains that share only genesis: no quorum",
			m:    2,
			members: []scripted{
				{name: "a", heads: sharesOnlyGenesis(2).heads(1, 50, 50), chain: sharesOnlyGenesis(2)},
				{name: "b", heads: sharesOnlyGenesis(3).heads(1, 50, 50), chain: sharesOnlyGenesis(3)},
			},
			wantErr:  ErrNoQuorum,
			noQuorum: []string{"safe"},
			asked:    []string{"b@1", "a@1"}, // candidates at one height are tried in hash order
		},
		{
			name:  "caller gave up: lookups not made count for nothing",
			m:     3,
			final: true,
			members: []scripted{
				{name: "a", heads: main200.heads(80, 100, 100), chain: main200},
				{name: "b", heads: main200.heads(79, 99, 99), chain: main200},
				{name: "c", heads: main200.heads(78, 98, 98), chain: main200},
			},
			wantErr:  ErrNoQuorum,
			noQuorum: []string{"safe"},
		},
		{
			name: "finalized without a quorum keeps the last agreed one",
			m:    2,
			members: []scripted{
				{name: "a", heads: main200.heads(60, 105, 105), chain: main200},
				{name: "b", heads: finOnFork, chain: main200},
			},
			lastFinalized: main200[50],
			want:          main200.heads(50, 105, 105),
			supporters:    []string{"a", "b"},
			noQuorum:      []string{"finalized"},
			asked:         []string{"a@58", "a@50", "b@50"},
		},
		{
			name: "finalized without a quorum and none agreed before: no heads",
			m:    2,
			members: []scripted{
				{name: "a", heads: main200.heads(60, 105, 105), chain: main200},
				{name: "b", heads: finOnFork, chain: main200},
			},
			wantErr:    ErrNoQuorum,
			supporters: []string{"a", "b"},
			noQuorum:   []string{"finalized"},
			asked:      []string{"a@58"},
		},
		{
			name: "local-safe agreed by members that do not all hold the safe head is reported as safe",
			m:    2,
			members: []scripted{
				{name: "a", heads: main200.heads(80, 100, 100), chain: main200},
				{name: "b", heads: main200.heads(80, 100, 110), chain: main200},
				lsLiar,
			},
			want:       main200.heads(80, 100, 100),
			supporters: []string{"a", "b"},
			noQuorum:   []string{"local-safe"},
			asked:      []string{"liar@100"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, asked := play(t, tc.m, tc.members, tc.lastFinalized, tc.final)
			names := func(ms []int) []string {
				var out []string
				for _, m := range ms {
					out = append(out, tc.members[m].name)
				}
				return out
			}
			if tc.wantErr != nil {
				require.ErrorIs(t, out.err, tc.wantErr)
				require.Zero(t, out.heads)
			} else {
				require.NoError(t, out.err)
				require.Equal(t, tc.want, out.heads)
			}
			require.ElementsMatch(t, tc.supporters, names(out.supporters), "supporters")
			require.ElementsMatch(t, tc.disagreed, names(out.disagreed), "disagreed")
			require.Equal(t, tc.noQuorum, out.noQuorum, "labels without a quorum")
			require.Equal(t, tc.timedOut, names(out.timedOut), "timed out")
			require.Equal(t, tc.asked, asked, "lookups, in the order asked")
		})
	}
}

// TestDecideAsksOnlyWhatItNeedsNext: each call asks for one step's lookups,
// all at once, and a result that only adds to what is known never takes
// back an agreement: a late "no" from a member asked for the record names it
// among those that disagree, and changes nothing else.
func TestDecideAsksOnlyWhatItNeedsNext(t *testing.T) {
	liarFork95 := main200.fork(95, 2, 40)
	in := input{threshold: 2, answers: []answer{
		{member: 0, heads: main200.heads(80, 100, 100)},
		{member: 1, heads: main200.heads(80, 100, 100)},
		{member: 2, heads: liarFork95.heads(90, 110, 112)},
	}}
	out := decide(in)
	require.Equal(t, []lookupKey{{2, 100}}, out.need)
	require.True(t, out.record, "asked for the record only: safe is agreed by claims")

	in.lookups = append(in.lookups, lookupResult{lookupKey: lookupKey{2, 100}, late: true})
	out = decide(in)
	require.True(t, out.done())
	require.Equal(t, main200.heads(80, 100, 100), out.heads)
	require.Empty(t, out.disagreed)

	in.lookups = append(in.lookups, lookupResult{lookupKey: lookupKey{2, 100}, ref: liarFork95[100]})
	later := decide(in)
	require.True(t, later.done())
	require.Equal(t, out.heads, later.heads)
	require.Equal(t, []int{2}, later.disagreed)
}
