package gossip_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	gcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/log"
	"github.com/golang/snappy"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	libp2p "github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ethereum-optimism/optimism/op-node/metrics"
	"github.com/ethereum-optimism/optimism/op-node/p2p"
	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/clock"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	opsigner "github.com/ethereum-optimism/optimism/op-service/signer"
	"github.com/ethereum-optimism/optimism/op-service/sources"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/safesource/gossip"
	"github.com/lightcl/lightcl/safesource/tipfeed"
)

// blacklistSweep is the one goroutine a closed host leaves: op-node's
// NewGossipSub gives gossipsub a pubsub.TimeCachedBlacklist, whose time cache
// sweeps every minute for ever (it has no Done, unlike the seen-message
// caches). TestCloseLeavesNoGoroutine counts them: one per host.
const blacklistSweep = "github.com/libp2p/go-libp2p-pubsub/timecache.background"

// meterSweep is libp2p's bandwidth meters' process-wide sweeper
// (go-flow-metrics' globalSweeper): started by the first host, shared by all.
const meterSweep = "github.com/libp2p/go-flow-metrics.(*sweeper).run"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction(blacklistSweep), goleak.IgnoreAnyFunction(meterSweep))
}

var (
	_ engineadapter.TipFeed = (*gossip.Feed)(nil)
	_ tipfeed.Feed          = (*gossip.Feed)(nil)
	_ gossip.L1Source       = (*sources.L1Client)(nil)
	_ gossip.PayloadSource  = (*sources.L2Client)(nil)
)

// chainID is the test chain's; its block topics are /optimism/901/<n>/blocks.
const chainID = 901

// topicV4 is the topic of Isthmus blocks, which every test block is.
var topicV4 = fmt.Sprintf("/optimism/%d/3/blocks", chainID)

// rollupConfig is a chain with every fork up to Isthmus active from genesis,
// so its blocks go on the v4 topic.
func rollupConfig() *rollup.Config {
	zero := uint64(0)
	cfg := &rollup.Config{
		L2ChainID: big.NewInt(chainID), BlockTime: 2,
		RegolithTime: &zero, CanyonTime: &zero, DeltaTime: &zero, EcotoneTime: &zero, FjordTime: &zero,
		GraniteTime: &zero, HoloceneTime: &zero, IsthmusTime: &zero,
		L1SystemConfigAddress: common.HexToAddress("0x5C"),
	}
	cfg.Genesis.L2Time = uint64(time.Now().Unix()) - 1000
	return cfg
}

// block is an Isthmus block at number with timestamp ts and a valid block
// hash. The validator rejects blocks older than the gossip timestamp
// threshold (60s), and internal/fake/fakechain's blocks are from 2023 and on
// the v1 topic, so the tests build their own, timestamped now.
func block(number uint64, ts time.Time) *eth.ExecutionPayloadEnvelope {
	zero := eth.Uint64Quantity(0)
	withdrawals := types.Withdrawals{}
	withdrawalsRoot := gcrypto.Keccak256Hash([]byte("message passer storage"))
	beaconRoot := common.Hash{0xbe}
	p := &eth.ExecutionPayload{
		ParentHash:      gcrypto.Keccak256Hash(big.NewInt(int64(number)).Bytes()),
		BlockNumber:     hexutil.Uint64(number),
		Timestamp:       hexutil.Uint64(ts.Unix()),
		GasLimit:        30_000_000,
		Withdrawals:     &withdrawals,
		WithdrawalsRoot: &withdrawalsRoot,
		BlobGasUsed:     &zero,
		ExcessBlobGas:   &zero,
	}
	env := &eth.ExecutionPayloadEnvelope{ExecutionPayload: p, ParentBeaconBlockRoot: &beaconRoot}
	p.BlockHash, _ = env.CheckBlockHash()
	return env
}

