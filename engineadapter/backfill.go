package engineadapter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/retry"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum"
	"golang.org/x/sync/errgroup"

	"github.com/lightcl/lightcl/reorg"
)

// PayloadProvider serves the payloads backfill inserts: a remote EL of the
// source's chain. op-service's L2Client satisfies it, and so does a
// remotel2.Source (its remote's EL; the safe block its heads were read from
// is not fetched twice).
type PayloadProvider interface {
	PayloadByNumber(ctx context.Context, n uint64) (*eth.ExecutionPayloadEnvelope, error)
}

var _ PayloadProvider = (*sources.L2Client)(nil)

// ErrBackfillInvalid is wrapped when the engine calls a backfilled payload
// INVALID; the backfill stops there.
var ErrBackfillInvalid = reorg.ErrBackfillInvalid

// progressEvery is how often a running backfill logs its progress.
const progressEvery = 5 * time.Second

// backfill inserts the source's blocks d.BackfillFrom..d.BackfillTo into the
// engine with newPayload, strictly in order, while a window of the next
// payloads is fetched in parallel. The first must build on d.Ancestor and the
// last must be the decision's target; a provider on another chain is an error.
// When the blocks extend the engine's head, the head is moved forward every
// window (keeping l's safe and finalized labels), so a crash loses at most one
// window of work; the answer names the last head so moved.
func (a *Adapter) backfill(ctx context.Context, d reorg.Decision, l reorg.Local) reorg.Backfilled {
	var res reorg.Backfilled
	res.Err = a.backfillBlocks(ctx, d, l, &res)
	return res
}

func (a *Adapter) backfillBlocks(ctx context.Context, d reorg.Decision, l reorg.Local, res *reorg.Backfilled) error {
	from, to := d.BackfillFrom, d.BackfillTo
	if from > to {
		return nil
	}
	base := d.Ancestor
	if d.BackfillBase != (eth.L2BlockRef{}) {
		base = d.BackfillBase
	}
	extends := base.Hash == l.Unsafe.Hash
	window := uint64(a.cfg.BackfillWindow)
	total := to - from + 1
	start, lastLog := time.Now(), time.Now()
	a.log.Info("Backfill starting", "from", from, "to", to, "blocks", total, "window", window)

	// a producer fetches windows ahead while the loop below inserts: fetching
	// and inserting overlap, up to two windows ahead. It ends at the first
	// fetch error, after the windows before it, and is stopped and waited for
	// on every return.
	type fetched struct {
		hi   uint64
		envs []*eth.ExecutionPayloadEnvelope
	}
	pctx, cancel := context.WithCancel(ctx)
	windows := make(chan fetched, 2)
	var producer errgroup.Group
	producer.Go(func() error {
		defer close(windows)
		for lo := from; lo <= to; lo += window {
			hi := min(lo+window-1, to)
			envs, err := a.fetchWindow(pctx, lo, hi)
			if err != nil {
				return err
			}
			select {
			case windows <- fetched{hi, envs}:
			case <-pctx.Done():
				return nil
			}
		}
		return nil
	})
	defer func() {
		cancel()
		_ = producer.Wait()
	}()

	parent := base
	for f := range windows {
		for _, env := range f.envs {
			p := env.ExecutionPayload
			if a.invalid.has(p.BlockHash) {
				res.TargetBuildsOnIt = a.sourceHolds(ctx, p)
				return fmt.Errorf("backfill: block %d (%s): %w earlier; not sending it again",
					uint64(p.BlockNumber), p.BlockHash, ErrBackfillInvalid)
			}
			if p.ParentHash != parent.Hash {
				return fmt.Errorf("backfill: provider block %d (%s) has parent %s, want %d (%s): the provider is not on the source's chain",
					uint64(p.BlockNumber), p.BlockHash, p.ParentHash, parent.Number, parent.Hash)
			}
			if err := a.insert(ctx, env); err != nil {
				if errors.Is(err, ErrBackfillInvalid) {
					res.Invalid = p.BlockHash
					res.TargetBuildsOnIt = a.sourceHolds(ctx, p)
				}
				return err
			}
			parent = eth.L2BlockRef{Hash: p.BlockHash, Number: uint64(p.BlockNumber), ParentHash: p.ParentHash}
		}
		done := f.hi - from + 1
		if time.Since(lastLog) >= progressEvery || f.hi == to {
			rate := float64(done) / time.Since(start).Seconds()
			eta := time.Duration(float64(total-done) / rate * float64(time.Second))
			a.log.Info("Backfill progress", "done", done, "total", total, "blocks_per_s", fmt.Sprintf("%.1f", rate),
				"eta", eta.Round(time.Second), "head", parent.Number)
			lastLog = time.Now()
		}
		if extends && f.hi < to {
			if err := a.onSourceChain(ctx, parent); err != nil {
				return err
			}
			if err := a.checkpoint(ctx, parent, l); err != nil {
				return err
			}
			res.Head = parent
		}
	}
	if err := producer.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("backfill stopped at %d of %d..%d: %w", parent.Number, from, to, err)
	}
	if parent.Hash != d.Forkchoice.HeadBlockHash {
		return fmt.Errorf("backfill: provider's block %d is %s, the source's is %s: the provider is not on the source's chain",
			parent.Number, parent.Hash, d.Forkchoice.HeadBlockHash)
	}
	return nil
}

