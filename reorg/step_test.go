package reorg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/safesource"
)

// stepWorld answers Step's effects from two chains in memory: the engine's
// (up to its head) and the source's. A scenario is then a list of events
// and the effects they produced, with no I/O.
type stepWorld struct {
	el     chain // the engine's canonical chain; el[head] is its head
	head   uint64
	labels Local // the engine's safe and finalized heads
	src    chain
	heads  safesource.Heads
	refuse bool // answer the next tick forkchoice update with -38002
	// syncing: answer SYNCING to every forkchoice update (the engine syncs
	// by itself and has not got there yet)
	syncing bool
	// invalid: answer INVALID to a forkchoice update to this head
	invalid common.Hash
	notes   []Note // the notes reported
	// backfilled answers BackfillBlocks; zero: the blocks are inserted (the
	// engine's chain becomes the source's)
	backfilled *Backfilled
	rejected   map[common.Hash]bool
	dropped    []eth.L2BlockRef // the heads DropBlocksAbove named
	trace      []string
}

func (w *stepWorld) engineChain() chain { return w.el[:w.head+1] }

// drive feeds ev to Step and carries out the effects until Done, recording
// each effect's name; it returns the final view and the Done effect.
func (w *stepWorld) drive(t *testing.T, v View, ev Event) (View, Done) {
	t.Helper()
	if w.rejected == nil {
		w.rejected = map[common.Hash]bool{}
	}
	v.Params.Rejected = func(h common.Hash) bool { return w.rejected[h] }
	ctx := context.Background()
	for range 100 {
		var effects []Effect
		v, effects = Step(v, ev)
		ev = nil
		for _, e := range effects {
			w.trace = append(w.trace, name(e))
			switch e := e.(type) {
			case ReadEngineHead:
				ev = EngineHeadRead{Head: w.el[w.head]}
			case ReadEngineLabels:
				ev = EngineLabelsRead{Safe: w.labels.Safe, Finalized: w.labels.Finalized}
			case ReadSource:
				ev = SourceRead{Heads: w.heads}
			case ReadHeads:
				ev = HeadsRead{Engine: EngineHeadRead{Head: w.el[w.head]}, Source: SourceRead{Heads: w.heads}}
			case ReadEngineAt:
				got := make([]Lookup, len(e.Heights))
				for i, n := range e.Heights {
					got[i] = w.engineChain().at(n)
				}
				ev = EngineBlocksRead{Lookups: got}
			case FindAncestor:
				ev = AncestorFound{Result: *Search(ctx, e.Decision, e.Input, w.engineChain().lookup, w.src.lookup)}
			case SendForkchoice:
				ev = w.forkchoice(e)
			case InsertTips:
				ev = TipsInserted{Inserted: uint64(len(e.Chain))}
			case BackfillBlocks:
				if w.backfilled != nil {
					ev = *w.backfilled
					break
				}
				w.el = w.src
				ev = Backfilled{}
			case Reject:
				w.rejected[e.Hash] = true
			case Forgive:
				delete(w.rejected, e.Ref.Hash)
			case DropBlocksAbove:
				w.dropped = append(w.dropped, e.Head)
			case Report:
				w.notes = append(w.notes, e.Note)
			case Done:
				return v, e
			}
		}
		require.NotNil(t, ev, "Step asked for nothing and did not end; trace %v", w.trace)
	}
	t.Fatalf("no Done after 100 steps; trace %v", w.trace)
	return v, Done{}
}

// forkchoice moves the engine's head to a block of either chain.
func (w *stepWorld) forkchoice(e SendForkchoice) ForkchoiceAnswered {
	if w.refuse && e.Purpose != ForRestore {
		w.refuse = false
		return ForkchoiceAnswered{Refused: true, Err: errors.New("-38002")}
	}
	if e.State.HeadBlockHash == w.invalid {
		return ForkchoiceAnswered{Status: eth.ExecutionInvalid, ValidationError: "links to previously rejected block"}
	}
	if w.syncing {
		return ForkchoiceAnswered{Status: eth.ExecutionSyncing}
	}
	for _, c := range []chain{w.el, w.src} {
		for _, b := range c {
			if b.Hash == e.State.HeadBlockHash {
				w.el, w.head = c, b.Number
				return ForkchoiceAnswered{Status: eth.ExecutionValid}
			}
		}
	}
	return ForkchoiceAnswered{Status: eth.ExecutionSyncing}
}

// name is an effect's name in a trace: its type, and for a report its note.
func name(e Effect) string {
	switch e := e.(type) {
	case Report:
		return "Report:" + e.Note.Kind.String()
	case SendForkchoice:
		return fmt.Sprintf("SendForkchoice:%d", e.Purpose)
	case ReadEngineAt:
		return fmt.Sprintf("ReadEngineAt%v", e.Heights)
	}
	return fmt.Sprintf("%T", e)[len("reorg."):]
}

