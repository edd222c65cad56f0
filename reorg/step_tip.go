package reorg

import (
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
)

// startTip starts the tip path for one block: the engine is read only once
// at start; after that the view knows the head the adapter set.
func (s *stepper) startTip(env *eth.ExecutionPayloadEnvelope) {
	s.o = &op{tip: true}
	s.v.op = s.o
	if env == nil || env.ExecutionPayload == nil {
		s.o.td = TipDecision{Reason: "empty tip payload"}
		s.finish(fmt.Errorf("%w: empty payload", ErrTipFeed))
		return
	}
	s.o.chain = []*eth.ExecutionPayloadEnvelope{env}
	if !s.v.Started {
		s.readEngine()
		return
	}
	s.tipLookups()
}

// tipLookups asks for what DecideTip needs from the engine: nothing when the
// chain's lowest block builds on the local head the adapter knows holds safe.
func (s *stepper) tipLookups() {
	l := s.v.Local
	s.v.TipBase = l.Unsafe.Hash
	low, tip := PayloadRef(s.o.chain[0].ExecutionPayload), PayloadRef(s.o.chain[len(s.o.chain)-1].ExecutionPayload)
	// a head not known to hold local safe may be one the engine moved to by
	// itself, under the view's head: ask the engine, not Known
	s.o.engineMoves = !s.v.HeadOnSafe
	none := l.Unsafe.Number + 1 // a height not asked for: above the head
	heights := []uint64{none, none, none, none}
	if !s.v.HeadOnSafe && l.Unsafe.Number >= l.Safe.Number {
		heights[0] = l.Safe.Number // does the head's chain hold local safe?
		// and is the head still on the engine's chain? An engine that synced
		// by itself holds local safe on another chain than the view's head
		heights[3] = l.Unsafe.Number
	}
	if p := low.Number - 1; low.Number > 0 && p > l.Safe.Number && p <= l.Unsafe.Number && low.ParentHash != l.Unsafe.Hash {
		heights[1] = p
	}
	if tip.Number > l.Safe.Number && tip.Number <= l.Unsafe.Number {
		heights[2] = tip.Number
	}
	if got, ok := s.lookup(heights); ok {
		s.decideTip(got)
	}
}

func (s *stepper) decideTip(got []Lookup) {
	l := s.v.Local
	refs := make([]eth.L2BlockRef, len(s.o.chain))
	for i, env := range s.o.chain {
		refs[i] = PayloadRef(env.ExecutionPayload)
	}
	in := TipInput{Local: l, Chain: refs, Window: s.v.Params.TipWindow, Mode: s.v.Params.Mode, Rejected: s.rejected,
		HeadOnSafe: s.v.HeadOnSafe, ELAtParent: got[1], ELAtTip: got[2]}
	if !s.v.HeadOnSafe && l.Unsafe.Number >= l.Safe.Number {
		at, head := got[0], got[3]
		in.HeadOnSafe = at.Err == nil && at.Found && at.Ref.Hash == l.Safe.Hash &&
			head.Err == nil && head.Found && head.Ref.Hash == l.Unsafe.Hash
	}
	d := DecideTip(in)
	s.o.td = d
	s.report(Note{Kind: NoteDecided, Tip: d, IsTip: true})
	switch d.Action {
	case TipIgnore:
		s.report(Note{Kind: NoteTipIgnored, Tip: d, IsTip: true, Old: l, New: l, Block: refs[len(refs)-1]})
		s.finish(d.Err)
	case TipNeedParent:
		s.wait(waitTipParent, FetchTipParent{Hash: d.Parent, Child: s.o.chain[0].ExecutionPayload})
	case TipInsert:
		s.o.known = s.v.Known // still canonical if the chain extends the head
		s.v.Known = s.v.Known.beforeWrite()
		s.wait(waitTipInsert, InsertTips{Decision: d, Chain: s.o.chain})
	case TipSync:
		s.sendForkchoice(s.o.td.Forkchoice, ForTip)
	default:
		s.finish(fmt.Errorf("tip decision %s cannot be carried out: %w", d.Action, ErrUnexpected))
	}
}

func (s *stepper) onTipParent(e TipParentFetched) {
	if e.Err != nil {
		s.finish(e.Err)
		return
	}
	s.o.chain = append([]*eth.ExecutionPayloadEnvelope{e.Payload}, s.o.chain...)
	s.tipLookups()
}

