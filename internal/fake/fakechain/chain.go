package fakechain

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/ethereum-optimism/optimism/op-core/predeploys"
	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// ChainID is the L2 chain id of every Tree and of the EL's eth_chainId.
const ChainID = 901

// L1ChainID is the chain id of the synthetic L1 the rollup config points at.
const L1ChainID = 900

// GenesisTime is the timestamp of the L2 genesis block of every Tree.
const GenesisTime = 1_700_000_000

// BlockTime is the L2 block time in seconds.
const BlockTime = 2

// BlocksPerEpoch is how many L2 blocks share one synthetic L1 origin
// (12 s L1 blocks, 2 s L2 blocks): block n has origin n/BlocksPerEpoch and
// sequence number n%BlocksPerEpoch.
const BlocksPerEpoch = 6

// L1BlockTime is the block time in seconds of the synthetic L1.
const L1BlockTime = 12

// GasLimit is the gas limit of every L2 block and of the synthetic L1 blocks.
const GasLimit = 30_000_000

// L1BaseFee is the base fee in wei of every synthetic L1 block.
const L1BaseFee = 7

var (
	baseFee      = big.NewInt(1_000_000_000)
	l1BaseFee    = big.NewInt(L1BaseFee)
	batcherAddr  = common.HexToAddress("0x1000000000000000000000000000000000000001")
	inboxAddr    = common.HexToAddress("0x1000000000000000000000000000000000000002")
	depositAddr  = common.HexToAddress("0x1000000000000000000000000000000000000003")
	sysCfgAddr   = common.HexToAddress("0x1000000000000000000000000000000000000004")
	genesisState = crypto.Keccak256Hash([]byte("lightcl/testutil genesis state"))
)

// Tree holds every block built for a test, by hash, forks included.
// It is safe for concurrent use. All Trees share the same genesis and rollup
// config, so an EL built on one Tree can sync from another (fakeel.ELConfig.Peer).
type Tree struct {
	cfg     *rollup.Config
	genesis *types.Block

	mu       sync.Mutex
	blocks   map[common.Hash]*types.Block
	children map[childKey]*types.Block
}

type childKey struct {
	parent common.Hash
	tag    uint64
}

// NewTree returns a Tree holding only the genesis block.
func NewTree() *Tree {
	genesis := types.NewBlock(&types.Header{
		Number:     new(big.Int),
		Time:       GenesisTime,
		Coinbase:   predeploys.SequencerFeeVaultAddr,
		Difficulty: new(big.Int),
		GasLimit:   GasLimit,
		BaseFee:    new(big.Int).Set(baseFee),
		Root:       genesisState,
		Extra:      []byte{},
	}, nil, nil, trie.NewStackTrie(nil), types.DefaultBlockConfig)
	t := &Tree{
		genesis:  genesis,
		blocks:   map[common.Hash]*types.Block{genesis.Hash(): genesis},
		children: map[childKey]*types.Block{},
	}
	t.cfg = t.RollupConfig()
	return t
}

// Genesis returns the L2 genesis block (number 0, no transactions).
func (t *Tree) Genesis() *types.Block { return t.genesis }

// RollupConfig returns a fresh rollup config that matches the Tree's blocks:
// Regolith from genesis, no later forks, L2 chain id ChainID, 2 s blocks.
func (t *Tree) RollupConfig() *rollup.Config {
	regolith := uint64(0)
	return &rollup.Config{
		Genesis: rollup.Genesis{
			L1:     l1Origin(0),
			L2:     eth.BlockID{Hash: t.genesis.Hash(), Number: 0},
			L2Time: GenesisTime,
			SystemConfig: eth.SystemConfig{
				BatcherAddr: batcherAddr,
				Overhead:    eth.Bytes32{31: 188},
				Scalar:      eth.Bytes32{29: 0x0a, 30: 0x6f, 31: 0xe0},
				GasLimit:    GasLimit,
			},
		},
		BlockTime:              BlockTime,
		MaxSequencerDrift:      600,
		SeqWindowSize:          3600,
		ChannelTimeoutBedrock:  300,
		L1ChainID:              big.NewInt(L1ChainID),
		L2ChainID:              big.NewInt(ChainID),
		RegolithTime:           &regolith,
		BatchInboxAddress:      inboxAddr,
		DepositContractAddress: depositAddr,
		L1SystemConfigAddress:  sysCfgAddr,
	}
}

// Child returns the child of parent marked with tag, building it on first use:
// number+1, time+BlockTime, an L1-info deposit as its only transaction and the
// tag in its extra data. The same (parent, tag) always gives the same block;
// two tags on one parent give a fork. It panics if parent is not in the Tree.
func (t *Tree) Child(parent common.Hash, tag uint64) *types.Block {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := childKey{parent: parent, tag: tag}
	if b, ok := t.children[key]; ok {
		return b
	}
	p, ok := t.blocks[parent]
	if !ok {
		panic(fmt.Sprintf("testutil: Child of block %s which is not in the Tree", parent))
	}
	b, err := t.buildChild(p, tag)
	if err != nil {
		panic(fmt.Sprintf("testutil: building child of %s: %v", parent, err))
	}
	t.children[key] = b
	t.blocks[b.Hash()] = b
	return b
}

