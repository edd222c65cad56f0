package l1derive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	altda "github.com/ethereum-optimism/optimism/op-alt-da"
	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-node/rollup/attributes"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	opsync "github.com/ethereum-optimism/optimism/op-node/rollup/sync"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"

	"github.com/lightcl/lightcl/safesource"
)

// L1Fetcher reads the user's L1 node: what the derivation pipeline reads,
// plus the "finalized" label. op-service's sources.L1Client is one.
type L1Fetcher interface {
	derive.L1Fetcher
}

// L1BlobsFetcher reads blobs from an L1 beacon node; op-service's
// sources.L1BeaconClient is one.
type L1BlobsFetcher = derive.L1BlobsFetcher

// L2Source reads the local execution engine: op-service's
// sources.EngineClient (or L2Client) on the engine the adapter drives.
type L2Source interface {
	derive.L2Source
}

var (
	_ L1Fetcher                 = (*sources.L1Client)(nil)
	_ L1BlobsFetcher            = (*sources.L1BeaconClient)(nil)
	_ L2Source                  = (*sources.EngineClient)(nil)
	_ safesource.SafeHeadSource = (*Source)(nil)
	_ safesource.Builder        = (*Source)(nil)
)

// ErrMismatch is wrapped, in CheckOnly mode, when the engine holds another
// block than L1 derives at a height.
var ErrMismatch = errors.New("engine block differs from the block derived from L1")

// ErrDerivation is wrapped when the derivation pipeline hits an error it
// cannot go past (op-node's critical errors); the source stops deriving
// until it is restarted.
var ErrDerivation = errors.New("derivation failed")

// Source derives the safe and finalized heads from L1. Safe for concurrent
// use; Heads calls run one at a time.
type Source struct {
	cfg     Config
	rollup  *rollup.Config
	l1      L1Fetcher
	l2      L2Source
	log     log.Logger
	metrics Metrics

	mu        sync.Mutex // held by Heads; guards the fields below
	pipeline  *derive.DerivationPipeline
	started   bool
	critical  error
	pending   eth.L2BlockRef               // the block the next derived attributes build on
	localSafe eth.L2BlockRef               // the last block that concludes derived data
	attrs     *derive.AttributesWithParent // derived, not yet found in the engine
	fin       finality

	snapMu    sync.Mutex
	snap      snapshot
	confirmed eth.L2BlockRef // see Confirmed
}

// snapshot is what the last Heads call left, for the calls that must not
// wait for a Heads call in flight.
type snapshot struct {
	heads   safesource.Heads
	build   *safesource.BuildRequest
	resets  int
	derived uint64
}

// New returns a Source deriving rollupCfg's chain from l1 (and l1Blobs, for
// blob batches; nil refuses them with a clear error) and checking each block
// against the engine l2. logger and metrics may be nil.
func New(cfg Config, rollupCfg *rollup.Config, l1 L1Fetcher, l1Blobs L1BlobsFetcher, l2 L2Source, logger log.Logger, metrics Metrics) (*Source, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	switch {
	case rollupCfg == nil:
		return nil, errors.New("l1derive: nil rollup config")
	case l1 == nil:
		return nil, errors.New("l1derive: nil L1Fetcher")
	case l2 == nil:
		return nil, errors.New("l1derive: nil L2Source")
	case rollupCfg.AltDAEnabled():
		return nil, errors.New("l1derive: alt-DA chains are not supported")
	case rollupCfg.LagoonTime != nil:
		return nil, errors.New("l1derive: chains with the Lagoon feature set are not supported")
	}
	if err := rollupCfg.Check(); err != nil {
		return nil, fmt.Errorf("l1derive: rollup config: %w", err)
	}
	if logger == nil {
		logger = log.NewLogger(log.DiscardHandler())
	}
	if metrics == nil {
		metrics = NoopMetrics{}
	}
	if l1Blobs == nil {
		l1Blobs = noBlobs{}
	}
	l1Chain := cfg.L1ChainConfig
	if l1Chain == nil && rollupCfg.L1ChainID != nil {
		l1Chain = knownL1ChainConfig(rollupCfg.L1ChainID.Uint64())
	}
	lg := logger.New("source", cfg.Name)
	s := &Source{cfg: cfg, rollup: rollupCfg, l1: l1, l2: l2, log: lg, metrics: metrics, fin: finality{max: cfg.FinalityLookback},
		confirmed: genesisRef(rollupCfg)}
	if err := s.loadConfirmed(); err != nil {
		return nil, err
	}
	s.pipeline = derive.NewDerivationPipeline(lg, rollupCfg, nil, l1, l1Blobs, altda.Disabled, l2, pipelineMetrics{}, l1Chain)
	return s, nil
}

