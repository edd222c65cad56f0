package reorg

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/safesource"
)

// ErrHalted is wrapped by a tick's error when the source contradicts the local
// finalized chain, or the engine refused a forkchoice state.
var ErrHalted = errors.New("halted: source conflicts with local finalized chain")

// ErrTipFeed is wrapped when a tip feed hands out a block that does not fit
// what was asked (an empty payload, another hash or height than asked for).
var ErrTipFeed = errors.New("tip feed gave a wrong block")

// ErrTipInvalid is wrapped when the engine called a tip block INVALID, or
// refused the forkchoice state naming it.
var ErrTipInvalid = errors.New("engine declared a tip block INVALID")

// ErrBackfillInvalid is wrapped when the engine calls a backfilled payload
// INVALID; the backfill stops there.
var ErrBackfillInvalid = errors.New("engine declared a backfilled payload INVALID")

// ErrUnexpected is wrapped when Step gets an event it did not ask for.
var ErrUnexpected = errors.New("event not expected now")

// phase is where an operation waits.
type phase int

const (
	waitHead phase = iota
	waitLabels
	waitSource
	waitBlocks
	waitAncestor
	waitBackfill
	waitForkchoice
	waitRestore
	waitBuildRequest
	waitBuild
	waitTipParent
	waitTipInsert
)

// op is an operation in flight: a tick or a tip. Step never changes an op in
// place; it copies it, so that a View handed out stays as it was.
type op struct {
	tip      bool
	phase    phase
	in       Input       // the tick's decision input
	d        Decision    // the tick's decision (or the build's, once asked)
	tickD    Decision    // the tick's own decision, returned when no block is built
	heights  []uint64    // the heights a pending lookup answers
	phaseAsk []uint64    // the heights the pending ReadEngineAt asked the engine for
	source   *SourceRead // the source's answer, when read with the engine's head
	// engineMoves: the engine may have moved its head by itself since the
	// view's head was read (a tip is not preceded by a head read): nothing is
	// answered from Known.
	engineMoves bool
	// headFresh: the caller starts this tick right after the tip that asked
	// for it (Tick.AfterTip)
	headFresh bool
	// forgiven holds hashes Forgive effects were asked for in this tick: they
	// count as not rejected before the caller carried the effects out.
	forgiven []common.Hash
	// old is the local view before the pending forkchoice update; restoreErr
	// the error a refused state ends the operation with.
	old        Local
	restoreErr error
	refused    *Note
	req        safesource.BuildRequest
	building   bool
	// the tip path
	chain    []*eth.ExecutionPayloadEnvelope
	td       TipDecision
	inserted uint64
	known    Known // the blocks known under the head a tip extends
}

// Step takes the view and one event and returns the next view and the
// effects to carry out, in order. It is pure: no I/O, no clock, no
// goroutine. An event that starts an operation (Tick, TipArrived) may come
// only when the view is not Busy; any other event must answer an effect of
// the previous call. Every operation ends with a Done effect.
func Step(v View, ev Event) (View, []Effect) {
	s := &stepper{v: v}
	if v.op != nil {
		o := *v.op
		s.o = &o
		s.v.op = s.o
	}
	s.step(ev)
	return s.v, s.out
}

// stepper holds one Step call's state: the view being written and the
// effects asked for so far.
type stepper struct {
	v   View
	o   *op
	out []Effect
}

func (s *stepper) emit(e ...Effect) { s.out = append(s.out, e...) }

func (s *stepper) report(n Note) {
	if n.Kind == NoteInvalid {
		n.EngineLost = s.v.EngineLost
	}
	s.emit(Report{Note: n})
}

