package tipfeed_test

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/tipfeed"
)

func TestSubscriptionDeliversEachNewHead(t *testing.T) {
	// Polling once an hour: whatever arrives after the first read was pushed.
	w := newWorld(t, true, tipfeed.Config{PollInterval: time.Hour})
	w.requireNext(t, w.tree.Genesis(), "on subscribing, the feed reads the head no notification announced")
	for i := range 5 {
		b := w.extend(1)[0]
		w.requireNext(t, b, "new head %d is pushed", i+1)
	}
	// The feed counts a delivery once the adapter has taken it, so the count
	// may trail the receive above by a moment.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, tipfeed.Status{
			Mode:      tipfeed.ModeSubscription,
			Head:      eth.ToBlockID(w.head),
			Delivered: 6,
		}, w.feed.Status())
	}, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, []tipfeed.Mode{tipfeed.ModeDown, tipfeed.ModeSubscription}, w.metrics.modesSeen())
}

// TestEachNewHeadIsAnnounced: the feed announces every new head (the code
// does it before the payload's fetch; the adapter's
// TestTickOnTipStartsAtTheAnnouncement shows what that buys).
func TestEachNewHeadIsAnnounced(t *testing.T) {
	w := newWorld(t, true, tipfeed.Config{PollInterval: time.Hour})
	w.requireNext(t, w.tree.Genesis(), "the head at start")
	for i := range 3 {
		select {
		case <-w.feed.Announcements():
		case <-time.After(5 * time.Second):
			t.Fatalf("head %d was not announced", i)
		}
		b := w.extend(1)[0]
		w.requireNext(t, b, "new head %d is pushed", i+1)
	}
	select {
	case <-w.feed.Announcements():
	case <-time.After(5 * time.Second):
		t.Fatal("the last head was not announced")
	}
	select {
	case <-w.feed.Announcements():
		t.Fatal("announced more heads than there were")
	default:
	}
}

func TestSubscriptionBurstEndsAtTheNewestHead(t *testing.T) {
	w := newWorld(t, true, tipfeed.Config{PollInterval: time.Hour})
	w.requireNext(t, w.tree.Genesis(), "the head at start")
	burst := w.extend(8)
	var got []uint64
	for {
		env := w.next(t)
		got = append(got, uint64(env.ExecutionPayload.BlockNumber))
		if env.ExecutionPayload.BlockHash == w.head.Hash() {
			break
		}
	}
	require.IsIncreasing(t, got, "heads come in the order they were made, some possibly skipped")
	require.LessOrEqual(t, len(got), len(burst))
}

func TestPollingOverHTTPDelivers(t *testing.T) {
	w := newWorld(t, false, tipfeed.Config{PollInterval: 10 * time.Millisecond})
	w.requireNext(t, w.tree.Genesis(), "the head at start")
	for i := range 3 {
		b := w.extend(1)[0]
		w.requireNext(t, b, "new head %d is polled", i+1)
	}
	require.Equal(t, tipfeed.ModePolling, w.feed.Status().Mode)
	require.Equal(t, []tipfeed.Mode{tipfeed.ModeDown, tipfeed.ModePolling}, w.metrics.modesSeen())

	byHash, byNumber := w.el.CallCount("eth_getBlockByHash"), w.el.CallCount("eth_getBlockByNumber")
	eventually(t, func() bool { return w.el.CallCount("eth_getBlockByNumber") >= byNumber+5 }, "polls go on")
	require.Equal(t, byHash, w.el.CallCount("eth_getBlockByHash"), "an unchanged head is not fetched again")
	for _, c := range w.el.Calls() {
		if c.Method == "eth_getBlockByNumber" {
			require.JSONEq(t, `["latest", false]`, string(c.Params), "a poll reads one header")
		}
	}
}

func TestSubscriptionDropFallsBackToPollingThenResubscribes(t *testing.T) {
	w := newWorld(t, true, tipfeed.Config{PollInterval: 10 * time.Millisecond, ResubscribeBackoff: time.Second})
	w.requireNext(t, w.tree.Genesis(), "the head at start")
	require.Equal(t, tipfeed.ModeSubscription, w.feed.Status().Mode)

	w.el.DropSubscriptions()
	eventually(t, func() bool { return w.feed.Status().Mode == tipfeed.ModePolling }, "a dropped subscription falls back to polling")
	b := w.extend(1)[0]
	w.requireNext(t, b, "a head made while the subscription is down is delivered")

	eventually(t, func() bool { return w.feed.Status().Mode == tipfeed.ModeSubscription }, "the feed subscribes again")
	require.Equal(t, []tipfeed.Mode{tipfeed.ModeDown, tipfeed.ModeSubscription, tipfeed.ModePolling, tipfeed.ModeSubscription},
		w.metrics.modesSeen())
	require.Equal(t, 1, w.metrics.errorCount("dropped"))
	require.EqualValues(t, 1, w.feed.Status().Errors)
	b = w.extend(1)[0]
	w.requireNext(t, b, "pushed again")
}

func TestGarbageIsCountedAndTheFeedGoesOn(t *testing.T) {
	w := newWorld(t, false, tipfeed.Config{PollInterval: 10 * time.Millisecond})
	w.requireNext(t, w.tree.Genesis(), "the head at start")

	w.el.Faults().Garbage(true)
	eventually(t, func() bool { s := w.feed.Status(); return s.Errors >= 3 && s.Mode == tipfeed.ModeDown },
		"every garbage answer is an error, and the feed is down")
	s := w.feed.Status()
	require.Contains(t, s.LastError, "latest header")
	require.LessOrEqual(t, len(s.LastError), 300)
	require.GreaterOrEqual(t, w.metrics.errorCount("head"), 3)

	w.el.Faults().Garbage(false)
	b := w.extend(1)[0]
	w.requireNext(t, b, "the feed goes on once the remote answers again")
	require.Equal(t, tipfeed.ModePolling, w.feed.Status().Mode)
}

