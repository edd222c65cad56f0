package l1derive

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"golang.org/x/sync/errgroup"

	"github.com/lightcl/lightcl/safesource"
)

// ErrCrossCheck is wrapped by every Heads call of a CrossCheck once the
// engine, following the primary source, held a block that L1 derives
// differently: the primary lied or is on another chain.
var ErrCrossCheck = errors.New("cross-check against L1 failed")

// CrossCheck follows a primary source fast and derives from L1 alongside it
// with a CheckOnly Source on the same engine. Each derived block is compared
// with the engine's block at its height, which came from the primary. Once
// the two disagree every Heads call fails with ErrCrossCheck (the adapter
// then sends nothing) until the process is restarted; an L1 that cannot be
// read is logged and does not stop the primary. The primary's safe head
// passes through, but its finalized head never runs ahead of the checker's
// confirmed block (Source.Confirmed): a finalized label, which cannot be
// undone, is only set on blocks L1 derivation has matched. Safe for
// concurrent use.
type CrossCheck struct {
	primary safesource.SafeHeadSource
	check   *Source
	name    string

	mu     sync.Mutex
	failed error
	held   eth.L2BlockRef // the last finalized head the cap gave instead of the primary's
}

var _ safesource.SafeHeadSource = (*CrossCheck)(nil)

// NewCrossCheck returns primary checked by check, which must be CheckOnly.
func NewCrossCheck(primary safesource.SafeHeadSource, check *Source) (*CrossCheck, error) {
	switch {
	case primary == nil || check == nil:
		return nil, errors.New("l1derive: NewCrossCheck needs a primary source and a checker")
	case !check.cfg.CheckOnly:
		return nil, errors.New("l1derive: the cross-checking Source must have Config.CheckOnly set")
	}
	return &CrossCheck{primary: primary, check: check, name: primary.Name() + "+l1crosscheck"}, nil
}

// Name returns the primary's name with "+l1crosscheck" appended.
func (c *CrossCheck) Name() string { return c.name }

// Checker returns the L1-deriving checker.
func (c *CrossCheck) Checker() *Source { return c.check }

// Heads asks the primary and steps the checker in parallel, and returns the
// primary's heads, with finalized capped at the checker's confirmed block,
// unless the checker has found a disagreement.
func (c *CrossCheck) Heads(ctx context.Context) (safesource.Heads, error) {
	if err := c.failure(); err != nil {
		return safesource.Heads{}, err
	}
	var (
		h        safesource.Heads
		checkErr error
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		h, err = c.primary.Heads(gctx)
		return err
	})
	g.Go(func() error {
		_, checkErr = c.check.Heads(ctx) // not gctx: a primary error must not cut the check short
		return nil
	})
	err := g.Wait()
	if errors.Is(checkErr, ErrMismatch) {
		return safesource.Heads{}, c.fail(checkErr)
	}
	if checkErr != nil {
		c.check.log.Warn("L1 cross-check lagging", "err", checkErr)
	}
	if err != nil {
		return safesource.Heads{}, err
	}
	return c.capFinalized(h)
}

// capFinalized holds h's finalized head at the checker's confirmed block
// when the primary claims more. A claim at the confirmed height with another
// hash is a disagreement with L1 about a final block: ErrCrossCheck. Capped
// heads that do not pass Check (the primary's safe head is the block after
// the confirmed one but not its child) wrap ErrInconsistentHeads: the
// adapter skips them.
func (c *CrossCheck) capFinalized(h safesource.Heads) (safesource.Heads, error) {
	conf, claim := c.check.Confirmed(), h.Finalized
	switch {
	case claim.Number < conf.Number || claim.ID() == conf.ID():
		return h, nil
	case claim.Number == conf.Number && claim.Hash != conf.Hash:
		return safesource.Heads{}, c.fail(fmt.Errorf("finalized %d is %s at the followed source, %s by L1 derivation",
			claim.Number, claim.Hash, conf.Hash))
	}
	h.Finalized = conf
	if err := h.Check(); err != nil {
		return safesource.Heads{}, fmt.Errorf("%s: finalized held at the L1-confirmed block %d (%s): %w", c.name, conf.Number, conf.Hash, err)
	}
	c.mu.Lock()
	moved := c.held != conf
	c.held = conf
	c.mu.Unlock()
	if moved {
		c.check.log.Info("Finalized held at the block L1 derivation confirmed", "confirmed", conf.Number, "hash", conf.Hash,
			"source_finalized", claim.Number, "source_hash", claim.Hash)
	}
	return h, nil
}

// fail records the first disagreement for good, raises the alarm, and
// returns the error every Heads call returns from now on.
func (c *CrossCheck) fail(why error) error {
	c.mu.Lock()
	if c.failed == nil {
		c.failed = fmt.Errorf("%s: %w: %w", c.name, ErrCrossCheck, why)
		c.check.log.Error("ALARM: the followed source disagrees with L1; not following it any more", "err", why)
	}
	c.mu.Unlock()
	return c.failure()
}

func (c *CrossCheck) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

// L2BlockRefByNumber asks the primary.
func (c *CrossCheck) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	return c.primary.L2BlockRefByNumber(ctx, n)
}
