package l1verify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"
	lru "github.com/hashicorp/golang-lru/v2"
)

// L1Source reads the user's own L1 node.
type L1Source interface {
	// L1BlockRefByLabel returns the block a label ("latest", "finalized")
	// points at. The Verifier never asks it for "safe".
	L1BlockRefByLabel(ctx context.Context, label eth.BlockLabel) (eth.L1BlockRef, error)
	// L1BlockRefByNumber returns the canonical block at height num; a height
	// the node lacks wraps ethereum.NotFound.
	L1BlockRefByNumber(ctx context.Context, num uint64) (eth.L1BlockRef, error)
}

var _ L1Source = (*sources.L1Client)(nil)

// l1HeadsSource is an L1Source that reads the L1 head, safe and finalized
// blocks in one request, as RPCSource does. The Verifier then fetches
// finalized along with the head, instead of in a request of its own, and
// safe comes in the same request for its Status.
type l1HeadsSource interface {
	// L1Heads returns the "latest", "safe" and "finalized" blocks; safe and
	// finalized are zero when L1 has none yet.
	L1Heads(ctx context.Context) (latest, safe, finalized eth.L1BlockRef, err error)
}

// ErrL1Unavailable is wrapped when the L1 node cannot be read, so heads cannot
// be verified and are not passed on.
var ErrL1Unavailable = errors.New("L1 unavailable")

// Verifier holds what is known of the L1: its head, its safe and finalized
// blocks and a cache of canonical (number, hash) pairs. It checks heads for
// the sources it wraps, which share its cache and its reads of the L1 head.
// Safe for concurrent use.
//
// The cache is correct because of one invariant: every cached pair was read
// no earlier than the L1 head it is filed under, at a height at or below it,
// and that head has been confirmed still canonical by every later head read.
// A head read confirms the previous head when it is the same block, its child,
// or (for a longer jump) when the block at the previous head's height is still
// the previous head; anything else is an L1 reorg at or below the previous
// head, and the whole cache is dropped. Since every cached height is at or
// below the previous head, a reorg that replaces any cached block also
// replaces that head, so it cannot go unseen. Each Heads call reads the L1
// head anew (or joins a read that started after the call did), which is why a
// reorg is caught on the next call. With Config.MaxHeadAge set, a call may
// instead reuse a read that began up to MaxHeadAge before it did, so a reorg
// is caught by the first call that begins more than MaxHeadAge after it; the
// invariant is the same, only when a reorg is seen changes.
type Verifier struct {
	l1      L1Source
	cfg     Config
	log     log.Logger
	metrics Metrics

	refreshLock chan struct{} // held while the L1 head is read; waiting honours ctx
	lastRefresh refresh       // guarded by refreshLock

	mu        sync.Mutex
	canon     *lru.Cache[uint64, common.Hash]
	head      eth.L1BlockRef // the last L1 head read; zero before the first
	safe      eth.L1BlockRef // the last L1 safe block read; zero before the first
	finalized eth.L1BlockRef // the highest L1 finalized block read; zero before the first
	finClaim  uint64         // the highest finalized head's L1 origin checked against L1 finality
	gen       uint64         // bumped whenever the cache is dropped
	reorgs    int
	flights   map[flightKey]*flight // reads by number and of finalized in flight
}

// refresh is the outcome of one successful read of the L1 head.
type refresh struct {
	start time.Time // when the read began
	view  view
	ok    bool
}

// view is the verifier's knowledge as of one L1 head read.
type view struct {
	head  eth.L1BlockRef
	gen   uint64
	start time.Time // when the head read began
}

// New returns a Verifier that reads l1. logger and metrics may be nil.
func New(l1 L1Source, cfg Config, logger log.Logger, metrics Metrics) (*Verifier, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if l1 == nil {
		return nil, errors.New("l1verify: nil L1Source")
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = log.NewLogger(log.DiscardHandler())
	}
	if metrics == nil {
		metrics = NoopMetrics{}
	}
	canon, err := lru.New[uint64, common.Hash](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("l1verify: CacheSize: %w", err)
	}
	return &Verifier{
		l1: l1, cfg: cfg, log: logger, metrics: metrics,
		refreshLock: make(chan struct{}, 1),
		canon:       canon,
	}, nil
}

