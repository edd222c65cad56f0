package engineadapter

import (
	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource"
)

// EventKind names what happened in a tick.
type EventKind int

const (
	// SafeAdvanced: the safe label moved up (or, in a reorg, to another chain).
	SafeAdvanced EventKind = iota
	// FinalizedAdvanced: the finalized label moved up.
	FinalizedAdvanced
	// Reorged: local unsafe blocks were abandoned for the source's chain.
	Reorged
	// Halted: the source contradicts the local finalized chain; nothing was sent.
	Halted
	// SourceFailed: the source erred, or gave heads or lookups that contradict
	// themselves; the tick was skipped.
	SourceFailed
	// EngineSyncing: the engine answered SYNCING; the target is retried next tick.
	EngineSyncing
	// EngineInvalid: the engine called the target INVALID; it is never sent again.
	EngineInvalid
	// Skipped: the tick was skipped for a reason that is not the source's (an
	// engine read failed, a target the engine called INVALID).
	Skipped
	// Built: the engine built a block the source derived itself; New.Unsafe
	// is it.
	Built
	// UnsafeAdvanced: the engine took a tip feed's block as its head; Depth is
	// the number of local unsafe blocks it abandoned (a fork above safe).
	UnsafeAdvanced
)

var eventNames = [...]string{"safe-advanced", "finalized-advanced", "reorged", "halted", "source-failed", "engine-syncing", "engine-invalid", "skipped", "built", "unsafe-advanced"}

// String returns the event's name.
func (k EventKind) String() string {
	if k < 0 || int(k) >= len(eventNames) {
		return "unknown"
	}
	return eventNames[k]
}

// Event reports one thing that happened, with the decision behind it.
type Event struct {
	Kind     EventKind
	Decision reorg.Decision
	// Tip is the tip decision behind an event of the tip path (Decision is
	// then zero).
	Tip reorg.TipDecision
	// Old and New are the local views before and after the tick.
	Old, New reorg.Local
	// Depth is the number of abandoned unsafe blocks, for Reorged.
	Depth uint64
	// Err is set for SourceFailed (and carries the reason for Halted).
	Err error
	// Heads is the source's answer the tick applied, for SafeAdvanced and
	// Built (zero for the tip path's): its CurrentL1, where the source tells
	// it, is the L1 block it had derived up to when it named that safe head.
	Heads safesource.Heads
}
