package tipfeed

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/sync/errgroup"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fanout"
	"github.com/lightcl/lightcl/safesource"
)

// recentSize is how many delivered block hashes Merged remembers to drop the
// same block coming from another feed.
const recentSize = 1024

// Feed is a tip feed, as the engine adapter takes it: Remote is one, and
// Merge makes one of several.
type Feed interface {
	// Name names the feed in logs, metrics and status.
	Name() string
	// Run delivers the feed's new tip payloads to out until ctx ends, then
	// returns nil. It blocks on out only until ctx ends. Run is called once.
	Run(ctx context.Context, out chan<- *eth.ExecutionPayloadEnvelope) error
	// PayloadByHash returns the block with the given hash, hash-verified.
	PayloadByHash(ctx context.Context, hash common.Hash) (*eth.ExecutionPayloadEnvelope, error)
}

var _ Feed = (*Remote)(nil)

// Merged is several tip feeds as one: the first feed to deliver a block
// wins, and any feed that has a block can answer for it.
type Merged struct {
	name  string
	feeds []Feed
}

// Merge returns the feeds as one Feed named name.
func Merge(name string, feeds ...Feed) *Merged {
	return &Merged{name: name, feeds: append([]Feed(nil), feeds...)}
}

// Name returns the merged feed's name.
func (m *Merged) Name() string { return m.name }

// Run runs every feed and hands on each block the first time a feed
// delivers it, until ctx ends; it returns once every feed's Run returned,
// with their errors if any (nil when ctx ended). Run is called once.
func (m *Merged) Run(ctx context.Context, out chan<- *eth.ExecutionPayloadEnvelope) error {
	if len(m.feeds) == 0 {
		<-ctx.Done()
		return nil
	}
	in := make(chan *eth.ExecutionPayloadEnvelope)
	errs := make([]error, len(m.feeds))
	var g errgroup.Group // no feed's end stops the others: each runs until ctx ends
	for i, f := range m.feeds {
		g.Go(func() error {
			if err := f.Run(ctx, in); err != nil {
				errs[i] = fmt.Errorf("%s: %s: %w", m.name, f.Name(), err)
			}
			return nil
		})
	}
	go func() { _ = g.Wait(); close(in) }() // ends with the feeds, before Run returns
	seen := newRecent(recentSize)
	for env := range in { // the feeds block on in only until ctx ends
		if env == nil || env.ExecutionPayload == nil || !seen.add(env.ExecutionPayload.BlockHash) {
			continue
		}
		select {
		case out <- env:
		case <-ctx.Done():
		}
	}
	return errors.Join(errs...)
}

// PayloadByHash asks every feed at once and returns the first answer that
// checks against hash; the other calls are cancelled and waited for. When no
// feed has the block, the error joins theirs (safesource.ErrNotFound when
// none of them has it).
func (m *Merged) PayloadByHash(ctx context.Context, hash common.Hash) (*eth.ExecutionPayloadEnvelope, error) {
	if len(m.feeds) == 0 {
		return nil, fmt.Errorf("%s: no feeds: block %s: %w", m.name, hash, safesource.ErrNotFound)
	}
	calls := fanout.Start[int, *eth.ExecutionPayloadEnvelope](ctx, fanout.Config{})
	defer calls.Stop() // the other calls are cancelled and waited for
	for i, f := range m.feeds {
		calls.Go(i, func(ctx context.Context) (*eth.ExecutionPayloadEnvelope, error) {
			env, err := f.PayloadByHash(ctx, hash)
			if err == nil {
				err = checkPayload(env, hash)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name(), err)
			}
			return env, nil
		})
	}
	var errs []error
	for range m.feeds {
		r := <-calls.Results()
		if r.Err == nil {
			return r.Value, nil
		}
		errs = append(errs, r.Err)
	}
	return nil, fmt.Errorf("%s: %w", m.name, errors.Join(errs...))
}

// recent is a set of the last n hashes added.
type recent struct {
	ring []common.Hash
	next int
	set  map[common.Hash]bool
}

func newRecent(n int) *recent {
	return &recent{ring: make([]common.Hash, n), set: make(map[common.Hash]bool, n)}
}

// add adds h and reports whether it was new; the oldest hash makes room.
func (r *recent) add(h common.Hash) bool {
	if r.set[h] {
		return false
	}
	delete(r.set, r.ring[r.next])
	r.ring[r.next] = h
	r.next = (r.next + 1) % len(r.ring)
	r.set[h] = true
	return true
}
