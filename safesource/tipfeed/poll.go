package tipfeed

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// poll reads the remote's latest header every PollInterval and delivers its
// payload when the head changed, until ctx ends or, when until is above 0,
// until that long has passed (time to try subscribing again). reason says why
// the feed polls.
func (r *Remote) poll(ctx context.Context, t *tip, reason string, until time.Duration) {
	var resubscribe <-chan time.Time
	if until > 0 {
		timer := time.NewTimer(until)
		defer timer.Stop()
		resubscribe = timer.C
	}
	ticker := time.NewTicker(r.cfg.PollInterval)
	defer ticker.Stop()
	if r.Status().Mode == ModeSubscription {
		r.setMode(ModePolling, reason) // at once: the subscription is gone
	}
	for {
		r.pollOnce(ctx, t, reason)
		select {
		case <-ctx.Done():
			return
		case <-resubscribe:
			return
		case <-ticker.C:
		}
	}
}

// pollOnce reads the latest header and delivers its payload if it is new.
// A failed read puts the feed in ModeDown until a read answers again; reason
// says why the feed polls.
func (r *Remote) pollOnce(ctx context.Context, t *tip, reason string) {
	hash, err := r.latest(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.fail(kindHead, err)
			r.setMode(ModeDown, err.Error())
		}
		return
	}
	r.setMode(ModePolling, reason)
	r.deliver(ctx, t, hash)
}

// latest reads the hash of the remote's latest block with one
// eth_getBlockByNumber("latest", false), whose header op-service checks
// against the hash.
func (r *Remote) latest(ctx context.Context) (common.Hash, error) {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	info, err := guard(func() (eth.BlockInfo, error) { return r.l2.InfoByLabel(cctx, eth.Unsafe) })
	if err != nil {
		return common.Hash{}, fmt.Errorf("%s: latest header: %w", r.cfg.Name, err)
	}
	return info.Hash(), nil
}
