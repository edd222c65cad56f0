package opgeth

import (
	"crypto/ecdsa"
	"encoding/binary"
	"encoding/json"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	opparams "github.com/ethereum-optimism/optimism/op-core/params"
	"github.com/ethereum-optimism/optimism/op-core/predeploys"
	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
)

// ChainID is the L2 chain id of the genesis (and geth's --networkid).
const ChainID = fakechain.ChainID

// L1ChainID is the chain id of the synthetic L1 the rollup config names.
const L1ChainID = fakechain.L1ChainID

// GenesisTime is the timestamp of the L2 genesis block. It is fixed, so the
// genesis hash is the same in every run.
const GenesisTime = 1_700_000_000

// BlockTime is the L2 block time in seconds.
const BlockTime = 2

// GasLimit is the block gas limit of the genesis and of every built block.
const GasLimit = 30_000_000

// l1BlockTime is the block time of the synthetic L1, in seconds.
const l1BlockTime = 12

var (
	genesisBaseFee = big.NewInt(1_000_000_000)
	fundedBalance  = new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(params.Ether))

	batcherAddr = common.HexToAddress("0x2000000000000000000000000000000000000001")
	inboxAddr   = common.HexToAddress("0x2000000000000000000000000000000000000002")
	depositAddr = common.HexToAddress("0x2000000000000000000000000000000000000003")
	sysCfgAddr  = common.HexToAddress("0x2000000000000000000000000000000000000004")

	fundedKeyBytes = crypto.Keccak256([]byte("lightcl/opgeth funded account"))

	// FundedAddress is the account that FundedKey signs for; the genesis
	// gives it a million ether.
	FundedAddress = crypto.PubkeyToAddress(FundedKey().PublicKey)
)

// FundedKey returns (a fresh copy of) the private key of FundedAddress, for
// signing user transactions, e.g. with TransferTxs.
func FundedKey() *ecdsa.PrivateKey {
	key, err := crypto.ToECDSA(fundedKeyBytes)
	if err != nil {
		panic("opgeth: funded key: " + err.Error()) // a fixed valid scalar
	}
	return key
}

// Genesis is an OP Stack L2 genesis for op-geth and the op-node rollup config
// that matches it: chain ChainID, Bedrock from block 0 and Regolith, Canyon,
// Delta, Ecotone, Fjord and Granite (with Shanghai and Cancun) from time 0.
// Holocene and later are not active: their attributes need EIP-1559 params.
//
// The state holds only FundedAddress's balance, no predeploy code: op-geth
// builds and executes blocks without it (the L1-info deposit calls an empty
// account, so L1 fee parameters read as zero).
type Genesis struct {
	core   *core.Genesis
	block  *types.Block
	modify func(*rollup.Config) // applied by RollupConfig; nil for the default
}

// NewGenesis returns the test genesis of chain ChainID. Every call gives the
// same genesis hash.
func NewGenesis() *Genesis { return NewGenesisOfChain(ChainID) }

// NewGenesisOfChain returns the test genesis with L2 chain id id (and geth's
// network id), for runs of several chains side by side.
func NewGenesisOfChain(id uint64) *Genesis {
	zero := uint64(0)
	chainCfg := &params.ChainConfig{
		ChainID:                 new(big.Int).SetUint64(id),
		HomesteadBlock:          new(big.Int),
		EIP150Block:             new(big.Int),
		EIP155Block:             new(big.Int),
		EIP158Block:             new(big.Int),
		ByzantiumBlock:          new(big.Int),
		ConstantinopleBlock:     new(big.Int),
		PetersburgBlock:         new(big.Int),
		IstanbulBlock:           new(big.Int),
		MuirGlacierBlock:        new(big.Int),
		BerlinBlock:             new(big.Int),
		LondonBlock:             new(big.Int),
		ArrowGlacierBlock:       new(big.Int),
		GrayGlacierBlock:        new(big.Int),
		MergeNetsplitBlock:      new(big.Int),
		TerminalTotalDifficulty: new(big.Int),
		ShanghaiTime:            &zero,
		CancunTime:              &zero,
		BedrockBlock:            new(big.Int),
		RegolithTime:            &zero,
		CanyonTime:              &zero,
		EcotoneTime:             &zero,
		FjordTime:               &zero,
		GraniteTime:             &zero,
		Optimism:                opConfig(),
	}
	g := &core.Genesis{
		Config:     chainCfg,
		Timestamp:  GenesisTime,
		ExtraData:  []byte{},
		GasLimit:   GasLimit,
		Difficulty: new(big.Int),
		Coinbase:   predeploys.SequencerFeeVaultAddr,
		BaseFee:    new(big.Int).Set(genesisBaseFee),
		Alloc: types.GenesisAlloc{
			FundedAddress: {Balance: new(big.Int).Set(fundedBalance)},
		},
	}
	return &Genesis{core: g, block: g.ToBlock()}
}

