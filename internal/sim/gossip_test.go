package sim_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/p2p"
	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/clock"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	opsigner "github.com/ethereum-optimism/optimism/op-service/signer"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/log"
	"github.com/golang/snappy"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/gossip"
)

// gossipThreshold is op-node's default --p2p.gossip.timestamp.threshold: a
// block older than this when it arrives is rejected.
const gossipThreshold = 60 * time.Second

// The sequencer's key signs the honest blocks; the forger's signs blocks of
// its own. Both are fixed, and secp256k1 signatures are deterministic
// (RFC 6979), so every message's bytes replay from the seed.
var (
	sequencerKey = simKey("lightcl/sim sequencer")
	forgerKey    = simKey("lightcl/sim forger")
)

func simKey(label string) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(label)))
	if err != nil {
		panic(err)
	}
	return k
}

// simPeer is the peer every message comes from; the validator only logs it.
const simPeer = peer.ID("sim-gossip-peer")

// gossipFeed is the schedule's gossip tip source: the honest sequencer's
// blocks signed and encoded as op-node publishes them, each message checked
// by op-node's own blocks validator (p2p.BuildBlocksValidator) behind a model
// of gossipsub's seen-message cache, on a clock the schedule sets. Only what
// the validator accepts is handed to the adapter, as op-node hands it on: the
// envelope the validator decoded. Its faults are in gossip_faults_test.go.
type gossipFeed struct {
	cfg    *rollup.Config
	tree   *fakechain.Tree
	honest func(common.Hash) bool // blocks the honest remote serves by hash
	stats  map[string]int

	clk        *gossipClock
	validators [eth.BlockV4 + 1]pubsub.ValidatorEx // one per topic, as op-node joins all four
	reason     string                              // the validator's last warning: why it refused
	msgID      pubsub.MsgIdFunction
	seenIDs    map[string]bool // gossipsub's seen cache (65 s TTL; every duplicate here comes within it)
	accepted   map[common.Hash]*eth.ExecutionPayloadEnvelope

	faults gossipFaults
}

var _ engineadapter.TipFeed = (*gossipFeed)(nil)

func newGossipFeed(tree *fakechain.Tree, honest func(common.Hash) bool, stats map[string]int) *gossipFeed {
	f := &gossipFeed{
		cfg:      tree.RollupConfig(),
		tree:     tree,
		honest:   honest,
		stats:    stats,
		clk:      &gossipClock{DeterministicClock: clock.NewDeterministicClock(time.Unix(fakechain.GenesisTime, 0))},
		seenIDs:  map[string]bool{},
		accepted: map[common.Hash]*eth.ExecutionPayloadEnvelope{},
	}
	f.faults = newGossipFaults()
	f.msgID = p2p.BuildMsgIdFn(f.cfg)
	logger := log.NewLogger(&reasonHandler{last: &f.reason})
	runCfg := gossip.FixedSigner(crypto.PubkeyToAddress(sequencerKey.PublicKey))
	conf := &p2p.Config{GossipTimestampThreshold: gossipThreshold}
	for v := eth.BlockV1; v <= eth.BlockV4; v++ {
		f.validators[v] = p2p.BuildBlocksValidator(logger.New("topic", fmt.Sprintf("blocksV%d", v+1)), f.cfg, runCfg, v, conf, f.clk)
	}
	return f
}

func (f *gossipFeed) Name() string { return "sim-gossip" }

// Run is never called: the schedule hands the accepted blocks to the adapter.
func (f *gossipFeed) Run(ctx context.Context, out chan<- *eth.ExecutionPayloadEnvelope) error {
	return errors.New("sim: the schedule delivers gossiped blocks itself")
}

// PayloadByHash answers from the accepted blocks, as gossip.Feed does, and
// else from an honest remote EL: gossip.Feed merged with a tipfeed.Remote
// (tipfeed.Merge), the way a light node fills the parents gossip missed.
// Nothing else is served: a forged block never.
func (f *gossipFeed) PayloadByHash(_ context.Context, hash common.Hash) (*eth.ExecutionPayloadEnvelope, error) {
	if env, ok := f.accepted[hash]; ok {
		f.stats["gossip-parent-from-gossip"]++
		return env, nil
	}
	if b, ok := f.tree.Block(hash); ok && f.honest(hash) {
		f.stats["gossip-parent-from-remote"]++
		return eth.BlockAsPayloadEnv(b, f.cfg)
	}
	return nil, fmt.Errorf("sim-gossip: block %s: %w (%w)", hash, ethereum.NotFound, safesource.ErrNotFound)
}

// blockVersion is the topic version op-node's publisher picks for a block
// made at ts. The fake chain is pre-Canyon, so its blocks go on v1.
func blockVersion(cfg *rollup.Config, ts uint64) eth.BlockVersion {
	switch {
	case cfg.IsIsthmus(ts):
		return eth.BlockV4
	case cfg.IsEcotone(ts):
		return eth.BlockV3
	case cfg.IsCanyon(ts):
		return eth.BlockV2
	}
	return eth.BlockV1
}