// signed is env as op-node gossips it, signed by key: snappy(signature ‖ SSZ).
func signed(t *testing.T, key *ecdsa.PrivateKey, env *eth.ExecutionPayloadEnvelope) []byte {
	var buf bytes.Buffer
	_, err := env.MarshalSSZ(&buf)
	require.NoError(t, err)
	payload := buf.Bytes()
	sig, err := opsigner.NewLocalSigner(key).SignBlockV1(t.Context(), eth.ChainIDFromBig(big.NewInt(chainID)), opsigner.PayloadHash(payload))
	require.NoError(t, err)
	return snappy.Encode(nil, append(sig[:], payload...))
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := gcrypto.GenerateKey()
	require.NoError(t, err)
	return k
}

func addr(k *ecdsa.PrivateKey) common.Address { return gcrypto.PubkeyToAddress(k.PublicKey) }

// quiet discards logs; set it to log.Root() to see them.
var quiet = log.NewLogger(log.DiscardHandler())

// hostConfig is a test host's op-node config on 127.0.0.1.
func hostConfig(t *testing.T) *p2p.Config {
	k, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	require.NoError(t, err)
	return &p2p.Config{
		Priv: k.(*crypto.Secp256k1PrivateKey), NoDiscovery: true, ListenIP: net.IPv4(127, 0, 0, 1),
		HostMux: []libp2p.Option{p2p.YamuxC()}, HostSecurity: []libp2p.Option{p2p.NoiseC()},
		PeersLo: 1, PeersHi: 10, PeersGrace: 10 * time.Second,
		TimeoutDial: 2 * time.Second, TimeoutNegotiation: 2 * time.Second, TimeoutAccept: 2 * time.Second,
		Store: dssync.MutexWrap(ds.NewMapDatastore()),
		// a publisher that can publish what the feed must reject
		GossipTimestampThreshold: time.Hour,
		// publishing at once reaches the peers before the mesh is grafted
		FloodPublish: true,
	}
}

// anySigner is a publisher's runtime config: it allows whichever key the
// publisher signs with next, so that its own validator lets the block out.
type anySigner struct {
	mu   sync.Mutex
	addr common.Address
}

func (s *anySigner) set(a common.Address) { s.mu.Lock(); s.addr = a; s.mu.Unlock() }
func (s *anySigner) P2PSequencerAddress() common.Address {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}
func (*anySigner) PreviousP2PSequencerAddress() common.Address { return common.Address{} }
func (*anySigner) ConfirmCurrentSigner()                       {}

type dropIn struct{}

func (dropIn) OnUnsafeL2Payload(context.Context, peer.ID, *eth.ExecutionPayloadEnvelope) error {
	return nil
}

// publisher is an op-node p2p node that signs and publishes blocks.
type publisher struct {
	node   *p2p.NodeP2P
	signer *anySigner
}

func newPublisher(t *testing.T) *publisher {
	ctx, cancel := context.WithCancel(context.Background())
	signer := &anySigner{}
	node, err := p2p.NewNodeP2P(ctx, rollupConfig(), quiet, hostConfig(t), dropIn{}, nil, signer, metrics.NoopMetrics, clock.SystemClock)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, node.Close()); cancel() })
	return &publisher{node: node, signer: signer}
}

