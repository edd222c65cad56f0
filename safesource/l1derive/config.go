package l1derive

import (
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/params"
)

// Config tunes a Source. Zero fields take their defaults.
type Config struct {
	// Name names the source in logs, metrics and errors. Default "l1derive".
	Name string
	// StepBudget bounds the time one Heads call spends deriving and
	// consolidating; the next call goes on from there. Keep it below the
	// adapter's SourceTimeout. Default 2s.
	StepBudget time.Duration
	// MaxBlocksPerCall bounds the blocks one Heads call consolidates.
	// Default 4096.
	MaxBlocksPerCall int
	// FinalityLookback is how many L1 blocks' worth of derived safe heads
	// are kept for finality; it must cover how far L1 finality trails the L1
	// block being derived from (op-node keeps 4·32+1). Default 1024.
	FinalityLookback int
	// L1ChainConfig is the L1's chain config, needed to price blobs in the
	// L1-info deposit once L1 has Cancun headers. Default: Ethereum mainnet,
	// Sepolia, Holesky or Hoodi by the rollup config's L1 chain id; other
	// L1s must set it, or derivation stops with a clear error at the first
	// such header.
	L1ChainConfig *params.ChainConfig
	// CheckOnly makes the source a checker of an engine that follows
	// another source (see CrossCheck): a derived block the engine lacks is
	// waited for, never handed out to be built, and one the engine holds
	// differently at or below its safe label is an error wrapping
	// ErrMismatch, for good (above the safe label the followed source may
	// still replace it: the check waits). A checker derives from the
	// confirmed block (see ConfirmedPath), never from the engine's labels,
	// which the followed source set, and derives again from there whenever
	// the engine no longer holds the last block it matched; its Heads'
	// finalized head restarts there too.
	CheckOnly bool
	// ConfirmedPath, with CheckOnly, is a file that keeps the highest
	// finalized block the checker has confirmed (Source.Confirmed), written
	// atomically each time it moves up. At start the checker derives from
	// that block if the engine holds it, else from the L2 genesis block; a
	// path with no file yet means a first run, which re-derives from genesis.
	// New reads the file and writes it once, so an unusable path is refused
	// there. Empty: kept in memory only, and every start re-derives from
	// genesis.
	ConfirmedPath string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Name: "l1derive", StepBudget: 2 * time.Second, MaxBlocksPerCall: 4096, FinalityLookback: 1024}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Name == "" {
		c.Name = d.Name
	}
	if c.StepBudget == 0 {
		c.StepBudget = d.StepBudget
	}
	if c.MaxBlocksPerCall == 0 {
		c.MaxBlocksPerCall = d.MaxBlocksPerCall
	}
	if c.FinalityLookback == 0 {
		c.FinalityLookback = d.FinalityLookback
	}
	return c
}

// Check reports the first field out of range.
func (c Config) Check() error {
	switch {
	case c.StepBudget < 0:
		return fmt.Errorf("l1derive: StepBudget %s is negative", c.StepBudget)
	case c.MaxBlocksPerCall < 0:
		return fmt.Errorf("l1derive: MaxBlocksPerCall %d is negative", c.MaxBlocksPerCall)
	case c.FinalityLookback < 0:
		return fmt.Errorf("l1derive: FinalityLookback %d is negative", c.FinalityLookback)
	case c.ConfirmedPath != "" && !c.CheckOnly:
		return fmt.Errorf("l1derive: ConfirmedPath %q is for a CheckOnly source", c.ConfirmedPath)
	}
	return nil
}

// knownL1ChainConfig returns the chain config of a public Ethereum L1.
func knownL1ChainConfig(chainID uint64) *params.ChainConfig {
	for _, c := range []*params.ChainConfig{params.MainnetChainConfig, params.SepoliaChainConfig, params.HoleskyChainConfig, params.HoodiChainConfig} {
		if c.ChainID != nil && c.ChainID.Uint64() == chainID {
			return c
		}
	}
	return nil
}
