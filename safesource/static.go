package safesource

import (
	"context"
	"fmt"
	"sync"

	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// Static is a SafeHeadSource whose heads its owner sets: a node that already
// derives (or learns heads some other way) feeds its results in with Set, and the
// engine adapter follows them like any other source.
type Static struct {
	name   string
	lookup BlockRefByNumber

	mu    sync.Mutex
	heads Heads
	set   bool
}

var _ SafeHeadSource = (*Static)(nil)

// NewStatic returns a Static named name. lookup answers L2BlockRefByNumber; when
// it is nil, Static answers only for the heights of the heads it was given.
func NewStatic(name string, lookup BlockRefByNumber) *Static {
	return &Static{name: name, lookup: lookup}
}

// Set replaces the heads. Inconsistent heads are refused and the old ones kept.
func (s *Static) Set(h Heads) error {
	if err := h.Check(); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.heads, s.set = h, true
	return nil
}

// Name returns the name given to NewStatic.
func (s *Static) Name() string { return s.name }

// Heads returns the last heads given to Set, or an error wrapping ErrNoHeads.
func (s *Static) Heads(ctx context.Context) (Heads, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.set {
		return Heads{}, fmt.Errorf("%s: %w", s.name, ErrNoHeads)
	}
	return s.heads, nil
}

// L2BlockRefByNumber answers from the lookup given to NewStatic, or else from the
// current heads.
func (s *Static) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	if s.lookup != nil {
		ref, err := s.lookup(ctx, n)
		if err != nil {
			return eth.L2BlockRef{}, fmt.Errorf("%s: block %d: %w", s.name, n, err)
		}
		if ref.Number != n {
			return eth.L2BlockRef{}, fmt.Errorf("%s: asked for block %d, got %d: %w", s.name, n, ref.Number, errWrongHeight)
		}
		return ref, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ref := range [...]eth.L2BlockRef{s.heads.LocalSafe, s.heads.Safe, s.heads.Finalized} {
		if s.set && ref.Number == n {
			return ref, nil
		}
	}
	return eth.L2BlockRef{}, fmt.Errorf("%s: block %d: %w", s.name, n, ErrNotFound)
}
