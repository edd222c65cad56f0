package quorum_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/safesource"
)

var blockIDs atomic.Uint64

// chain is a synthetic chain; index i is block i.
type chain []eth.L2BlockRef

func newChain(n int) chain { return chain{}.extend(n + 1) }

func (c chain) extend(n int) chain {
	for range n {
		num := uint64(len(c))
		var parent common.Hash
		if num > 0 {
			parent = c[num-1].Hash
		}
		var h common.Hash
		binary.BigEndian.PutUint64(h[:8], num)
		binary.BigEndian.PutUint64(h[8:16], blockIDs.Add(1))
		c = append(c, eth.L2BlockRef{Hash: h, Number: num, ParentHash: parent})
	}
	return c
}

// fork returns c up to height at, then n new blocks.
func (c chain) fork(at uint64, n int) chain { return append(chain{}, c[:at+1]...).extend(n) }

func (c chain) heads(fin, safe, localSafe uint64) safesource.Heads {
	return safesource.Heads{Finalized: c[fin], Safe: c[safe], LocalSafe: c[localSafe]}
}

// member is a scripted member: a chain, heads on it, and faults.
type member struct {
	name string

	mu          sync.Mutex
	chain       chain
	h           safesource.Heads
	delay       time.Duration
	stall       bool
	slowLookups bool // L2BlockRefByNumber blocks until the caller gives up
	err         error
	heads       int           // calls
	lookups     int           // calls, slow ones included
	slowCalls   []stalledCall // the slow lookups, in the order they ended
}

// stalledCall is one slow lookup: when it began and ended, and how its
// context ended (context.DeadlineExceeded when it timed out).
type stalledCall struct {
	start, end time.Time
	err        error
}

func (c stalledCall) String() string {
	return fmt.Sprintf("%s after %s", c.err, c.end.Sub(c.start).Round(time.Millisecond))
}

var _ safesource.SafeHeadSource = (*member)(nil)

func newMember(name string, c chain, fin, safe, localSafe uint64) *member {
	return &member{name: name, chain: c, h: c.heads(fin, safe, localSafe)}
}

func (m *member) Name() string { return m.name }

func (m *member) set(c chain, fin, safe, localSafe uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chain, m.h = c, c.heads(fin, safe, localSafe)
}

func (m *member) setStall(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stall = on
}

func (m *member) Heads(ctx context.Context) (safesource.Heads, error) {
	m.mu.Lock()
	m.heads++
	h, delay, stall, err := m.h, m.delay, m.stall, m.err
	m.mu.Unlock()
	if stall {
		<-ctx.Done()
		return safesource.Heads{}, ctx.Err()
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return safesource.Heads{}, ctx.Err()
		}
	}
	if err != nil {
		return safesource.Heads{}, err
	}
	return h, nil
}

func (m *member) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	m.mu.Lock()
	m.lookups++
	slow := m.slowLookups
	m.mu.Unlock()
	if slow {
		start := time.Now()
		<-ctx.Done()
		m.mu.Lock()
		m.slowCalls = append(m.slowCalls, stalledCall{start: start, end: time.Now(), err: ctx.Err()})
		m.mu.Unlock()
		return eth.L2BlockRef{}, ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stall {
		return eth.L2BlockRef{}, fmt.Errorf("%s stalled", m.name)
	}
	if n >= uint64(len(m.chain)) {
		return eth.L2BlockRef{}, fmt.Errorf("%s: %d: %w", m.name, n, safesource.ErrNotFound)
	}
	return m.chain[n], nil
}

func (m *member) calls() (heads, lookups int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.heads, m.lookups
}

// stalled returns the slow lookups so far and forgets them.
func (m *member) stalled() []stalledCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	calls := m.slowCalls
	m.slowCalls = nil
	return calls
}

func sources(ms ...*member) []safesource.SafeHeadSource {
	out := make([]safesource.SafeHeadSource, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}
