package tipfeed_test

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/tipfeed"
)

// twoRemotes is one chain served by two ELs, a feed on each (one subscribed,
// one polling), merged.
type twoRemotes struct {
	tree   *fakechain.Tree
	a, b   *fakeel.EL
	merged *tipfeed.Merged
	out    chan *eth.ExecutionPayloadEnvelope
	head   *types.Block
}

func newTwoRemotes(t *testing.T) *twoRemotes {
	t.Helper()
	w := &twoRemotes{tree: fakechain.NewTree(), out: make(chan *eth.ExecutionPayloadEnvelope, 64)}
	w.head = w.tree.Genesis()
	w.a = testutil.NewEL(t, w.tree, fakeel.ELConfig{NoAuth: true})
	w.b = testutil.NewEL(t, w.tree, fakeel.ELConfig{NoAuth: true})
	var feeds []tipfeed.Feed
	for _, url := range []string{w.a.WSURL(), w.b.URL()} {
		f, err := tipfeed.New(context.Background(), tipfeed.Config{
			URL: url, RollupConfig: w.tree.RollupConfig(), PollInterval: 10 * time.Millisecond,
		}, testLogger(t), nil)
		require.NoError(t, err)
		t.Cleanup(f.Close)
		feeds = append(feeds, f)
	}
	w.merged = tipfeed.Merge("tip", feeds...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.merged.Run(ctx, w.out) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return w
}

// extend makes a new head on both ELs.
func (w *twoRemotes) extend() *types.Block {
	w.head = w.tree.Child(w.head.Hash(), 1)
	for _, el := range []*fakeel.EL{w.a, w.b} {
		el.Insert(w.head)
		el.SetForkchoice(w.head.Hash(), common.Hash{}, common.Hash{})
	}
	return w.head
}

func (w *twoRemotes) requireNext(t *testing.T, b *types.Block, msg string) {
	t.Helper()
	select {
	case env := <-w.out:
		require.Equal(t, b.Hash(), env.ExecutionPayload.BlockHash, msg)
	case <-time.After(5 * time.Second):
		t.Fatalf("nothing delivered within 5s: %s", msg)
	}
}

func TestMergeDeliversEachBlockOnce(t *testing.T) {
	w := newTwoRemotes(t)
	require.Equal(t, "tip", w.merged.Name())
	w.requireNext(t, w.tree.Genesis(), "the head at start, from whichever feed is first")
	for range 3 {
		b := w.extend()
		w.requireNext(t, b, "the next block, not the other feed's copy of the last")
	}
}

func TestMergeGoesOnWhenOneFeedIsDown(t *testing.T) {
	w := newTwoRemotes(t)
	w.requireNext(t, w.tree.Genesis(), "the head at start")
	w.b.Faults().HTTPStatus(503)
	b := w.extend()
	w.requireNext(t, b, "the subscribed feed delivers")
	w.b.Faults().Clear()
	w.a.Faults().HTTPStatus(503)
	w.a.DropSubscriptions()
	b = w.extend()
	w.requireNext(t, b, "the polling feed delivers")
}

func TestMergePayloadByHashAsksEveryFeed(t *testing.T) {
	w := newTwoRemotes(t)
	onlyA := w.tree.Child(w.tree.Genesis().Hash(), 9)
	w.a.Insert(onlyA)
	w.b.Faults().Stall(time.Hour) // a feed that never answers does not hold up the one that does

	start := time.Now()
	env, err := w.merged.PayloadByHash(context.Background(), onlyA.Hash())
	require.NoError(t, err)
	require.Equal(t, onlyA.Hash(), env.ExecutionPayload.BlockHash)
	require.Less(t, time.Since(start), 4*time.Second, "not held up until the stalled feed's 5s timeout")

	w.b.Faults().Clear()
	_, err = w.merged.PayloadByHash(context.Background(), common.Hash{0xde, 0xad})
	require.ErrorIs(t, err, safesource.ErrNotFound)
}

func TestMergeOfNoFeeds(t *testing.T) {
	m := tipfeed.Merge("none")
	_, err := m.PayloadByHash(context.Background(), common.Hash{1})
	require.ErrorIs(t, err, safesource.ErrNotFound)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.NoError(t, m.Run(ctx, nil), "Run waits for ctx")
	require.Error(t, ctx.Err())
}
