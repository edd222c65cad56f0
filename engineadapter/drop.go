package engineadapter

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// BlockDropper makes the engine forget the blocks it holds above a height.
//
// An engine that restarted without its state may still hold the blocks it
// had: op-geth with its default path-scheme database, killed with SIGKILL,
// comes back with its head block rewound to the last state on disk but its
// headers and bodies kept above it. It answers VALID to those blocks'
// payloads without executing them, and a forkchoice update to one of them
// moves nothing, so neither a backfill nor its own sync gets it past them.
// Once they are dropped, both execute them again.
type BlockDropper interface {
	// DropAbove drops the engine's blocks above number, which is its head
	// block. ErrNothingAbove (wrapped) says it held none.
	DropAbove(ctx context.Context, number uint64) error
}

// DebugSetHead drops blocks with op-geth's debug_setHead, over its plain
// JSON-RPC with the debug namespace (op-geth --http --http.api eth,debug).
// That RPC is unauthenticated: serve it on loopback only.
type DebugSetHead struct{ RPC client.RPC }

var _ BlockDropper = DebugSetHead{}

// DropAbove calls debug_setHead(number). op-geth refuses with "not allowed
// to rewind to a future block" when its head header is not above number:
// there was nothing to drop.
func (d DebugSetHead) DropAbove(ctx context.Context, number uint64) error {
	err := d.RPC.CallContext(ctx, nil, "debug_setHead", hexutil.Uint64(number))
	if err != nil && strings.Contains(err.Error(), "not allowed to rewind to a future block") {
		return fmt.Errorf("debug_setHead %d: %w", number, ErrNothingAbove)
	}
	return err
}

// ErrNothingAbove is returned (wrapped) by a BlockDropper that found no
// blocks above the height it was given.
var ErrNothingAbove = errors.New("the engine holds no blocks above its head")

// dropAbove has the engine drop what it holds above head, its head block,
// once it was found below the safe label (reorg.DropBlocksAbove). Without a
// BlockDropper it does nothing: the alarm names the remedy.
func (a *Adapter) dropAbove(ctx context.Context, head eth.L2BlockRef) {
	if a.cfg.Drop == nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, a.cfg.EngineTimeout)
	defer cancel()
	switch err := a.cfg.Drop.DropAbove(dctx, head.Number); {
	case err == nil:
		a.log.Warn("The engine held blocks above its head block, likely without their state; had it drop them so that "+
			"they are executed again", "head", head.Number, "head_hash", head.Hash)
	case errors.Is(err, ErrNothingAbove):
		a.log.Info("The engine holds no blocks above its head block; nothing to drop", "head", head.Number)
	default:
		a.log.Warn("Could not have the engine drop the blocks above its head block; catching it up as it is",
			"head", head.Number, "err", err)
	}
}