// Name returns the configured name.
func (s *Source) Name() string { return s.cfg.Name }

// Heads derives from where the last call stopped, for at most StepBudget or
// MaxBlocksPerCall blocks, and returns the derived heads: Safe and LocalSafe
// the last derived block the engine holds, Finalized by op-node's finalizer
// rule, CurrentL1 the L1 block derived up to.
func (s *Source) Heads(ctx context.Context) (safesource.Heads, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.critical != nil {
		return safesource.Heads{}, s.critical
	}
	if !s.started {
		if err := s.reset(ctx, "start"); err != nil {
			return safesource.Heads{}, err
		}
		s.started = true
	}
	if err := s.checkOrigin(ctx); err != nil {
		return safesource.Heads{}, err
	}
	if err := s.checkEngine(ctx); err != nil {
		return safesource.Heads{}, err
	}
	derived, err := s.derive(ctx)
	if err != nil {
		s.metrics.RecordDerived(derived)
		s.snapMu.Lock()
		s.snap.derived += uint64(derived) // the blocks matched before the error count too
		s.snapMu.Unlock()
		return safesource.Heads{}, err
	}
	if err := s.finalize(ctx); err != nil {
		s.log.Warn("L2 finality not updated", "err", err)
	}
	s.confirm()
	h := s.heads()
	if err := h.Check(); err != nil {
		return safesource.Heads{}, fmt.Errorf("%s: %w", s.cfg.Name, err)
	}
	s.metrics.RecordDerived(derived)
	s.metrics.RecordHeads(h.Safe.Number, h.Finalized.Number, h.CurrentL1.Number)
	s.snapMu.Lock()
	prev := s.snap.heads
	s.snap.heads = h
	s.snap.derived += uint64(derived)
	s.snapMu.Unlock()
	if h.Safe != prev.Safe {
		s.log.Info("Derived safe head", "safe", h.Safe.Number, "hash", h.Safe.Hash, "finalized", h.Finalized.Number,
			"l1", h.CurrentL1.Number, "blocks", derived)
	}
	return h, nil
}

// checkOrigin restarts derivation when the L1 block it derived up to is no
// longer canonical. The pipeline itself sees an L1 reorg only when it moves
// to the next L1 block; one that replaces the L1 head it waits at would go
// unseen until a new block came.
func (s *Source) checkOrigin(ctx context.Context) error {
	origin := s.pipeline.Origin()
	if origin == (eth.L1BlockRef{}) {
		return nil // not started yet
	}
	at, err := s.l1.L1BlockRefByNumber(ctx, origin.Number)
	switch {
	case errors.Is(err, ethereum.NotFound):
	case err != nil:
		return fmt.Errorf("%s: reading L1 block %d: %w", s.cfg.Name, origin.Number, err)
	case at.Hash == origin.Hash:
		return nil
	}
	s.log.Warn("L1 reorg under the derived chain", "l1", origin.Number, "old_hash", origin.Hash, "new_hash", at.Hash)
	return s.reset(ctx, "L1 reorg")
}

// heads returns the derived heads. Callers hold s.mu.
func (s *Source) heads() safesource.Heads {
	safe := s.localSafe
	if s.fin.finalized.Number > safe.Number {
		// a restart put the safe head below what was finalized: finalized
		// blocks were derived too
		safe = s.fin.finalized
	}
	return safesource.Heads{Safe: safe, LocalSafe: safe, Finalized: s.fin.finalized, CurrentL1: s.pipeline.Origin()}
}

