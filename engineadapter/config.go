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
	// SyncMode is how the engine catches up when the source is ahead (or on
	// another chain): reorg.ELSync lets the engine fetch blocks from its p2p
	// peers; reorg.Backfill inserts them from Payloads with newPayload.
	SyncMode reorg.SyncMode
	// Payloads serves the payloads backfill inserts (a remote EL on the
	// source's chain). Required with reorg.Backfill.
	Payloads PayloadProvider
	// BackfillWindow is how many payloads backfill fetches ahead of the one it
	// inserts, and how often it moves the engine's head. Default 64.
	BackfillWindow int
	// BackfillParallel bounds the payload requests in flight. Default 16.
	BackfillParallel int
	// RejectedCacheSize bounds how many INVALID heads are remembered. Default 1024.
	RejectedCacheSize int
	// Tip, if set, feeds unsafe blocks that keep the engine at the chain's tip
	// (see TipFeed); Run runs it. nil: the engine's head moves only with the
	// source's safe head (and what the engine syncs by itself).
	Tip TipFeed
	// TipWindow is the most blocks the adapter fetches through parent hashes
	// to connect a tip block to the local chain; a tip further away is synced
	// to by the engine (EL-sync mode) or waits for the safe head (backfill
	// mode). Default 64.
	TipWindow int
	// Drop, if set, has the engine drop the blocks it holds above its head
	// block when it is found below the safe label (it restarted and lost
	// blocks or its state), once each time; see BlockDropper and
	// DebugSetHead. nil: the engine is caught up as it is, and the alarm
	// names the remedy.
	Drop BlockDropper
	// TickOnTip runs a tick as soon as the tip feed has a new head, rather
	// than at the next PollInterval: for a source whose safe head is read from
	// the same node as the tip (an L2 EL), so that a new head also brings its
	// safe and finalized labels at once, and PollInterval is only the
	// fallback. A feed that announces its heads (HeadAnnouncer, as
	// tipfeed.Remote does) starts the tick when the head is announced, while
	// its payload is fetched; another starts it once its tip block is taken.
	TickOnTip bool
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		PollInterval:      2 * time.Second,
		SourceTimeout:     5 * time.Second,
		EngineTimeout:     10 * time.Second,
		SyncMode:          reorg.ELSync,
		RejectedCacheSize: 1024,
		BackfillWindow:    64,
		BackfillParallel:  16,
		TipWindow:         64,
	}
}

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
	if c.BackfillWindow == 0 {
		c.BackfillWindow = d.BackfillWindow
	}
	if c.BackfillParallel == 0 {
		c.BackfillParallel = d.BackfillParallel
	}
	if c.TipWindow == 0 {
		c.TipWindow = d.TipWindow
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
	case c.BackfillWindow < 0:
		return fmt.Errorf("engineadapter: BackfillWindow %d is negative", c.BackfillWindow)
	case c.BackfillParallel < 0:
		return fmt.Errorf("engineadapter: BackfillParallel %d is negative", c.BackfillParallel)
	case c.TipWindow < 0:
		return fmt.Errorf("engineadapter: TipWindow %d is negative", c.TipWindow)
	case c.SyncMode == reorg.Backfill && c.Payloads == nil:
		return errors.New("engineadapter: Payloads is required with SyncMode backfill")
	case c.SyncMode != reorg.ELSync && c.SyncMode != reorg.Backfill:
		return fmt.Errorf("engineadapter: SyncMode %d is unknown", c.SyncMode)
	}
	return nil
}