func tipPayload(b eth.L2BlockRef) *eth.ExecutionPayloadEnvelope {
	return &eth.ExecutionPayloadEnvelope{ExecutionPayload: &eth.ExecutionPayload{
		BlockHash: b.Hash, ParentHash: b.ParentHash, BlockNumber: eth.Uint64Quantity(b.Number), Timestamp: hexutil.Uint64(b.Time)}}
}

func TestStepScenarioFirstTickThenQuiet(t *testing.T) {
	c := newChain(1, 30)
	w := &stepWorld{el: c, head: 20, src: c, heads: heads(c, 10, 15)}
	v, done := w.drive(t, View{}, Tick{})
	require.NoError(t, done.Err)
	require.Equal(t, Consolidate, done.Decision.Action)
	require.Equal(t, []string{"ReadHeads", "ReadEngineLabels", "Report:engine-read", "ReadEngineAt[15 10]",
		"Report:decided", "SendForkchoice:0", "Report:safe-advanced", "Report:finalized-advanced", "Done"}, w.trace)
	require.Equal(t, local(c, 10, 15, 20), v.Local)
	require.True(t, v.HeadOnSafe)
	require.False(t, v.Busy())

	w.trace = nil
	v, done = w.drive(t, v, Tick{})
	require.NoError(t, done.Err)
	require.Equal(t, Hold, done.Decision.Action)
	require.Equal(t, []string{"ReadHeads", "Report:decided", "Report:held", "Done"}, w.trace,
		"a tick in which nothing changed reads the engine's head and the source, nothing else")
	require.Equal(t, local(c, 10, 15, 20), v.Local)
}

func TestStepScenarioTipExtendsTheHeadWithoutAnEngineRead(t *testing.T) {
	c := newChain(1, 30)
	w := &stepWorld{el: c, head: 20, src: c, heads: heads(c, 10, 15)}
	v, _ := w.drive(t, View{Params: Params{TipWindow: 64}}, Tick{})

	w.trace = nil
	v, done := w.drive(t, v, TipArrived{Payload: tipPayload(c[21])})
	require.NoError(t, done.Err)
	require.True(t, done.IsTip)
	require.Equal(t, TipInsert, done.Tip.Action)
	require.EqualValues(t, 1, done.Inserted)
	require.Equal(t, []string{"Report:decided", "InsertTips", "SendForkchoice:1", "Report:unsafe-advanced", "Done"}, w.trace)
	require.Equal(t, eth.ForkchoiceState{HeadBlockHash: c[21].Hash, SafeBlockHash: c[15].Hash, FinalizedBlockHash: c[10].Hash},
		done.Tip.Forkchoice, "nothing from a tip moves safe or finalized")
	require.Equal(t, c[21].Hash, v.Local.Unsafe.Hash)
	require.Equal(t, local(c, 10, 15, 20).Safe, v.Local.Safe)

	// the next tick knows the head it set and the labels: no engine block read
	w.trace = nil
	_, done = w.drive(t, v, Tick{})
	require.NoError(t, done.Err)
	require.Equal(t, []string{"ReadHeads", "Report:decided", "Report:held", "Done"}, w.trace)
}

func TestStepScenarioTipBelowSafeIsIgnored(t *testing.T) {
	c := newChain(1, 30)
	w := &stepWorld{el: c, head: 20, src: c, heads: heads(c, 10, 15)}
	v, _ := w.drive(t, View{Params: Params{TipWindow: 64}}, Tick{})
	w.trace = nil
	v2, done := w.drive(t, v, TipArrived{Payload: tipPayload(c[14])})
	require.NoError(t, done.Err)
	require.Equal(t, TipIgnore, done.Tip.Action)
	require.Equal(t, []string{"Report:decided", "Report:tip-ignored", "Done"}, w.trace)
	require.Equal(t, v.Local, v2.Local)
}

func TestStepScenarioRefusedStatePutsTheHeadBack(t *testing.T) {
	c := newChain(1, 30)
	w := &stepWorld{el: c, head: 20, src: c, heads: heads(c, 10, 15)}
	v, _ := w.drive(t, View{}, Tick{})

	w.heads, w.refuse, w.trace = heads(c, 12, 18), true, nil
	v, done := w.drive(t, v, Tick{})
	require.ErrorIs(t, done.Err, ErrHalted)
	require.Equal(t, []string{"ReadHeads", "ReadEngineAt[18 12]", "Report:decided", "SendForkchoice:0",
		"Reject", "SendForkchoice:2", "Report:restored", "Report:refused", "Done"}, w.trace)
	require.True(t, w.rejected[c[20].Hash], "the refused head is never sent again")
	require.Equal(t, local(c, 10, 15, 15), v.Local, "the head is put back at local safe; the labels stay")
	require.True(t, v.HeadOnSafe)
}

