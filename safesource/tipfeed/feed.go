package tipfeed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/retry"
	"github.com/ethereum-optimism/optimism/op-service/sources"

	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/rpclimit"
)

// errRunTwice is returned by a second call to Run.
var errRunTwice = errors.New("Run called twice")

// Remote is a tip feed from one remote L2 EL. Status and PayloadByHash are
// safe for concurrent use, also while Run runs.
type Remote struct {
	cfg     Config
	log     log.Logger
	metrics Metrics
	ws      bool // the URL is a websocket: subscribe first
	rpc     client.RPC
	l2      *sources.L2Client
	backoff retry.Strategy // waits between attempts to subscribe again
	running atomic.Bool
	// announced gets a value when the remote has a new head, before its
	// payload is fetched; one pending value stands for any number of heads.
	announced chan struct{}

	mu     sync.Mutex
	status Status
}

// New dials the remote and checks that it serves the configured chain.
// logger and metrics may be nil. The caller must Close the feed.
func New(ctx context.Context, cfg Config, logger log.Logger, metrics Metrics) (*Remote, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = log.NewLogger(log.DiscardHandler())
	}
	if metrics == nil {
		metrics = NoopMetrics{}
	}
	r := &Remote{
		cfg:     cfg,
		log:     logger.New("tipfeed", cfg.Name),
		metrics: metrics,
		ws:      isWebsocket(cfg.URL),
		backoff: &retry.ExponentialStrategy{Max: cfg.ResubscribeBackoff, MaxJitter: cfg.ResubscribeBackoff / 10},
		status:  Status{Mode: ModeDown},

		announced: make(chan struct{}, 1),
	}
	// op-service's client warns before it fails to dial; the error says it all.
	quiet := log.NewLogger(log.DiscardHandler())
	var err error
	r.rpc, err = client.NewRPC(ctx, quiet, cfg.URL,
		client.WithConnectTimeout(cfg.Timeout), client.WithCallTimeout(cfg.Timeout), client.WithBatchCallTimeout(cfg.Timeout),
		client.WithGethRPCOptions(rpclimit.Options(cfg.MaxResponseBytes)...))
	if err != nil {
		return nil, fmt.Errorf("%s: dial: %w: %w", cfg.Name, safesource.ErrUnreachable, err)
	}
	// untrusted: op-service recomputes every block hash and transactions root
	r.l2, err = sources.NewL2Client(r.rpc, r.log, nil, sources.L2ClientDefaultConfig(cfg.RollupConfig, false))
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	if err := r.checkChainID(ctx); err != nil {
		r.Close()
		return nil, err
	}
	metrics.RecordMode(cfg.Name, ModeDown)
	return r, nil
}

func (r *Remote) checkChainID(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if err := safesource.CheckChainID(cctx, r.rpc, r.cfg.URL, r.cfg.RollupConfig.L2ChainID); err != nil {
		return fmt.Errorf("%s: %w", r.cfg.Name, err)
	}
	return nil
}

// Name returns the configured name (default: the URL's host).
func (r *Remote) Name() string { return r.cfg.Name }

// Announcements receives a value each time the remote has a new head, before
// the feed fetches its payload (a pending value stands for any number of
// heads): an adapter whose safe source is the same remote can read its labels
// at once, while the payload is fetched.
func (r *Remote) Announcements() <-chan struct{} { return r.announced }

// Close closes the connection to the remote. Call it after Run returned.
func (r *Remote) Close() { r.rpc.Close() }

// Run delivers the remote's new tip payloads to out until ctx ends, then
// returns nil: over a websocket by subscription, falling back to polling
// while the subscription is down; over HTTP by polling. It blocks on out only
// until ctx ends, and it may be called once.
func (r *Remote) Run(ctx context.Context, out chan<- *eth.ExecutionPayloadEnvelope) error {
	if !r.running.CompareAndSwap(false, true) {
		return fmt.Errorf("%s: %w", r.cfg.Name, errRunTwice)
	}
	defer r.setMode(ModeDown, reasonStopped)
	t := &tip{out: out}
	if !r.ws {
		r.poll(ctx, t, "the endpoint is HTTP, which has no subscriptions", 0)
		return nil
	}
	attempt := 0
	for ctx.Err() == nil {
		started := time.Now()
		reason := r.subscription(ctx, t)
		if ctx.Err() != nil {
			break
		}
		if time.Since(started) >= r.cfg.ResubscribeBackoff {
			attempt = 0 // it lived a while: start the backoff over
		}
		wait := r.backoff.Duration(attempt)
		attempt++
		r.poll(ctx, t, reason, wait)
	}
	return nil
}

// reasonStopped is the reason for ModeDown once Run returns.
const reasonStopped = "stopped"

// tip is what Run has delivered so far; only Run's goroutine uses it.
type tip struct {
	out    chan<- *eth.ExecutionPayloadEnvelope
	last   common.Hash // hash of the last payload delivered
	failed common.Hash // hash of the last head whose payload could not be fetched
}

// deliver fetches the payload of the head with the given hash and hands it
// to the adapter, unless it was the last one delivered. A failed fetch is
// counted, and the next head (or poll) tries again; it is logged as a warning
// once per head.
func (r *Remote) deliver(ctx context.Context, t *tip, hash common.Hash) {
	if hash == t.last {
		return
	}
	if hash != t.failed { // a head fetched again after a failure was announced already
		select {
		case r.announced <- struct{}{}:
		default:
		}
	}
	env, err := r.PayloadByHash(ctx, hash)
	if err != nil {
		if ctx.Err() == nil {
			r.fail(kindPayload, err)
			if hash != t.failed {
				r.log.Warn("Tip feed could not fetch a head's payload", "url", r.cfg.URL, "hash", hash, "err", err)
				t.failed = hash
			}
		}
		return
	}
	select {
	case t.out <- env:
		t.last = hash
		r.delivered(env.ExecutionPayload.ID())
	case <-ctx.Done():
	}
}