func (s *stepper) step(ev Event) {
	if s.o == nil {
		switch e := ev.(type) {
		case Tick:
			s.startTick(e.AfterTip)
		case TipArrived:
			s.startTip(e.Payload)
		default:
			s.emit(Done{Err: fmt.Errorf("%T with no operation in flight: %w", ev, ErrUnexpected)})
		}
		return
	}
	switch e := ev.(type) {
	case EngineHeadRead:
		if s.expect(waitHead, ev) {
			s.onHead(e)
		}
	case HeadsRead:
		if s.expect(waitHead, ev) {
			src := e.Source
			s.o.source = &src
			s.onHead(e.Engine)
		}
	case EngineLabelsRead:
		if s.expect(waitLabels, ev) {
			s.onLabels(e)
		}
	case SourceRead:
		if s.expect(waitSource, ev) {
			s.onSource(e)
		}
	case EngineBlocksRead:
		if s.expect(waitBlocks, ev) {
			s.onBlocks(e)
		}
	case AncestorFound:
		if s.expect(waitAncestor, ev) {
			r := e.Result
			s.o.in.Ancestor = &r
			s.decideTick()
		}
	case Backfilled:
		if s.expect(waitBackfill, ev) {
			s.onBackfilled(e)
		}
	case ForkchoiceAnswered:
		switch {
		case s.o.phase == waitRestore:
			s.onRestored(e)
		case !s.expect(waitForkchoice, ev):
		case s.o.tip:
			s.onTipForkchoice(e)
		default:
			s.onForkchoice(e)
		}
	case BuildRequestRead:
		if s.expect(waitBuildRequest, ev) {
			s.onBuildRequest(e)
		}
	case BlockBuilt:
		if s.expect(waitBuild, ev) {
			s.onBuilt(e)
		}
	case TipParentFetched:
		if s.expect(waitTipParent, ev) {
			s.onTipParent(e)
		}
	case TipsInserted:
		if s.expect(waitTipInsert, ev) {
			s.onTipsInserted(e)
		}
	default:
		s.finish(fmt.Errorf("%T while an operation is in flight: %w", ev, ErrUnexpected))
	}
}

// expect ends the operation with an error when ev is not the answer awaited.
func (s *stepper) expect(p phase, ev Event) bool {
	if s.o.phase == p {
		return true
	}
	s.finish(fmt.Errorf("%T in phase %d: %w", ev, s.o.phase, ErrUnexpected))
	return false
}

// wait moves the operation to phase p and asks for e.
func (s *stepper) wait(p phase, e Effect) {
	s.o.phase = p
	s.emit(e)
}

// finish ends the operation with err and the decision taken.
func (s *stepper) finish(err error) {
	done := Done{Err: err}
	if o := s.o; o != nil {
		done.IsTip, done.Tip, done.Inserted = o.tip, o.td, o.inserted
		done.Decision = o.d
		if !o.building {
			done.Decision = o.tickD
		}
	}
	s.v.op = nil
	s.emit(done)
}

// rejected is Params.Rejected, less what this operation forgave.
func (s *stepper) rejected(h common.Hash) bool {
	if s.v.Params.Rejected == nil {
		return false
	}
	if s.o != nil {
		for _, f := range s.o.forgiven {
			if f == h {
				return false
			}
		}
	}
	return s.v.Params.Rejected(h)
}

// readEngine starts an operation's engine reads: the head, and all three
// labels at start or when the head fell below the safe label.
func (s *stepper) readEngine() {
	fresh := s.v.HeadFresh && s.o.headFresh
	s.v.HeadFresh = false
	if fresh && s.v.Started {
		s.afterEngineRead() // a tip set the head a moment ago (TickOnTip)
		return
	}
	if s.o.tip {
		s.wait(waitHead, ReadEngineHead{})
		return
	}
	s.wait(waitHead, ReadHeads{})
}

func (s *stepper) onHead(e EngineHeadRead) {
	if e.Err != nil {
		if s.o.tip {
			s.o.td.Reason = "engine not read yet"
		}
		s.finish(e.Err)
		return
	}
	head := e.Head
	if head.Hash != s.v.Local.Unsafe.Hash {
		s.v.HeadOnSafe = false // a head the adapter did not set: not known to hold local safe
	}
	s.v.Local.Unsafe = head
	if s.v.Started && head.Number >= s.v.Local.Safe.Number {
		s.afterEngineRead()
		return
	}
	s.wait(waitLabels, ReadEngineLabels{})
}

