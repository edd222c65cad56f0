package fanout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
)

// ErrTimeout is the cause of a call's context when the call's own
// Config.Timeout ends it.
var ErrTimeout = errors.New("fanout: call timed out")

// Config tunes a Group. The zero value runs each call under the caller's
// context only and never cancels one call because another failed.
type Config struct {
	// Timeout bounds each call, from the moment it starts; zero means the
	// call has no timeout of its own.
	Timeout time.Duration
	// CancelOnError cancels the calls still running, and those started
	// later, as soon as one call fails.
	CancelOnError bool
}

// Result is one call's outcome.
type Result[K comparable, T any] struct {
	// Key is what the call was for, as given to Go.
	Key K
	// Value and Err are what the call returned.
	Value T
	Err   error
	// TimedOut is set when the call failed after its own Config.Timeout
	// ended its context (not the caller's context, nor a sibling's failure).
	TimedOut bool
}

// Group runs calls in parallel and hands back their results. Its methods are
// for the one goroutine that owns it: the one that calls Start, Go, reads
// Results and calls Stop.
type Group[K comparable, T any] struct {
	cfg     Config
	ctx     context.Context
	cancel  context.CancelCauseFunc
	eg      errgroup.Group
	results chan Result[K, T]
	stop    chan struct{}
	stopped bool
}

// Start returns a Group whose calls run under ctx. The caller must call Stop.
func Start[K comparable, T any](ctx context.Context, cfg Config) *Group[K, T] {
	ctx, cancel := context.WithCancelCause(ctx)
	return &Group[K, T]{cfg: cfg, ctx: ctx, cancel: cancel, results: make(chan Result[K, T]), stop: make(chan struct{})}
}

// Go starts f for key in a goroutine of its own; its result comes on
// Results. After Stop it does nothing.
func (g *Group[K, T]) Go(key K, f func(ctx context.Context) (T, error)) {
	if g.stopped {
		return
	}
	g.eg.Go(func() error {
		r := g.call(key, f)
		if r.Err != nil && g.cfg.CancelOnError {
			g.cancel(fmt.Errorf("fanout: call for %v failed: %w", key, r.Err))
		}
		select {
		case g.results <- r:
		case <-g.stop: // nobody reads any more
		}
		return nil // the results carry the errors; errgroup only waits
	})
}

func (g *Group[K, T]) call(key K, f func(context.Context) (T, error)) Result[K, T] {
	ctx, cancel := g.ctx, context.CancelFunc(func() {})
	if g.cfg.Timeout > 0 {
		ctx, cancel = context.WithTimeoutCause(g.ctx, g.cfg.Timeout, ErrTimeout)
	}
	defer cancel()
	v, err := f(ctx)
	return Result[K, T]{Key: key, Value: v, Err: err, TimedOut: err != nil && errors.Is(context.Cause(ctx), ErrTimeout)}
}

// Results delivers each call's result as the call returns. Results not read
// before Stop are dropped.
func (g *Group[K, T]) Results() <-chan Result[K, T] { return g.results }

// Stop cancels the calls still running and returns once every call has
// returned. Calling it again does nothing.
func (g *Group[K, T]) Stop() {
	if g.stopped {
		return
	}
	g.stopped = true
	close(g.stop)
	g.cancel(context.Canceled)
	_ = g.eg.Wait()
}