// addrs are the publisher's addresses as static peer strings.
func (p *publisher) addrs(t *testing.T) []string {
	h := p.node.Host()
	as, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	require.NoError(t, err)
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// waitFor waits until the publisher sees id on the v4 topic.
func (p *publisher) waitFor(t *testing.T, id peer.ID) {
	require.Eventually(t, func() bool {
		for _, q := range p.node.GossipOut().BlocksTopicV4Peers() {
			if q == id {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "publisher does not see the feed on the topic")
}

// publish signs env with key and publishes it.
func (p *publisher) publish(t *testing.T, key *ecdsa.PrivateKey, env *eth.ExecutionPayloadEnvelope) {
	p.signer.set(addr(key))
	require.NoError(t, p.node.GossipOut().SignAndPublishL2Payload(t.Context(), env, opsigner.NewLocalSigner(key)))
}

// rawPublisher publishes any bytes on the v4 topic: it is a host built by
// op-node's config with a plain gossipsub router and no validator.
type rawPublisher struct {
	topic *pubsub.Topic
}

func newRawPublisher(t *testing.T, to *gossip.Feed) *rawPublisher {
	ctx, cancel := context.WithCancel(context.Background())
	conf := hostConfig(t)
	h, err := conf.Host(quiet, nil, metrics.NoopMetrics)
	require.NoError(t, err)
	ps, err := p2p.NewGossipSub(ctx, h, rollupConfig(), conf, nil, metrics.NoopMetrics, quiet)
	require.NoError(t, err)
	topic, err := ps.Join(topicV4)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, topic.Close()); require.NoError(t, h.Close()); cancel() })
	st := to.Status()
	require.NoError(t, h.Connect(t.Context(), peer.AddrInfo{ID: st.ID, Addrs: st.ListenAddrs}))
	require.Eventually(t, func() bool { return len(topic.ListPeers()) > 0 }, 10*time.Second, 10*time.Millisecond,
		"raw publisher does not see the feed on the topic")
	return &rawPublisher{topic: topic}
}

func (r *rawPublisher) publish(t *testing.T, data []byte) {
	require.NoError(t, r.topic.Publish(t.Context(), data))
}

// world is a Feed under test whose static peer is an op-node publisher,
// and a raw publisher connected to it. Its Run delivers to out.
type world struct {
	feed *gossip.Feed
	pub  *publisher
	raw  *rawPublisher
	out  chan *eth.ExecutionPayloadEnvelope
	// run starts Run (unless the test does it itself); stop ends it.
	run  func()
	stop func()
}

// opts are a world's optional parts.
type opts struct {
	metrics gossip.Metrics
	logger  log.Logger // default: quiet
	noRun   bool       // the test starts Run itself
}

// newWorld starts the world; cfg needs at least a Signer.
func newWorld(t *testing.T, cfg gossip.Config, o opts) *world {
	w := &world{pub: newPublisher(t), out: make(chan *eth.ExecutionPayloadEnvelope, 16)}
	cfg.RollupConfig = rollupConfig()
	cfg.ListenIP = net.IPv4(127, 0, 0, 1)
	cfg.StaticPeers = w.pub.addrs(t)
	var err error
	if o.logger == nil {
		o.logger = quiet
	}
	w.feed, err = gossip.New(t.Context(), cfg, o.logger, o.metrics)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.feed.Close()) })
	w.pub.waitFor(t, w.feed.Status().ID)
	w.raw = newRawPublisher(t, w.feed)

	ctx, cancel := context.WithCancel(context.Background())
	var done chan error
	w.run = func() {
		done = make(chan error, 1)
		go func() { done <- w.feed.Run(ctx, w.out) }()
	}
	w.stop = func() {
		cancel()
		if done != nil {
			require.NoError(t, <-done)
			done = nil
		}
	}
	t.Cleanup(w.stop) // runs before the feed's Close
	if !o.noRun {
		w.run()
	}
	return w
}

// next is the next block Run delivers.
func (w *world) next(t *testing.T) *eth.ExecutionPayloadEnvelope {
	t.Helper()
	select {
	case env := <-w.out:
		return env
	case <-time.After(10 * time.Second):
		t.Fatal("no block delivered")
		return nil
	}
}

// requireNothingMore checks that Run delivers nothing for a while.
func (w *world) requireNothingMore(t *testing.T) {
	t.Helper()
	select {
	case env := <-w.out:
		t.Fatalf("unexpected block %d delivered", uint64(env.ExecutionPayload.BlockNumber))
	case <-time.After(300 * time.Millisecond):
	}
}

// waitStatus waits until ok holds for the feed's status.
func (w *world) waitStatus(t *testing.T, what string, ok func(gossip.Status) bool) {
	t.Helper()
	require.Eventually(t, func() bool { return ok(w.feed.Status()) }, 10*time.Second, 5*time.Millisecond, what)
}
