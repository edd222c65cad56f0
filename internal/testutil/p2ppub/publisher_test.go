package p2ppub_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"net"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	gcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/testutil/p2ppub"
	"github.com/lightcl/lightcl/safesource/gossip"
)

func TestMain(m *testing.M) {
	// each closed host leaves gossipsub's blacklist sweep; libp2p's meter
	// sweeper is process-wide (see safesource/gossip's tests)
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p-pubsub/timecache.background"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-flow-metrics.(*sweeper).run"))
}

// TestWhatAFeedTakesAndRejects: a gossip.Feed whose signer is seq takes the
// blocks Publish and PublishUnchecked sign with seq, and rejects, by
// op-node's reason, a block signed by another key and bytes that are not
// snappy. Publish holds back the block it let out signed by the other key;
// PublishUnchecked does not. The test chain's blocks are pre-Canyon (the v1 topic: a bare
// payload) and from 2023, hence the feed's long timestamp threshold.
func TestWhatAFeedTakesAndRejects(t *testing.T) {
	tree := fakechain.NewTree()
	cfg := tree.RollupConfig()
	var envs []*eth.ExecutionPayloadEnvelope
	for _, b := range tree.Extend(tree.Genesis().Hash(), 2, 1) {
		env, err := eth.BlockAsPayloadEnv(b, cfg)
		require.NoError(t, err)
		envs = append(envs, env)
	}
	seq, other := newKey(t), newKey(t)

	pub, err := p2ppub.New(p2ppub.Config{RollupConfig: cfg})
	require.NoError(t, err)
	defer func() { require.NoError(t, pub.Close()) }()
	feed, err := gossip.New(t.Context(), gossip.Config{
		RollupConfig: cfg, Signer: gossip.FixedSigner(addr(seq)), ListenIP: net.IPv4(127, 0, 0, 1),
		StaticPeers: pub.Addrs(), GossipTimestampThreshold: 100_000 * time.Hour,
	}, nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, feed.Close()) }()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	require.NoError(t, pub.WaitPeer(ctx, feed.Status().ID))
	var feedAddrs []string
	for _, a := range feed.Status().ListenAddrs {
		feedAddrs = append(feedAddrs, a.String())
	}
	require.NoError(t, pub.ConnectRaw(ctx, feedAddrs))

	out := make(chan *eth.ExecutionPayloadEnvelope, 4)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- feed.Run(runCtx, out) }()
	defer func() { stop(); require.NoError(t, <-done) }()
	next := func() common.Hash {
		select {
		case env := <-out:
			return env.ExecutionPayload.BlockHash
		case <-ctx.Done():
			t.Fatal("no block delivered")
			return common.Hash{}
		}
	}
	waitRejected := func(reason string) {
		require.Eventually(t, func() bool { return feed.Status().Rejected[reason] == 1 }, 10*time.Second, 5*time.Millisecond,
			"rejection counted as %q: %+v", reason, feed.Status())
	}

	require.NoError(t, pub.Publish(ctx, other, envs[0]))
	waitRejected("invalid block signature")
	require.NoError(t, pub.PublishBytes(ctx, uint64(envs[0].ExecutionPayload.Timestamp), bytes.Repeat([]byte{0xff}, 100)))
	waitRejected("invalid snappy compression length data")

	require.Error(t, pub.Publish(ctx, seq, envs[0]), "op-node's own validator holds back a block it let out before")
	require.NoError(t, pub.PublishUnchecked(ctx, seq, envs[0]))
	require.Equal(t, envs[0].ExecutionPayload.BlockHash, next(), "Encode is op-node's encoding")
	require.NoError(t, pub.Publish(ctx, seq, envs[1]))
	require.Equal(t, envs[1].ExecutionPayload.BlockHash, next(), "op-node's own encoding")

	st := feed.Status()
	require.Equal(t, uint64(2), st.Accepted)
	require.Len(t, st.Rejected, 2)
}

func TestTopicFor(t *testing.T) {
	zero, later := uint64(0), uint64(100)
	cfg := fakechain.NewTree().RollupConfig()
	require.Equal(t, "/optimism/901/0/blocks", p2ppub.TopicFor(cfg, 50))
	cfg.CanyonTime, cfg.DeltaTime, cfg.EcotoneTime, cfg.IsthmusTime = &zero, &zero, &zero, &later
	require.Equal(t, "/optimism/901/2/blocks", p2ppub.TopicFor(cfg, 50))
	require.Equal(t, "/optimism/901/3/blocks", p2ppub.TopicFor(cfg, 100))
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := gcrypto.GenerateKey()
	require.NoError(t, err)
	return k
}

func addr(k *ecdsa.PrivateKey) common.Address { return gcrypto.PubkeyToAddress(k.PublicKey) }
