package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"

	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource"
)

// advise runs lightcl as an advisor to a node that keeps its own engine
// controller: the node feeds reorg.Step its events (a tick, an unsafe block
// of its own pipeline, the answers to what the step asked for) and carries
// out the effects itself. No engineadapter.Adapter runs; the node decides how
// to read its engine and its source, and lightcl decides what to do.
func advise(ticks int, logger log.Logger) error {
	if ticks < 1 {
		return fmt.Errorf("-ticks must be ≥ 1, got %d", ticks)
	}
	w, err := newWorld(ticks, logger)
	if err != nil {
		return err
	}
	defer w.close()
	ctx, tree, blocks, el, engine := context.Background(), w.tree, w.blocks, w.el, w.engine
	source := safesource.NewStatic("embedded-derivation", engine.L2BlockRefByNumber)
	n := &advisedNode{engine: engine, source: source, rejected: map[common.Hash]bool{}}
	n.view.Params = reorg.Params{Mode: reorg.ELSync, TipWindow: 64, Rejected: func(h common.Hash) bool { return n.rejected[h] }}

	for i := 1; i <= ticks; i++ {
		for _, b := range blocks[4*i+4 : 4*i+8] {
			env, err := payload(tree, b)
			if err != nil {
				return err
			}
			if err := n.drive(ctx, reorg.TipArrived{Payload: env}); err != nil {
				return fmt.Errorf("tip %d: %w", b.NumberU64(), err)
			}
		}
		safe, fin := tree.Ref(blocks[3*i]), tree.Ref(blocks[2*i])
		if err := source.Set(safesource.Heads{Safe: safe, LocalSafe: safe, Finalized: fin}); err != nil {
			return err
		}
		if err := n.drive(ctx, reorg.Tick{}); err != nil {
			return fmt.Errorf("tick %d: %w", i, err)
		}
	}
	head, safe, fin := el.Labels()
	l := n.view.Local
	fmt.Printf("advisor: engine head %d, safe %d, finalized %d; view unsafe %d, safe %d, finalized %d\n",
		head.Number, safe.Number, fin.Number, l.Unsafe.Number, l.Safe.Number, l.Finalized.Number)
	if head != l.Unsafe || safe != l.Safe || fin != l.Finalized {
		return errors.New("advisor: engine labels and the view disagree")
	}
	return nil
}

// advisedNode is the embedding node's own controller: it owns the view and
// the rejected set, and carries out reorg.Step's effects with its clients.
type advisedNode struct {
	engine   *sources.EngineClient
	source   *safesource.Static
	view     reorg.View
	rejected map[common.Hash]bool
}

// drive feeds ev to the step and carries out the effects, feeding each answer
// back, until the operation is done.
func (n *advisedNode) drive(ctx context.Context, ev reorg.Event) error {
	for ev != nil {
		var effects []reorg.Effect
		n.view, effects = reorg.Step(n.view, ev)
		ev = nil
		for _, e := range effects {
			switch e := e.(type) {
			case reorg.ReadEngineHead:
				head, err := n.engine.L2BlockRefByLabel(ctx, eth.Unsafe)
				ev = reorg.EngineHeadRead{Head: head, Err: err}
			case reorg.ReadEngineLabels:
				ev = n.labels(ctx)
			case reorg.ReadSource:
				heads, err := n.source.Heads(ctx)
				ev = reorg.SourceRead{Heads: heads, Err: err}
			case reorg.ReadHeads: // one after the other here; they may overlap
				head, err := n.engine.L2BlockRefByLabel(ctx, eth.Unsafe)
				heads, serr := n.source.Heads(ctx)
				ev = reorg.HeadsRead{Engine: reorg.EngineHeadRead{Head: head, Err: err}, Source: reorg.SourceRead{Heads: heads, Err: serr}}
			case reorg.ReadEngineAt:
				got := make([]reorg.Lookup, len(e.Heights))
				for i, h := range e.Heights {
					ref, err := n.engine.L2BlockRefByNumber(ctx, h)
					switch {
					case errors.Is(err, ethereum.NotFound):
					case err != nil:
						got[i].Err = err
					default:
						got[i] = reorg.Lookup{Ref: ref, Found: true}
					}
				}
				ev = reorg.EngineBlocksRead{Lookups: got}
			case reorg.FindAncestor:
				ev = reorg.AncestorFound{Result: *reorg.Search(ctx, e.Decision, e.Input, n.engine.L2BlockRefByNumber, n.source.L2BlockRefByNumber)}
			case reorg.SendForkchoice:
				fc := e.State
				res, err := n.engine.ForkchoiceUpdate(ctx, &fc, nil)
				if err != nil {
					ev = reorg.ForkchoiceAnswered{Err: err}
				} else {
					ev = reorg.ForkchoiceAnswered{Status: res.PayloadStatus.Status}
				}
			case reorg.InsertTips:
				ev = n.insert(ctx, e.Chain)
			case reorg.Reject:
				n.rejected[e.Hash] = true
			case reorg.Forgive:
				delete(n.rejected, e.Ref.Hash)
			case reorg.DropBlocksAbove:
				// this node's engine keeps nothing above its head after a
				// restart: nothing to drop
			case reorg.Report:
				if e.Note.Kind == reorg.NoteSafeAdvanced || e.Note.Kind == reorg.NoteUnsafeAdvanced {
					fmt.Printf("advisor: %-15s unsafe %3d  safe %3d  finalized %3d\n", e.Note.Kind,
						e.Note.New.Unsafe.Number, e.Note.New.Safe.Number, e.Note.New.Finalized.Number)
				}
			case reorg.Done:
				return e.Err
			default:
				// this node syncs its engine from p2p and builds nothing:
				// backfill, parent fetches and builds are not its to carry out
				return fmt.Errorf("advisor: this node does not carry out %T", e)
			}
		}
	}
	return errors.New("advisor: the step asked for nothing and did not end")
}

func (n *advisedNode) labels(ctx context.Context) reorg.EngineLabelsRead {
	var out reorg.EngineLabelsRead
	for _, l := range []struct {
		label eth.BlockLabel
		ref   *eth.L2BlockRef
	}{{eth.Safe, &out.Safe}, {eth.Finalized, &out.Finalized}} {
		ref, err := n.engine.L2BlockRefByLabel(ctx, l.label)
		switch {
		case errors.Is(err, ethereum.NotFound): // none yet
		case err != nil:
			return reorg.EngineLabelsRead{Err: err}
		default:
			*l.ref = ref
		}
	}
	return out
}

func (n *advisedNode) insert(ctx context.Context, chain []*eth.ExecutionPayloadEnvelope) reorg.TipsInserted {
	var done reorg.TipsInserted
	for _, env := range chain {
		res, err := n.engine.NewPayload(ctx, env.ExecutionPayload, env.ParentBeaconBlockRoot)
		switch {
		case err != nil:
			done.Err = err
			return done
		case res.Status == eth.ExecutionInvalid || res.Status == eth.ExecutionInvalidBlockHash:
			done.Invalid = env.ExecutionPayload.BlockHash
			return done
		}
		done.Inserted++
	}
	return done
}
