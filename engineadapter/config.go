package engineadapter

import (
	"errors"
	"fmt"
	"time"

	"github.com/lightcl/lightcl/reorg"
)

// Config tunes an Adapter. Zero fields take their defaults.
type Config struct {
	// PollInterval is the time between ticks of Run. Default 2s.
	PollInterval time.Duration
	// SourceTimeout bounds each call to the source. Default 5s.
	SourceTimeout time.Duration
	// EngineTimeout bounds each call to the engine. Default 10s.
	EngineTimeout time.Duration
	// SyncMode is how the engine catches up when the source is ahead. Only
	// reorg.ELSync is built so far.
	SyncMode reorg.SyncMode
	// RejectedCacheSize bounds how many INVALID heads are remembered. Default 1024.
	RejectedCacheSize int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		PollInterval:      2 * time.Second,
		SourceTimeout:     5 * time.Second,
		EngineTimeout:     10 * time.Second,
		SyncMode:          reorg.ELSync,
		RejectedCacheSize: 1024,
	}
}

// ErrBackfillNotBuilt is returned for SyncMode reorg.Backfill until payload
// backfill exists.
var ErrBackfillNotBuilt = errors.New("sync mode backfill is not built yet; use EL sync")

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.SourceTimeout == 0 {
		c.SourceTimeout = d.SourceTimeout
	}
	if c.EngineTimeout == 0 {
		c.EngineTimeout = d.EngineTimeout
	}
	if c.RejectedCacheSize == 0 {
		c.RejectedCacheSize = d.RejectedCacheSize
	}
	return c
}

// Check reports the first field that is out of range.
func (c Config) Check() error {
	c = c.withDefaults()
	switch {
	case c.PollInterval < 0:
		return fmt.Errorf("engineadapter: PollInterval %s is negative", c.PollInterval)
	case c.SourceTimeout < 0:
		return fmt.Errorf("engineadapter: SourceTimeout %s is negative", c.SourceTimeout)
	case c.EngineTimeout < 0:
		return fmt.Errorf("engineadapter: EngineTimeout %s is negative", c.EngineTimeout)
	case c.RejectedCacheSize < 0:
		return fmt.Errorf("engineadapter: RejectedCacheSize %d is negative", c.RejectedCacheSize)
	case c.SyncMode == reorg.Backfill:
		return fmt.Errorf("engineadapter: SyncMode: %w", ErrBackfillNotBuilt)
	case c.SyncMode != reorg.ELSync:
		return fmt.Errorf("engineadapter: SyncMode %d is unknown", c.SyncMode)
	}
	return nil
}