func opConfig() *params.OptimismConfig {
	canyon := uint64(250)
	return &params.OptimismConfig{EIP1559Elasticity: 6, EIP1559Denominator: 50, EIP1559DenominatorCanyon: &canyon}
}

// JSON returns the genesis file for `geth init`.
func (g *Genesis) JSON() ([]byte, error) {
	return json.MarshalIndent(g.core, "", "  ")
}

// Hash returns the hash of the genesis block, as op-geth computes it (Start
// checks that the running geth agrees).
func (g *Genesis) Hash() common.Hash { return g.block.Hash() }

// Block returns the genesis block.
func (g *Genesis) Block() *types.Block { return g.block }

// ChainConfig returns the L2 chain config of the genesis.
func (g *Genesis) ChainConfig() *params.ChainConfig { return g.core.Config }

// ChainID returns the L2 chain id of the genesis.
func (g *Genesis) ChainID() uint64 { return g.core.Config.ChainID.Uint64() }

// WithRollupConfig returns the same genesis with another rollup config:
// RollupConfig gives the default one changed by modify (e.g. another L1
// genesis, batcher or sequencing window). Start, Node.Engine, Node.L2 and
// NewSequencer then use it. modify must keep the L2 genesis, the chain ids
// and the fork times, which the op-geth genesis fixes.
func (g *Genesis) WithRollupConfig(modify func(*rollup.Config)) *Genesis {
	return &Genesis{core: g.core, block: g.block, modify: modify}
}

// RollupConfig returns a fresh op-node rollup config for this genesis; the
// default passes rollup.Config.Check and its L1 genesis is the synthetic
// L1Header(0) (see WithRollupConfig).
func (g *Genesis) RollupConfig() *rollup.Config {
	cfg := defaultRollupConfig(g.Hash())
	cfg.L2ChainID = new(big.Int).SetUint64(g.ChainID())
	if g.modify != nil {
		g.modify(cfg)
	}
	return cfg
}

// defaultRollupConfig is the rollup config of the L2 genesis l2Genesis on
// the synthetic L1.
func defaultRollupConfig(l2Genesis common.Hash) *rollup.Config {
	zero := uint64(0)
	op := opConfig()
	return &rollup.Config{
		Genesis: rollup.Genesis{
			L1:     eth.HeaderBlockID(L1Header(0)),
			L2:     eth.BlockID{Hash: l2Genesis, Number: 0},
			L2Time: GenesisTime,
			SystemConfig: eth.SystemConfig{
				BatcherAddr: batcherAddr,
				Overhead:    eth.Bytes32{},
				Scalar:      eth.EncodeScalar(eth.EcotoneScalars{BlobBaseFeeScalar: 810_949, BaseFeeScalar: 1368}),
				GasLimit:    GasLimit,
			},
		},
		BlockTime:              BlockTime,
		MaxSequencerDrift:      600,
		SeqWindowSize:          3600,
		ChannelTimeoutBedrock:  300,
		L1ChainID:              big.NewInt(L1ChainID),
		L2ChainID:              big.NewInt(ChainID),
		RegolithTime:           &zero,
		CanyonTime:             &zero,
		DeltaTime:              &zero,
		EcotoneTime:            &zero,
		FjordTime:              &zero,
		GraniteTime:            &zero,
		BatchInboxAddress:      inboxAddr,
		DepositContractAddress: depositAddr,
		L1SystemConfigAddress:  sysCfgAddr,
		ChainOpConfig: &opparams.OptimismConfig{
			EIP1559Elasticity:        op.EIP1559Elasticity,
			EIP1559Denominator:       op.EIP1559Denominator,
			EIP1559DenominatorCanyon: op.EIP1559DenominatorCanyon,
		},
	}
}

// L1Header returns block n of the synthetic L1 that the L2 blocks take as
// their origin: time GenesisTime + 12·n, a base fee, no excess blob gas (the
// L1 is pre-Cancun, so the L1-info deposit carries the minimum blob base fee
// of 1). The headers are not linked: ParentHash is not L1Header(n-1)'s hash.
func L1Header(n uint64) *types.Header {
	num := binary.BigEndian.AppendUint64(nil, n)
	return &types.Header{
		ParentHash: crypto.Keccak256Hash([]byte("lightcl/opgeth L1 parent"), num),
		Number:     new(big.Int).SetUint64(n),
		Time:       GenesisTime + l1BlockTime*n,
		Difficulty: new(big.Int),
		GasLimit:   GasLimit,
		BaseFee:    big.NewInt(7),
		MixDigest:  crypto.Keccak256Hash([]byte("lightcl/opgeth L1 randao"), num),
	}
}
