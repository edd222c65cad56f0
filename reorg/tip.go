package reorg

import (
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
)

// TipAction is what the adapter does with a block from a tip feed: an unsafe
// block from outside the safe source (a remote EL, gossip, the embedder's own
// pipeline). Tip blocks are never trusted for safety: they only extend the
// local chain above the local safe head, and nothing they say moves safe or
// finalized.
type TipAction int

const (
	// TipIgnore: drop the block; it is the head already, at or below local
	// safe, does not descend from local safe, builds on a block the engine
	// called INVALID, or the engine could not be read.
	TipIgnore TipAction = iota
	// TipNeedParent: the lowest block of the chain does not build on a block
	// known to be on the local chain: fetch Parent from the feed, put it first in
	// TipInput.Chain and decide again.
	TipNeedParent
	// TipInsert: insert TipInput.Chain in order with newPayload, then send
	// Forkchoice (head the tip, the local safe and finalized labels).
	TipInsert
	// TipSync: the tip is more than a window of blocks away from the local
	// chain: send Forkchoice to the tip, and the engine syncs to it from its
	// peers (EL-sync mode only).
	TipSync
)

var tipActionNames = [...]string{"tip-ignore", "tip-need-parent", "tip-insert", "tip-sync"}

// String returns the action's name as used in logs and metric labels.
func (a TipAction) String() string {
	if a < 0 || int(a) >= len(tipActionNames) {
		return fmt.Sprintf("tip-action(%d)", int(a))
	}
	return tipActionNames[a]
}

// TipInput is everything DecideTip looks at.
type TipInput struct {
	// Local is the adapter's view: the engine's head and the labels it set.
	Local Local
	// Chain is the tip block and the ancestors fetched for it so far, lowest
	// first; the last one is the tip. Only Number, Hash and ParentHash are read.
	Chain []eth.L2BlockRef
	// ELAtParent is the engine's canonical block at the height below Chain[0],
	// read when that height is above local safe and at or below local unsafe.
	ELAtParent Lookup
	// ELAtTip is the engine's canonical block at the tip's height, read when
	// that height is above local safe and at or below local unsafe.
	ELAtTip Lookup
	// HeadOnSafe says that the local head descends from local safe (it may
	// not, while the engine syncs to a safe head it lacks). When it does not,
	// a tip chain is taken only where it reaches local safe itself.
	HeadOnSafe bool
	// Window is the most blocks Chain may hold; a tip further from the local
	// chain is synced to (TipSync) in EL-sync mode and ignored in backfill mode.
	Window uint64
	Mode   SyncMode
	// Rejected reports whether the engine called a block INVALID, or one it
	// builds on; nil: none was.
	Rejected func(common.Hash) bool
}

// TipDecision is the result of DecideTip.
type TipDecision struct {
	Action TipAction
	// Reason says why, in words fit for a log line.
	Reason string
	// Parent is the block to fetch, for TipNeedParent.
	Parent common.Hash
	// Forkchoice is the update to send for TipInsert and TipSync, and Next the
	// local view once it is answered VALID.
	Forkchoice eth.ForkchoiceState
	Next       Local
	// Depth is the number of local unsafe blocks a fork abandons (TipInsert).
	Depth uint64
	// Err is set when the block is ignored because the engine could not be read.
	Err error
}

// SendsForkchoice reports whether the adapter must send Forkchoice.
func (d TipDecision) SendsForkchoice() bool { return d.Action == TipInsert || d.Action == TipSync }