// signBlock returns b as op-node's publisher sends it signed by key:
// snappy(signature ‖ SSZ), the SSZ of the envelope from Ecotone on (it has a
// parent beacon root), else of the bare payload.
func (f *gossipFeed) signBlock(b *types.Block, key *ecdsa.PrivateKey) ([]byte, error) {
	env, err := eth.BlockAsPayloadEnv(b, f.cfg)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if env.ParentBeaconBlockRoot != nil {
		_, err = env.MarshalSSZ(&buf)
	} else {
		_, err = env.ExecutionPayload.MarshalSSZ(&buf)
	}
	if err != nil {
		return nil, fmt.Errorf("encoding block %d: %w", b.NumberU64(), err)
	}
	ssz := buf.Bytes()
	sig, err := opsigner.NewLocalSigner(key).SignBlockV1(context.Background(), eth.ChainIDFromBig(f.cfg.L2ChainID), opsigner.PayloadHash(ssz))
	if err != nil {
		return nil, fmt.Errorf("signing block %d: %w", b.NumberU64(), err)
	}
	return snappy.Encode(nil, append(sig[:], ssz...)), nil
}

// resign returns data with the other valid signature of the same key over
// the same payload (s → N−s, the recovery id flipped): other bytes, same block.
func resign(data []byte) ([]byte, error) {
	raw, err := snappy.Decode(nil, data)
	if err != nil {
		return nil, err
	}
	n := crypto.S256().Params().N
	s := new(big.Int).SetBytes(raw[32:64])
	new(big.Int).Sub(n, s).FillBytes(raw[32:64])
	raw[64] ^= 1
	return snappy.Encode(nil, raw), nil
}

// recompress returns data snappy-encoded again as literals only: other wire
// bytes, the same decoded message.
func recompress(data []byte) ([]byte, error) {
	raw, err := snappy.Decode(nil, data)
	if err != nil {
		return nil, err
	}
	out := binary.AppendUvarint(nil, uint64(len(raw)))
	for len(raw) > 0 {
		n := min(len(raw), 1<<16)
		out = append(out, 61<<2, byte(n-1), byte((n-1)>>8)) // literal, 2-byte length
		out = append(out, raw[:n]...)
		raw = raw[n:]
	}
	return out, nil
}

// receive takes one message as gossipsub and op-node would, arriving
// transit seconds after block was made: dropped when its id is in the seen
// cache, else validated on the block's topic. It returns the validator's
// result, why (its warning, or "seen-cache"), and the envelope it accepted.
func (f *gossipFeed) receive(b *types.Block, data []byte, transit uint64) (pubsub.ValidationResult, string, *eth.ExecutionPayloadEnvelope) {
	v := blockVersion(f.cfg, b.Time())
	topic := fmt.Sprintf("/optimism/%s/%d/blocks", f.cfg.L2ChainID, int(v))
	msg := &pubsub.Message{Message: &pb.Message{Data: data, Topic: &topic}, ReceivedFrom: simPeer}
	id := f.msgID(msg.Message)
	if f.seenIDs[id] {
		f.stats["gossip-dropped(seen-cache)"]++
		return pubsub.ValidationIgnore, "seen-cache", nil
	}
	f.seenIDs[id] = true // before validation, as gossipsub does: a refused message's copies are dropped too
	f.clk.now = time.Unix(int64(b.Time()+transit), 0)
	f.reason = ""
	res := f.validators[v](context.Background(), simPeer, msg)
	switch res {
	case pubsub.ValidationAccept:
		env, ok := msg.ValidatorData.(*eth.ExecutionPayloadEnvelope)
		if !ok {
			f.stats["gossip-reject(no validator data)"]++
			return pubsub.ValidationReject, "no validator data", nil
		}
		f.accepted[env.ExecutionPayload.BlockHash] = env
		f.stats["gossip-accepted"]++
		return res, "", env
	case pubsub.ValidationIgnore:
		f.stats["gossip-ignore("+f.reason+")"]++
	default:
		f.stats["gossip-reject("+f.reason+")"]++
	}
	return res, f.reason, nil
}

// gossipClock is op-service's deterministic clock, set by hand to the time a
// message arrives (it starts no timer). Messages arrive out of order, so it
// is set rather than advanced; the validator reads only Now.
type gossipClock struct {
	*clock.DeterministicClock
	now time.Time
}

func (c *gossipClock) Now() time.Time                  { return c.now }
func (c *gossipClock) Since(t time.Time) time.Duration { return c.now.Sub(t) }

// reasonHandler keeps the message of the last warning: op-node's validator
// names why it refused a block only in its log.
type reasonHandler struct{ last *string }

func (h *reasonHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *reasonHandler) Handle(_ context.Context, r slog.Record) error {
	*h.last = r.Message
	return nil
}

func (h *reasonHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *reasonHandler) WithGroup(string) slog.Handler      { return h }
