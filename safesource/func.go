package safesource

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// Func adapts two functions to a SafeHeadSource. Heads from HeadsFn are checked
// before they are returned, so a Func cannot pass on inconsistent heads.
type Func struct {
	// SourceName is returned by Name.
	SourceName string
	// HeadsFn answers Heads.
	HeadsFn func(ctx context.Context) (Heads, error)
	// BlockRefFn answers L2BlockRefByNumber; nil makes every lookup fail.
	BlockRefFn BlockRefByNumber
}

var _ SafeHeadSource = (*Func)(nil)

// Name returns SourceName.
func (f *Func) Name() string { return f.SourceName }

// Heads calls HeadsFn and checks its answer.
func (f *Func) Heads(ctx context.Context) (Heads, error) {
	if f.HeadsFn == nil {
		return Heads{}, fmt.Errorf("%s: no heads function: %w", f.SourceName, ErrNoHeads)
	}
	h, err := f.HeadsFn(ctx)
	if err != nil {
		return Heads{}, fmt.Errorf("%s: %w", f.SourceName, err)
	}
	if err := h.Check(); err != nil {
		return Heads{}, fmt.Errorf("%s: %w", f.SourceName, err)
	}
	return h, nil
}

// L2BlockRefByNumber calls BlockRefFn.
func (f *Func) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	if f.BlockRefFn == nil {
		return eth.L2BlockRef{}, fmt.Errorf("%s: no block lookup for height %d: %w", f.SourceName, n, ErrNotFound)
	}
	ref, err := f.BlockRefFn(ctx, n)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("%s: block %d: %w", f.SourceName, n, err)
	}
	if ref.Number != n {
		return eth.L2BlockRef{}, fmt.Errorf("%s: asked for block %d, got %d: %w", f.SourceName, n, ref.Number, errWrongHeight)
	}
	return ref, nil
}

var errWrongHeight = errors.New("wrong height")
