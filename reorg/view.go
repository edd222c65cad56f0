package reorg

import (
	"cmp"
	"slices"

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

// maxRead bounds the engine blocks remembered as read under one head: a
// tick looks up at most three heights, a tip at most three.
const maxRead = 8

// maxMade bounds the blocks remembered as made canonical by the adapter under
// one head: enough for the safe head to trail the tip by two tip windows and
// still be known.
const maxMade = 128

// Known is what is known of the engine's chain under one head, so that a tick
// need not read it again. It is never changed in place: every change makes a
// new one, so views that share it stay as they were.
type Known struct {
	Head common.Hash
	// Made holds blocks the adapter made canonical under Head: the labels of
	// an update the engine answered VALID, and tip chains it inserted below
	// Head. They are Head's ancestors by their hashes, so they stay true for as
	// long as the engine's head is Head, whatever was written meanwhile.
	Made []eth.L2BlockRef
	// Read holds blocks read from the engine while its head was Head; they are
	// forgotten at the adapter's next write (a block read while the engine
	// moved by itself must not outlive a later return to Head).
	Read []eth.L2BlockRef
}

// at returns the block known at height n under head.
func (k Known) at(head common.Hash, n uint64) (eth.L2BlockRef, bool) {
	if k.Head != head {
		return eth.L2BlockRef{}, false
	}
	for _, set := range [][]eth.L2BlockRef{k.Made, k.Read} {
		for _, b := range set {
			if b.Number == n {
				return b, true
			}
		}
	}
	return eth.L2BlockRef{}, false
}

// withRead returns k with ref, read from the engine under head, added.
func (k Known) withRead(head common.Hash, ref eth.L2BlockRef) Known {
	if k.Head != head {
		k = Known{Head: head}
	}
	if _, ok := k.at(head, ref.Number); ok || len(k.Read) >= maxRead {
		return k
	}
	k.Read = append(slices.Clip(k.Read), ref)
	return k
}

// beforeWrite is k as the adapter writes to the engine: what was read is
// forgotten, what it made canonical stays.
func (k Known) beforeWrite() Known { return Known{Head: k.Head, Made: k.Made} }

// madeUnder returns what is known once the engine took head with refs as its
// ancestors (or head itself): under the same head, k's Made blocks are kept;
// below holds blocks known under the previous head that are ancestors of head
// too (a tip chain extended it). The highest maxMade blocks are kept.
func (k Known) madeUnder(head common.Hash, below []eth.L2BlockRef, refs ...eth.L2BlockRef) Known {
	// the newest word first: refs, then below, then what was known; at a
	// height named twice the first stays
	made := make([]eth.L2BlockRef, 0, len(below)+len(refs)+len(k.Made))
	for _, r := range refs {
		if r.Hash != (common.Hash{}) {
			made = append(made, r)
		}
	}
	made = append(made, below...)
	if k.Head == head {
		made = append(made, k.Made...)
	}
	slices.SortStableFunc(made, func(a, b eth.L2BlockRef) int { return cmp.Compare(b.Number, a.Number) })
	made = slices.CompactFunc(made, func(a, b eth.L2BlockRef) bool { return a.Number == b.Number })
	if len(made) > maxMade {
		made = made[:maxMade]
	}
	return Known{Head: head, Made: made}
}

// labelsMade is k once the engine answered VALID to an update naming l's
// labels: they are its canonical chain under l's head.
func (k Known) labelsMade(l Local) Known {
	return k.madeUnder(l.Unsafe.Hash, nil, l.Unsafe, l.Safe, l.Finalized)
}

// labelsMadeFrom is labelsMade for an update that moved the engine from
// head to l's head over base, a block of both chains (backfillBase): what was
// made canonical under head at or below base, and base, are ancestors of the
// new head too, and stay known. The old blocks are kept only when base is
// head or one of them, known by hash rather than read (the engine could have
// moved between the tick's reads). A follower that backfills a block at a
// time then finds the blocks it labelled before (its new finalized head was
// its safe head earlier) without reading the engine.
func (k Known) labelsMadeFrom(head common.Hash, base eth.L2BlockRef, l Local) Known {
	below := []eth.L2BlockRef{base}
	if k.Head == head && (base.Hash == head || slices.ContainsFunc(k.Made, func(b eth.L2BlockRef) bool { return b.Hash == base.Hash })) {
		for _, b := range k.Made {
			if b.Number <= base.Number {
				below = append(below, b)
			}
		}
	}
	return k.madeUnder(l.Unsafe.Hash, below, l.Unsafe, l.Safe, l.Finalized)
}