func TestStepScenarioForgivesWhatTheSourceVouchesForAfterTheEngineWentBack(t *testing.T) {
	c := newChain(1, 30)
	w := &stepWorld{el: c, head: 20, src: c, heads: heads(c, 10, 15)}
	v, _ := w.drive(t, View{}, Tick{})

	// the engine restarts holding only blocks up to 5, and has called the
	// source's next safe head INVALID
	w.head, w.labels = 5, Local{Safe: c[5], Finalized: c[5]}
	w.heads = heads(c, 12, 18)
	w.rejected = map[common.Hash]bool{c[18].Hash: true}
	w.trace = nil
	v, done := w.drive(t, v, Tick{})
	require.NoError(t, done.Err)
	require.Contains(t, w.trace, "Report:engine-went-back")
	require.Contains(t, w.trace, "Forgive")
	drop, fc := slices.Index(w.trace, "DropBlocksAbove"), slices.Index(w.trace, "SendForkchoice:0")
	require.True(t, drop >= 0 && fc > drop, "the engine is asked to drop what it holds above its head before it is sent a head: %v", w.trace)
	require.Equal(t, []eth.L2BlockRef{c[5]}, w.dropped, "above the head the engine came back with")
	require.Equal(t, CatchUp, done.Decision.Action)
	require.False(t, w.rejected[c[18].Hash])
	require.Equal(t, local(c, 10, 18, 18), v.Local, "finalized moves once the engine is seen to hold the source's")
	require.False(t, v.EngineLost, "the engine took an update again")
}

func TestStepScenarioDropsBlocksAboveTheHeadOnceWhenTheEngineWentBack(t *testing.T) {
	c := newChain(1, 30)
	w := &stepWorld{el: c, head: 20, src: c, heads: heads(c, 10, 15)}
	v, _ := w.drive(t, View{}, Tick{})

	// the engine restarts at block 5 and syncs to the source's safe head by
	// itself over several ticks: it stays below the kept finalized head
	w.head, w.labels, w.syncing = 5, Local{Safe: c[5], Finalized: c[5]}, true
	for range 3 {
		var done Done
		v, done = w.drive(t, v, Tick{})
		require.NoError(t, done.Err)
		require.True(t, v.EngineLost)
	}
	require.Equal(t, 3, strings.Count(strings.Join(w.trace, " "), "Report:engine-went-back"), "each tick sees it below")
	require.Equal(t, []eth.L2BlockRef{c[5]}, w.dropped,
		"dropped once, when it went back: later the blocks above its head are the ones it syncs")

	// its sync failed, and it now calls the source's safe head INVALID: the
	// report says the engine is the one that lost its state
	w.invalid, w.notes = c[15].Hash, nil
	v, done := w.drive(t, v, Tick{})
	require.Error(t, done.Err)
	i := slices.IndexFunc(w.notes, func(n Note) bool { return n.Kind == NoteInvalid })
	require.True(t, i >= 0, "trace %v", w.trace)
	require.True(t, w.notes[i].EngineLost)
	require.True(t, v.EngineLost)
}

func TestStepLeavesTheViewItWasGiven(t *testing.T) {
	c := newChain(1, 30)
	w := &stepWorld{el: c, head: 20, src: c, heads: heads(c, 10, 15)}
	v, _ := w.drive(t, View{}, Tick{})

	busy, first := Step(v, Tick{})
	require.True(t, busy.Busy())
	for range 2 { // the same view and event give the same answer: busy was not changed by the first call
		next, effects := Step(busy, HeadsRead{Engine: EngineHeadRead{Head: c[20]}, Source: SourceRead{Heads: w.heads}})
		require.Equal(t, []Effect{Report{Note: Note{Kind: NoteDecided, Decision: Decision{Action: Hold,
			Reason: "up to date at safe 15, finalized 10"}}}, Report{Note: Note{Kind: NoteHeld,
			Decision: Decision{Action: Hold, Reason: "up to date at safe 15, finalized 10"},
			Old:      local(c, 10, 15, 20), New: local(c, 10, 15, 20)}}, Done{Decision: Decision{Action: Hold,
			Reason: "up to date at safe 15, finalized 10"}}}, effects)
		require.False(t, next.Busy())
	}
	require.Equal(t, []Effect{ReadHeads{}}, first)
}

