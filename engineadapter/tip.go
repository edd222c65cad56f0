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

// HeadAnnouncer is a TipFeed that tells when its remote has a new head,
// before it fetches the payload. With Config.TickOnTip, Run then starts a tick
// at once, so the safe labels read from the same remote need not wait for the
// tip block's fetch and insertion.
type HeadAnnouncer interface {
	// Announcements receives a value each time the remote has a new head; a
	// pending value may stand for several. The feed never blocks on it.
	Announcements() <-chan struct{}
}

// ErrTipFeed is wrapped when a tip feed hands out a block that does not fit
// what was asked (another hash or height than the parent asked for).
var ErrTipFeed = reorg.ErrTipFeed

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
	done := a.tip(ctx, env)
	return done.Tip, done.Err
}

// tip runs the tip path for one block through reorg.Step and publishes the
// outcome.
func (a *Adapter) tip(ctx context.Context, env *eth.ExecutionPayloadEnvelope) reorg.Done {
	a.tickMu.Lock()
	defer a.tickMu.Unlock()
	done := a.run(ctx, reorg.TipArrived{Payload: env})
	d, err, l := done.Tip, done.Err, a.view.Local
	a.statusMu.Lock()
	st := &a.status.Tip
	st.Inserted += done.Inserted
	if d.Action == reorg.TipIgnore || err != nil {
		st.Ignored++
	}
	st.LastAction, st.LastReason, st.LastError = d.Action.String(), d.Reason, err
	switch {
	case errors.Is(err, ErrTipFeed) || errors.Is(err, reorg.ErrTipInvalid):
		st.Failing = true
	case err == nil && d.SendsForkchoice():
		st.Failing, st.Head = false, l.Unsafe
	}
	a.status.Unsafe = l.Unsafe
	a.statusMu.Unlock()
	a.metrics.RecordHeads(l.Unsafe.Number, l.Safe.Number, l.Finalized.Number)
	return done
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

// insertTips inserts the chain in order with newPayload, and says how many
// the engine took and which one it called INVALID, if any.
func (a *Adapter) insertTips(ctx context.Context, chain []*eth.ExecutionPayloadEnvelope) reorg.TipsInserted {
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
			return reorg.TipsInserted{Inserted: n, Err: fmt.Errorf("tip: newPayload %d (%s): %w", uint64(p.BlockNumber), p.BlockHash, err)}
		}
		switch res.Status {
		case eth.ExecutionValid, eth.ExecutionSyncing, eth.ExecutionAccepted:
			// the forkchoice update that follows settles a block the engine only took
			n++
		case eth.ExecutionInvalid, eth.ExecutionInvalidBlockHash:
			return reorg.TipsInserted{Inserted: n, Invalid: p.BlockHash, Status: res.Status, ValidationError: validationError(*res)}
		default:
			return reorg.TipsInserted{Inserted: n, Err: fmt.Errorf("tip: newPayload %d (%s) answered %s", uint64(p.BlockNumber), p.BlockHash, res.Status)}
		}
	}
	return reorg.TipsInserted{Inserted: n}
}

func (a *Adapter) tipFeedName() string {
	if a.cfg.Tip == nil {
		return ""
	}
	return a.cfg.Tip.Name()
}
