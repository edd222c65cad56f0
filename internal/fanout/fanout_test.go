package fanout_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/lightcl/lightcl/internal/fanout"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stall blocks until ctx ends and returns why.
func stall(ctx context.Context) (int, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

func answer(v int, err error) func(context.Context) (int, error) {
	return func(context.Context) (int, error) { return v, err }
}

// collect reads n results, keyed.
func collect(t *testing.T, g *fanout.Group[string, int], n int) map[string]fanout.Result[string, int] {
	t.Helper()
	out := map[string]fanout.Result[string, int]{}
	for range n {
		select {
		case r := <-g.Results():
			out[r.Key] = r
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d results after 5s", len(out), n)
		}
	}
	return out
}

func TestOneFailureDoesNotCancelTheOthers(t *testing.T) {
	g := fanout.Start[string, int](context.Background(), fanout.Config{})
	defer g.Stop()
	down := errors.New("down")
	slow := func(ctx context.Context) (int, error) {
		select {
		case <-time.After(20 * time.Millisecond):
			return 7, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	g.Go("down", answer(0, down))
	g.Go("slow", slow)
	got := collect(t, g, 2)
	require.ErrorIs(t, got["down"].Err, down)
	require.NoError(t, got["slow"].Err, "a sibling's failure left it running")
	require.Equal(t, 7, got["slow"].Value)
}

func TestCancelOnErrorCancelsTheOthers(t *testing.T) {
	g := fanout.Start[string, int](context.Background(), fanout.Config{CancelOnError: true})
	defer g.Stop()
	down := errors.New("down")
	g.Go("stalled", stall)
	g.Go("down", answer(0, down))
	got := collect(t, g, 2)
	require.ErrorIs(t, got["stalled"].Err, context.Canceled)
	require.False(t, got["stalled"].TimedOut)
}

func TestEachCallHasItsOwnTimeout(t *testing.T) {
	g := fanout.Start[string, int](context.Background(), fanout.Config{Timeout: 20 * time.Millisecond})
	defer g.Stop()
	g.Go("stalled", stall)
	g.Go("prompt", answer(1, nil))
	failing := errors.New("refused")
	g.Go("failing", answer(0, failing))
	got := collect(t, g, 3)
	require.ErrorIs(t, got["stalled"].Err, context.DeadlineExceeded)
	require.True(t, got["stalled"].TimedOut)
	require.False(t, got["prompt"].TimedOut)
	require.False(t, got["failing"].TimedOut, "an error of its own is not a timeout")

	// a call started later gets the whole timeout, counted from its start
	time.Sleep(30 * time.Millisecond)
	g.Go("late", func(ctx context.Context) (int, error) {
		select {
		case <-time.After(5 * time.Millisecond):
			return 2, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	require.NoError(t, collect(t, g, 1)["late"].Err)
}

func TestCallerCancelIsNotATimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g := fanout.Start[string, int](ctx, fanout.Config{Timeout: time.Minute})
	defer g.Stop()
	g.Go("stalled", stall)
	cancel()
	r := collect(t, g, 1)["stalled"]
	require.ErrorIs(t, r.Err, context.Canceled)
	require.False(t, r.TimedOut)
}

func TestStopCancelsAndWaitsForUnreadCalls(t *testing.T) {
	g := fanout.Start[string, int](context.Background(), fanout.Config{})
	ended := make(chan struct{}, 2)
	for _, k := range []string{"a", "b"} {
		g.Go(k, func(ctx context.Context) (int, error) {
			defer func() { ended <- struct{}{} }()
			return stall(ctx)
		})
	}
	g.Go("answered", answer(1, nil)) // its result is never read
	g.Stop()
	require.Len(t, ended, 2, "Stop returned before the calls did")
	g.Stop() // again: nothing
	g.Go("after", answer(1, nil))
	select {
	case r := <-g.Results():
		t.Fatalf("a call ran after Stop: %+v", r)
	case <-time.After(10 * time.Millisecond):
	}
}