// Extend builds n blocks on parent, each with tag, and returns them in order.
func (t *Tree) Extend(parent common.Hash, n int, tag uint64) []*types.Block {
	out := make([]*types.Block, 0, n)
	for range n {
		b := t.Child(parent, tag)
		out = append(out, b)
		parent = b.Hash()
	}
	return out
}

// Block returns the block with the given hash, if the Tree built it.
func (t *Tree) Block(hash common.Hash) (*types.Block, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.blocks[hash]
	return b, ok
}

// Ref returns the L2BlockRef of b exactly as sources.L2Client reports it
// (L1 origin and sequence number read back from the L1-info deposit).
// It panics if b is not a valid L2 block of this chain.
func (t *Tree) Ref(b *types.Block) eth.L2BlockRef {
	ref, err := BlockRef(t.cfg, b)
	if err != nil {
		panic(fmt.Sprintf("testutil: Ref of block %s: %v", b.Hash(), err))
	}
	return ref
}

// Chain returns the blocks from genesis (excluded) to head (included), in
// order. It panics if head is not in the Tree.
func (t *Tree) Chain(head common.Hash) []*types.Block {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*types.Block
	for {
		b, ok := t.blocks[head]
		if !ok {
			panic(fmt.Sprintf("testutil: Chain to block %s which is not in the Tree", head))
		}
		if b.NumberU64() == 0 {
			break
		}
		out = append(out, b)
		head = b.ParentHash()
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// BlockRef returns the L2BlockRef of b under cfg, as sources.L2Client reports
// it, or why b is not a valid L2 block of that chain.
func BlockRef(cfg *rollup.Config, b *types.Block) (eth.L2BlockRef, error) {
	payload, err := eth.BlockAsPayload(b, cfg)
	if err != nil {
		return eth.L2BlockRef{}, err
	}
	return derive.PayloadToBlockRef(cfg, payload)
}

func (t *Tree) buildChild(parent *types.Block, tag uint64) (*types.Block, error) {
	number := parent.NumberU64() + 1
	l2Time := parent.Time() + BlockTime
	origin := L1Header(number / BlocksPerEpoch)
	info := eth.HeaderBlockInfo(origin)
	// l1ChainConfig is only read from Ecotone on, which this chain never activates.
	deposit, err := derive.L1InfoDepositBytes(t.cfg, nil, t.cfg.Genesis.SystemConfig, number%BlocksPerEpoch, info, l2Time)
	if err != nil {
		return nil, err
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(deposit); err != nil {
		return nil, fmt.Errorf("decoding L1-info deposit: %w", err)
	}
	extra := binary.BigEndian.AppendUint64(nil, tag)
	header := &types.Header{
		ParentHash: parent.Hash(),
		Coinbase:   predeploys.SequencerFeeVaultAddr,
		Root:       crypto.Keccak256Hash(parent.Root().Bytes(), extra),
		Difficulty: new(big.Int),
		Number:     new(big.Int).SetUint64(number),
		GasLimit:   GasLimit,
		Time:       l2Time,
		Extra:      extra,
		MixDigest:  info.MixDigest(),
		BaseFee:    new(big.Int).Set(baseFee),
	}
	body := &types.Body{Transactions: types.Transactions{&tx}}
	return types.NewBlock(header, body, nil, trie.NewStackTrie(nil), types.DefaultBlockConfig), nil
}

// L1Header returns the synthetic L1 header at number n. The headers are not
// linked into a chain; only their hash, number and time are ever read.
func L1Header(n uint64) *types.Header {
	return &types.Header{
		ParentHash: crypto.Keccak256Hash([]byte("lightcl/testutil L1"), binary.BigEndian.AppendUint64(nil, n)),
		Number:     new(big.Int).SetUint64(n),
		Time:       GenesisTime + L1BlockTime*n,
		Difficulty: new(big.Int),
		BaseFee:    new(big.Int).Set(l1BaseFee),
		MixDigest:  crypto.Keccak256Hash([]byte("lightcl/testutil randao"), binary.BigEndian.AppendUint64(nil, n)),
	}
}

// L1Ref returns the synthetic L1 block n that the Tree's blocks take as L1
// origin (L2 block m has origin m/BlocksPerEpoch), e.g. for the current_l1 of
// fakerollup.RollupNode.Follow. The synthetic L1 blocks are not linked: ParentHash is not
// the hash of L1Ref(n-1).
func L1Ref(n uint64) eth.L1BlockRef {
	return eth.InfoToL1BlockRef(eth.HeaderBlockInfo(L1Header(n)))
}

func l1Origin(n uint64) eth.BlockID {
	h := L1Header(n)
	return eth.BlockID{Hash: h.Hash(), Number: n}
}