func (s *stepper) onLabels(e EngineLabelsRead) {
	if e.Err != nil {
		if s.o.tip {
			s.o.td.Reason = "engine not read yet"
		}
		s.finish(e.Err)
		return
	}
	head := s.v.Local.Unsafe
	engine := Local{Unsafe: head, Safe: e.Safe, Finalized: e.Finalized}
	next := engine
	if s.v.Started {
		// finalized never regresses, even when the engine lost it: decisions
		// then only catch up to a source chain that holds it
		old := s.v.Local.Finalized
		kept := old.Number > e.Finalized.Number || e.Finalized.Hash == (common.Hash{})
		if kept {
			next.Finalized = old
		}
		s.report(Note{Kind: NoteEngineWentBack, Old: s.v.Local, Engine: engine, FinalizedKept: kept})
		if !s.v.EngineLost {
			// once, when it went back: later, while it syncs, the blocks
			// above its head are the ones it is fetching
			s.emit(DropBlocksAbove{Head: head})
		}
		s.v.EngineLost = true
	} else {
		s.report(Note{Kind: NoteEngineRead, Engine: engine})
	}
	if next.Safe.Number < next.Finalized.Number || next.Safe.Hash == (common.Hash{}) {
		next.Safe = next.Finalized
	}
	s.v.Local, s.v.Started = next, true
	s.afterEngineRead()
}

func (s *stepper) afterEngineRead() {
	switch {
	case s.o.tip:
		s.tipLookups()
	case s.o.source != nil: // read with the engine's head
		s.onSource(*s.o.source)
	default:
		s.wait(waitSource, ReadSource{})
	}
}

// lookup gives the engine's blocks at heights, answering from Known what it
// can and "not found" above the head. It returns false when it had to ask for
// the rest with ReadEngineAt (each height once); onBlocks then goes on.
func (s *stepper) lookup(heights []uint64) ([]Lookup, bool) {
	s.o.heights = heights
	var ask []uint64
	for _, n := range heights {
		if _, known := s.known(n); !known && !slices.Contains(ask, n) {
			ask = append(ask, n)
		}
	}
	if len(ask) > 0 {
		s.o.phaseAsk = ask
		s.wait(waitBlocks, ReadEngineAt{Heights: ask})
		return nil, false
	}
	got := make([]Lookup, len(heights))
	for i, n := range heights {
		got[i], _ = s.known(n)
	}
	return got, true
}

// known answers a lookup without the engine: above the head nothing is found,
// and Known holds what was read under the same head.
func (s *stepper) known(n uint64) (Lookup, bool) {
	head := s.v.Local.Unsafe
	if n > head.Number {
		return Lookup{}, true
	}
	if s.o.engineMoves {
		return Lookup{}, false
	}
	if ref, ok := s.v.Known.at(head.Hash, n); ok {
		return Lookup{Ref: ref, Found: true}, true
	}
	return Lookup{}, false
}

// onBlocks takes the engine's answers: they join Known, and the operation
// goes on with every height asked for answered.
func (s *stepper) onBlocks(e EngineBlocksRead) {
	ask := s.o.phaseAsk
	if len(e.Lookups) != len(ask) {
		s.finish(fmt.Errorf("engine blocks: %d answers for %d heights: %w", len(e.Lookups), len(ask), ErrUnexpected))
		return
	}
	head := s.v.Local.Unsafe
	read := map[uint64]Lookup{}
	for i, n := range ask {
		read[n] = e.Lookups[i]
		if l := e.Lookups[i]; l.Found && l.Err == nil {
			s.v.Known = s.v.Known.withRead(head.Hash, l.Ref)
		}
	}
	got := make([]Lookup, len(s.o.heights))
	for i, n := range s.o.heights {
		if l, ok := read[n]; ok {
			got[i] = l
		} else {
			got[i], _ = s.known(n)
		}
	}
	switch {
	case s.o.tip:
		s.decideTip(got)
	case s.o.building:
		s.decideBuild(got[0])
	default:
		s.o.in.ELAtSafe, s.o.in.ELAtFinalized, s.o.in.ELAtLocalSafe = got[0], got[1], got[2]
		s.decideTick()
	}
}

