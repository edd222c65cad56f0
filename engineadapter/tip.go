package engineadapter

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/reorg"
)

// TipFeed hands the adapter unsafe blocks from outside the safe source: a
// remote L2 EL (safesource/tipfeed), gossip, or an embedder's own pipeline.
// Nothing a feed says is trusted for safety: its blocks only extend the local
// chain above the local safe head, and never move safe or finalized.
type TipFeed interface {
	// Name names the feed in logs, metrics and status.
	Name() string
	// Run delivers the feed's new tip payloads to out until ctx ends, then
	// returns nil. It blocks on out only until ctx ends. Run is called once.
	Run(ctx context.Context, out chan<- *eth.ExecutionPayloadEnvelope) error
	// PayloadByHash returns the block with the given hash, so that the adapter
	// can connect a tip to its chain through parent hashes.
	PayloadByHash(ctx context.Context, hash common.Hash) (*eth.ExecutionPayloadEnvelope, error)
}

// ErrTipFeed is wrapped when a tip feed hands out a block that does not fit
// what was asked (another hash or height than the parent asked for).
var ErrTipFeed = errors.New("tip feed gave a wrong block")

// TipStatus is what the tip path did last.
type TipStatus struct {
	// Feed is the feed's name; empty without one.
	Feed string
	// Head is the last tip block the engine accepted as its head.
	Head eth.L2BlockRef
	// Inserted counts tip blocks inserted with newPayload; Ignored counts tip
	// blocks dropped (below safe, not descending from it, on the local chain
	// already, far ahead in backfill mode, or failing).
	Inserted, Ignored uint64
	// LastAction and LastReason describe the last tip decision.
	LastAction, LastReason string
	// Failing is set when the engine called a tip block INVALID, or the feed
	// handed out a wrong block, until a tip block is accepted again.
	Failing bool
	// LastError is the last tip's error; nil after a tip that went through.
	LastError error
}

// Tip takes one unsafe block from a tip feed (or from the embedder's own
// pipeline): it connects it to the local chain through its parents (fetched
// from Config.Tip, at most Config.TipWindow blocks), inserts it and the
// missing parents with newPayload and sends forkchoiceUpdated with the tip as
// head and the adapter's current safe and finalized labels. A block at or
// below local safe, or not descending from it, is ignored. Concurrent calls
// and Step are serialised.
func (a *Adapter) Tip(ctx context.Context, env *eth.ExecutionPayloadEnvelope) (reorg.TipDecision, error) {
	a.tickMu.Lock()
	defer a.tickMu.Unlock()
	d, inserted, err := a.tip(ctx, env)
	a.statusMu.Lock()
	st := &a.status.Tip
	st.Inserted += inserted
	if d.Action == reorg.TipIgnore || err != nil {
		st.Ignored++
	}
	st.LastAction, st.LastReason, st.LastError = d.Action.String(), d.Reason, err
	switch {
	case errors.Is(err, ErrTipFeed) || errors.Is(err, errTipInvalid):
		st.Failing = true
	case err == nil && d.SendsForkchoice():
		st.Failing, st.Head = false, a.local.Unsafe
	}
	a.status.Unsafe = a.local.Unsafe
	a.statusMu.Unlock()
	a.metrics.RecordHeads(a.local.Unsafe.Number, a.local.Safe.Number, a.local.Finalized.Number)
	return d, err
}

// errTipInvalid is wrapped when the engine called a tip block INVALID.
var errTipInvalid = errors.New("engine declared a tip block INVALID")

