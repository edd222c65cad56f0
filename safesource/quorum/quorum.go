package quorum

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/log"

	"github.com/lightcl/lightcl/internal/fanout"
	"github.com/lightcl/lightcl/safesource"
)

// Quorum is a SafeHeadSource over N member sources that reports only what M of
// them agree on. Safe for concurrent use; rounds run one at a time.
type Quorum struct {
	cfg     Config
	members []safesource.SafeHeadSource
	log     log.Logger
	metrics Metrics

	roundMu   sync.Mutex // one round at a time, so member status reads in order
	finalized eth.L2BlockRef

	statusMu sync.Mutex
	status   []MemberStatus
	last     Round
}

var _ safesource.SafeHeadSource = (*Quorum)(nil)

// New returns a Quorum over members. logger and metrics may be nil.
func New(cfg Config, members []safesource.SafeHeadSource, logger log.Logger, metrics Metrics) (*Quorum, error) {
	if err := cfg.Check(len(members)); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults(len(members))
	names := map[string]bool{}
	status := make([]MemberStatus, len(members))
	for i, m := range members {
		if m == nil {
			return nil, fmt.Errorf("quorum: member %d is nil", i)
		}
		if names[m.Name()] {
			return nil, fmt.Errorf("quorum: two members are named %q; names identify members in status and metrics", m.Name())
		}
		names[m.Name()] = true
		status[i].Name = m.Name()
	}
	if logger == nil {
		logger = log.NewLogger(log.DiscardHandler())
	}
	if metrics == nil {
		metrics = NoopMetrics{}
	}
	return &Quorum{cfg: cfg, members: members, log: logger.New("source", cfg.Name), metrics: metrics, status: status}, nil
}

// Name returns the configured name.
func (q *Quorum) Name() string { return q.cfg.Name }

// Threshold returns M.
func (q *Quorum) Threshold() int { return q.cfg.Threshold }

// Heads runs a round and returns the agreed heads. Safe must have a quorum or
// the error wraps ErrNoQuorum. Finalized without a quorum this round stays at
// the last agreed finalized head (when it is still an ancestor of the agreed
// safe head); local-safe without a quorum is reported as safe.
func (q *Quorum) Heads(ctx context.Context) (safesource.Heads, error) {
	q.roundMu.Lock()
	defer q.roundMu.Unlock()
	r, answers, cutOff := q.round(ctx)
	q.record(r, answers, cutOff)
	if r.Err != nil {
		return safesource.Heads{}, fmt.Errorf("%s: %w", q.cfg.Name, r.Err)
	}
	q.finalized = r.Heads.Finalized
	return r.Heads, nil
}

// L2BlockRefByNumber returns the block at height n that at least M members
// hold canonical, asking all members in parallel and returning as soon as M
// agree.
func (q *Quorum) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	calls := fanout.Start[int, eth.L2BlockRef](ctx, fanout.Config{Timeout: q.cfg.MemberTimeout})
	defer calls.Stop() // the members not heard yet give up
	for i, m := range q.members {
		calls.Go(i, func(ctx context.Context) (eth.L2BlockRef, error) {
			ref, err := m.L2BlockRefByNumber(ctx, n)
			if err == nil && ref.Number != n {
				err = fmt.Errorf("%s answered block %d for height %d", m.Name(), ref.Number, n)
			}
			return ref, err
		})
	}
	votes := map[eth.L2BlockRef]int{} // the whole record must agree, not just the hash
	var errs []error
	notFound := 0
	for range q.members {
		select {
		case r := <-calls.Results():
			if r.Err != nil {
				if errors.Is(r.Err, safesource.ErrNotFound) || isNotFound(r.Err) {
					notFound++
				}
				errs = append(errs, r.Err)
				continue
			}
			votes[r.Value]++
			if votes[r.Value] >= q.cfg.Threshold {
				return r.Value, nil
			}
		case <-ctx.Done():
			return eth.L2BlockRef{}, fmt.Errorf("%s: block %d: %w", q.cfg.Name, n, ctx.Err())
		}
	}
	err := fmt.Errorf("%s: block %d: fewer than %d of %d members agree (%d distinct answers, %d errors): %w",
		q.cfg.Name, n, q.cfg.Threshold, len(q.members), len(votes), len(errs), ErrNoQuorum)
	if notFound > len(q.members)-q.cfg.Threshold {
		// too many members lack the block for any hash to reach M
		err = fmt.Errorf("%w (%w)", err, safesource.ErrNotFound)
	}
	return eth.L2BlockRef{}, errors.Join(append([]error{err}, errs...)...)
}
