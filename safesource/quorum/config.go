package quorum

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes a Quorum. Zero fields take their defaults.
type Config struct {
	// Name identifies the quorum in logs, metrics and errors. Default "quorum".
	Name string
	// Threshold is M, the number of members that must support a head. Default:
	// a strict majority of the members (N/2+1).
	Threshold int
	// MemberTimeout bounds each call to a member. Default 5s.
	MemberTimeout time.Duration
	// StragglerWait is how long a round waits for the remaining members once M
	// have answered and the answers so far do not settle the outcome. Default
	// 200ms.
	StragglerWait time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Name: "quorum", MemberTimeout: 5 * time.Second, StragglerWait: 200 * time.Millisecond}
}

func (c Config) withDefaults(n int) Config {
	d := DefaultConfig()
	if c.Name == "" {
		c.Name = d.Name
	}
	if c.Threshold == 0 {
		c.Threshold = n/2 + 1
	}
	if c.MemberTimeout == 0 {
		c.MemberTimeout = d.MemberTimeout
	}
	if c.StragglerWait == 0 {
		c.StragglerWait = d.StragglerWait
	}
	return c
}

// ErrNoQuorum is wrapped when fewer than Threshold members support any head
// for a label.
var ErrNoQuorum = errors.New("no quorum")

// Check reports the first field out of range for n members.
func (c Config) Check(n int) error {
	if n < 1 {
		return errors.New("quorum: no members")
	}
	c = c.withDefaults(n)
	switch {
	case c.Threshold < 1 || c.Threshold > n:
		return fmt.Errorf("quorum: Threshold %d out of range: want 1..%d (the number of members)", c.Threshold, n)
	case c.MemberTimeout < 0:
		return fmt.Errorf("quorum: MemberTimeout %s is negative", c.MemberTimeout)
	case c.StragglerWait < 0:
		return fmt.Errorf("quorum: StragglerWait %s is negative", c.StragglerWait)
	}
	return nil
}