func (s *stepper) startTick(afterTip bool) {
	s.o = &op{headFresh: afterTip}
	s.v.op = s.o
	s.readEngine()
}

func (s *stepper) onSource(e SourceRead) {
	l := s.v.Local
	s.o.in = Input{Local: l, Mode: s.v.Params.Mode, Heads: e.Heads, SourceErr: e.Err}
	if e.Err != nil {
		s.decideTick()
		return
	}
	h := e.Heads
	if s.v.EngineLost {
		// an engine that restarted without its state calls blocks INVALID that
		// are not (op-geth: "links to previously rejected block"); the source
		// vouches for these
		for _, ref := range []eth.L2BlockRef{h.Safe, h.LocalSafe, h.Finalized} {
			if s.rejected(ref.Hash) {
				s.o.forgiven = append(s.o.forgiven, ref.Hash)
				s.emit(Forgive{Ref: ref})
			}
		}
	}
	// the engine's blocks at the source's safe and finalized heights, and at
	// local safe when the source is below it (to keep the higher local safe
	// only if the engine holds it); the same height is read once
	heights := []uint64{h.Safe.Number, h.Finalized.Number, l.Safe.Number}
	if h.Safe.Number >= l.Safe.Number {
		heights[2] = l.Unsafe.Number + 1 // not asked: above the head
	}
	got, ok := s.lookup(heights)
	if !ok {
		return
	}
	s.o.in.ELAtSafe, s.o.in.ELAtFinalized, s.o.in.ELAtLocalSafe = got[0], got[1], got[2]
	s.decideTick()
}

// decideTick decides on the tick's input and acts on the decision.
func (s *stepper) decideTick() {
	in := s.o.in
	if h, l := in.Heads.Safe, in.Local.Unsafe; in.SourceErr == nil && in.Ancestor == nil && s.v.HeadOnSafe &&
		h.Number == l.Number+1 && h.ParentHash == l.Hash {
		// the source's safe head is the child of the engine's head, which the
		// adapter set on local safe: the head is the common ancestor of the
		// catch-up, and no search needs to prove it (a follower without a tip
		// feed catches up one block at a time)
		in.Ancestor = &AncestorResult{Ref: l}
	}
	in.Rejected = s.rejected
	d := Decide(in)
	if d.Action == NeedAncestor && in.Ancestor == nil {
		s.o.d, s.o.tickD = d, d
		in.Rejected = nil // the search needs none; keep the effect free of the view's functions
		s.wait(waitAncestor, FindAncestor{Decision: d, Input: in})
		return
	}
	s.report(Note{Kind: NoteDecided, Decision: d})
	s.o.d, s.o.tickD = d, d
	old := s.v.Local
	switch d.Action {
	case Skip:
		err := d.Err
		if err == nil {
			err = errors.New(d.Reason)
		}
		err = fmt.Errorf("skipped tick: %w", err)
		s.report(Note{Kind: NoteSkipped, Decision: d, Old: old, New: old, Heads: in.Heads, Err: err})
		s.finish(err)
	case Halt:
		err := fmt.Errorf("%w: %s", ErrHalted, d.Reason)
		s.report(Note{Kind: NoteHalted, Decision: d, Old: old, New: old, Heads: in.Heads, Err: err})
		s.finish(err)
	case NeedAncestor:
		s.finish(fmt.Errorf("decision %s after the search: %w", d.Action, ErrUnexpected))
	case Hold:
		s.v.SourceHeads = in.Heads
		s.report(Note{Kind: NoteHeld, Decision: d, Old: old, New: old})
		s.askBuild()
	case SafeLabelOnly:
		s.v.SourceHeads = in.Heads
		s.v.Local = d.Next
		s.v.HeadOnSafe = false // the engine's head is not on the new safe head's chain yet
		s.report(Note{Kind: NoteSafeLabelOnly, Decision: d, Old: old, New: d.Next, Heads: in.Heads})
		s.askBuild()
	case CatchUp, Consolidate, Reorg:
		s.v.SourceHeads = in.Heads
		s.v.Known = s.v.Known.beforeWrite() // the engine is about to move
		if d.BackfillTo > 0 {
			s.wait(waitBackfill, BackfillBlocks{Decision: d, Local: old})
			return
		}
		s.sendForkchoice(s.o.d.Forkchoice, ForTick)
	default:
		s.finish(fmt.Errorf("decision %s cannot be carried out: %w", d.Action, ErrUnexpected))
	}
}

