package opstack

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"

	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/internal/testutil/opgeth"
)

// Config says how New builds a Stack. Zero values mean the defaults of
// DefaultConfig.
type Config struct {
	// L1Head is the height of the L1 head at start; 0 means 1.
	L1Head uint64
	// SeqWindowSize is the rollup's sequencing window, in L1 blocks: a batch
	// must land within it of its L1 origin, else derivation makes empty
	// blocks instead. 0 means 20; it must be at least 2.
	SeqWindowSize uint64
}

// DefaultConfig returns the config that New uses for zero fields.
func DefaultConfig() Config {
	return Config{L1Head: 1, SeqWindowSize: 20}
}

// Check reports a config New cannot run.
func (c Config) Check() error {
	if c.SeqWindowSize < 2 {
		return fmt.Errorf("opstack: Config.SeqWindowSize %d: must be at least 2", c.SeqWindowSize)
	}
	if c.L1Head == 0 {
		return errors.New("opstack: Config.L1Head must be at least 1")
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.L1Head == 0 {
		c.L1Head = d.L1Head
	}
	if c.SeqWindowSize == 0 {
		c.SeqWindowSize = d.SeqWindowSize
	}
	return c
}

// channelTimeout is the rollup config's ChannelTimeoutBedrock: the value
// Granite, active from genesis, fixes anyway.
const channelTimeout = 50

// batcherKeySeed makes the batcher key; a fixed key keeps the rollup config
// the same in every run.
var batcherKeySeed = crypto.Keccak256([]byte("lightcl/opstack batcher"))

// Stack is a running mini OP Stack: an L1, a sequencer op-geth with its test
// sequencer, and a test batcher. Its methods may be called from any
// goroutine; BuildL2, BatchData, PostData and PostBatches run one at a time.
type Stack struct {
	cfg         Config
	genesis     *opgeth.Genesis
	rollupCfg   *rollup.Config // read only
	l1          *fakel1.L1
	l1Client    *sources.L1Client
	l1BlockTime uint64
	node        *opgeth.Node
	seq         *opgeth.Sequencer
	engine      *sources.EngineClient
	builder     *derive.FetchingAttributesBuilder
	batcherKey  *ecdsa.PrivateKey
	sizes       channelSizes // tests of this package make them small

	mu           sync.Mutex // serialises building and posting; guards the fields below
	batcherNonce uint64
	posts        []post // batches posted by PostBatches, in L1 order
}

// post is one PostBatches: the L1 block holding it and the last L2 block in it.
type post struct {
	l1   eth.BlockID
	last eth.BlockID
}

// New starts a Stack: a Linked testutil.L1 with its head at cfg.L1Head, the
// rollup config for it, and a sequencer op-geth at the L2 genesis. Everything
// stops in t.Cleanup. Setup failures fail t; with -short, t is skipped.
func New(t testing.TB, cfg Config) *Stack {
	t.Helper()
	opgeth.Binary(t) // skips with -short before anything starts
	cfg = cfg.withDefaults()
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: cfg.L1Head, Linked: true})
	l1Genesis := l1.Ref(0)
	key, err := crypto.ToECDSA(batcherKeySeed)
	if err != nil {
		t.Fatalf("opstack: batcher key: %v", err)
	}
	genesis := opgeth.NewGenesis().WithRollupConfig(func(c *rollup.Config) {
		c.Genesis.L1 = l1Genesis.ID()
		c.Genesis.SystemConfig.BatcherAddr = crypto.PubkeyToAddress(key.PublicKey)
		c.SeqWindowSize = cfg.SeqWindowSize
		c.ChannelTimeoutBedrock = channelTimeout
	})
	rollupCfg := genesis.RollupConfig()
	if err := rollupCfg.Check(); err != nil {
		t.Fatalf("opstack: generated rollup config: %v", err)
	}
	if rollupCfg.Genesis.L2Time < l1Genesis.Time {
		t.Fatalf("opstack: L2 genesis time %d before the L1 genesis time %d", rollupCfg.Genesis.L2Time, l1Genesis.Time)
	}
	node := opgeth.Start(t, opgeth.Config{Genesis: genesis, Name: "sequencer"})
	s := &Stack{
		cfg:         cfg,
		genesis:     genesis,
		rollupCfg:   rollupCfg,
		l1:          l1,
		l1Client:    testutil.DialL1(t, l1.URL()),
		l1BlockTime: l1.Ref(1).Time - l1Genesis.Time,
		node:        node,
		seq:         opgeth.NewSequencer(t, node),
		engine:      node.Engine(t),
		batcherKey:  key,
		sizes:       defaultSizes,
	}
	// l1ChainConfig nil: the L1 headers carry no excess blob gas, so the
	// L1-info deposit never reads it. No dependency set: no interop.
	s.builder = derive.NewFetchingAttributesBuilder(rollupCfg, nil, nil, s.l1Client, s.engine)
	return s
}

// RollupConfig returns a fresh copy of the rollup config (op-node's
// rollup.json for this chain).
func (s *Stack) RollupConfig() *rollup.Config { return s.genesis.RollupConfig() }

// Genesis returns the op-geth genesis, which carries the rollup config: an
// op-geth started with it (opgeth.Start) is on this chain, and its
// Node.Engine and Node.L2 clients use this rollup config.
func (s *Stack) Genesis() *opgeth.Genesis { return s.genesis }

// L1 returns the in-memory L1.
func (s *Stack) L1() *fakel1.L1 { return s.l1 }

// L1URL returns the L1's JSON-RPC endpoint (no auth).
func (s *Stack) L1URL() string { return s.l1.URL() }

// Sequencer returns the sequencer's op-geth.
func (s *Stack) Sequencer() *opgeth.Node { return s.node }

// SequencerHead returns the last block the test sequencer built (the L2
// genesis at first).
func (s *Stack) SequencerHead() eth.L2BlockRef { return s.seq.Head() }

// StartFollower starts another op-geth on the same genesis, with no peers:
// the execution engine of a verifier that derives the chain from L1 and
// builds it through the Engine API (Node.Engine). It stops in t.Cleanup.
func (s *Stack) StartFollower(t testing.TB) *opgeth.Node {
	t.Helper()
	return opgeth.Start(t, opgeth.Config{Genesis: s.genesis, Name: "follower"})
}
