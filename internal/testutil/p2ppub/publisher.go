package p2ppub

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	gcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/log"
	"github.com/golang/snappy"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	libp2p "github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/ethereum-optimism/optimism/op-node/metrics"
	"github.com/ethereum-optimism/optimism/op-node/p2p"
	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/clock"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	opsigner "github.com/ethereum-optimism/optimism/op-service/signer"
)

// Config configures a Publisher.
type Config struct {
	// RollupConfig is the chain's: its L2 chain id names the topics and is
	// signed over, its fork times pick the topic of each block. Required.
	RollupConfig *rollup.Config
	// TimestampThreshold is how old a block the signing host's own validator
	// lets out; default 100,000 hours, as the test chains are from 2023.
	TimestampThreshold time.Duration
	// Logger takes the hosts' logs; default: discarded.
	Logger log.Logger
}

// DefaultConfig returns the defaults; RollupConfig still has to be set.
func DefaultConfig() Config {
	return Config{TimestampThreshold: 100_000 * time.Hour, Logger: log.NewLogger(log.DiscardHandler())}
}

// Check reports the first field that is missing or out of range.
func (c Config) Check() error {
	switch {
	case c.RollupConfig == nil:
		return errors.New("p2ppub: RollupConfig is missing")
	case c.RollupConfig.L2ChainID == nil:
		return errors.New("p2ppub: RollupConfig has no L2ChainID")
	case c.TimestampThreshold < 0:
		return fmt.Errorf("p2ppub: TimestampThreshold %s is negative", c.TimestampThreshold)
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.TimestampThreshold == 0 {
		c.TimestampThreshold = d.TimestampThreshold
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return c
}

// Publisher publishes blocks on a chain's block topics from 127.0.0.1.
// Its methods are safe for concurrent use; publishes run one at a time.
type Publisher struct {
	cfg    Config
	node   *p2p.NodeP2P // the signing host: op-node's
	signer *signerSwitch
	raw    host.Host // the raw host: plain gossipsub, no validator
	topics map[string]*pubsub.Topic
	cancel context.CancelFunc

	mu     sync.Mutex // one publish at a time: the signer is switched for each
	closed sync.Once
}

// New starts the publisher's two hosts on 127.0.0.1, each on a free port.
// They run until Close.
func New(cfg Config) (*Publisher, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{cfg: cfg, signer: &signerSwitch{}, topics: map[string]*pubsub.Topic{}, cancel: cancel}
	conf, err := hostConfig(cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	p.node, err = p2p.NewNodeP2P(ctx, cfg.RollupConfig, cfg.Logger, conf, dropIn{}, nil, p.signer, metrics.NoopMetrics, clock.SystemClock)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("p2ppub: starting the signing host: %w", err)
	}
	if err := p.startRaw(ctx); err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
}

// startRaw starts the raw host and joins the four block topics without a
// validator.
func (p *Publisher) startRaw(ctx context.Context) error {
	conf, err := hostConfig(p.cfg)
	if err != nil {
		return err
	}
	p.raw, err = conf.Host(p.cfg.Logger, nil, metrics.NoopMetrics)
	if err != nil {
		return fmt.Errorf("p2ppub: starting the raw host: %w", err)
	}
	ps, err := p2p.NewGossipSub(ctx, p.raw, p.cfg.RollupConfig, conf, nil, metrics.NoopMetrics, p.cfg.Logger)
	if err != nil {
		return fmt.Errorf("p2ppub: the raw host's gossipsub: %w", err)
	}
	for _, name := range topicNames(p.cfg.RollupConfig) {
		t, err := ps.Join(name)
		if err != nil {
			return fmt.Errorf("p2ppub: the raw host joining %s: %w", name, err)
		}
		p.topics[name] = t
	}
	return nil
}

// hostConfig is a host's op-node config on 127.0.0.1 with a new key.
func hostConfig(cfg Config) (*p2p.Config, error) {
	k, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("p2ppub: generating a host key: %w", err)
	}
	return &p2p.Config{
		Priv: k.(*crypto.Secp256k1PrivateKey), NoDiscovery: true, ListenIP: net.IPv4(127, 0, 0, 1),
		HostMux: []libp2p.Option{p2p.YamuxC(), p2p.MplexC()}, HostSecurity: []libp2p.Option{p2p.NoiseC()},
		PeersLo: 1, PeersHi: 10, PeersGrace: 10 * time.Second,
		TimeoutDial: 2 * time.Second, TimeoutNegotiation: 2 * time.Second, TimeoutAccept: 2 * time.Second,
		Store:                    dssync.MutexWrap(ds.NewMapDatastore()),
		GossipTimestampThreshold: cfg.TimestampThreshold,
		// publishing at once reaches the topic's peers before the mesh is grafted
		FloodPublish: true,
		UserAgent:    "lightcl-p2ppub",
	}, nil
}

// ID is the signing host's peer id.
func (p *Publisher) ID() peer.ID { return p.node.Host().ID() }

// Addrs are the signing host's addresses, each ending in /p2p/<ID>: a
// receiver's static peers.
func (p *Publisher) Addrs() []string {
	h := p.node.Host()
	as, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err != nil { // only for an empty id
		return nil
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// WaitPeer waits until the signing host sees id on all four block topics:
// from then on a published block reaches it.
func (p *Publisher) WaitPeer(ctx context.Context, id peer.ID) error {
	out := p.node.GossipOut()
	return waitOn(ctx, id, "the signing host", func() [][]peer.ID {
		return [][]peer.ID{out.BlocksTopicV1Peers(), out.BlocksTopicV2Peers(), out.BlocksTopicV3Peers(), out.BlocksTopicV4Peers()}
	})
}

// ConnectRaw has the raw host dial a receiver at addrs (multiaddrs ending in
// /p2p/<peer id>, e.g. its Status().ListenAddrs) and waits until it sees the
// receiver on all four block topics.
func (p *Publisher) ConnectRaw(ctx context.Context, addrs []string) error {
	var mas []multiaddr.Multiaddr
	for _, s := range addrs {
		a, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("p2ppub: receiver address %q: %w", s, err)
		}
		mas = append(mas, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return fmt.Errorf("p2ppub: receiver addresses %v: %w", addrs, err)
	}
	for _, info := range infos {
		if err := p.raw.Connect(ctx, info); err != nil {
			return fmt.Errorf("p2ppub: the raw host dialing %s: %w", info.ID, err)
		}
		err := waitOn(ctx, info.ID, "the raw host", func() [][]peer.ID {
			var lists [][]peer.ID
			for _, t := range p.topics {
				lists = append(lists, t.ListPeers())
			}
			return lists
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// waitOn polls lists until id is in every one.
func waitOn(ctx context.Context, id peer.ID, who string, lists func() [][]peer.ID) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		all := true
		for _, l := range lists() {
			all = all && slices.Contains(l, id)
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("p2ppub: %s does not see %s on the block topics: %w", who, id, ctx.Err())
		case <-t.C:
		}
	}
}

// Publish signs env with key and has op-node publish it on the block topic
// of its timestamp, as a sequencer's op-node does. op-node's own validator
// checks it first, with key as the signer: it holds back, with an error, a
// block it let out before in other bytes (signed by another key) and a sixth
// block at one height. The same bytes again within a minute are dropped
// silently by gossipsub as a duplicate.
func (p *Publisher) Publish(ctx context.Context, key *ecdsa.PrivateKey, env *eth.ExecutionPayloadEnvelope) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signer.set(gcrypto.PubkeyToAddress(key.PublicKey))
	if err := p.node.GossipOut().SignAndPublishL2Payload(ctx, env, opsigner.NewLocalSigner(key)); err != nil {
		return fmt.Errorf("p2ppub: publishing block %d (%s): %w", uint64(env.ExecutionPayload.BlockNumber), env.ExecutionPayload.BlockHash, err)
	}
	return nil
}

// PublishUnchecked signs env with key, encodes it as op-node does and
// publishes it from the raw host, which checks nothing: for a block signed
// by the wrong key, or one Publish would hold back. The same bytes twice
// within a minute are dropped by gossipsub as a duplicate.
func (p *Publisher) PublishUnchecked(ctx context.Context, key *ecdsa.PrivateKey, env *eth.ExecutionPayloadEnvelope) error {
	data, err := Encode(ctx, p.cfg.RollupConfig, key, env)
	if err != nil {
		return err
	}
	return p.PublishBytes(ctx, uint64(env.ExecutionPayload.Timestamp), data)
}

// PublishBytes publishes data as it is from the raw host on the block topic
// of timestamp.
func (p *Publisher) PublishBytes(ctx context.Context, timestamp uint64, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	name := TopicFor(p.cfg.RollupConfig, timestamp)
	if err := p.topics[name].Publish(ctx, data); err != nil {
		return fmt.Errorf("p2ppub: publishing %d bytes on %s: %w", len(data), name, err)
	}
	return nil
}

// Close stops both hosts; a second call does nothing. As any op-node
// gossipsub router, each host leaves its blacklist's minutely sweep running.
func (p *Publisher) Close() error {
	var err error
	p.closed.Do(func() {
		for _, t := range p.topics {
			err = errors.Join(err, t.Close())
		}
		if p.raw != nil {
			err = errors.Join(err, p.raw.Close())
		}
		err = errors.Join(err, p.node.Close())
		p.cancel()
	})
	return err
}

// Encode is env as op-node gossips it, signed by key:
// snappy(signature ‖ SSZ), where the SSZ is the envelope from Ecotone on (a
// parent beacon block root) and the bare payload before.
func Encode(ctx context.Context, cfg *rollup.Config, key *ecdsa.PrivateKey, env *eth.ExecutionPayloadEnvelope) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	if env.ParentBeaconBlockRoot != nil {
		_, err = env.MarshalSSZ(&buf)
	} else {
		_, err = env.ExecutionPayload.MarshalSSZ(&buf)
	}
	if err != nil {
		return nil, fmt.Errorf("p2ppub: encoding block %d: %w", uint64(env.ExecutionPayload.BlockNumber), err)
	}
	ssz := buf.Bytes()
	sig, err := opsigner.NewLocalSigner(key).SignBlockV1(ctx, eth.ChainIDFromBig(cfg.L2ChainID), opsigner.PayloadHash(ssz))
	if err != nil {
		return nil, fmt.Errorf("p2ppub: signing block %d: %w", uint64(env.ExecutionPayload.BlockNumber), err)
	}
	return snappy.Encode(nil, append(sig[:], ssz...)), nil
}

// TopicFor is the block topic of a block at timestamp, as op-node picks it:
// /optimism/<chain id>/<n>/blocks with n 3 from Isthmus, 2 from Ecotone, 1
// from Canyon, else 0.
func TopicFor(cfg *rollup.Config, timestamp uint64) string {
	n := 0
	switch {
	case cfg.IsIsthmus(timestamp):
		n = 3
	case cfg.IsEcotone(timestamp):
		n = 2
	case cfg.IsCanyon(timestamp):
		n = 1
	}
	return topicNames(cfg)[n]
}

func topicNames(cfg *rollup.Config) []string {
	out := make([]string, 4)
	for i := range out {
		out[i] = fmt.Sprintf("/optimism/%s/%d/blocks", cfg.L2ChainID, i)
	}
	return out
}

// signerSwitch is the signing host's runtime config: the signer is whichever
// key Publish signs with next, so that op-node's own validator lets it out.
type signerSwitch struct {
	mu   sync.Mutex
	addr common.Address
}

var _ p2p.GossipRuntimeConfig = (*signerSwitch)(nil)

func (s *signerSwitch) set(a common.Address) { s.mu.Lock(); s.addr = a; s.mu.Unlock() }

func (s *signerSwitch) P2PSequencerAddress() common.Address {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (*signerSwitch) PreviousP2PSequencerAddress() common.Address { return common.Address{} }
func (*signerSwitch) ConfirmCurrentSigner()                       {}

// dropIn drops the blocks the signing host receives: it only publishes.
type dropIn struct{}

func (dropIn) OnUnsafeL2Payload(context.Context, peer.ID, *eth.ExecutionPayloadEnvelope) error {
	return nil
}