func (s *stepper) onBackfilled(e Backfilled) {
	d := s.o.d
	if e.Head != (eth.L2BlockRef{}) {
		// a checkpoint moved the head, with safe as its ancestor when it named it
		s.v.Local.Unsafe = e.Head
		s.v.HeadOnSafe = s.v.Local.Safe.Hash != (common.Hash{}) && s.v.Local.Safe.Number <= e.Head.Number
		s.v.Known = Known{}.madeUnder(e.Head.Hash, nil, e.Head)
	}
	if e.Invalid != (common.Hash{}) {
		s.emit(Reject{Hash: e.Invalid})
	}
	if e.TargetBuildsOnIt { // on a block called INVALID now or before
		s.emit(Reject{Hash: d.Forkchoice.HeadBlockHash, Descendant: true})
	}
	if e.Err != nil {
		s.v.Known = Known{} // where the engine's head went is not known
		s.report(Note{Kind: NoteBackfillFailed, Decision: d, Old: s.v.Local, New: s.v.Local, Err: e.Err,
			Block: eth.L2BlockRef{Hash: e.Invalid}})
		s.finish(e.Err)
		return
	}
	s.sendForkchoice(s.o.d.Forkchoice, ForTick)
}

// sendForkchoice sends the operation's update (the tick's or the tip's),
// remembering the view it was sent from.
func (s *stepper) sendForkchoice(fc eth.ForkchoiceState, purpose Purpose) {
	s.o.old = s.v.Local
	s.v.Known = s.v.Known.beforeWrite()
	s.wait(waitForkchoice, SendForkchoice{State: fc, Purpose: purpose})
}

// backfillBase is the block a tick's backfill inserted the new chain on, for
// a catch-up or reorg that backfilled: the common ancestor, or the engine's
// head when it had lost blocks below it. The backfill checked that every
// payload names the one before as its parent, from that block to the new
// head, so it is an ancestor of the new head by hashes, and a block of the
// engine's chain under the head the tick read.
func backfillBase(d Decision) (eth.L2BlockRef, bool) {
	if d.BackfillTo == 0 || (d.Action != CatchUp && d.Action != Reorg) {
		return eth.L2BlockRef{}, false
	}
	base := d.Ancestor
	if d.BackfillBase != (eth.L2BlockRef{}) {
		base = d.BackfillBase
	}
	return base, base.Hash != (common.Hash{})
}