func TestWebsocketRemoteDownThenBack(t *testing.T) {
	w := newWorld(t, true, tipfeed.Config{PollInterval: 10 * time.Millisecond, ResubscribeBackoff: 50 * time.Millisecond})
	w.requireNext(t, w.tree.Genesis(), "the head at start")

	w.el.Faults().HTTPStatus(503) // refuses new websockets too
	w.el.DropSubscriptions()
	eventually(t, func() bool { return w.feed.Status().Mode == tipfeed.ModeDown }, "no websocket, no polls: down")
	eventually(t, func() bool { return w.metrics.errorCount("subscribe") >= 1 }, "attempts to subscribe again fail")

	w.el.Faults().Clear()
	eventually(t, func() bool { return w.feed.Status().Mode == tipfeed.ModeSubscription }, "subscribed again")
	b := w.extend(1)[0]
	w.requireNext(t, b, "pushed again")
}

func TestRunStopsWhileBlockedOnOut(t *testing.T) {
	tree := fakechain.NewTree()
	el := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true})
	f, err := tipfeed.New(context.Background(), tipfeed.Config{URL: el.URL(), RollupConfig: tree.RollupConfig()}, nil, nil)
	require.NoError(t, err)
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, make(chan *eth.ExecutionPayloadEnvelope)) }() // nobody reads
	eventually(t, func() bool { return el.CallCount("eth_getBlockByHash") == 1 }, "the head's payload is fetched")
	require.Error(t, f.Run(ctx, nil), "Run runs once")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	require.Equal(t, tipfeed.ModeDown, f.Status().Mode)
	require.Zero(t, f.Status().Delivered)
}

func TestPayloadByHash(t *testing.T) {
	w := newWorld(t, false, tipfeed.Config{PollInterval: time.Hour})
	main := w.extend(3)
	fork := w.tree.Child(main[0].Hash(), 9)
	w.el.Insert(fork)

	for _, b := range append(main, fork) {
		env, err := w.feed.PayloadByHash(context.Background(), b.Hash())
		require.NoError(t, err)
		require.Equal(t, b.Hash(), env.ExecutionPayload.BlockHash)
		require.Equal(t, b.ParentHash(), env.ExecutionPayload.ParentHash, "the adapter walks parents")
	}
	_, err := w.feed.PayloadByHash(context.Background(), common.Hash{0xde, 0xad})
	require.ErrorIs(t, err, safesource.ErrNotFound)
}

func TestNewChecksTheRemote(t *testing.T) {
	tree := fakechain.NewTree()
	wrong := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true, ChainID: fakechain.ChainID + 1})
	for name, tc := range map[string]struct {
		url  string
		want error
	}{
		"wrong chain over http":      {wrong.URL(), safesource.ErrWrongChain},
		"wrong chain over websocket": {wrong.WSURL(), safesource.ErrWrongChain},
		"nothing listens":            {"http://127.0.0.1:1", safesource.ErrUnreachable},
		"nothing listens, websocket": {"ws://127.0.0.1:1", safesource.ErrUnreachable},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tipfeed.New(context.Background(),
				tipfeed.Config{URL: tc.url, RollupConfig: tree.RollupConfig(), Timeout: time.Second}, nil, nil)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestConfigCheckNamesTheField(t *testing.T) {
	valid := func() tipfeed.Config {
		c := tipfeed.DefaultConfig()
		c.URL, c.RollupConfig = "ws://127.0.0.1:8546", fakechain.NewTree().RollupConfig()
		return c
	}
	require.NoError(t, valid().Check())
	require.NoError(t, tipfeed.Config{URL: "https://l2.example", RollupConfig: fakechain.NewTree().RollupConfig()}.Check(),
		"zero durations mean the defaults")
	for _, tc := range []struct {
		name, field string
		edit        func(*tipfeed.Config)
	}{
		{"no URL", "URL", func(c *tipfeed.Config) { c.URL = "" }},
		{"URL of another scheme", "URL", func(c *tipfeed.Config) { c.URL = "ftp://l2.example" }},
		{"URL without a host", "URL", func(c *tipfeed.Config) { c.URL = "ws://" }},
		{"no rollup config", "RollupConfig", func(c *tipfeed.Config) { c.RollupConfig = nil }},
		{"negative timeout", "Timeout", func(c *tipfeed.Config) { c.Timeout = -1 }},
		{"negative poll interval", "PollInterval", func(c *tipfeed.Config) { c.PollInterval = -1 }},
		{"negative backoff", "ResubscribeBackoff", func(c *tipfeed.Config) { c.ResubscribeBackoff = -1 }},
	} {
		c := valid()
		tc.edit(&c)
		err := c.Check()
		require.Error(t, err, tc.name)
		require.Contains(t, err.Error(), tc.field, tc.name)
	}
}

func TestNameDefaultsToTheURLHost(t *testing.T) {
	w := newWorld(t, false, tipfeed.Config{PollInterval: time.Hour})
	require.Equal(t, w.el.URL()[len("http://"):], w.feed.Name())
}
