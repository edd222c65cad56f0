package gossip

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"
	lru "github.com/hashicorp/golang-lru/v2"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ethereum-optimism/optimism/op-node/metrics"
	"github.com/ethereum-optimism/optimism/op-node/p2p"
	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/clock"
	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/safesource"
)

// errRunTwice is returned by a second call to Run.
var errRunTwice = errors.New("Run called twice")

// Feed is a tip feed of the unsafe blocks gossiped over op-node's p2p
// network, each checked by op-node's own blocks validator. Status and
// PayloadByHash are safe for concurrent use, also while Run runs.
type Feed struct {
	cfg     Config
	log     log.Logger
	count   *counter
	node    *p2p.NodeP2P
	cancel  context.CancelFunc // ends the host's background work
	running atomic.Bool
	closed  sync.Once

	// queue holds accepted blocks until Run hands them on; queueMu lets one
	// producer at a time make room by dropping the oldest.
	queue   chan *eth.ExecutionPayloadEnvelope
	queueMu sync.Mutex
	recent  *lru.Cache[common.Hash, *eth.ExecutionPayloadEnvelope]
}

// New starts the p2p host, joins the chain's block topics and dials the
// static peers. ctx is only read for its values: the host runs until Close.
// logger and metrics may be nil.
func New(ctx context.Context, cfg Config, logger log.Logger, m Metrics) (*Feed, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = log.NewLogger(log.DiscardHandler())
	}
	if m == nil {
		m = NoopMetrics{}
	}
	conf, generated, err := cfg.p2pConfig()
	if err != nil {
		return nil, err
	}
	recent, err := lru.New[common.Hash, *eth.ExecutionPayloadEnvelope](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("gossip: CacheSize: %w", err)
	}
	f := &Feed{
		cfg:    cfg,
		log:    logger.New("feed", cfg.Name),
		count:  newCounter(m),
		queue:  make(chan *eth.ExecutionPayloadEnvelope, cfg.BufferSize),
		recent: recent,
	}
	var serve p2p.L2Chain // a nil interface, not a nil *T, when there is nothing to serve
	if cfg.ServePayloads != nil {
		serve = cfg.ServePayloads
	}
	// op-node's validator names its reasons only in its log
	p2pLog := log.NewLogger(&reasonHandler{inner: logger.Handler(), c: f.count})
	resCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.node, err = p2p.NewNodeP2P(resCtx, cfg.RollupConfig, p2pLog, setup{Config: conf, tracer: tracer{f.count}},
		gossipIn{f}, serve, cfg.Signer, metrics.NoopMetrics, clock.SystemClock)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("gossip: starting the p2p host: %w", err)
	}
	f.cancel = cancel
	nw := f.node.Host().Network()
	recordPeers := func(network.Network, network.Conn) { m.RecordPeers(len(nw.Peers())) }
	nw.Notify(&network.NotifyBundle{ConnectedF: recordPeers, DisconnectedF: recordPeers})
	recordPeers(nil, nil)
	if generated {
		f.log.Info("Gossip host key generated for this run: the peer id changes at each start", "peer_id", f.node.Host().ID())
	}
	f.log.Info("Gossip feed started", "peer_id", f.node.Host().ID(), "addrs", f.listenAddrs(), "static_peers", len(cfg.StaticPeers))
	return f, nil
}

// setup is op-node's host config with a tracer added to gossipsub.
type setup struct {
	*p2p.Config
	tracer pubsub.RawTracer
}

func (s setup) ConfigureGossip(cfg *rollup.Config) []pubsub.Option {
	return append(s.Config.ConfigureGossip(cfg), pubsub.WithRawTracer(s.tracer))
}

// gossipIn takes the blocks op-node's validator accepted, keeping the
// callback off Feed's API.
type gossipIn struct{ f *Feed }

// OnUnsafeL2Payload runs on gossipsub's subscriber goroutine: it must not
// wait, or pubsub drops messages.
func (g gossipIn) OnUnsafeL2Payload(_ context.Context, from peer.ID, env *eth.ExecutionPayloadEnvelope) error {
	id := env.ExecutionPayload.ID()
	g.f.recent.Add(id.Hash, env)
	g.f.count.accept(id)
	g.f.enqueue(env)
	g.f.log.Debug("Gossip block accepted", "number", id.Number, "hash", id.Hash, "peer", from)
	return nil
}

// enqueue adds env to the queue, dropping the oldest blocks when it is full.
func (f *Feed) enqueue(env *eth.ExecutionPayloadEnvelope) {
	f.queueMu.Lock()
	defer f.queueMu.Unlock()
	for {
		select {
		case f.queue <- env:
			return
		default:
		}
		select {
		case old := <-f.queue:
			f.count.drop()
			f.log.Debug("Gossip block dropped, the tip path is behind", "number", uint64(old.ExecutionPayload.BlockNumber), "hash", old.ExecutionPayload.BlockHash)
		default: // Run took one meanwhile
		}
	}
}

// Name returns the configured name (default "gossip").
func (f *Feed) Name() string { return f.cfg.Name }

// Run hands on each accepted block, oldest first, until ctx ends; then it
// returns nil. It blocks on out only until ctx ends, and it may be called
// once. Blocks accepted before Run starts wait in the buffer.
func (f *Feed) Run(ctx context.Context, out chan<- *eth.ExecutionPayloadEnvelope) error {
	if !f.running.CompareAndSwap(false, true) {
		return fmt.Errorf("%s: %w", f.cfg.Name, errRunTwice)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case env := <-f.queue:
			select {
			case out <- env:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// PayloadByHash returns one of the last CacheSize accepted blocks. For any
// other it returns an error that wraps both ethereum.NotFound and
// safesource.ErrNotFound: the tip path then asks its other feeds or backfills.
func (f *Feed) PayloadByHash(_ context.Context, hash common.Hash) (*eth.ExecutionPayloadEnvelope, error) {
	if env, ok := f.recent.Get(hash); ok {
		return env, nil
	}
	return nil, fmt.Errorf("%s: block %s is not among the last %d accepted: %w (%w)",
		f.cfg.Name, hash, f.cfg.CacheSize, ethereum.NotFound, safesource.ErrNotFound)
}

// Close stops the host: it leaves the topics, closes every connection and
// ends the host's goroutines (all but gossipsub's blacklist sweep, see the
// package doc). Call it after Run returned; a second call does nothing.
func (f *Feed) Close() error {
	var err error
	f.closed.Do(func() {
		err = f.node.Close()
		f.cancel()
	})
	return err
}
