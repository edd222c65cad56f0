package quorum_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/quorum"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

// remotes is a Tree with an honest chain a (a[i] is block i+1) and a fork b
// after block 25, and helpers to serve them from fake remotes over HTTP.
type remotes struct {
	tree *fakechain.Tree
	a, b []*types.Block
}

func newRemotes() remotes {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 40, 1)
	b := tree.Extend(a[24].Hash(), 20, 2)
	return remotes{tree: tree, a: a, b: b}
}

// cl serves chain c from a fake rollup node: unsafe 40, safe 30, finalized 20.
func (r remotes) cl(t *testing.T, c []*types.Block) *fakerollup.RollupNode {
	n := testutil.NewRollupNode(t, r.tree, fakerollup.RollupNodeConfig{})
	n.Follow(c[len(c)-1], c[29], c[29], c[19], fakechain.L1Ref(4))
	return n
}

// el serves the honest chain from a public L2 EL: safe 30, finalized 20.
func (r remotes) el(t *testing.T) *fakeel.EL {
	el := testutil.NewEL(t, r.tree, fakeel.ELConfig{NoAuth: true})
	el.Insert(r.a...)
	el.SetForkchoice(r.a[39].Hash(), r.a[29].Hash(), r.a[19].Hash())
	return el
}

func (r remotes) source(t *testing.T, url string) safesource.SafeHeadSource {
	s, err := remotel2.New(context.Background(), remotel2.Config{URL: url, Timeout: time.Second, RollupConfig: r.tree.RollupConfig()}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func TestQuorumOverHTTP(t *testing.T) {
	r := newRemotes()
	liarChain := append(append([]*types.Block{}, r.a[:25]...), r.b...)
	honest1, honest2, liar := r.cl(t, r.a), r.cl(t, r.a), r.cl(t, liarChain)
	el := r.el(t)
	members := []safesource.SafeHeadSource{
		r.source(t, honest1.URL()), r.source(t, honest2.URL()), r.source(t, liar.URL()), r.source(t, el.URL()),
	}
	q, err := quorum.New(quorum.Config{Threshold: 3, StragglerWait: 100 * time.Millisecond}, members, nil, nil)
	require.NoError(t, err)
	ctx := context.Background()

	t.Run("a liar on a fork is outvoted", func(t *testing.T) {
		// A round may decide before the liar answers (three honest answers
		// settle it), so ask until a round has heard the liar; every round
		// must agree on the honest heads.
		heard := false
		for i := 0; i < 50 && !heard; i++ {
			h, err := q.Heads(ctx)
			require.NoError(t, err)
			require.Equal(t, r.tree.Ref(r.a[29]), h.Safe)
			require.Equal(t, r.tree.Ref(r.a[19]), h.Finalized)
			heard = slices.Contains(q.LastRound().Answered, members[2].Name())
		}
		require.True(t, heard, "no round in 50 heard the liar")
		require.Contains(t, q.LastRound().Disagreed, members[2].Name())
		ref, err := q.L2BlockRefByNumber(ctx, 35)
		require.NoError(t, err)
		require.Equal(t, r.tree.Ref(r.a[34]), ref)
	})
	t.Run("a stalled member does not hold the round", func(t *testing.T) {
		honest2.Faults().Stall(time.Minute)
		defer honest2.Faults().Clear()
		start := time.Now()
		h, err := q.Heads(ctx)
		require.NoError(t, err)
		require.Less(t, time.Since(start), 900*time.Millisecond, "within the straggler wait, well before the member timeout")
		// two honest members and the liar answer: the highest block three of
		// them hold is the finalized block 20, below the liar's fork
		require.Equal(t, r.tree.Ref(r.a[19]), h.Safe)
	})
	t.Run("two members down: no quorum of three", func(t *testing.T) {
		honest1.Faults().HTTPStatus(500)
		honest2.Faults().Garbage(true)
		defer honest1.Faults().Clear()
		defer honest2.Faults().Clear()
		_, err := q.Heads(ctx)
		require.ErrorIs(t, err, quorum.ErrNoQuorum)
		st := q.Status()
		require.Positive(t, st[0].ConsecutiveErrors)
		require.Positive(t, st[1].ConsecutiveErrors)
	})
}