// derive steps the pipeline and consolidates what it derives, until it waits
// for L1 data, needs a block built, or the budget is spent. It returns how
// many blocks it found in the engine.
func (s *Source) derive(ctx context.Context) (int, error) {
	deadline := time.Now().Add(s.cfg.StepBudget)
	derived := 0
	for ctx.Err() == nil && time.Now().Before(deadline) && derived < s.cfg.MaxBlocksPerCall {
		if s.attrs != nil {
			ok, err := s.consolidate(ctx)
			if err != nil || !ok {
				return derived, err
			}
			derived++
			continue
		}
		a, err := s.step(ctx)
		switch {
		case err == io.EOF:
			return derived, nil // waiting for L1
		case err == nil:
			s.attrs = a // nil: progress inside the pipeline
		case errors.Is(err, derive.NotEnoughData):
		case errors.Is(err, derive.ErrReset):
			s.log.Warn("Derivation reset (L1 reorg or inconsistent L2)", "err", err)
			if err := s.reset(ctx, "reset"); err != nil {
				return derived, err
			}
		case errors.Is(err, derive.ErrCritical):
			s.critical = fmt.Errorf("%s: %w: %w", s.cfg.Name, ErrDerivation, err)
			s.log.Error("Derivation stopped", "err", err, "safe", s.localSafe.Number)
			return derived, s.critical
		default: // temporary: try again next call
			return derived, fmt.Errorf("%s: deriving on %d: %w", s.cfg.Name, s.pending.Number, err)
		}
	}
	return derived, ctx.Err()
}

// step runs one pipeline step, turning a panic inside it into an error:
// nothing an L1 node serves may bring the process down.
func (s *Source) step(ctx context.Context) (a *derive.AttributesWithParent, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = derive.NewCriticalError(fmt.Errorf("derivation pipeline panicked on block %d (is Config.L1ChainConfig set for this L1?): %v", s.pending.Number+1, r))
		}
	}()
	return s.pipeline.Step(ctx, s.pending)
}

// consolidate compares the engine's block after s.pending with the derived
// attributes. A match advances the derived heads; a missing or different
// block is handed out to be built, and ok is false.
func (s *Source) consolidate(ctx context.Context) (ok bool, err error) {
	a := s.attrs
	if a.Parent != s.pending {
		// the pipeline derived on another parent than asked: drop them
		s.log.Warn("Derived attributes on an unexpected parent; re-deriving", "parent", a.Parent, "pending", s.pending)
		s.attrs = nil
		return true, s.reset(ctx, "unexpected parent")
	}
	n := a.Parent.Number + 1
	env, err := s.l2.PayloadByNumber(ctx, n)
	switch {
	case errors.Is(err, ethereum.NotFound) && s.cfg.CheckOnly:
		return false, nil // the engine is not there yet
	case errors.Is(err, ethereum.NotFound):
		s.requestBuild(a, "the engine has no block there")
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%s: engine block %d: %w", s.cfg.Name, n, err)
	case env == nil || env.ExecutionPayload == nil:
		return false, fmt.Errorf("%s: engine block %d: empty answer", s.cfg.Name, n)
	}
	if err := attributes.AttributesMatchBlock(s.rollup, a.Attributes, a.Parent.Hash, env, s.log); err != nil {
		if s.cfg.CheckOnly && !s.engineCallsSafe(ctx, n) {
			// an unsafe block the followed source may still replace: not a
			// disagreement about a height both call safe; wait for it
			s.log.Debug("Engine block above its safe head differs from the derived one; waiting", "number", n)
			return false, nil
		}
		if s.cfg.CheckOnly {
			s.critical = fmt.Errorf("%s: block %d (%s) in the engine, on %d (%s): %w: %w", s.cfg.Name, n,
				env.ExecutionPayload.BlockHash, a.Parent.Number, a.Parent.Hash, ErrMismatch, err)
			s.log.Error("Engine block differs from the block derived from L1", "number", n,
				"hash", env.ExecutionPayload.BlockHash, "derived_from", a.DerivedFrom.Number, "err", err)
			return false, s.critical
		}
		s.requestBuild(a, err.Error())
		return false, nil
	}
	ref, err := derive.PayloadToBlockRef(s.rollup, env.ExecutionPayload)
	if err != nil {
		return false, fmt.Errorf("%s: engine block %d: %w", s.cfg.Name, n, err)
	}
	s.pending = ref
	if a.Concluding {
		s.localSafe = ref
		s.fin.derived(ref, a.DerivedFrom)
	}
	s.attrs = nil
	s.setBuild(nil)
	return true, nil
}

// engineCallsSafe reports whether the engine's safe label is at or above
// height n (read errors count as no: the check waits rather than alarms).
func (s *Source) engineCallsSafe(ctx context.Context, n uint64) bool {
	safe, err := s.l2.L2BlockRefByLabel(ctx, eth.Safe)
	return err == nil && safe.Number >= n
}

