package engineadapter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/retry"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"
	"golang.org/x/sync/errgroup"

	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource"
)

// ErrHalted is wrapped by Step's error when the source contradicts the local
// finalized chain, or the engine refused a forkchoice state.
var ErrHalted = reorg.ErrHalted

// Status is a snapshot of the adapter.
type Status struct {
	Unsafe, Safe, Finalized eth.L2BlockRef
	// Source is the source's name, and SourceHeads what it said last in a tick
	// that did not skip or halt on it (zero until then).
	Source      string
	SourceHeads safesource.Heads
	// LastAction and LastReason describe the last decision.
	LastAction string
	LastReason string
	// LastError is the last tick's error; nil after a clean tick.
	LastError error
	// Halted is set while the source contradicts the local finalized chain.
	Halted bool
	// Syncing is set while the engine answers SYNCING to the current target.
	Syncing bool
	// Ticks counts completed ticks.
	Ticks uint64
	// Tip is what the tip path did (zero without a tip feed or Tip calls).
	Tip TipStatus
}

// Adapter keeps an engine on the chain its source calls safe and finalized.
type Adapter struct {
	cfg     Config
	engine  Engine
	source  safesource.SafeHeadSource
	log     log.Logger
	metrics Metrics
	onEvent func(Event)

	// tickMu serialises operations (ticks and tips): one at a time, so that
	// answers cannot be applied out of order. It guards view and the two
	// rejected sets.
	tickMu sync.Mutex
	// view is the local state; only reorg.Step writes it, through run.
	view reorg.View
	// invalid holds blocks the engine called INVALID; descendants holds
	// targets that build on one. Two sets, so that a stream of descendants
	// cannot push an INVALID block out and get it sent again. reorg.Step
	// reads them through Params.Rejected and changes them with Reject and
	// Forgive effects.
	invalid, descendants *rejectedSet
	// tipCtx bounds the parent fetches of the tip in flight as a whole.
	tipCtx context.Context
	// fetchWait is the backfill's wait between tries of a payload the
	// provider does not have yet; nil: fetchBackoff (tests shorten it).
	fetchWait retry.Strategy

	statusMu sync.Mutex
	status   Status
}

// New returns an Adapter. metrics may be nil (no metrics); log may be nil
// (discarded).
func New(cfg Config, engine Engine, source safesource.SafeHeadSource, logger log.Logger, metrics Metrics) (*Adapter, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if engine == nil {
		return nil, errors.New("engineadapter: engine is nil")
	}
	if source == nil {
		return nil, errors.New("engineadapter: source is nil")
	}
	if logger == nil {
		logger = log.NewLogger(log.DiscardHandler())
	}
	if metrics == nil {
		metrics = NoopMetrics{}
	}
	cfg = cfg.withDefaults()
	a := &Adapter{
		cfg:         cfg,
		engine:      engine,
		source:      source,
		log:         logger.New("source", source.Name()),
		metrics:     metrics,
		invalid:     newRejectedSet(cfg.RejectedCacheSize),
		descendants: newRejectedSet(cfg.RejectedCacheSize),
		status:      Status{Source: source.Name()},
	}
	_, builds := source.(safesource.Builder)
	// a feed that announces its heads starts the tick itself (see loop)
	_, announces := cfg.Tip.(HeadAnnouncer)
	a.view.Params = reorg.Params{Mode: cfg.SyncMode, TipWindow: uint64(cfg.TipWindow), Builds: builds,
		TickOnTip: cfg.TickOnTip && !announces, Rejected: a.rejectedHash}
	return a, nil
}

// OnEvent sets a function called with every event, from the goroutine running
// the tick. It must not block. Set it before Run or Step.
func (a *Adapter) OnEvent(fn func(Event)) { a.onEvent = fn }

// Status returns a snapshot; safe to call at any time.
func (a *Adapter) Status() Status {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	return a.status
}

