package quorum_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/quorum"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var honest = newChain(200)

func newQuorum(t *testing.T, m int, ms ...*member) *quorum.Quorum {
	q, err := quorum.New(quorum.Config{Threshold: m, MemberTimeout: 2 * time.Second, StragglerWait: 50 * time.Millisecond},
		sources(ms...), nil, nil)
	require.NoError(t, err)
	return q
}

func TestAllAgree(t *testing.T) {
	ms := []*member{newMember("a", honest, 80, 100, 104), newMember("b", honest, 80, 100, 104), newMember("c", honest, 80, 100, 104)}
	q := newQuorum(t, 2, ms...)
	h, err := q.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, honest.heads(80, 100, 104), h)
	for _, m := range ms {
		_, lookups := m.calls()
		require.Zero(t, lookups, "agreement costs no lookups")
	}
	require.GreaterOrEqual(t, len(q.LastRound().Supporters), 2, "the round may decide before the third answers")
}

func TestSomeLag(t *testing.T) {
	ms := []*member{newMember("a", honest, 80, 100, 100), newMember("b", honest, 80, 100, 100), newMember("slow", honest, 70, 90, 90)}
	ms[0].delay, ms[1].delay = 20*time.Millisecond, 20*time.Millisecond // "slow" lags in height, and answers first
	q := newQuorum(t, 2, ms...)
	h, err := q.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, honest.heads(80, 100, 100), h, "two leaders are a quorum")
	require.Equal(t, uint64(10), q.Status()[2].Lag)

	// with M = 3 the leaders' older blocks are what all three hold
	q = newQuorum(t, 3, ms...)
	h, err = q.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, honest.heads(70, 90, 90), h)
	_, lookups := ms[2].calls()
	require.Zero(t, lookups, "the laggard is not asked: its own heads are the candidates")
}

func TestLiarOnAFork(t *testing.T) {
	liar := honest.fork(95, 20)
	ms := []*member{newMember("a", honest, 80, 100, 100), newMember("b", honest, 80, 100, 100), newMember("liar", liar, 90, 110, 112)}
	ms[0].delay, ms[1].delay = 20*time.Millisecond, 20*time.Millisecond // the liar is usually heard, not cut off
	q := newQuorum(t, 2, ms...)
	// two honest answers settle a round, so under load one may decide before
	// the liar answers: ask until a round has heard it; every round agrees
	rounds := 0
	for rounds < 20 {
		h, err := q.Heads(context.Background())
		require.NoError(t, err)
		require.Equal(t, honest.heads(80, 100, 100), h)
		rounds++
		if slices.Contains(q.LastRound().Answered, "liar") {
			break
		}
	}
	require.Equal(t, []string{"liar"}, q.LastRound().Disagreed, "after %d rounds", rounds)
	require.Equal(t, 1, q.Status()[2].Disagreements)
}

func TestMembersDownOrStalled(t *testing.T) {
	down := newMember("down", honest, 80, 100, 100)
	down.err = errors.New("connection refused")
	stalled := newMember("stalled", honest, 80, 100, 100)
	stalled.stall = true
	ms := []*member{newMember("a", honest, 80, 100, 100), newMember("b", honest, 80, 100, 100), newMember("c", honest, 80, 100, 100), down, stalled}
	q := newQuorum(t, 3, ms...)
	start := time.Now()
	h, err := q.Heads(context.Background())
	require.NoError(t, err)
	require.Less(t, time.Since(start), time.Second, "a stalled member does not hold the round")
	require.Equal(t, honest.heads(80, 100, 100), h)
	st := q.Status()
	require.Equal(t, 1, st[3].Unanswered, "down")
	require.Equal(t, 1, st[4].Unanswered, "stalled: the round settled without waiting for it")
	require.Zero(t, st[0].Unanswered)
	require.ElementsMatch(t, []string{"down", "stalled"}, q.LastRound().Missing)
}

func TestStalledMemberWithLaggingAnswersWaitsOnlyTheStragglerWait(t *testing.T) {
	stalled := newMember("stalled", honest, 80, 100, 100)
	stalled.stall = true
	// the answers disagree in height, so they do not settle the round by themselves
	ms := []*member{newMember("a", honest, 80, 100, 100), newMember("b", honest, 79, 99, 99), newMember("c", honest, 78, 98, 98), stalled}
	q := newQuorum(t, 3, ms...)
	start := time.Now()
	h, err := q.Heads(context.Background())
	took := time.Since(start)
	require.NoError(t, err)
	require.Equal(t, honest.heads(78, 98, 98), h)
	require.GreaterOrEqual(t, took, 50*time.Millisecond)
	require.Less(t, took, time.Second)
}