// onForkchoice applies the engine's answer to the tick's update.
func (s *stepper) onForkchoice(e ForkchoiceAnswered) {
	d, old := s.o.d, s.o.old
	fc := d.Forkchoice
	if e.Refused {
		// the engine says safe or finalized is not on the head's chain:
		// following this head would leave the local finalized chain
		s.emit(Reject{Hash: fc.HeadBlockHash})
		err := fmt.Errorf("%w: the engine refused head %d (%s) with safe %s and finalized %s: %v",
			ErrHalted, d.Next.Unsafe.Number, fc.HeadBlockHash, fc.SafeBlockHash, fc.FinalizedBlockHash, e.Err)
		// the engine made the refused head canonical before refusing: put it
		// back on the local finalized chain, at the local safe head; the halt
		// is reported once that is done
		s.o.refused = &Note{Kind: NoteRefused, Decision: d, Old: old, Err: err, ValidationError: errText(e.Err)}
		s.restore(Local{Unsafe: old.Safe, Safe: old.Safe, Finalized: old.Finalized}, err)
		return
	}
	if e.Err != nil {
		s.v.Known = Known{} // the engine may have taken the update or not
		s.finish(fmt.Errorf("forkchoice update to head %d (%s): %w", d.Next.Unsafe.Number, fc.HeadBlockHash, e.Err))
		return
	}
	out := Apply(old, d, e.Status)
	s.v.Local = out.Local
	switch {
	case e.Status == eth.ExecutionValid:
		s.v.HeadOnSafe = true // the engine took the head with safe as its ancestor
		s.v.EngineLost = false
		if base, ok := backfillBase(d); ok {
			s.v.Known = s.v.Known.labelsMadeFrom(old.Unsafe.Hash, base, s.v.Local)
		} else {
			s.v.Known = s.v.Known.labelsMade(s.v.Local)
		}
	case out.Syncing:
		s.v.HeadOnSafe = false // the engine moves its head by itself once it has the target
		s.v.Known = Known{}
	}
	s.v.Syncing = out.Syncing
	switch {
	case out.Rejected != (common.Hash{}):
		s.emit(Reject{Hash: out.Rejected})
		err := fmt.Errorf("engine declared head %d (%s) %s: %s", d.Next.Unsafe.Number, out.Rejected, e.Status, e.ValidationError)
		s.report(Note{Kind: NoteInvalid, Decision: d, Old: old, New: s.v.Local, Err: err,
			Block: d.Next.Unsafe, Status: e.Status, ValidationError: e.ValidationError})
		s.finish(err)
		return
	case out.Syncing:
		s.report(Note{Kind: NoteSyncing, Decision: d, Old: old, New: s.v.Local, Block: d.Next.Unsafe})
		s.reportReorg(d, old)
		s.askBuild()
		return
	case e.Status != eth.ExecutionValid:
		s.finish(fmt.Errorf("forkchoice update to head %d (%s): %s", d.Next.Unsafe.Number, fc.HeadBlockHash, out.Reason))
		return
	}
	s.reportReorg(d, old)
	if s.v.Local.Safe != old.Safe {
		s.report(Note{Kind: NoteSafeAdvanced, Decision: d, Old: old, New: s.v.Local, Heads: s.v.SourceHeads})
	}
	if s.v.Local.Finalized != old.Finalized {
		s.report(Note{Kind: NoteFinalizedAdvanced, Decision: d, Old: old, New: s.v.Local})
	}
	s.askBuild()
}

// restore points the engine's head back at l after it refused a forkchoice
// state (op-geth makes the refused head canonical before it checks safe and
// finalized, and would stay there); the operation then ends with err.
func (s *stepper) restore(l Local, err error) {
	s.v.Known = s.v.Known.beforeWrite()
	s.o.restoreErr = err
	s.o.old = l
	if l.Unsafe.Hash == (common.Hash{}) {
		s.v.HeadOnSafe = false
		s.report(Note{Kind: NoteRestoreFailed, New: l, Err: errors.New("no local head to put back")})
		s.reportRefused()
		s.finish(err)
		return
	}
	s.wait(waitRestore, SendForkchoice{State: forkchoice(l), Purpose: ForRestore})
}

func (s *stepper) onRestored(e ForkchoiceAnswered) {
	l := s.o.old
	err := e.Err
	if err == nil && e.Status != eth.ExecutionValid {
		err = fmt.Errorf("answered %s", e.Status)
	}
	if err != nil {
		s.v.HeadOnSafe = false
		s.report(Note{Kind: NoteRestoreFailed, New: l, Err: err})
	} else {
		s.v.Local.Unsafe, s.v.HeadOnSafe = l.Unsafe, true
		s.report(Note{Kind: NoteRestored, New: l})
	}
	s.reportRefused()
	s.finish(s.o.restoreErr)
}