// Run ticks every PollInterval until ctx is cancelled, then returns nil. When
// ctx ends, the reads of the tick in flight stop at once, but a forkchoice
// update already decided is sent and answered (bounded by EngineTimeout), so
// it is never abandoned half-way. Tick errors are logged and reported in
// Status; they do not stop the loop. After a tick that built a block for a
// deriving source, the next tick starts at once.
//
// With Config.Tip set, Run also runs the feed in one goroutine, and takes its
// blocks between ticks (see Tip); a tick that falls due while a tip block is
// handled goes next, so a busy feed does not starve the safe path. A feed that
// stops with an error is logged and the safe path goes on without it. Run
// returns only after the feed's goroutine has.
func (a *Adapter) Run(ctx context.Context) error {
	if a.cfg.Tip == nil {
		a.loop(ctx, nil)
		return nil
	}
	a.statusMu.Lock()
	a.status.Tip.Feed = a.cfg.Tip.Name()
	a.statusMu.Unlock()
	tips := make(chan *eth.ExecutionPayloadEnvelope, 1)
	fctx, cancel := context.WithCancel(ctx)
	var g errgroup.Group
	g.Go(func() error {
		if err := a.cfg.Tip.Run(fctx, tips); err != nil && fctx.Err() == nil {
			a.log.Error("Tip feed stopped; following the safe head only", "feed", a.cfg.Tip.Name(), "err", err)
			a.statusMu.Lock()
			a.status.Tip.Failing, a.status.Tip.LastError = true, err
			a.statusMu.Unlock()
		}
		return nil
	})
	a.loop(ctx, tips)
	cancel()
	return g.Wait()
}

// loop is Run's event loop: ticks, and tip blocks in between.
func (a *Adapter) loop(ctx context.Context, tips <-chan *eth.ExecutionPayloadEnvelope) {
	ticker := time.NewTicker(a.cfg.PollInterval)
	defer ticker.Stop()
	var announced <-chan struct{} // nil: never ready
	if an, ok := a.cfg.Tip.(HeadAnnouncer); ok && a.cfg.TickOnTip {
		announced = an.Announcements()
	}
	afterTip := false // the tick comes right after the tip that asked for it
	for {
		done := a.tick(ctx, afterTip)
		afterTip = false
		if done.Err != nil && ctx.Err() == nil {
			a.log.Warn("Tick failed", "err", done.Err)
		}
		if done.TickNow && done.Err == nil && ctx.Err() == nil {
			continue // a block was built: the source may have the next one ready
		}
		for due := false; !due; {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				due = true
			case <-announced:
				due = true // the source has a new head too: read its labels while the feed fetches the payload
			case env := <-tips:
				done := a.tip(ctx, env)
				if done.Err != nil && ctx.Err() == nil {
					a.log.Warn("Tip block not inserted", "err", done.Err)
				}
				if done.TickNow {
					due, afterTip = true, true // the source has a new head too: read its labels now
					continue
				}
				select {
				case <-ticker.C:
					due = true // the safe path goes first
				default:
				}
			}
		}
	}
}

// Step runs one tick: read the source and the engine, decide, act. It returns
// the decision taken. Concurrent calls (and Tip) are serialised.
func (a *Adapter) Step(ctx context.Context) (reorg.Decision, error) {
	done := a.tick(ctx, false)
	return done.Decision, done.Err
}

// tick runs one tick through reorg.Step and publishes the outcome.
func (a *Adapter) tick(ctx context.Context, afterTip bool) reorg.Done {
	a.tickMu.Lock()
	defer a.tickMu.Unlock()
	done := a.run(ctx, reorg.Tick{AfterTip: afterTip})
	d, err := done.Decision, done.Err
	v := a.view
	a.statusMu.Lock()
	a.status.Unsafe, a.status.Safe, a.status.Finalized = v.Local.Unsafe, v.Local.Safe, v.Local.Finalized
	a.status.SourceHeads, a.status.Syncing = v.SourceHeads, v.Syncing
	a.status.LastError = err
	if d.Reason != "" {
		a.status.LastAction, a.status.LastReason = d.Action.String(), d.Reason
	}
	// a halt lasts until a tick decides something else than skipping
	switch {
	case d.Action == reorg.Halt || errors.Is(err, ErrHalted):
		a.status.Halted = true
	case d.Action != reorg.Skip && err == nil:
		a.status.Halted = false
	}
	halted := a.status.Halted
	a.status.Ticks++
	a.statusMu.Unlock()
	a.metrics.RecordHalted(halted)
	a.metrics.RecordHeads(v.Local.Unsafe.Number, v.Local.Safe.Number, v.Local.Finalized.Number)
	return done
}