// requestBuild hands a derived block out to be built.
func (s *Source) requestBuild(a *derive.AttributesWithParent, why string) {
	s.snapMu.Lock()
	again := s.snap.build != nil && s.snap.build.Parent == a.Parent
	s.snapMu.Unlock()
	if !again {
		s.metrics.RecordBuildRequest()
		s.log.Debug("Derived block not in the engine; asking for it to be built", "number", a.Parent.Number+1,
			"parent", a.Parent.Number, "parent_hash", a.Parent.Hash, "why", why)
	}
	s.setBuild(&safesource.BuildRequest{Parent: a.Parent, Attributes: a.Attributes, DerivedFrom: a.DerivedFrom})
}

func (s *Source) setBuild(r *safesource.BuildRequest) {
	s.snapMu.Lock()
	s.snap.build = r
	s.snapMu.Unlock()
}

// reset restarts the pipeline from the engine's heads: op-node's
// sync.FindL2Heads walks back from the engine's head to a safe block whose L1
// origins are canonical, far enough back to re-read the batches after it.
// Finalized never moves back. A CheckOnly source restarts from checkStart
// instead, and its finalized head from there.
func (s *Source) reset(ctx context.Context, why string) error {
	if s.cfg.CheckOnly {
		return s.resetCheck(ctx, why)
	}
	found, err := opsync.FindL2Heads(ctx, s.rollup, s.l1, s.l2, s.log, &opsync.Config{})
	if err != nil {
		return fmt.Errorf("%s: finding the engine's heads to derive from: %w", s.cfg.Name, err)
	}
	s.restartPipeline(found.Safe)
	s.fin.reset(found.Finalized)
	s.log.Info("Deriving from the engine's heads", "why", why, "safe", found.Safe.Number, "safe_hash", found.Safe.Hash,
		"finalized", found.Finalized.Number, "unsafe", found.Unsafe.Number)
	return nil
}

// restartPipeline resets the pipeline to derive on from l2.
func (s *Source) restartPipeline(l2 eth.L2BlockRef) {
	s.pipeline.Reset()
	s.pipeline.ConfirmEngineReset()
	s.pending, s.localSafe, s.attrs = l2, l2, nil
	s.setBuild(nil)
	s.metrics.RecordReset()
	s.snapMu.Lock()
	s.snap.resets++
	s.snapMu.Unlock()
}

// PendingBuild returns the derived block the engine lacked (or held another
// block for) at the last Heads call.
func (s *Source) PendingBuild() (safesource.BuildRequest, bool) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if s.snap.build == nil {
		return safesource.BuildRequest{}, false
	}
	return *s.snap.build, true
}

// L2BlockRefByNumber returns the engine's block at height n, for heights at
// or below the derived safe head; above it wraps safesource.ErrNotFound.
func (s *Source) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	s.snapMu.Lock()
	safe := s.snap.heads.Safe
	s.snapMu.Unlock()
	if n > safe.Number || safe.Hash == (common.Hash{}) {
		return eth.L2BlockRef{}, fmt.Errorf("%s: block %d is above the derived safe head %d: %w", s.cfg.Name, n, safe.Number, safesource.ErrNotFound)
	}
	ref, err := s.l2.L2BlockRefByNumber(ctx, n)
	if errors.Is(err, ethereum.NotFound) {
		return eth.L2BlockRef{}, fmt.Errorf("%s: engine block %d: %w", s.cfg.Name, n, safesource.ErrNotFound)
	}
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("%s: engine block %d: %w", s.cfg.Name, n, err)
	}
	return ref, nil
}

// Status is what the source has derived.
type Status struct {
	Heads safesource.Heads
	// Confirmed is what Confirmed returns.
	Confirmed eth.L2BlockRef
	// Building is the height handed out to be built; zero when none.
	Building uint64
	// Derived counts blocks derived and found in the engine; Resets counts
	// pipeline restarts (the first start included).
	Derived uint64
	Resets  int
}

// Status returns a snapshot; it does not wait for a Heads call in flight.
func (s *Source) Status() Status {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	st := Status{Heads: s.snap.heads, Confirmed: s.confirmed, Derived: s.snap.derived, Resets: s.snap.resets}
	if s.snap.build != nil {
		st.Building = s.snap.build.Parent.Number + 1
	}
	return st
}

// noBlobs refuses blob reads: no L1 beacon endpoint was given.
type noBlobs struct{}

func (noBlobs) GetBlobsByHash(context.Context, uint64, []common.Hash) ([]*eth.Blob, error) {
	return nil, errors.New("l1derive: a batch is in blobs, but no L1 beacon endpoint is configured")
}