// VerifierStatus is what the verifier knows of the L1, all of it from the
// reads its checks make (no read is made for the status). A block not read
// yet is the zero ref, never a guess. These are op-node's optimism_syncStatus
// head_l1, safe_l1 and finalized_l1.
type VerifierStatus struct {
	// L1Head is the last L1 head read: fresh as of the last Heads call, or
	// with Config.MaxHeadAge up to that much older.
	L1Head eth.L1BlockRef
	// L1Safe is the last L1 safe block read. It is read only in the batched
	// request that brings L1's finalized block along with the head, on the
	// calls where a finalized claim may pass the last one read (see
	// RPCSource), so it may trail L1's safe block by about as long as
	// L1Finalized trails L1 finality. It stays as last read when L1 answers
	// that it has no safe block, or answers it badly (safe serves the status
	// only, so a bad answer for it does not fail the read). It is zero until first read, and stays zero
	// with an L1Source that cannot batch (sources.L1Client: no request is
	// added for it) or with Config.SkipFinalityCheck.
	L1Safe eth.L1BlockRef
	// L1Finalized is the highest L1 finalized block read; zero until a
	// finalized claim needed it.
	L1Finalized eth.L1BlockRef
	// Cached is how many L1 heights the cache holds.
	Cached int
	// L1Reorgs counts the L1 reorgs seen, each of which dropped the cache.
	L1Reorgs int
}

// Status returns what the verifier knows of the L1.
func (v *Verifier) Status() VerifierStatus {
	v.mu.Lock()
	defer v.mu.Unlock()
	return VerifierStatus{L1Head: v.head, L1Safe: v.safe, L1Finalized: v.finalized, Cached: v.canon.Len(), L1Reorgs: v.reorgs}
}

// view reads the L1 head, unless a read that began at or after since (less
// Config.MaxHeadAge, zero by default) has already succeeded, and returns the
// knowledge it leaves. Reads are one at a time, so concurrent calls (a quorum
// round) share one, and with MaxHeadAge so do calls within that long of each
// other (the chains sharing a verifier, each polling on its own clock).
//
// This is not golang.org/x/sync/singleflight, whose semantics differ in two
// ways that matter here. A singleflight caller joins whatever read is in
// flight, even one that began before the caller did, whose head may predate
// an L1 reorg the caller must see (the type's invariant); here a caller
// takes only a read that began at or after it did. And a singleflight
// read runs under its first caller's context and hands its error to every
// caller: Source.Heads cancels its read when its inner source fails, and a
// quorum cancels the members it stops waiting for, so one member's
// cancellation would fail the L1 check of every other member in the round.
// Here the read runs under its reader's context, and a caller waiting for a
// read that fails reads again under its own. Detaching the read from every
// caller's context instead would leave a read running that no caller owns.
// (With MaxHeadAge a caller does take a read that began before it, but only
// by the delay the configuration allows.)
func (v *Verifier) view(ctx context.Context, since time.Time) (view, error) {
	select {
	case v.refreshLock <- struct{}{}:
	case <-ctx.Done():
		return view{}, fmt.Errorf("waiting to read the L1 head: %w", ctx.Err())
	}
	defer func() { <-v.refreshLock }()
	if r := v.lastRefresh; r.ok && !r.start.Before(since.Add(-v.cfg.MaxHeadAge)) {
		return r.view, nil
	}
	start := time.Now()
	vw, err := v.readHead(ctx)
	if err != nil {
		return view{}, err
	}
	vw.start = start
	v.lastRefresh = refresh{start: start, view: vw, ok: true}
	return vw, nil
}