func (s *stepper) onTipsInserted(e TipsInserted) {
	d := s.o.td
	s.o.inserted = e.Inserted
	if e.Invalid != (common.Hash{}) {
		s.emit(Reject{Hash: e.Invalid}, Reject{Hash: d.Forkchoice.HeadBlockHash, Descendant: true})
		bad := eth.L2BlockRef{Hash: e.Invalid}
		for _, env := range s.o.chain {
			if env.ExecutionPayload.BlockHash == e.Invalid {
				bad = PayloadRef(env.ExecutionPayload)
			}
		}
		err := fmt.Errorf("tip block %d (%s): %w: %s", bad.Number, bad.Hash, ErrTipInvalid, e.ValidationError)
		status := e.Status
		if status == "" {
			status = eth.ExecutionInvalid
		}
		s.report(Note{Kind: NoteInvalid, Tip: d, IsTip: true, Old: s.v.Local, New: s.v.Local, Err: err, Block: bad,
			Status: status, ValidationError: e.ValidationError})
		s.finish(err)
		return
	}
	if e.Err != nil {
		s.finish(e.Err)
		return
	}
	s.sendForkchoice(s.o.td.Forkchoice, ForTip)
}

func (s *stepper) onTipForkchoice(e ForkchoiceAnswered) {
	d, old := s.o.td, s.o.old
	fc := d.Forkchoice
	switch {
	case e.Refused:
		s.emit(Reject{Hash: fc.HeadBlockHash, Descendant: true})
		s.restore(old, fmt.Errorf("tip %d (%s): the engine refused it with safe %s and finalized %s: %w: %v",
			d.Next.Unsafe.Number, fc.HeadBlockHash, fc.SafeBlockHash, fc.FinalizedBlockHash, ErrTipInvalid, e.Err))
	case e.Err != nil:
		s.v.Known = Known{} // the engine may have taken the update or not
		s.finish(fmt.Errorf("tip: forkchoice update to %d (%s): %w", d.Next.Unsafe.Number, fc.HeadBlockHash, e.Err))
	case e.Status == eth.ExecutionValid:
		s.v.Local = d.Next
		s.v.HeadOnSafe = true
		// the inserted chain and the labels are the new head's ancestors; so is
		// what was known under the head the chain extended
		// (what was read under it stays a read: forgotten at the next write)
		var below, read []eth.L2BlockRef
		if d.Action == TipInsert {
			for _, env := range s.o.chain {
				below = append(below, PayloadRef(env.ExecutionPayload))
			}
			if s.o.chain[0].ExecutionPayload.ParentHash == s.v.TipBase && s.o.known.Head == s.v.TipBase {
				below = append(below, s.o.known.Made...)
				read = s.o.known.Read
			}
		}
		s.v.Known = Known{}.madeUnder(d.Next.Unsafe.Hash, below, d.Next.Unsafe, d.Next.Safe, d.Next.Finalized)
		s.v.Known.Read = read
		s.report(Note{Kind: NoteUnsafeAdvanced, Tip: d, IsTip: true, Old: old, New: s.v.Local, Depth: d.Depth})
		s.v.HeadFresh = s.v.Params.TickOnTip
		s.finishTip(nil)
	case e.Status == eth.ExecutionSyncing || e.Status == eth.ExecutionAccepted:
		// the next tick reads where the engine's head went
		s.v.HeadOnSafe = false
		s.v.Known = Known{}
		s.report(Note{Kind: NoteSyncing, Tip: d, IsTip: true, Old: old, New: old, Block: d.Next.Unsafe})
		s.finishTip(nil)
	case e.Status == eth.ExecutionInvalid || e.Status == eth.ExecutionInvalidBlockHash:
		s.emit(Reject{Hash: fc.HeadBlockHash})
		err := fmt.Errorf("tip %d (%s): %w: %s", d.Next.Unsafe.Number, fc.HeadBlockHash, ErrTipInvalid, e.ValidationError)
		s.report(Note{Kind: NoteInvalid, Tip: d, IsTip: true, Old: old, New: old, Err: err, Block: d.Next.Unsafe,
			Status: e.Status, ValidationError: e.ValidationError})
		s.finish(err)
	default:
		s.finish(fmt.Errorf("tip: forkchoice update to %d (%s) answered %s", d.Next.Unsafe.Number, fc.HeadBlockHash, e.Status))
	}
}

// finishTip ends a tip that sent its update, asking for a tick at once with
// TickOnTip: the source has a new head too.
func (s *stepper) finishTip(err error) {
	s.finish(err)
	if s.v.Params.TickOnTip {
		s.out[len(s.out)-1] = withTickNow(s.out[len(s.out)-1])
	}
}

// PayloadRef is the block reference of a payload, without the L1 origin (a
// payload names it only in its first transaction; the next tick reads the
// whole reference from the engine).
func PayloadRef(p *eth.ExecutionPayload) eth.L2BlockRef {
	return eth.L2BlockRef{Hash: p.BlockHash, Number: uint64(p.BlockNumber), ParentHash: p.ParentHash, Time: uint64(p.Timestamp)}
}
