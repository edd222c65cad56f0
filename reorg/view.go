package reorg

import (
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/safesource"
)

// Params are the settings Step reads; they do not change while it runs.
type Params struct {
	Mode SyncMode
	// TipWindow is the most blocks a tip chain may hold (see TipInput.Window).
	TipWindow uint64
	// Builds says the source may ask for blocks to be built after a tick
	// (a deriving source): a tick then ends with a ReadBuildRequest.
	Builds bool
	// TickOnTip: a tip that moved the head asks for a tick at once (Done.TickNow),
	// which then need not read the head back.
	TickOnTip bool
	// Rejected reports whether the engine called a block INVALID, or one it
	// builds on. The caller owns that set, as raft's caller owns its Storage:
	// Step only reads it, and asks for changes with Reject and Forgive effects.
	// nil: nothing was rejected.
	Rejected func(common.Hash) bool
}

// View is the local state Step reads and writes: the engine's head and the
// labels the adapter set, what is known of the engine's chain, and the
// operation in flight. The caller keeps the View Step returns and hands it to
// the next call; nothing else writes it.
type View struct {
	Params Params
	// Local is the engine's head and the safe and finalized labels last set.
	Local Local
	// Started is set once the engine's labels were read.
	Started bool
	// HeadOnSafe is set while the local head is known to descend from local
	// safe (the engine took a forkchoice update naming both).
	HeadOnSafe bool
	// HeadFresh: a tip just set the head and asked for a tick (TickOnTip); that
	// tick need not read the head back.
	HeadFresh bool
	// EngineLost is set from the tick that found the engine's head below the
	// safe label until the engine takes a forkchoice update again; its earlier
	// INVALID answers are then forgiven for blocks the source vouches for.
	EngineLost bool
	// Syncing is set while the engine answers SYNCING to the current target.
	Syncing bool
	// SourceHeads is what the source said last in a tick that did not skip or
	// halt on it.
	SourceHeads safesource.Heads
	// LastReorg is the head abandoned by the last reorg reported, so that a
	// reorg the engine syncs through over several ticks is reported once.
	LastReorg common.Hash
	// TipBase is the local head the last tip decision was made on.
	TipBase common.Hash
	// Known holds engine blocks known to be canonical while its head is
	// Known.Head, so that a tick in which nothing changed reads only the head.
	Known Known

	op *op // the operation in flight; nil between operations
}

// Busy reports whether an operation (a tick or a tip) is in flight: the next
// event must then be the answer to one of the effects Step returned last.
func (v View) Busy() bool { return v.op != nil }

// maxKnown bounds the remembered engine blocks for one head: a tick looks up
// at most three heights, a tip extension adds its blocks.
const maxKnown = 8

// Known is a small set of engine blocks known to be canonical under one head.
// It is never changed in place: every change makes a new one, so views that
// share it stay as they were.
type Known struct {
	Head   common.Hash
	Blocks []eth.L2BlockRef
}

// at returns the block known at height n under head.
func (k Known) at(head common.Hash, n uint64) (eth.L2BlockRef, bool) {
	if k.Head != head {
		return eth.L2BlockRef{}, false
	}
	for _, b := range k.Blocks {
		if b.Number == n {
			return b, true
		}
	}
	return eth.L2BlockRef{}, false
}

// with returns k (or, for another head, an empty set) with refs added.
func (k Known) with(head common.Hash, refs ...eth.L2BlockRef) Known {
	next := Known{Head: head}
	if k.Head == head {
		next.Blocks = append(next.Blocks, k.Blocks...)
	}
	for _, r := range refs {
		if len(next.Blocks) >= maxKnown || r.Hash == (common.Hash{}) {
			break
		}
		if _, ok := next.at(head, r.Number); !ok {
			next.Blocks = append(next.Blocks, r)
		}
	}
	return next
}

// labels is the set of the local head, safe and finalized blocks: the engine
// answered VALID to an update naming them, so they are its canonical chain.
func labels(l Local) Known { return Known{}.with(l.Unsafe.Hash, l.Unsafe, l.Safe, l.Finalized) }