// fetchWindow fetches the payloads lo..hi in parallel, retrying a payload the
// provider does not have yet with backoff (fetchAttempts tries, about 11 s).
func (a *Adapter) fetchWindow(ctx context.Context, lo, hi uint64) ([]*eth.ExecutionPayloadEnvelope, error) {
	envs := make([]*eth.ExecutionPayloadEnvelope, hi-lo+1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.cfg.BackfillParallel)
	for n := lo; n <= hi; n++ {
		g.Go(func() error {
			env, err := a.fetch(gctx, n)
			envs[n-lo] = env
			return err
		})
	}
	return envs, g.Wait()
}

// fetchAttempts bounds the tries for one payload the provider does not have.
const fetchAttempts = 8

// fetchBackoff is the wait after the failed try attempt (from 0) of a payload
// the provider does not have: 100 ms doubling up to 5 s, with no jitter;
// about 11 s over fetchAttempts tries.
type fetchBackoff struct{}

var _ retry.Strategy = fetchBackoff{}

func (fetchBackoff) Duration(attempt int) time.Duration {
	const first, most = 100 * time.Millisecond, 5 * time.Second
	if attempt < 0 || attempt >= 6 { // 100 ms << 6 is past most
		return most
	}
	return min(first<<attempt, most)
}

// fetch gets payload n, retrying only while the provider does not have it
// (ethereum.NotFound, or an empty answer); any other error ends it at once.
func (a *Adapter) fetch(ctx context.Context, n uint64) (*eth.ExecutionPayloadEnvelope, error) {
	var (
		env     *eth.ExecutionPayloadEnvelope
		final   error // an answer a retry cannot change
		attempt int
	)
	// op returns nil to stop the retries: with env, or with final set
	wait := a.fetchWait
	if wait == nil {
		wait = fetchBackoff{}
	}
	err := retry.Do0(ctx, fetchAttempts, wait, func() error {
		pctx, cancel := context.WithTimeout(ctx, a.cfg.EngineTimeout)
		got, err := a.cfg.Payloads.PayloadByNumber(pctx, n)
		cancel()
		if err == nil && (got == nil || got.ExecutionPayload == nil) {
			err = fmt.Errorf("empty payload: %w", ethereum.NotFound) // retried like a missing one
		}
		switch {
		case err == nil && uint64(got.ExecutionPayload.BlockNumber) != n:
			final = fmt.Errorf("backfill: asked the provider for block %d, got %d", n, uint64(got.ExecutionPayload.BlockNumber))
			return nil
		case err == nil:
			env = got
			return nil
		case !errors.Is(err, ethereum.NotFound):
			final = fmt.Errorf("backfill: payload %d: %w", n, err)
			return nil
		}
		if attempt++; attempt < fetchAttempts {
			a.log.Debug("Backfill payload not at the provider yet; retrying", "number", n,
				"backoff", wait.Duration(attempt-1), "err", err)
		}
		return err
	})
	var failed *retry.ErrFailedPermanently
	switch {
	case errors.As(err, &failed):
		return nil, fmt.Errorf("backfill: payload %d not at the provider after %d attempts: %w", n, fetchAttempts, failed.LastErr)
	case err != nil: // ctx ended
		return nil, fmt.Errorf("backfill: payload %d: %w", n, err)
	case final != nil:
		return nil, final
	}
	return env, nil
}

