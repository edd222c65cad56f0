package l1verify

import (
	"fmt"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// Config tunes a Verifier. Zero fields take their defaults.
type Config struct {
	// CacheSize is how many L1 heights the verifier remembers the canonical
	// hash of, least recently used forgotten first. It should cover how far
	// the finalized head's L1 origin trails the L1 head (about 100 blocks on
	// Ethereum, more while a batcher is down). Default 1024.
	CacheSize int
	// Timeout bounds each L1 call. Default 5s.
	Timeout time.Duration
	// SkipFinalityCheck turns off the check that the finalized head's L1
	// origin is at or below L1's finalized block, for L1 nodes that do not
	// serve the "finalized" label. Off by default: finality is checked.
	SkipFinalityCheck bool
	// Genesis is the chain's L2 genesis block, final by definition. While no
	// finalized head of a source has been verified yet, a finalized claim
	// ahead of L1's finality is held at it, so that a user L1 whose finality
	// lags does not hold back the safe head from the start. Zero: such a claim
	// drops the answer until a finalized head has been verified. A verifier
	// shared by several chains serves each through Verifier.WrapChain, whose
	// genesis is used in place of this one for that source.
	Genesis eth.L2BlockRef
	// MaxHeadAge lets a Heads call reuse an L1 head read that began up to
	// this long before the call did, instead of reading the L1 head anew.
	// It is meant for a verifier shared by many chains that each poll every
	// PollInterval (engineadapter.Config): a MaxHeadAge of about one poll
	// interval makes one L1 head read per interval serve all of them.
	// The cost: heads are checked against an L1 head read up to MaxHeadAge
	// before the call, so an L1 reorg is seen up to MaxHeadAge later, and an
	// origin on an L1 block newer than that read is above the L1 head until
	// the next read (safesource.ErrAheadOfL1; a current L1 block is reported as
	// unknown). Zero (the default): every call reads the L1 head anew, or
	// joins a read that began after it did.
	MaxHeadAge time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{CacheSize: 1024, Timeout: 5 * time.Second}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.CacheSize == 0 {
		c.CacheSize = d.CacheSize
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	return c
}

// Check reports the first field out of range.
func (c Config) Check() error {
	c = c.withDefaults()
	switch {
	case c.CacheSize < 0:
		return fmt.Errorf("l1verify: CacheSize %d is negative", c.CacheSize)
	case c.CacheSize < minCacheSize:
		return fmt.Errorf("l1verify: CacheSize %d is below %d: the L1 head and the four heights checked per call must fit", c.CacheSize, minCacheSize)
	case c.Timeout < 0:
		return fmt.Errorf("l1verify: Timeout %s is negative", c.Timeout)
	case c.MaxHeadAge < 0:
		return fmt.Errorf("l1verify: MaxHeadAge %s is negative", c.MaxHeadAge)
	}
	return nil
}

// minCacheSize holds the L1 head and the four heights one call checks.
const minCacheSize = 8
