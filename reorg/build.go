package reorg

import (
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/safesource"
)

// BuildInput is everything DecideBuild looks at: a block a deriving source
// asks the engine to build, after the tick's own decision was carried out.
type BuildInput struct {
	Local   Local
	Request safesource.BuildRequest
	// ELAtParent is the engine's canonical block at the request's parent height.
	ELAtParent Lookup
	// Rejected reports whether the engine called a block INVALID; nil: none was.
	Rejected func(common.Hash) bool
}

// DecideBuild returns whether to build the block a deriving source asks for,
// and how. Building on the parent abandons every engine block above it (the
// source found the block after the parent missing or different); the safe
// label follows the parent down when it was above it, since the blocks it
// named are being replaced, but finalized never moves and nothing is built at
// or below it.
func DecideBuild(in BuildInput) Decision {
	r, l := in.Request, in.Local
	parent := r.Parent
	switch {
	case r.Attributes == nil || parent.Hash == (common.Hash{}):
		return skip(true, fmt.Errorf("build request without attributes or parent: %w", safesource.ErrInconsistentHeads))
	case uint64(r.Attributes.Timestamp) <= parent.Time:
		return skip(true, fmt.Errorf("build request at time %d, not after its parent %d (%s) at %d: %w",
			uint64(r.Attributes.Timestamp), parent.Number, parent.Hash, parent.Time, safesource.ErrInconsistentHeads))
	case in.ELAtParent.Err != nil:
		return skip(false, fmt.Errorf("engine read at build parent %d: %w", parent.Number, in.ELAtParent.Err))
	case !in.ELAtParent.Found || in.ELAtParent.Ref.Hash != parent.Hash:
		return skip(false, fmt.Errorf("engine no longer holds build parent %d (%s); waiting for the source to derive again",
			parent.Number, parent.Hash))
	case in.Rejected != nil && in.Rejected(parent.Hash):
		return skip(true, fmt.Errorf("build parent %d (%s): %w", parent.Number, parent.Hash, ErrRejected))
	case hasFinalized(l) && parent.Number < l.Finalized.Number:
		return Decision{Action: Halt, Reason: fmt.Sprintf(
			"source asks to build on %d (%s), below local finalized %d (%s)", parent.Number, parent.Hash, l.Finalized.Number, l.Finalized.Hash)}
	case hasFinalized(l) && parent.Number == l.Finalized.Number && parent.Hash != l.Finalized.Hash:
		return Decision{Action: Halt, Reason: fmt.Sprintf(
			"source asks to build on %d (%s), which is not local finalized %s", parent.Number, parent.Hash, l.Finalized.Hash)}
	}
	safe := l.Safe
	if safe.Number > parent.Number {
		safe = parent
	}
	next := Local{Unsafe: parent, Safe: safe, Finalized: l.Finalized}
	d := Decision{
		Action:      Build,
		Reason:      fmt.Sprintf("source derived block %d on %d (%s), which the engine lacks; building it", parent.Number+1, parent.Number, parent.Hash),
		Forkchoice:  forkchoice(next),
		Next:        next,
		BuildParent: parent,
	}
	if l.Unsafe.Number > parent.Number {
		d.Ancestor, d.Depth = parent, l.Unsafe.Number-parent.Number
		d.Reason = fmt.Sprintf("source derived another block %d on %d (%s) than the engine holds; abandoning %d unsafe blocks to build it",
			parent.Number+1, parent.Number, parent.Hash, d.Depth)
	}
	return d
}