func (a *Adapter) tip(ctx context.Context, env *eth.ExecutionPayloadEnvelope) (reorg.TipDecision, uint64, error) {
	if env == nil || env.ExecutionPayload == nil {
		return reorg.TipDecision{Reason: "empty tip payload"}, 0, fmt.Errorf("%w: empty payload", ErrTipFeed)
	}
	if !a.started {
		if err := a.readEngine(ctx); err != nil {
			return reorg.TipDecision{Reason: "engine not read yet"}, 0, err
		}
	}
	// fetching parents is bounded as a whole by one source timeout, so a slow
	// feed delays the next tick by at most that
	fctx, cancel := context.WithTimeout(ctx, a.cfg.SourceTimeout)
	defer cancel()
	chain := []*eth.ExecutionPayloadEnvelope{env}
	for {
		d := reorg.DecideTip(a.tipInput(ctx, chain))
		a.metrics.RecordDecision(d.Action.String())
		switch d.Action {
		case reorg.TipIgnore:
			a.log.Debug("Tip ignored", "number", uint64(env.ExecutionPayload.BlockNumber),
				"hash", env.ExecutionPayload.BlockHash, "reason", d.Reason)
			return d, 0, d.Err
		case reorg.TipNeedParent:
			p, err := a.tipParent(fctx, d.Parent, chain[0].ExecutionPayload)
			if err != nil {
				return d, 0, err
			}
			chain = append([]*eth.ExecutionPayloadEnvelope{p}, chain...)
		case reorg.TipInsert:
			oldHead, cached := a.atHead, a.atCache
			n, err := a.insertTips(ctx, d, chain)
			if err != nil {
				return d, n, err
			}
			if err := a.tipForkchoice(ctx, d); err != nil {
				return d, n, err
			}
			if d.Depth == 0 && oldHead == a.lastTipBase && a.local.Unsafe.Hash == d.Forkchoice.HeadBlockHash {
				a.rememberExtension(cached, chain)
			}
			return d, n, nil
		case reorg.TipSync:
			return d, 0, a.tipForkchoice(ctx, d)
		default:
			return d, 0, fmt.Errorf("engineadapter: tip decision %s cannot be carried out", d.Action)
		}
	}
}

// tipInput gathers what DecideTip needs: the engine is read only where the
// chain's lowest block does not build on the local head, so a tip that extends
// the head costs no engine read.
func (a *Adapter) tipInput(ctx context.Context, chain []*eth.ExecutionPayloadEnvelope) reorg.TipInput {
	a.lastTipBase = a.local.Unsafe.Hash
	refs := make([]eth.L2BlockRef, len(chain))
	for i, env := range chain {
		refs[i] = payloadRef(env.ExecutionPayload)
	}
	in := reorg.TipInput{Local: a.local, Chain: refs, Window: uint64(a.cfg.TipWindow), Mode: a.cfg.SyncMode,
		Rejected: a.rejectedHash}
	l, low, tip := a.local, refs[0], refs[len(refs)-1]
	in.HeadOnSafe = a.headOnSafe
	if !a.headOnSafe && l.Unsafe.Number >= l.Safe.Number {
		// one engine read (remembered while the head stays) tells whether the
		// head's chain holds local safe
		at := a.engineAt(ctx, l.Safe.Number)
		in.HeadOnSafe = at.Err == nil && at.Found && at.Ref.Hash == l.Safe.Hash
	}
	if p := low.Number - 1; low.Number > 0 && p > l.Safe.Number && p <= l.Unsafe.Number && low.ParentHash != l.Unsafe.Hash {
		in.ELAtParent = a.engineAt(ctx, p)
	}
	if tip.Number > l.Safe.Number && tip.Number <= l.Unsafe.Number {
		in.ELAtTip = a.engineAt(ctx, tip.Number)
	}
	return in
}

// rememberExtension keeps the engine's blocks remembered for the old head
// once a tip chain extended it: they are still canonical, and the inserted
// blocks join them, so a tick that follows reads none of them again.
func (a *Adapter) rememberExtension(cached map[uint64]eth.L2BlockRef, chain []*eth.ExecutionPayloadEnvelope) {
	if cached == nil || len(cached)+len(chain) > maxRememberedLookups {
		cached = map[uint64]eth.L2BlockRef{}
	}
	for _, env := range chain {
		if len(cached) >= maxRememberedLookups {
			break
		}
		ref := payloadRef(env.ExecutionPayload)
		cached[ref.Number] = ref
	}
	a.atHead, a.atCache = a.local.Unsafe.Hash, cached
}

// payloadRef is the block reference of a payload, without the L1 origin (a
// payload names it only in its first transaction; the next tick reads the
// whole reference from the engine).
func payloadRef(p *eth.ExecutionPayload) eth.L2BlockRef {
	return eth.L2BlockRef{Hash: p.BlockHash, Number: uint64(p.BlockNumber), ParentHash: p.ParentHash, Time: uint64(p.Timestamp)}
}

