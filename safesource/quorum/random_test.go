package quorum_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/safesource/quorum"
)

var randomCases = flag.Int("quorum.cases", 5000, "random cases for TestRandomRounds")
var randomSeed = flag.Int64("quorum.seed", 1, "first seed for TestRandomRounds")

// TestRandomRounds runs rounds over random members: N ≤ 9, a random M, an
// honest chain, liars on random forks at random heights (some colluding on one
// fork), members lagging, stalled or down. It asserts safety: while fewer than
// M members lie, every agreed head (safe, local-safe, finalized) is on the
// honest chain (with M a strict majority, that is every case of at most N−M
// liars); and liveness: when no member stalls and at least M honest members
// answer, the round agrees on a safe head at least as high as the M-th highest
// of their safe heads, in that one round.
func TestRandomRounds(t *testing.T) {
	base := newChain(300)
	outcomes := map[string]int{}
	for i := 0; i < *randomCases; i++ {
		seed := *randomSeed + int64(i)
		rng := rand.New(rand.NewSource(seed))
		n := 1 + rng.Intn(9)
		m := 1 + rng.Intn(n)
		liars := rng.Intn(n + 1)
		if rng.Intn(2) == 0 { // half the cases keep liars below M, where safety must hold
			liars = rng.Intn(m)
		}
		var collusion chain
		if rng.Intn(2) == 0 {
			collusion = base.fork(uint64(100+rng.Intn(150)), 150)
		}
		var members []*member
		var upHonestSafes []uint64
		stalls := false
		for j := range n {
			c, lie := base, j < liars
			if lie {
				c = collusion
				if c == nil || rng.Intn(3) == 0 {
					c = base.fork(uint64(100+rng.Intn(150)), 150)
				}
			}
			safe := uint64(200 + rng.Intn(len(c)-200))
			fin := safe - uint64(rng.Intn(60))
			localSafe := safe + uint64(rng.Intn(int(uint64(len(c))-safe)))
			mem := newMember(fmt.Sprintf("m%d", j), c, fin, safe, localSafe)
			switch r := rng.Intn(20); {
			case r == 0:
				mem.stall, stalls = true, true
			case r == 1:
				mem.err = fmt.Errorf("m%d down", j)
			case r < 5:
				mem.delay = time.Duration(rng.Intn(300)) * time.Microsecond
				fallthrough
			default:
				if !lie {
					upHonestSafes = append(upHonestSafes, safe)
				}
			}
			members = append(members, mem)
		}
		rng.Shuffle(len(members), func(a, b int) { members[a], members[b] = members[b], members[a] })

		// with a member stalled the straggler wait is short (the round must not
		// wait for it); without, it is long enough that every prompt member is
		// heard, which the liveness check counts on
		wait, timeout := time.Second, time.Second
		if stalls {
			wait, timeout = 2*time.Millisecond, 20*time.Millisecond
		}
		q, err := quorum.New(quorum.Config{Threshold: m, MemberTimeout: timeout, StragglerWait: wait},
			sources(members...), nil, nil)
		require.NoError(t, err)
		h, err := q.Heads(context.Background())
		where := fmt.Sprintf("seed %d (N=%d M=%d liars=%d)", seed, n, m, liars)
		if err != nil {
			require.ErrorIs(t, err, quorum.ErrNoQuorum, where)
			outcomes["no quorum"]++
		} else {
			outcomes["agreed"]++
		}
		if liars < m && err == nil {
			for _, ref := range []eth.L2BlockRef{h.Finalized, h.Safe, h.LocalSafe} {
				require.True(t, onChain(base, ref), "%s: agreed block %d is not on the honest chain", where, ref.Number)
			}
		}
		if liars < m && len(upHonestSafes) >= m && !stalls {
			slices.Sort(upHonestSafes)
			want := upHonestSafes[len(upHonestSafes)-m]
			require.NoError(t, err, "%s: %d honest members answered", where, len(upHonestSafes))
			require.GreaterOrEqual(t, h.Safe.Number, want, where)
			outcomes["liveness checked"]++
		}
		if liars >= m && err == nil && !onChain(base, h.Safe) {
			outcomes["liars (≥ M) adopted a fork"]++
		}
	}
	t.Logf("%d cases: %v", *randomCases, outcomes)
	require.Positive(t, outcomes["liveness checked"])
	require.Positive(t, outcomes["liars (≥ M) adopted a fork"], "the test can tell a fork when it sees one")
}

func onChain(c chain, ref eth.L2BlockRef) bool {
	return ref.Number < uint64(len(c)) && c[ref.Number] == ref
}
