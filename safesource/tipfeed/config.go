package tipfeed

import (
	"fmt"
	"net/url"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup"

	"github.com/lightcl/lightcl/safesource"
)

// Config configures a tip feed. Zero durations take their defaults.
type Config struct {
	// URL is the remote L2 EL's JSON-RPC endpoint: ws:// or wss:// to
	// subscribe to new heads, http:// or https:// to poll. Required.
	URL string
	// Name identifies the feed in logs, metrics and status; default: the
	// URL's host.
	Name string
	// RollupConfig is the chain's rollup config: its L2 chain id is checked
	// against the remote's eth_chainId, and op-service's L2 client needs it.
	// Required.
	RollupConfig *rollup.Config
	// Timeout bounds each call to the remote. Default 5s.
	Timeout time.Duration
	// PollInterval is how often the feed reads the remote's latest header
	// while it polls. Default 1s.
	PollInterval time.Duration
	// ResubscribeBackoff is the longest wait between attempts to subscribe
	// again after a websocket subscription failed or dropped; the waits grow
	// exponentially up to it. Default 10s.
	ResubscribeBackoff time.Duration
	// MaxResponseBytes bounds each answer's size, over HTTP and websocket; a
	// larger one fails the call. Default rpclimit.DefaultMaxResponse.
	MaxResponseBytes int64
}

// DefaultConfig returns the defaults; URL and RollupConfig still have to be set.
func DefaultConfig() Config {
	return Config{Timeout: 5 * time.Second, PollInterval: time.Second, ResubscribeBackoff: 10 * time.Second}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.ResubscribeBackoff == 0 {
		c.ResubscribeBackoff = d.ResubscribeBackoff
	}
	if c.Name == "" {
		if u, err := url.Parse(c.URL); err == nil && u.Host != "" {
			c.Name = u.Host
		} else {
			c.Name = c.URL
		}
	}
	return c
}

// Check reports the first field that is missing or out of range.
func (c Config) Check() error {
	if err := safesource.CheckURL(c.URL); err != nil {
		return fmt.Errorf("tipfeed: URL: %w", err)
	}
	switch {
	case c.RollupConfig == nil:
		return fmt.Errorf("tipfeed: RollupConfig is missing")
	case c.RollupConfig.L2ChainID == nil:
		return fmt.Errorf("tipfeed: RollupConfig has no L2ChainID")
	case c.Timeout < 0:
		return fmt.Errorf("tipfeed: Timeout %s is negative", c.Timeout)
	case c.PollInterval < 0:
		return fmt.Errorf("tipfeed: PollInterval %s is negative", c.PollInterval)
	case c.ResubscribeBackoff < 0:
		return fmt.Errorf("tipfeed: ResubscribeBackoff %s is negative", c.ResubscribeBackoff)
	case c.MaxResponseBytes < 0:
		return fmt.Errorf("tipfeed: MaxResponseBytes %d is negative", c.MaxResponseBytes)
	}
	return nil
}

// isWebsocket reports whether u is a ws:// or wss:// URL.
func isWebsocket(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "ws" || p.Scheme == "wss")
}