// tipParent fetches the parent of child from the feed and checks that it is
// the block asked for.
func (a *Adapter) tipParent(ctx context.Context, hash common.Hash, child *eth.ExecutionPayload) (*eth.ExecutionPayloadEnvelope, error) {
	if a.cfg.Tip == nil {
		return nil, fmt.Errorf("tip %d (%s): parent %s is not on the local chain, and there is no tip feed to fetch it from",
			uint64(child.BlockNumber), child.BlockHash, hash)
	}
	p, err := a.cfg.Tip.PayloadByHash(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("tip feed %s: fetching block %d (%s): %w", a.cfg.Tip.Name(), uint64(child.BlockNumber)-1, hash, err)
	}
	if p == nil || p.ExecutionPayload == nil {
		return nil, fmt.Errorf("tip feed %s: block %s: empty answer: %w", a.cfg.Tip.Name(), hash, ErrTipFeed)
	}
	got := p.ExecutionPayload
	if got.BlockHash != hash || uint64(got.BlockNumber)+1 != uint64(child.BlockNumber) {
		return nil, fmt.Errorf("tip feed %s: asked for block %d (%s), got %d (%s): %w", a.cfg.Tip.Name(),
			uint64(child.BlockNumber)-1, hash, uint64(got.BlockNumber), got.BlockHash, ErrTipFeed)
	}
	return p, nil
}

// insertTips inserts the chain in order with newPayload; it returns how many
// the engine took. A block the engine calls INVALID is remembered with the
// tip, so neither is sent again.
func (a *Adapter) insertTips(ctx context.Context, d reorg.TipDecision, chain []*eth.ExecutionPayloadEnvelope) (uint64, error) {
	a.forgetEngineBlocks()
	var n uint64
	for _, env := range chain {
		p := env.ExecutionPayload
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.EngineTimeout)
		res, err := a.engine.NewPayload(ectx, p, env.ParentBeaconBlockRoot)
		cancel()
		if err == nil && res == nil {
			err = errors.New("empty answer")
		}
		if err != nil {
			return n, fmt.Errorf("tip: newPayload %d (%s): %w", uint64(p.BlockNumber), p.BlockHash, err)
		}
		switch res.Status {
		case eth.ExecutionValid, eth.ExecutionSyncing, eth.ExecutionAccepted:
			// the forkchoice update below settles a block the engine only took
			n++
		case eth.ExecutionInvalid, eth.ExecutionInvalidBlockHash:
			a.invalid.add(p.BlockHash)
			a.descendants.add(d.Forkchoice.HeadBlockHash)
			err := fmt.Errorf("tip block %d (%s): %w: %s", uint64(p.BlockNumber), p.BlockHash, errTipInvalid, validationError(*res))
			a.log.Error("Engine rejected a tip block; it and its descendants are dropped", "number", uint64(p.BlockNumber),
				"hash", p.BlockHash, "status", res.Status, "validation_error", validationError(*res), "feed", a.tipFeedName())
			a.emit(Event{Kind: EngineInvalid, Tip: d, Old: a.local, New: a.local, Err: err})
			return n, err
		default:
			return n, fmt.Errorf("tip: newPayload %d (%s) answered %s", uint64(p.BlockNumber), p.BlockHash, res.Status)
		}
	}
	return n, nil
}