// DecideTip returns what to do with a tip block (the last of in.Chain) and why.
// It implements the tip table in docs/DESIGN.md; the comments name its rows.
func DecideTip(in TipInput) TipDecision {
	l := in.Local
	if len(in.Chain) == 0 {
		return TipDecision{Action: TipIgnore, Reason: "no tip block"}
	}
	tip, low := in.Chain[len(in.Chain)-1], in.Chain[0]
	// Row: a block the engine called INVALID, or one built on it, is dropped.
	if in.Rejected != nil {
		for _, b := range in.Chain {
			if in.Rejected(b.Hash) || in.Rejected(b.ParentHash) {
				return TipDecision{Action: TipIgnore, Reason: fmt.Sprintf(
					"tip %d (%s) is or builds on block %d (%s), which the engine declared INVALID", tip.Number, tip.Hash, b.Number, b.Hash)}
			}
		}
	}
	if tip.Hash == l.Unsafe.Hash {
		return TipDecision{Action: TipIgnore, Reason: fmt.Sprintf("tip %d (%s) is the local head already", tip.Number, tip.Hash)}
	}
	// Row: a tip block at or below local safe is ignored.
	if tip.Number <= l.Safe.Number {
		return TipDecision{Action: TipIgnore, Reason: fmt.Sprintf("tip %d (%s) is at or below local safe %d", tip.Number, tip.Hash, l.Safe.Number)}
	}
	// A tip the local chain holds already (a feed behind the local head) is
	// not a reason to move the head back.
	if tip.Number <= l.Unsafe.Number {
		if in.ELAtTip.Err != nil {
			return TipDecision{Action: TipIgnore, Err: in.ELAtTip.Err, Reason: fmt.Sprintf(
				"engine read at tip height %d: %v", tip.Number, in.ELAtTip.Err)}
		}
		if in.ELAtTip.Found && in.ELAtTip.Ref.Hash == tip.Hash {
			return TipDecision{Action: TipIgnore, Reason: fmt.Sprintf(
				"tip %d (%s) is on the local chain already, below the local head %d", tip.Number, tip.Hash, l.Unsafe.Number)}
		}
	}
	if low.Number == 0 {
		return TipDecision{Action: TipIgnore, Reason: fmt.Sprintf("tip %d (%s) descends from another genesis block", tip.Number, tip.Hash)}
	}
	parent := low.Number - 1

	switch {
	// Row: the tip block's parent is the local head: extend it.
	case in.HeadOnSafe && low.ParentHash == l.Unsafe.Hash && parent == l.Unsafe.Number:
		return insertTip(in, tip, 0, fmt.Sprintf("tip %d (%s) extends the local head %d", tip.Number, tip.Hash, l.Unsafe.Number))
	// Row: a tip chain that reaches local safe's height without holding it
	// does not descend from local safe: ignore it (never reorg below safe).
	case parent < l.Safe.Number || parent == l.Safe.Number && low.ParentHash != l.Safe.Hash:
		return TipDecision{Action: TipIgnore, Reason: fmt.Sprintf(
			"tip %d (%s) does not descend from local safe %d (%s)", tip.Number, tip.Hash, l.Safe.Number, l.Safe.Hash)}
	// Row: the tip chain forks off at local safe: follow it.
	case parent == l.Safe.Number:
		return insertTip(in, tip, above(l.Unsafe.Number, parent), fmt.Sprintf(
			"tip %d (%s) forks off the local chain at safe %d", tip.Number, tip.Hash, parent))
	}
	// The parent's height is above local safe: is it on the local chain?
	if in.HeadOnSafe && parent <= l.Unsafe.Number {
		if in.ELAtParent.Err != nil {
			return TipDecision{Action: TipIgnore, Err: in.ELAtParent.Err, Reason: fmt.Sprintf(
				"engine read at %d, below tip chain %d..%d: %v", parent, low.Number, tip.Number, in.ELAtParent.Err)}
		}
		// Row: the tip is on a fork that leaves the local chain above safe:
		// follow it from the fork point.
		if in.ELAtParent.Found && in.ELAtParent.Ref.Hash == low.ParentHash {
			return insertTip(in, tip, above(l.Unsafe.Number, parent), fmt.Sprintf(
				"tip %d (%s) forks off the local chain at %d", tip.Number, tip.Hash, parent))
		}
	}
	// Row: the tip is far ahead (more than a window): EL sync, or wait.
	if uint64(len(in.Chain)) >= in.Window {
		if in.Mode == Backfill {
			return TipDecision{Action: TipIgnore, Reason: fmt.Sprintf(
				"tip %d (%s) is more than %d blocks from the local chain (head %d); backfill mode syncs only to the safe head",
				tip.Number, tip.Hash, in.Window, l.Unsafe.Number)}
		}
		return TipDecision{Action: TipSync, Reason: fmt.Sprintf(
			"tip %d (%s) is more than %d blocks from the local chain (head %d); the engine syncs to it",
			tip.Number, tip.Hash, in.Window, l.Unsafe.Number),
			Forkchoice: tipForkchoice(l, tip), Next: Local{Unsafe: tip, Safe: l.Safe, Finalized: l.Finalized}}
	}
	return TipDecision{Action: TipNeedParent, Parent: low.ParentHash, Reason: fmt.Sprintf(
		"tip %d (%s): block %d (%s) is not known to be on the local chain", tip.Number, tip.Hash, parent, low.ParentHash)}
}

func insertTip(in TipInput, tip eth.L2BlockRef, depth uint64, reason string) TipDecision {
	l := in.Local
	return TipDecision{Action: TipInsert, Reason: reason, Depth: depth,
		Forkchoice: tipForkchoice(l, tip), Next: Local{Unsafe: tip, Safe: l.Safe, Finalized: l.Finalized}}
}

// tipForkchoice moves the head to the tip and keeps the local labels: nothing
// from a tip feed moves safe or finalized.
func tipForkchoice(l Local, tip eth.L2BlockRef) eth.ForkchoiceState {
	return eth.ForkchoiceState{HeadBlockHash: tip.Hash, SafeBlockHash: l.Safe.Hash, FinalizedBlockHash: l.Finalized.Hash}
}

// above is how many blocks head is above n; 0 when it is not.
func above(head, n uint64) uint64 {
	if head > n {
		return head - n
	}
	return 0
}
