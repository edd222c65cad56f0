package engineadapter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"
	"golang.org/x/sync/errgroup"

	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource"
)

// ErrHalted is wrapped by Step's error when the source contradicts the local
// finalized chain.
var ErrHalted = errors.New("halted: source conflicts with local finalized chain")

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

	// tickMu serialises ticks: one source request in flight at a time, so
	// answers cannot be applied out of order. It guards the fields below.
	tickMu  sync.Mutex
	started bool
	local   reorg.Local
	// invalid holds blocks the engine called INVALID; descendants holds
	// targets that build on one. Two rings, so that a stream of descendants
	// cannot push an INVALID block out and get it sent again.
	invalid, descendants *rejectedSet
	// lastReorg is the head abandoned by the last reorg reported, so a reorg the
	// engine syncs through over several ticks is reported once.
	lastReorg common.Hash
	// engineLost is set from the tick that found the engine's head below the
	// safe label (it restarted and lost blocks, or its state) until the engine
	// takes a forkchoice update again: its INVALID answers from before are
	// then forgiven for blocks the source vouches for.
	engineLost bool
	// headOnSafe is set while the local head is known to descend from the
	// local safe head (the engine took a forkchoice update naming both); the
	// tip path extends the head only then, and checks it otherwise.
	headOnSafe bool
	// lastTipBase is the local head a tip decision was made on.
	lastTipBase common.Hash
	// headFresh: the adapter itself set the engine's head just now (a tip);
	// the tick run at once after it (TickOnTip) need not read it back.
	headFresh bool
	// atCache holds the engine's blocks looked up while its head was atHead.
	atHead  common.Hash
	atCache map[uint64]eth.L2BlockRef

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
	return &Adapter{
		cfg:         cfg,
		engine:      engine,
		source:      source,
		log:         logger.New("source", source.Name()),
		metrics:     metrics,
		invalid:     newRejectedSet(cfg.RejectedCacheSize),
		descendants: newRejectedSet(cfg.RejectedCacheSize),
		status:      Status{Source: source.Name()},
	}, nil
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
	for {
		d, err := a.Step(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("Tick failed", "err", err)
		}
		if d.Action == reorg.Build && err == nil && ctx.Err() == nil {
			continue // a block was built: the source may have the next one ready
		}
		for due := false; !due; {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				due = true
			case env := <-tips:
				d, err := a.Tip(ctx, env)
				if err != nil && ctx.Err() == nil {
					a.log.Warn("Tip block not inserted", "err", err)
				}
				if a.cfg.TickOnTip && err == nil && d.SendsForkchoice() {
					due = true // the source has a new head too: read its labels now
					a.tickMu.Lock()
					a.headFresh = a.local.Unsafe.Hash == d.Next.Unsafe.Hash
					a.tickMu.Unlock()
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
// the decision taken. Concurrent calls are serialised.
func (a *Adapter) Step(ctx context.Context) (reorg.Decision, error) {
	a.tickMu.Lock()
	defer a.tickMu.Unlock()
	d, err := a.tick(ctx)
	a.statusMu.Lock()
	a.status.Unsafe, a.status.Safe, a.status.Finalized = a.local.Unsafe, a.local.Safe, a.local.Finalized
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
	a.metrics.RecordHeads(a.local.Unsafe.Number, a.local.Safe.Number, a.local.Finalized.Number)
	return d, err
}

func (a *Adapter) tick(ctx context.Context) (reorg.Decision, error) {
	if err := a.readEngine(ctx); err != nil {
		return reorg.Decision{}, err
	}
	in := reorg.Input{Local: a.local, Mode: a.cfg.SyncMode, Rejected: a.rejectedHash}

	sctx, cancel := context.WithTimeout(ctx, a.cfg.SourceTimeout)
	in.Heads, in.SourceErr = a.source.Heads(sctx)
	cancel()
	if in.SourceErr == nil {
		a.forgiveVouched(in.Heads)
		in.ELAtSafe = a.engineAt(ctx, in.Heads.Safe.Number)
		if in.Heads.Finalized.Number == in.Heads.Safe.Number {
			in.ELAtFinalized = in.ELAtSafe
		} else {
			in.ELAtFinalized = a.engineAt(ctx, in.Heads.Finalized.Number)
		}
		if in.Heads.Safe.Number < a.local.Safe.Number {
			in.ELAtLocalSafe = a.engineAt(ctx, a.local.Safe.Number)
		}
	}

	d := reorg.Decide(in)
	if d.Action == reorg.NeedAncestor {
		in.Ancestor = reorg.Search(ctx, d, in, a.engineLookup, a.sourceLookup)
		d = reorg.Decide(in)
	}
	a.metrics.RecordDecision(d.Action.String())
	if d.Action == reorg.Skip || d.Action == reorg.Halt || d.Action == reorg.NeedAncestor {
		return d, a.act(ctx, in, d)
	}
	a.statusMu.Lock()
	a.status.SourceHeads = in.Heads
	a.statusMu.Unlock()
	if err := a.act(ctx, in, d); err != nil {
		return d, err
	}
	// a source that derives blocks itself may want the next one built
	bd, built, err := a.buildPending(ctx)
	if built || err != nil {
		return bd, err
	}
	return d, nil
}

// readEngine reads the engine's head each tick, and all three labels on the
// first tick or when the head fell below the tracked safe label (the engine
// restarted and lost blocks).
func (a *Adapter) readEngine(ctx context.Context) error {
	if a.headFresh && a.started {
		a.headFresh = false
		return nil // the adapter set the head a moment ago (a tip, then TickOnTip)
	}
	head, err := a.engineLabel(ctx, eth.Unsafe)
	if err != nil {
		return err
	}
	if head.Hash != a.local.Unsafe.Hash {
		a.headOnSafe = false // a head the adapter did not set: not known to hold local safe
	}
	if a.started && head.Number >= a.local.Safe.Number {
		a.local.Unsafe = head
		return nil
	}
	a.local.Unsafe = head // engineAt below reads up to the new head
	safe, err := a.optionalLabel(ctx, eth.Safe)
	if err != nil {
		return err
	}
	fin, err := a.optionalLabel(ctx, eth.Finalized)
	if err != nil {
		return err
	}
	next := reorg.Local{Unsafe: head, Safe: safe, Finalized: fin}
	if a.started {
		// finalized never regresses, even when the engine lost it: decisions then
		// only catch up to a source chain that holds it
		if old := a.local.Finalized; old.Number > fin.Number || fin.Hash == (common.Hash{}) {
			next.Finalized = old
			if at := a.engineAt(ctx, old.Number); !at.Found || at.Ref.Hash != old.Hash {
				a.log.Error("Engine lost blocks below the finalized head; keeping it and catching up to it",
					"finalized", old.Number, "finalized_hash", old.Hash, "engine_head", head.Number,
					"engine_finalized", fin.Number, "engine_finalized_hash", fin.Hash)
			}
		}
		a.engineLost = true
		a.log.Error("ALARM: the engine went back below the safe label: it likely restarted and lost blocks or its state "+
			"(op-geth with its default path-scheme database rewinds after an unclean stop); catching it up again. "+
			"Remedy: stop it cleanly, or run op-geth with --state.scheme hash",
			"head", head.Number, "head_hash", head.Hash, "safe", a.local.Safe.Number, "safe_hash", a.local.Safe.Hash,
			"engine_safe", safe.Number, "engine_safe_hash", safe.Hash)
	} else {
		a.log.Info("Read engine heads", "unsafe", head.Number, "unsafe_hash", head.Hash,
			"safe", safe.Number, "safe_hash", safe.Hash, "finalized", fin.Number, "finalized_hash", fin.Hash)
	}
	if next.Safe.Number < next.Finalized.Number || next.Safe.Hash == (common.Hash{}) {
		next.Safe = next.Finalized
	}
	a.local, a.started = next, true
	return nil
}

// optionalLabel reads the engine's safe or finalized head; an engine that has
// none yet (a fresh op-geth answers "not found") gives the zero ref.
func (a *Adapter) optionalLabel(ctx context.Context, label eth.BlockLabel) (eth.L2BlockRef, error) {
	ref, err := a.engineLabel(ctx, label)
	if errors.Is(err, ethereum.NotFound) {
		a.log.Info("Engine has no head for label yet", "label", label)
		return eth.L2BlockRef{}, nil
	}
	return ref, err
}

// forgiveVouched forgets, after the engine lost its state, what it called
// INVALID before for the source's heads: an engine that restarted without its
// state calls blocks INVALID that are not (op-geth: "links to previously
// rejected block"), and the source vouches for these.
func (a *Adapter) forgiveVouched(h safesource.Heads) {
	if !a.engineLost {
		return
	}
	for _, ref := range []eth.L2BlockRef{h.Safe, h.LocalSafe, h.Finalized} {
		if a.invalid.remove(ref.Hash) || a.descendants.remove(ref.Hash) {
			a.log.Warn("Forgetting the engine's INVALID answer for a block the source vouches for: the engine lost its state since",
				"number", ref.Number, "hash", ref.Hash)
		}
	}
}

// rejectedHash reports whether h was called INVALID, or builds on such a block.
func (a *Adapter) rejectedHash(h common.Hash) bool { return a.invalid.has(h) || a.descendants.has(h) }

func (a *Adapter) engineLabel(ctx context.Context, label eth.BlockLabel) (eth.L2BlockRef, error) {
	ectx, cancel := context.WithTimeout(ctx, a.cfg.EngineTimeout)
	defer cancel()
	ref, err := a.engine.L2BlockRefByLabel(ectx, label)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("engine %s head: %w", label, err)
	}
	return ref, nil
}

// engineAt reads the engine's canonical block at height n. Heights above the
// engine's head are not asked for. Blocks found are remembered while the
// engine's head stays the same block: its canonical chain is then the same,
// so a tick in which nothing changed reads the engine's head and nothing else.
func (a *Adapter) engineAt(ctx context.Context, n uint64) reorg.Lookup {
	head := a.local.Unsafe
	if n > head.Number {
		return reorg.Lookup{}
	}
	if a.atCache == nil || a.atHead != head.Hash {
		a.atHead, a.atCache = head.Hash, map[uint64]eth.L2BlockRef{}
	}
	if ref, ok := a.atCache[n]; ok {
		return reorg.Lookup{Ref: ref, Found: true}
	}
	ref, err := a.engineLookup(ctx, n)
	switch {
	case errors.Is(err, ethereum.NotFound):
		return reorg.Lookup{}
	case err != nil:
		return reorg.Lookup{Err: err}
	}
	if len(a.atCache) < maxRememberedLookups {
		a.atCache[n] = ref
	}
	return reorg.Lookup{Ref: ref, Found: true}
}

// rememberLabels remembers the local head, safe and finalized blocks as the
// engine's at their heights, right after the engine answered VALID to a
// forkchoice update naming them: it checked that they are its canonical chain.
func (a *Adapter) rememberLabels() {
	a.atHead, a.atCache = a.local.Unsafe.Hash, map[uint64]eth.L2BlockRef{}
	for _, ref := range []eth.L2BlockRef{a.local.Unsafe, a.local.Safe, a.local.Finalized} {
		if ref.Hash != (common.Hash{}) {
			a.atCache[ref.Number] = ref
		}
	}
}

// forgetEngineBlocks drops the remembered blocks. It is called before the
// adapter writes to the engine: a block read while the engine moved under the
// head read at the start of a tick must not outlive a later return to that head.
func (a *Adapter) forgetEngineBlocks() { a.atHead, a.atCache = common.Hash{}, nil }

// maxRememberedLookups bounds the blocks remembered for one engine head: a
// tick looks up at most three heights.
const maxRememberedLookups = 8

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
	a.statusMu.Lock()
	a.status.Unsafe = head
	a.statusMu.Unlock()
	a.metrics.RecordHeads(head.Number, a.local.Safe.Number, a.local.Finalized.Number)
}