func TestForkWithoutQuorum(t *testing.T) {
	// two members on forks after block 90: the highest claim both hold is their
	// finalized block 80 (candidates are claims, not every shared block)
	other := honest.fork(90, 30)
	ms := []*member{newMember("a", honest, 80, 100, 100), newMember("b", other, 80, 100, 100)}
	q := newQuorum(t, 2, ms...)
	h, err := q.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, honest.heads(80, 80, 80), h)

	// three members on three chains that part after 70 and 72: no side has two
	// members above 70, so the agreement falls to a's finalized block 60
	ms = []*member{newMember("a", honest, 60, 100, 100), newMember("b", honest.fork(70, 40), 75, 100, 100), newMember("c", honest.fork(72, 40), 75, 100, 100)}
	q = newQuorum(t, 2, ms...)
	h, err = q.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, honest.heads(60, 60, 60), h)

	three := []*member{newMember("x", honest.fork(10, 100), 5, 100, 100), newMember("y", honest.fork(10, 100), 5, 100, 100), newMember("z", honest.fork(10, 100), 5, 100, 100)}
	for _, m := range three { // three chains that share only blocks up to 10, all claiming finalized 5 but no safe below 100
		m.set(m.chain, 5, 100, 100)
	}
	q = newQuorum(t, 2, three...)
	h, err = q.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, uint64(5), h.Safe.Number, "the best they share is their finalized head")
}

func TestNoQuorumAtAll(t *testing.T) {
	// two chains that share only genesis, neither claiming it
	ms := []*member{newMember("a", honest.fork(0, 100), 1, 50, 50), newMember("b", honest.fork(0, 100), 1, 50, 50)}
	q := newQuorum(t, 2, ms...)
	_, err := q.Heads(context.Background())
	require.ErrorIs(t, err, quorum.ErrNoQuorum)
	require.Equal(t, []string{"safe"}, q.LastRound().NoQuorum)
}

func TestDifferentHeightsAgreeOnAncestor(t *testing.T) {
	ms := []*member{newMember("a", honest, 90, 120, 125), newMember("b", honest, 85, 110, 111), newMember("c", honest, 80, 100, 102)}
	q := newQuorum(t, 2, ms...)
	h, err := q.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, honest.heads(85, 110, 111), h, "the second highest of each label, an ancestor of the leader's")
}

func TestFinalizedAgreedLowerThanSafe(t *testing.T) {
	ms := []*member{newMember("a", honest, 50, 100, 100), newMember("b", honest, 90, 100, 100), newMember("c", honest, 60, 100, 100)}
	q := newQuorum(t, 2, ms...)
	h, err := q.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, honest[60], h.Finalized)
	require.Equal(t, honest[100], h.Safe)
}

func TestFinalizedWithoutQuorumKeepsTheLastAgreed(t *testing.T) {
	ms := []*member{newMember("a", honest, 50, 100, 100), newMember("b", honest, 50, 100, 100)}
	q := newQuorum(t, 2, ms...)
	_, err := q.Heads(context.Background())
	require.NoError(t, err)
	// b now claims a finalized block on a fork, under a safe head on the honest
	// chain: no quorum on finalized, safe still agreed
	ms[0].set(honest, 60, 105, 105)
	ms[1].mu.Lock()
	ms[1].h.Finalized = honest.fork(55, 10)[58]
	ms[1].h.Safe, ms[1].h.LocalSafe = honest[105], honest[105]
	ms[1].mu.Unlock()
	h, err := q.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, honest[105], h.Safe)
	require.Equal(t, honest[50], h.Finalized, "the last agreed finalized head")
	require.Contains(t, q.LastRound().NoQuorum, "finalized")
}

func TestMemberFlipsBetweenChains(t *testing.T) {
	other := honest.fork(95, 20)
	flip := newMember("flip", honest, 80, 100, 100)
	ms := []*member{newMember("a", honest, 80, 100, 100), newMember("b", honest, 80, 100, 100), flip}
	// the honest two answer later, so the round hears the flipping member every
	// time (a round settled by the first M answers does not wait for the rest)
	ms[0].delay, ms[1].delay = 20*time.Millisecond, 20*time.Millisecond
	q := newQuorum(t, 2, ms...)
	for i := range 6 {
		if i%2 == 0 {
			flip.set(other, 80, 110, 110)
		} else {
			flip.set(honest, 80, 100, 100)
		}
		h, err := q.Heads(context.Background())
		require.NoError(t, err)
		require.Equal(t, honest.heads(80, 100, 100), h)
	}
	require.Equal(t, 3, q.Status()[2].Disagreements)
}

func TestLookupByNumber(t *testing.T) {
	liar := honest.fork(50, 100)
	ms := []*member{newMember("a", honest, 80, 100, 100), newMember("b", honest, 80, 100, 100), newMember("liar", liar, 80, 100, 100)}
	q := newQuorum(t, 2, ms...)
	ref, err := q.L2BlockRefByNumber(context.Background(), 70)
	require.NoError(t, err)
	require.Equal(t, honest[70], ref)
	_, err = q.L2BlockRefByNumber(context.Background(), 500)
	require.ErrorIs(t, err, quorum.ErrNoQuorum)
	require.ErrorIs(t, err, safesource.ErrNotFound)
}

