package l1verify

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"
)

// gatedL1 answers head reads with head; the first read waits until gate
// closes or its context ends, and says when it has begun.
type gatedL1 struct {
	head  eth.L1BlockRef
	gate  chan struct{}
	began chan struct{}

	mu    sync.Mutex
	reads int
}

func newGatedL1() *gatedL1 {
	return &gatedL1{
		head: eth.L1BlockRef{Hash: common.Hash{1}, Number: 10},
		gate: make(chan struct{}), began: make(chan struct{}),
	}
}

func (g *gatedL1) L1BlockRefByLabel(ctx context.Context, _ eth.BlockLabel) (eth.L1BlockRef, error) {
	g.mu.Lock()
	g.reads++
	first := g.reads == 1
	g.mu.Unlock()
	if first {
		close(g.began)
		select {
		case <-g.gate:
		case <-ctx.Done():
			return eth.L1BlockRef{}, ctx.Err()
		}
	}
	return g.head, nil
}

func (g *gatedL1) L1BlockRefByNumber(context.Context, uint64) (eth.L1BlockRef, error) {
	return g.head, nil
}

func (g *gatedL1) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reads
}

// The two tests below pin what view does that singleflight would not (see
// view's comment): they fail if the hand-written refresh is swapped for it.

func TestViewDoesNotJoinAReadBegunBeforeTheCall(t *testing.T) {
	l1 := newGatedL1()
	v, err := New(l1, Config{SkipFinalityCheck: true}, nil, nil)
	require.NoError(t, err)
	first := make(chan error, 1)
	go func() {
		_, err := v.view(context.Background(), time.Now())
		first <- err
	}()
	<-l1.began
	since := time.Now() // the second call starts while the first read is out
	second := make(chan error, 1)
	go func() {
		_, err := v.view(context.Background(), since)
		second <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it wait on the read in flight
	close(l1.gate)
	require.NoError(t, <-first)
	require.NoError(t, <-second)
	require.Equal(t, 2, l1.count(), "the second call read the head itself, after the first read")
}

func TestViewCallerCancelledDoesNotFailAnotherWaiting(t *testing.T) {
	l1 := newGatedL1()
	v, err := New(l1, Config{SkipFinalityCheck: true}, nil, nil)
	require.NoError(t, err)
	since := time.Now() // both calls began before the first read
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := v.view(ctx, since)
		first <- err
	}()
	<-l1.began
	second := make(chan error, 1)
	go func() {
		_, err := v.view(context.Background(), since)
		second <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it wait on the read in flight
	cancel()
	require.ErrorIs(t, <-first, context.Canceled)
	require.NoError(t, <-second, "its own read, not the cancelled caller's error")
	require.Equal(t, 2, l1.count())
}