// readHead reads the L1 head and files it, dropping the cache on a reorg.
// When the L1Source can read them in one request and a finalized claim may
// pass the last L1 finalized block read, L1's safe and finalized blocks come
// along and are filed too, so the check needs no request of its own for
// finalized, and Status gets safe at no cost. Safe is not cached: unlike
// finalized it may still be reorged, and no check needs it.
// Callers hold refreshLock, so v.head and v.safe change only here.
func (v *Verifier) readHead(ctx context.Context) (view, error) {
	var (
		latest, safe, finalized eth.L1BlockRef
		batched                 bool
		err                     error
	)
	if hs, ok := v.l1.(l1HeadsSource); ok && v.wantFinalized() {
		batched = true
		latest, err = v.call(ctx, CallLatestFinalized, func(ctx context.Context) (eth.L1BlockRef, error) {
			l, s, f, err := hs.L1Heads(ctx)
			safe, finalized = s, f
			return l, err
		})
	} else {
		latest, err = v.call(ctx, CallLatest, func(ctx context.Context) (eth.L1BlockRef, error) {
			return v.l1.L1BlockRefByLabel(ctx, eth.Unsafe)
		})
	}
	if err != nil {
		return view{}, fmt.Errorf("reading the L1 head: %w: %w", ErrL1Unavailable, err)
	}
	v.mu.Lock()
	prev := v.head
	v.mu.Unlock()
	reorg := false
	switch {
	case prev == (eth.L1BlockRef{}), latest.Hash == prev.Hash:
	case latest.Number == prev.Number+1 && latest.ParentHash == prev.Hash:
	case latest.Number > prev.Number:
		// More than one block since the last read (or a child that does not
		// link, which only a reorg gives on a real chain): one read tells
		// whether the previous head, and so all below it, is still canonical.
		at, err := v.call(ctx, CallByNumber, func(ctx context.Context) (eth.L1BlockRef, error) {
			return v.l1.L1BlockRefByNumber(ctx, prev.Number)
		})
		switch {
		case errors.Is(err, ethereum.NotFound):
			reorg = true
		case err != nil:
			return view{}, fmt.Errorf("reading L1 block %d: %w: %w", prev.Number, ErrL1Unavailable, err)
		default:
			reorg = at.Hash != prev.Hash
		}
	default:
		// the head went back, or was replaced at its height
		reorg = true
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if reorg {
		v.canon.Purge()
		v.gen++
		v.reorgs++
		v.metrics.RecordL1Reorg()
		v.log.Warn("L1 reorg: forgetting verified L1 blocks", "old_head", prev.Number, "old_hash", prev.Hash,
			"new_head", latest.Number, "new_hash", latest.Hash)
	}
	v.head = latest
	v.canon.Add(latest.Number, latest.Hash)
	if batched {
		if safe != (eth.L1BlockRef{}) { // zero: L1 has no safe block yet
			v.safe = safe
		}
		v.fileFinalizedLocked(finalized)
	}
	return view{head: latest, gen: v.gen}, nil
}

// wantFinalized reports whether the next L1 head read should bring L1's
// finalized block along: the finality check is on, and either none has been
// read yet or the finalized claims checked have reached the last one read, so
// that the next claim may pass it. A source whose finalized head trails L1
// finality needs no new read until it catches up.
func (v *Verifier) wantFinalized() bool {
	if v.cfg.SkipFinalityCheck {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.finalized == (eth.L1BlockRef{}) || v.finClaim >= v.finalized.Number
}

// noteFinalizedClaim records that a finalized head with L1 origin at height n
// is checked against L1 finality.
func (v *Verifier) noteFinalizedClaim(n uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.finClaim = max(v.finClaim, n)
}

// cached returns the canonical hash at height n, if the cache holds it.
func (v *Verifier) cached(n uint64) (common.Hash, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.canon.Get(n)
}

// knownFinalized returns the highest L1 finalized block read so far.
func (v *Verifier) knownFinalized() eth.L1BlockRef {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.finalized
}

// canonical reads the canonical block at height n (at or below vw's head),
// or takes a read of it that began after vw's head read (shared). A height L1
// lacks gives ok false. It does not cache: see fileCanonical.
func (v *Verifier) canonical(ctx context.Context, n uint64, vw view) (hash common.Hash, ok bool, err error) {
	ref, err := v.shared(ctx, flightKey{number: n}, vw.start, func(ctx context.Context) (eth.L1BlockRef, error) {
		return v.call(ctx, CallByNumber, func(ctx context.Context) (eth.L1BlockRef, error) {
			return v.l1.L1BlockRefByNumber(ctx, n)
		})
	})
	if errors.Is(err, ethereum.NotFound) {
		return common.Hash{}, false, nil
	}
	if err != nil {
		return common.Hash{}, false, fmt.Errorf("reading L1 block %d: %w: %w", n, ErrL1Unavailable, err)
	}
	return ref.Hash, true, nil
}

// fileCanonical caches a block read by number during a check against vw,
// unless the cache was dropped since vw or n is above the current head.
//
// Only blocks that agreed with every claim at their height are filed. A read
// made after vw's head read may come from another chain if L1 reorged in
// between; the next head read sees that reorg and drops the cache, unless L1
// reorged back to the very same head meanwhile. A block that contradicts a
// claim is the sign of such a reorg as often as of a lie, so it is read again
// next time rather than trusted. (A block that agrees with a claim after such
// a reorg and back would stay cached until the next L1 reorg: two reorgs
// within one tick, ending on the first head, which is not seen on a real L1.)
func (v *Verifier) fileCanonical(n uint64, hash common.Hash, vw view) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.gen == vw.gen && n <= v.head.Number {
		v.canon.Add(n, hash)
	}
}

// readFinalized reads L1's finalized block, or takes a read of it that
// began after vw's head read (shared), and returns the highest one seen. A
// node without a finalized block yet gives a zero ref.
func (v *Verifier) readFinalized(ctx context.Context, vw view) (eth.L1BlockRef, error) {
	ref, err := v.shared(ctx, flightKey{finalized: true}, vw.start, func(ctx context.Context) (eth.L1BlockRef, error) {
		return v.call(ctx, CallFinalized, func(ctx context.Context) (eth.L1BlockRef, error) {
			return v.l1.L1BlockRefByLabel(ctx, eth.Finalized)
		})
	})
	if err != nil && !errors.Is(err, ethereum.NotFound) {
		return eth.L1BlockRef{}, fmt.Errorf("reading L1's finalized block: %w: %w", ErrL1Unavailable, err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err == nil {
		v.fileFinalizedLocked(ref)
	}
	return v.finalized, nil
}

// fileFinalizedLocked keeps ref as L1's finalized block if it is the highest
// read, and caches it. A zero ref (no finalized block yet) changes nothing.
// Callers hold v.mu.
func (v *Verifier) fileFinalizedLocked(ref eth.L1BlockRef) {
	if ref == (eth.L1BlockRef{}) {
		return
	}
	if v.finalized == (eth.L1BlockRef{}) || ref.Number > v.finalized.Number {
		v.finalized = ref
		if ref.Number <= v.head.Number {
			v.canon.Add(ref.Number, ref.Hash) // finalized: canonical for good
		}
	}
}

// flightKey names an L1 read callers may share: the block at a height, or
// L1's finalized block.
type flightKey struct {
	number    uint64
	finalized bool
}

// flight is one shared L1 read.
type flight struct {
	start time.Time     // when it began
	done  chan struct{} // closed when ref and err are set
	ref   eth.L1BlockRef
	err   error
}

// shared makes the read key names, unless one is in flight that began at or
// after since (the caller's head read): then it waits for that one and takes
// its answer, as the caller's own read, begun later, would be. Chains that
// share the verifier and check the same new L1 block at once (ticks that fall
// together, a quorum's members) then make one read of it, not one each. As
// with view, a caller never takes a read that began before its head read, and
// each read runs under its reader's context: a waiter whose read failed other
// than with "not found" (L1 has no such block, an answer) reads again under
// its own.
func (v *Verifier) shared(ctx context.Context, key flightKey, since time.Time, read func(context.Context) (eth.L1BlockRef, error)) (eth.L1BlockRef, error) {
	for {
		v.mu.Lock()
		f := v.flights[key]
		if f == nil || f.start.Before(since) {
			f = &flight{start: time.Now(), done: make(chan struct{})}
			if v.flights == nil {
				v.flights = map[flightKey]*flight{}
			}
			v.flights[key] = f
			v.mu.Unlock()
			f.ref, f.err = read(ctx)
			v.mu.Lock()
			if v.flights[key] == f {
				delete(v.flights, key)
			}
			v.mu.Unlock()
			close(f.done)
			return f.ref, f.err
		}
		v.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return eth.L1BlockRef{}, ctx.Err()
		}
		if f.err == nil || errors.Is(f.err, ethereum.NotFound) {
			return f.ref, f.err
		}
	}
}

// call makes one L1 call bounded by the configured timeout and counts it.
func (v *Verifier) call(ctx context.Context, kind string, fn func(context.Context) (eth.L1BlockRef, error)) (eth.L1BlockRef, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	ref, err := fn(ctx)
	result := "ok"
	if err != nil {
		result = "error"
	}
	v.metrics.RecordL1Call(kind, result)
	return ref, err
}