func TestConfig(t *testing.T) {
	m := newMember("a", honest, 1, 2, 2)
	for _, tc := range []struct {
		cfg  quorum.Config
		n    int
		want string
	}{
		{quorum.Config{}, 0, "no members"},
		{quorum.Config{Threshold: 4}, 3, "Threshold 4"},
		{quorum.Config{Threshold: -1}, 3, "Threshold -1"},
		{quorum.Config{StragglerWait: -time.Second}, 3, "StragglerWait"},
	} {
		require.ErrorContains(t, tc.cfg.Check(tc.n), tc.want)
	}
	_, err := quorum.New(quorum.Config{}, sources(m, m), nil, nil)
	require.ErrorContains(t, err, "two members are named")
	q, err := quorum.New(quorum.Config{}, sources(m, newMember("b", honest, 1, 2, 2), newMember("c", honest, 1, 2, 2), newMember("d", honest, 1, 2, 2)), nil, nil)
	require.NoError(t, err)
	require.Equal(t, 3, q.Threshold(), "default: a strict majority of 4")
}

func TestLiarWithStalledLookupsDoesNotHoldTheRound(t *testing.T) {
	liar := newMember("liar", honest.fork(150, 40), 100, 190, 190)
	liar.slowLookups = true
	ms := []*member{liar, newMember("a", honest, 80, 100, 100), newMember("b", honest, 80, 100, 100), newMember("c", honest, 80, 100, 100)}
	q, err := quorum.New(quorum.Config{Threshold: 3, MemberTimeout: 2 * time.Second, StragglerWait: 50 * time.Millisecond}, sources(ms...), nil, nil)
	require.NoError(t, err)
	start := time.Now()
	h, err := q.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, honest.heads(80, 100, 100), h)
	require.Less(t, time.Since(start), time.Second, "never waits a member timeout on the liar's lookups")
}

func TestForgedRecordIsNotAdopted(t *testing.T) {
	// the liar claims the honest block 100 by its hash, with a forged L1 origin
	forged := append(chain{}, honest...)
	forged[100].L1Origin.Number = 999999
	liar := newMember("liar", forged, 80, 100, 100)
	ms := []*member{liar, newMember("a", honest, 80, 110, 110), newMember("b", honest, 80, 100, 100)}
	q := newQuorum(t, 2, ms...)
	h, err := q.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, honest[100], h.Safe, "the honest record, as b claims it and a holds it")

	ref, err := q.L2BlockRefByNumber(context.Background(), 100)
	require.NoError(t, err)
	require.Equal(t, honest[100], ref)
}

// A member that answers its heads at once but stalls on every lookup, among
// honest members at different heights (so the round needs lookups for each
// label): its first lookup times out and it is asked nothing more that round,
// so the round costs one member timeout, not one per label and candidate.
// Where the honest members agree by their own claims it is asked only for the
// record, and once the straggler wait cuts that short, not again.
func TestMemberStalledOnLookupsIsAskedOnceARound(t *testing.T) {
	const timeout, wait = 200 * time.Millisecond, 50 * time.Millisecond
	for _, tc := range []struct {
		name     string
		honest   []*member
		want     safesource.Heads
		timedOut []string
	}{
		{
			name:     "honest members at different heights",
			honest:   []*member{newMember("a", honest, 80, 100, 100), newMember("b", honest, 79, 99, 99), newMember("c", honest, 78, 98, 98)},
			want:     honest.heads(78, 98, 98),
			timedOut: []string{"liar"},
		},
		{
			name:     "local-safe above safe",
			honest:   []*member{newMember("a", honest, 80, 100, 104), newMember("b", honest, 79, 99, 103), newMember("c", honest, 78, 98, 102)},
			want:     honest.heads(78, 98, 102),
			timedOut: []string{"liar"},
		},
		{
			name:   "honest members agree, asked for the record only",
			honest: []*member{newMember("a", honest, 80, 100, 104), newMember("b", honest, 80, 100, 104), newMember("c", honest, 80, 100, 104)},
			want:   honest.heads(80, 100, 104),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			liar := newMember("liar", honest.fork(150, 40), 110, 190, 190)
			liar.slowLookups = true
			q, err := quorum.New(quorum.Config{Threshold: 3, MemberTimeout: timeout, StragglerWait: wait},
				sources(append([]*member{liar}, tc.honest...)...), nil, nil)
			require.NoError(t, err)
			for round := range 2 { // in every round, not only the first
				start := time.Now()
				h, err := q.Heads(context.Background())
				took := time.Since(start)
				require.NoError(t, err, "round %d", round)
				require.Equal(t, tc.want, h, "round %d", round)
				require.Equal(t, tc.timedOut, q.LastRound().TimedOut, "round %d", round)

				calls := liar.stalled()
				var ended []stalledCall // the calls that ran until their deadline
				for _, c := range calls {
					if errors.Is(c.err, context.DeadlineExceeded) {
						ended = append(ended, c)
					}
				}
				require.LessOrEqual(t, len(ended), 1, "round %d: lookups that timed out: %v", round, calls)
				if len(ended) == 1 {
					for _, c := range calls {
						require.True(t, c.start.Before(ended[0].end), "round %d: asked again after it timed out: %v", round, calls)
					}
				}
				require.Less(t, took, timeout+wait+2*timeout, "round %d: one member timeout and one straggler wait, with slack", round)
			}
		})
	}
}
