package safesource

import (
	"context"

	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// SafeHeadSource is where safe and finalized L2 heads come from.
//
// Implementations must be safe for concurrent use. Errors wrap the sentinels of
// this package where one applies, and name the source.
type SafeHeadSource interface {
	// Heads returns the source's current heads. A returned Heads has passed Check.
	Heads(ctx context.Context) (Heads, error)
	// L2BlockRefByNumber returns the block at height n on the chain this source
	// holds canonical. A height the source does not have wraps ErrNotFound.
	L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error)
	// Name identifies the source in logs, metrics and errors.
	Name() string
}

// BlockRefByNumber looks up the canonical block at a height, as
// SafeHeadSource.L2BlockRefByNumber and op-service's L2 clients do.
type BlockRefByNumber func(ctx context.Context, n uint64) (eth.L2BlockRef, error)