func TestStepRefusesEventsItDidNotAskFor(t *testing.T) {
	v, effects := Step(View{}, EngineHeadRead{})
	require.False(t, v.Busy())
	require.Len(t, effects, 1)
	require.ErrorIs(t, effects[0].(Done).Err, ErrUnexpected)

	busy, _ := Step(View{}, Tick{}) // waits for the engine's head
	v, effects = Step(busy, SourceRead{})
	require.False(t, v.Busy(), "the operation ends")
	require.ErrorIs(t, effects[len(effects)-1].(Done).Err, ErrUnexpected)

	v, effects = Step(busy, Tick{})
	require.False(t, v.Busy())
	require.ErrorIs(t, effects[len(effects)-1].(Done).Err, ErrUnexpected, "a new operation cannot start while one is in flight")
}

func TestStepScenarioBackfillOnABlockCalledInvalidBeforeRejectsTheTarget(t *testing.T) {
	c := newChain(1, 40)
	w := &stepWorld{el: c, head: 20, src: c, heads: heads(c, 10, 15)}
	v, _ := w.drive(t, View{Params: Params{Mode: Backfill}}, Tick{})

	// the source's safe head 30 builds on block 25, which the engine called
	// INVALID before (the backfill stops there without sending it again)
	w.heads, w.trace = heads(c, 10, 30), nil
	w.backfilled = &Backfilled{TargetBuildsOnIt: true, Err: fmt.Errorf("backfill: block 25: %w earlier", ErrBackfillInvalid)}
	_, done := w.drive(t, v, Tick{})
	require.ErrorIs(t, done.Err, ErrBackfillInvalid)
	require.Equal(t, CatchUp, done.Decision.Action)
	require.True(t, w.rejected[c[30].Hash], "the target builds on an INVALID block: never sent again")
	require.Contains(t, w.trace, "Report:backfill-failed")
}

func TestStepSkipsTheHeadReadOnlyRightAfterATipThatAskedForIt(t *testing.T) {
	c := newChain(1, 30)
	w := &stepWorld{el: c, head: 20, src: c, heads: heads(c, 10, 15)}
	v, _ := w.drive(t, View{Params: Params{TipWindow: 64, TickOnTip: true}}, Tick{})
	v, done := w.drive(t, v, TipArrived{Payload: tipPayload(c[21])})
	require.True(t, done.TickNow)

	w.trace = nil
	_, _ = w.drive(t, v, Tick{}) // a tick the caller did not start for the tip
	require.Equal(t, "ReadHeads", w.trace[0])

	w.trace = nil
	_, _ = w.drive(t, v, Tick{AfterTip: true})
	require.Equal(t, "ReadSource", w.trace[0], "the head the tip set is not read back")
}

// TestStepScenarioOneBlockCatchUpNeedsNoSearch: a follower without a tip feed
// catches up one block at a time; when the source's safe head is the child of
// the head the adapter set, the head is the common ancestor and no search is
// made. Two blocks ahead, the search proves the source's chain as before; and
// a safe head one block up on another parent is searched for too.
func TestStepScenarioOneBlockCatchUpNeedsNoSearch(t *testing.T) {
	c := newChain(1, 30)
	w := &stepWorld{el: c, head: 15, src: c, heads: heads(c, 10, 15)}
	v, done := w.drive(t, View{}, Tick{})
	require.NoError(t, done.Err)
	require.True(t, v.HeadOnSafe)

	w.heads, w.trace = heads(c, 10, 16), nil
	v, done = w.drive(t, v, Tick{})
	require.NoError(t, done.Err)
	require.Equal(t, CatchUp, done.Decision.Action)
	require.Equal(t, c[15], done.Decision.Ancestor)
	require.NotContains(t, w.trace, "FindAncestor", "one block up on the head: no search")
	require.Equal(t, local(c, 10, 16, 16), v.Local)

	// the same when the engine must be read first (a new finalized height)
	w.heads, w.trace = heads(c, 11, 17), nil
	v, done = w.drive(t, v, Tick{})
	require.NoError(t, done.Err)
	require.Contains(t, w.trace, "ReadEngineAt[11]")
	require.NotContains(t, w.trace, "FindAncestor", "one block up on the head: no search")
	require.Equal(t, local(c, 11, 17, 17), v.Local)

	w.heads, w.trace = heads(c, 12, 19), nil
	v, done = w.drive(t, v, Tick{})
	require.NoError(t, done.Err)
	require.Equal(t, CatchUp, done.Decision.Action)
	require.Contains(t, w.trace, "FindAncestor", "two blocks up: the search proves the source's chain")
	require.Equal(t, local(c, 12, 19, 19), v.Local)

	// the source's next safe head is one block up, on another parent: the
	// search finds where the chains part
	f := c.fork(18, 2, 5)
	w.src, w.heads, w.trace = f, heads(f, 12, 20), nil
	_, done = w.drive(t, v, Tick{})
	require.NoError(t, done.Err)
	require.Contains(t, w.trace, "FindAncestor")
	require.Equal(t, f[18], done.Decision.Ancestor)
}