// tipForkchoice sends the tip decision's forkchoice update and applies the
// answer. A refused state puts the engine's head back where it was.
func (a *Adapter) tipForkchoice(ctx context.Context, d reorg.TipDecision) error {
	old := a.local
	fc := d.Forkchoice
	a.forgetEngineBlocks()
	res, refused, err := a.sendForkchoice(ctx, fc)
	if refused {
		a.metrics.RecordForkchoice("invalid-forkchoice-state")
		a.descendants.add(fc.HeadBlockHash)
		a.restoreHead(ctx, old)
		return fmt.Errorf("tip %d (%s): the engine refused it with safe %s and finalized %s: %w: %v",
			d.Next.Unsafe.Number, fc.HeadBlockHash, fc.SafeBlockHash, fc.FinalizedBlockHash, errTipInvalid, err)
	}
	if err != nil {
		a.metrics.RecordForkchoice("error")
		return fmt.Errorf("tip: forkchoice update to %d (%s): %w", d.Next.Unsafe.Number, fc.HeadBlockHash, err)
	}
	status := res.PayloadStatus.Status
	a.metrics.RecordForkchoice(string(status))
	switch status {
	case eth.ExecutionValid:
		a.local = d.Next
		a.headOnSafe = true
		if d.Depth > 0 {
			a.log.Warn("Unsafe reorg to the tip feed's chain", "old_head", old.Unsafe.Number, "old_hash", old.Unsafe.Hash,
				"new_head", d.Next.Unsafe.Number, "new_hash", d.Next.Unsafe.Hash, "depth", d.Depth, "feed", a.tipFeedName())
		} else {
			a.log.Debug("Tip inserted", "number", d.Next.Unsafe.Number, "hash", d.Next.Unsafe.Hash)
		}
		a.emit(Event{Kind: UnsafeAdvanced, Tip: d, Old: old, New: a.local, Depth: d.Depth})
		return nil
	case eth.ExecutionSyncing, eth.ExecutionAccepted:
		// the next tick reads where the engine's head went
		a.headOnSafe = false
		a.log.Info("Engine syncing to the tip", "number", d.Next.Unsafe.Number, "hash", fc.HeadBlockHash, "reason", d.Reason)
		a.emit(Event{Kind: EngineSyncing, Tip: d, Old: old, New: old})
		return nil
	case eth.ExecutionInvalid, eth.ExecutionInvalidBlockHash:
		a.invalid.add(fc.HeadBlockHash)
		err := fmt.Errorf("tip %d (%s): %w: %s", d.Next.Unsafe.Number, fc.HeadBlockHash, errTipInvalid, validationError(res.PayloadStatus))
		a.log.Error("Engine rejected a tip block; it and its descendants are dropped", "number", d.Next.Unsafe.Number,
			"hash", fc.HeadBlockHash, "status", status, "feed", a.tipFeedName())
		a.emit(Event{Kind: EngineInvalid, Tip: d, Old: old, New: old, Err: err})
		return err
	}
	return fmt.Errorf("tip: forkchoice update to %d (%s) answered %s", d.Next.Unsafe.Number, fc.HeadBlockHash, status)
}

// restoreHead points the engine back at l after it refused a forkchoice
// state: op-geth makes the refused head canonical before it checks safe and
// finalized, and would stay there. On success the local head is l's.
func (a *Adapter) restoreHead(ctx context.Context, l reorg.Local) {
	if l.Unsafe.Hash == (common.Hash{}) {
		a.log.Error("No local head to put back after a refused forkchoice state; the engine's head may be on the refused chain")
		a.headOnSafe = false
		return
	}
	fc := eth.ForkchoiceState{HeadBlockHash: l.Unsafe.Hash, SafeBlockHash: l.Safe.Hash, FinalizedBlockHash: l.Finalized.Hash}
	a.forgetEngineBlocks()
	res, _, err := a.sendForkchoice(ctx, fc)
	if err == nil && res.PayloadStatus.Status != eth.ExecutionValid {
		err = fmt.Errorf("answered %s", res.PayloadStatus.Status)
	}
	if err != nil {
		a.log.Error("Could not put the engine's head back after a refused forkchoice state; its head may be on the refused chain",
			"head", l.Unsafe.Number, "hash", l.Unsafe.Hash, "err", err)
		a.headOnSafe = false
		return
	}
	a.local.Unsafe, a.headOnSafe = l.Unsafe, true
	a.log.Warn("Engine head put back after a refused forkchoice state", "head", l.Unsafe.Number, "hash", l.Unsafe.Hash,
		"safe", l.Safe.Number, "finalized", l.Finalized.Number)
}

func (a *Adapter) tipFeedName() string {
	if a.cfg.Tip == nil {
		return ""
	}
	return a.cfg.Tip.Name()
}
