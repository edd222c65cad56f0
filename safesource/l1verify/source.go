package l1verify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/log"
	"golang.org/x/sync/errgroup"

	"github.com/lightcl/lightcl/safesource"
)

// Source is a SafeHeadSource that passes on an inner source's heads only
// once they are verified against L1. Safe for concurrent use.
type Source struct {
	inner   safesource.SafeHeadSource
	v       *Verifier
	name    string
	log     log.Logger
	genesis eth.L2BlockRef // this source's chain's genesis; zero: Config.Genesis
	metrics Metrics        // where its checks are recorded

	mu     sync.Mutex
	status Status
}

var _ safesource.SafeHeadSource = (*Source)(nil)

// Wrap returns inner verified against l1, with a Verifier of its own.
// logger and metrics may be nil.
func Wrap(inner safesource.SafeHeadSource, l1 L1Source, cfg Config, logger log.Logger, metrics Metrics) (*Source, error) {
	v, err := New(l1, cfg, logger, metrics)
	if err != nil {
		return nil, err
	}
	return v.Wrap(inner)
}

// Wrap returns inner verified by v. Sources wrapped by one Verifier share its
// cache and its reads of the L1 head.
func (v *Verifier) Wrap(inner safesource.SafeHeadSource) (*Source, error) {
	return v.WrapChain(inner, Chain{})
}

// Chain is what a source of one chain brings to a verifier shared by several
// chains (all on its L1). Zero fields take the verifier's own.
type Chain struct {
	// Genesis is the chain's L2 genesis block, used in place of
	// Config.Genesis to hold a finalized claim ahead of L1's finality (see
	// holdFinalized).
	Genesis eth.L2BlockRef
	// Log is the chain's logger: the source's lines (a head not passed on,
	// finalized held) carry the chain's fields.
	Log log.Logger
	// Metrics records the source's checks (RecordCheck), so that they carry
	// the chain's labels; the shared L1 reads stay on the verifier's.
	Metrics Metrics
}

// WrapChain is like Wrap, for a verifier shared by several chains: c gives
// this source's chain's genesis, logger and metrics. A zero Chain is Wrap.
func (v *Verifier) WrapChain(inner safesource.SafeHeadSource, c Chain) (*Source, error) {
	if inner == nil {
		return nil, errors.New("l1verify: nil inner source")
	}
	name := inner.Name() + "+l1verify"
	logger, metrics := v.log, v.metrics
	if c.Log != nil {
		logger = c.Log
	}
	if c.Metrics != nil {
		metrics = c.Metrics
	}
	return &Source{inner: inner, v: v, name: name, log: logger.New("source", name), genesis: c.Genesis, metrics: metrics}, nil
}

// Name returns the inner source's name with "+l1verify" appended.
func (s *Source) Name() string { return s.name }

// Inner returns the wrapped source.
func (s *Source) Inner() safesource.SafeHeadSource { return s.inner }

// Verifier returns the verifier that checks s.
func (s *Source) Verifier() *Verifier { return s.v }

// L2BlockRefByNumber asks the inner source.
func (s *Source) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	return s.inner.L2BlockRefByNumber(ctx, n)
}

// Heads asks the inner source for its heads and, in parallel, L1 for its
// head, then checks the heads' L1 origins (see the package comment). Heads
// that fail are not returned: the error wraps safesource.ErrL1Mismatch,
// safesource.ErrAheadOfL1 or ErrL1Unavailable, or is the inner source's.
// A current L1 block above the L1 head is returned as zero (unknown).
// When the only failure is a finalized claim ahead of L1's finality, the
// heads are returned with finalized held at the last verified finalized head
// (see holdFinalized).
func (s *Source) Heads(ctx context.Context) (safesource.Heads, error) {
	start := time.Now()
	var (
		h        safesource.Heads
		vw       view
		innerErr error
		l1Err    error
		g        errgroup.Group
	)
	l1ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g.Go(func() error {
		vw, l1Err = s.v.view(l1ctx, start)
		return nil
	})
	h, innerErr = s.inner.Heads(ctx)
	if innerErr != nil {
		cancel() // the heads are lost anyway
	}
	_ = g.Wait()
	switch {
	case innerErr != nil:
		return safesource.Heads{}, s.done(ResultSourceError, fmt.Errorf("%s: %w", s.name, innerErr))
	case l1Err != nil:
		return safesource.Heads{}, s.done(ResultL1Error, fmt.Errorf("%s: %w", s.name, l1Err))
	}
	vd := s.v.check(ctx, h, vw)
	if vd.finalityLag {
		vd = s.holdFinalized(vd)
	}
	if vd.err != nil {
		return safesource.Heads{}, s.done(vd.result, fmt.Errorf("%s: %w", s.name, vd.err))
	}
	_ = s.done(vd.result, nil)
	s.passed(vd)
	return vd.heads, nil
}

// done records a call's outcome and returns err.
func (s *Source) done(result string, err error) error {
	s.metrics.RecordCheck(s.name, result)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.LastCheckAt = time.Now()
	s.status.LastResult = result
	s.status.LastError = err
	if err != nil {
		s.status.ConsecutiveErrors++
		if result != ResultSourceError {
			s.log.Warn("Heads not passed on: L1 verification failed", "result", result, "consecutive", s.status.ConsecutiveErrors, "err", err)
		}
	} else {
		s.status.ConsecutiveErrors = 0
	}
	return err
}

// Status is a wrapped source's last check and what its verifier knows of L1.
type Status struct {
	// LastCheckAt is when the last Heads call ended.
	LastCheckAt time.Time
	// LastResult is the last call's result (ResultOK, ResultL1Mismatch, ...).
	LastResult string
	// LastError is the last call's error; nil when it passed (with
	// finalized held or not).
	LastError error
	// ConsecutiveErrors counts the calls in a row that failed.
	ConsecutiveErrors int
	// LastHeads are the last heads passed on.
	LastHeads safesource.Heads
	// VerifiedFinalized is the finalized head of the last heads verified in
	// full (ResultOK): the head finalized is held at while the source's
	// finalized claim is ahead of L1's finality. Zero before any.
	VerifiedFinalized eth.L2BlockRef
	// HeldFinalizedClaim is the source's finalized claim that LastHeads hold
	// back (ResultFinalizedHeld); zero when LastHeads carry the source's own
	// finalized head.
	HeldFinalizedClaim eth.L2BlockRef
	// L1 is the verifier's view of L1.
	L1 VerifierStatus
}

// Status returns the last check's outcome and the verifier's view of L1.
func (s *Source) Status() Status {
	s.mu.Lock()
	st := s.status
	s.mu.Unlock()
	st.L1 = s.v.Status()
	return st
}