// insert sends one payload with newPayload. INVALID stops the backfill and the
// block is never sent again. SYNCING (or ACCEPTED) means the engine lacks the
// parent's state, as op-geth does after a crash that lost unflushed state: a
// forkchoice update to the parent makes it re-execute up to there, and the
// payload is sent once more.
func (a *Adapter) insert(ctx context.Context, env *eth.ExecutionPayloadEnvelope) error {
	p := env.ExecutionPayload
	for attempt := 1; ; attempt++ {
		ectx, cancel := context.WithTimeout(ctx, a.cfg.EngineTimeout)
		res, err := a.engine.NewPayload(ectx, p, env.ParentBeaconBlockRoot)
		cancel()
		if err == nil && res == nil {
			err = errors.New("empty answer")
		}
		if err != nil {
			return fmt.Errorf("backfill: newPayload %d (%s): %w", uint64(p.BlockNumber), p.BlockHash, err)
		}
		switch res.Status {
		case eth.ExecutionValid:
			return nil
		case eth.ExecutionInvalid, eth.ExecutionInvalidBlockHash:
			return fmt.Errorf("backfill: block %d (%s): %w: %s", uint64(p.BlockNumber), p.BlockHash, ErrBackfillInvalid, validationError(*res))
		case eth.ExecutionSyncing, eth.ExecutionAccepted:
			if attempt > 1 {
				return fmt.Errorf("backfill: newPayload %d (%s) answered %s again after the engine was pointed at its parent: "+
					"ALARM: the engine holds the parent but does not execute the block, likely after an unclean stop: it lacks "+
					"the parent's state, or (op-geth with its default path-scheme database) it came back in snap-sync mode, "+
					"in which it imports no payload until a snap sync from its peers completes. Remedy: restart it cleanly "+
					"once the blocks it holds without their state were dropped (the node does that when it has the engine's "+
					"debug RPC), or run op-geth with --state.scheme hash",
					uint64(p.BlockNumber), p.BlockHash, res.Status)
			}
			parent := eth.L2BlockRef{Hash: p.ParentHash, Number: uint64(p.BlockNumber) - 1}
			if err := a.onSourceChain(ctx, parent); err != nil {
				return err
			}
			if err := a.recoverParent(ctx, p); err != nil {
				return err
			}
		default:
			return fmt.Errorf("backfill: newPayload %d (%s) answered %s", uint64(p.BlockNumber), p.BlockHash, res.Status)
		}
	}
}

// recoverParent points the engine's head at p's parent, leaving safe and
// finalized as they are (zero hashes), so that it rebuilds the parent's state.
func (a *Adapter) recoverParent(ctx context.Context, p *eth.ExecutionPayload) error {
	a.log.Warn("Engine lacks the parent state of a backfilled block; pointing it at the parent",
		"number", uint64(p.BlockNumber), "hash", p.BlockHash, "parent", p.ParentHash)
	res, _, err := a.sendForkchoice(ctx, eth.ForkchoiceState{HeadBlockHash: p.ParentHash})
	if err != nil {
		return fmt.Errorf("backfill: forkchoice update to parent %s of block %d: %w", p.ParentHash, uint64(p.BlockNumber), err)
	}
	if res.PayloadStatus.Status != eth.ExecutionValid {
		return fmt.Errorf("backfill: forkchoice update to parent %s of block %d answered %s",
			p.ParentHash, uint64(p.BlockNumber), res.PayloadStatus.Status)
	}
	return nil
}

// checkpoint moves the engine's head to the last backfilled block, keeping
// l's safe and finalized labels, so that work survives a crash. A label above
// the checkpoint (an engine that lost blocks below it is being rebuilt) is not
// named: the engine keeps its own until the backfill's last update.
func (a *Adapter) checkpoint(ctx context.Context, head eth.L2BlockRef, l reorg.Local) error {
	fc := eth.ForkchoiceState{HeadBlockHash: head.Hash}
	if l.Safe.Number <= head.Number {
		fc.SafeBlockHash = l.Safe.Hash
	}
	if l.Finalized.Number <= head.Number {
		fc.FinalizedBlockHash = l.Finalized.Hash
	}
	res, _, err := a.sendForkchoice(ctx, fc)
	if err != nil {
		return fmt.Errorf("backfill: checkpoint at %d (%s): %w", head.Number, head.Hash, err)
	}
	if res.PayloadStatus.Status != eth.ExecutionValid {
		return fmt.Errorf("backfill: checkpoint at %d (%s) answered %s", head.Number, head.Hash, res.PayloadStatus.Status)
	}
	a.setStatusHead(head)
	return nil
}

// onSourceChain checks that ref is the source's block at its height, before the
// engine's head is moved there: the provider may be on another chain.
func (a *Adapter) onSourceChain(ctx context.Context, ref eth.L2BlockRef) error {
	got, err := a.sourceLookup(ctx, ref.Number)
	if err != nil {
		return fmt.Errorf("backfill: checking block %d against the source: %w", ref.Number, err)
	}
	if got.Hash != ref.Hash {
		return fmt.Errorf("backfill: the provider's block %d is %s, the source's %s: the provider is not on the source's chain",
			ref.Number, ref.Hash, got.Hash)
	}
	return nil
}

// sourceHolds reports whether the INVALID block p is the source's block at
// its height, so that the decision's target builds on it too; a provider's
// block on another chain says nothing of the source's head.
func (a *Adapter) sourceHolds(ctx context.Context, p *eth.ExecutionPayload) bool {
	bad := eth.L2BlockRef{Hash: p.BlockHash, Number: uint64(p.BlockNumber)}
	if err := a.onSourceChain(ctx, bad); err != nil {
		a.log.Warn("INVALID block is the provider's, not the source's; the source's head stays eligible",
			"number", bad.Number, "hash", bad.Hash, "err", err)
		return false
	}
	return true
}