// reportRefused reports a tick's refused state, with the view left after the
// head was (or was not) put back.
func (s *stepper) reportRefused() {
	if s.o.refused != nil {
		n := *s.o.refused
		n.New = s.v.Local
		s.report(n)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// reportReorg reports a decision that abandons local unsafe blocks, once per
// abandoned chain: when the engine accepts the new head, or when it starts
// syncing to it (the engine then switches chains by itself).
func (s *stepper) reportReorg(d Decision, old Local) {
	if d.Depth == 0 && d.Action != Reorg {
		return
	}
	if old.Unsafe.Hash == s.v.LastReorg {
		return
	}
	s.v.LastReorg = old.Unsafe.Hash
	s.report(Note{Kind: NoteReorged, Decision: d, Old: old, New: d.Next, Depth: d.Depth})
}

// askBuild ends the tick, or, for a source that derives blocks itself, asks
// it for the block it wants built.
func (s *stepper) askBuild() {
	if !s.v.Params.Builds {
		s.finish(nil)
		return
	}
	s.wait(waitBuildRequest, ReadBuildRequest{})
}

func (s *stepper) onBuildRequest(e BuildRequestRead) {
	if !e.OK {
		s.finish(nil)
		return
	}
	s.o.req = e.Request
	s.o.building = true
	if e.Request.Parent.Number > s.v.Local.Unsafe.Number {
		s.decideBuild(Lookup{})
		return
	}
	got, ok := s.lookup([]uint64{e.Request.Parent.Number})
	if ok {
		s.decideBuild(got[0])
	}
}

func (s *stepper) decideBuild(atParent Lookup) {
	d := DecideBuild(BuildInput{Local: s.v.Local, Request: s.o.req, ELAtParent: atParent, Rejected: s.rejected})
	s.report(Note{Kind: NoteDecided, Decision: d})
	s.o.d = d
	old := s.v.Local
	switch d.Action {
	case Build:
		s.v.Known = s.v.Known.beforeWrite()
		s.o.old = old
		s.wait(waitBuild, BuildBlock{Decision: d, Request: s.o.req})
	case Halt:
		err := fmt.Errorf("%w: %s", ErrHalted, d.Reason)
		s.report(Note{Kind: NoteHalted, Decision: d, Old: old, New: old, Err: err})
		s.finish(err)
	default:
		err := d.Err
		if err == nil {
			err = errors.New(d.Reason)
		}
		err = fmt.Errorf("skipped tick: %w", err)
		s.report(Note{Kind: NoteSkipped, Decision: d, Old: old, New: old, Err: err})
		s.finish(err)
	}
}

func (s *stepper) onBuilt(e BlockBuilt) {
	d, old := s.o.d, s.o.old
	if e.Invalid != (common.Hash{}) {
		s.emit(Reject{Hash: e.Invalid})
	}
	if e.EngineInvalid {
		s.report(Note{Kind: NoteInvalid, Decision: d, Old: old, New: old, Err: e.Err, Block: eth.L2BlockRef{Hash: e.Invalid}})
	}
	switch {
	case e.Err != nil:
		s.v.Known = Known{} // the build may have moved the engine's head
		s.finish(e.Err)
	case e.Syncing:
		s.v.Syncing = true
		s.report(Note{Kind: NoteSyncing, Decision: d, Old: old, New: old, Block: d.BuildParent})
		s.o.building = false // nothing built: the tick's own decision stands
		s.finish(nil)
	default:
		s.v.Local = Local{Unsafe: e.Built, Safe: d.Next.Safe, Finalized: d.Next.Finalized}
		s.v.HeadOnSafe = false // not checked here: the tip path reads the engine if it needs to know
		s.v.Syncing = false
		s.reportReorg(d, old)
		s.report(Note{Kind: NoteBuilt, Decision: d, Old: old, New: s.v.Local, Heads: s.v.SourceHeads})
		s.finish(nil)
		s.out[len(s.out)-1] = withTickNow(s.out[len(s.out)-1])
	}
}

func withTickNow(e Effect) Effect {
	d := e.(Done)
	d.TickNow = true
	return d
}