// run feeds ev to reorg.Step, carries out the effects it returns in order,
// and feeds their answers back, until the operation is done. It is the only
// writer of the view.
func (a *Adapter) run(ctx context.Context, ev reorg.Event) reorg.Done {
	if _, ok := ev.(reorg.TipArrived); ok {
		// fetching parents is bounded as a whole by one source timeout, so a
		// slow feed delays the next tick by at most that
		var cancel context.CancelFunc
		a.tipCtx, cancel = context.WithTimeout(ctx, a.cfg.SourceTimeout)
		defer cancel()
	}
	for {
		view, effects := reorg.Step(a.view, ev)
		a.view = view
		ev = nil
		for _, e := range effects {
			if done, ok := e.(reorg.Done); ok {
				return done
			}
			if answer := a.carry(ctx, e); answer != nil {
				ev = answer
			}
		}
		if ev == nil {
			return reorg.Done{Err: fmt.Errorf("engineadapter: the step asked for nothing and did not end: %w", reorg.ErrUnexpected)}
		}
	}
}

// readLabel reads one of the engine's heads. An engine that has no safe or
// finalized head yet (a fresh op-geth answers "not found") gives the zero ref.
func (a *Adapter) readLabel(ctx context.Context, label eth.BlockLabel) (eth.L2BlockRef, error) {
	ectx, cancel := context.WithTimeout(ctx, a.cfg.EngineTimeout)
	defer cancel()
	if label == eth.Unsafe {
		ref, ok, err := a.sameHead(ectx)
		if err != nil {
			return eth.L2BlockRef{}, fmt.Errorf("engine %s head: %w", label, err)
		}
		if ok {
			return ref, nil
		}
	}
	ref, err := a.engine.L2BlockRefByLabel(ectx, label)
	if errors.Is(err, ethereum.NotFound) && label != eth.Unsafe {
		a.log.Info("Engine has no head for label yet", "label", label)
		return eth.L2BlockRef{}, nil
	}
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("engine %s head: %w", label, err)
	}
	return ref, nil
}

// sameHead reads the engine's head as a header, and gives the head the view
// holds when the header is that block: the hash names one block, so its
// number, parent, time and L1 origin are the view's. Only a whole ref is
// given back this way; one without its L1 origin (a tip block or a backfill
// checkpoint the adapter wrote, known from its payload) is left to the whole
// read, as is a head the view does not hold, or an engine without
// HeaderReader. A failed header read is the tick's engine error.
func (a *Adapter) sameHead(ctx context.Context) (eth.L2BlockRef, bool, error) {
	hr, ok := a.engine.(HeaderReader)
	known := a.view.Local.Unsafe
	if !ok || known.Hash == (common.Hash{}) || known.L1Origin == (eth.BlockID{}) {
		return eth.L2BlockRef{}, false, nil
	}
	info, err := hr.InfoByLabel(ctx, eth.Unsafe)
	if err != nil {
		return eth.L2BlockRef{}, false, err
	}
	if info == nil || info.Hash() != known.Hash {
		return eth.L2BlockRef{}, false, nil
	}
	return known, true, nil
}

// rejectedHash reports whether h was called INVALID, or builds on such a block.
func (a *Adapter) rejectedHash(h common.Hash) bool { return a.invalid.has(h) || a.descendants.has(h) }

func (a *Adapter) engineLookup(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	ectx, cancel := context.WithTimeout(ctx, a.cfg.EngineTimeout)
	defer cancel()
	ref, err := a.engine.L2BlockRefByNumber(ectx, n)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("engine block %d: %w", n, err)
	}
	return ref, nil
}

func (a *Adapter) sourceLookup(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	sctx, cancel := context.WithTimeout(ctx, a.cfg.SourceTimeout)
	defer cancel()
	return a.source.L2BlockRefByNumber(sctx, n)
}

// setStatusHead publishes a new local head while a tick is still running (a
// long backfill moves it every window), so that Status and the head metrics
// do not stand still until the tick ends.
func (a *Adapter) setStatusHead(head eth.L2BlockRef) {
	l := a.view.Local
	a.statusMu.Lock()
	a.status.Unsafe = head
	a.statusMu.Unlock()
	a.metrics.RecordHeads(head.Number, l.Safe.Number, l.Finalized.Number)
}
