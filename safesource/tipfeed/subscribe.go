package tipfeed

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// headBuffer is how many announced heads may wait while a payload is fetched
// or delivered; go-ethereum's client queues more behind it.
const headBuffer = 64

// headNote is the part of a newHeads notification the feed reads. The header
// is not trusted: the payload fetched by its hash is checked.
type headNote struct {
	Hash   common.Hash    `json:"hash"`
	Number hexutil.Uint64 `json:"number"`
}

// subscription subscribes to newHeads and delivers the newest announced head
// until ctx ends or the subscription fails; it returns why it ended.
func (r *Remote) subscription(ctx context.Context, t *tip) string {
	heads := make(chan headNote, headBuffer)
	cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	sub, err := r.rpc.Subscribe(cctx, "eth", heads, "newHeads")
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			r.fail(kindSubscribe, fmt.Errorf("%s: eth_subscribe newHeads: %w", r.cfg.Name, err))
		}
		return fmt.Sprintf("subscribing to newHeads failed: %v", err)
	}
	defer sub.Unsubscribe()
	r.setMode(ModeSubscription, "")
	// Heads made while no subscription was live are announced nowhere: read
	// the latest one now.
	if hash, err := r.latest(ctx); err != nil {
		if ctx.Err() == nil {
			r.fail(kindHead, err)
		}
	} else {
		r.deliver(ctx, t, hash)
	}
	for {
		select {
		case <-ctx.Done():
			return reasonStopped
		case err := <-sub.Err():
			if err == nil { // only Unsubscribe ends it without an error
				err = errors.New("subscription closed")
			}
			if ctx.Err() == nil {
				r.fail(kindDropped, fmt.Errorf("%s: newHeads subscription: %w", r.cfg.Name, err))
			}
			return fmt.Sprintf("newHeads subscription dropped: %v", err)
		case h := <-heads:
			r.deliver(ctx, t, newest(heads, h).Hash)
		}
	}
}

// newest returns the last of h and the heads already waiting in heads,
// taking them out: a feed that fell behind skips to the newest head, and the
// adapter connects the gap through PayloadByHash.
func newest(heads <-chan headNote, h headNote) headNote {
	for {
		select {
		case next := <-heads:
			h = next
		default:
			return h
		}
	}
}
