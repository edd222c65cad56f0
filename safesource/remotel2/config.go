package remotel2

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup"

	"github.com/lightcl/lightcl/safesource"
)

// Kind is the kind of remote node.
type Kind int

const (
	// KindAuto detects the kind once, in New.
	KindAuto Kind = iota
	// KindEL is an L2 execution client: eth_getBlockByNumber("safe"/"finalized").
	KindEL
	// KindCL is a rollup node: optimism_syncStatus.
	KindCL
)

var kindNames = [...]string{"auto", "el", "cl"}

// String returns "auto", "el" or "cl".
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return kindNames[k]
}

// ParseKind parses "auto", "el" or "cl".
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if strings.EqualFold(s, n) {
			return Kind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown remote kind %q: want auto, el or cl", s)
}

// ErrNeedsRollupConfig is wrapped when an EL remote (or a paired EL) is used
// without a rollup config, which reading L1 origins from its blocks needs.
var ErrNeedsRollupConfig = errors.New("an EL remote needs the rollup config")

// Config configures a remote source. Zero fields take their defaults.
type Config struct {
	// URL is the remote's HTTP(S) or WS(S) JSON-RPC endpoint. Required.
	URL string
	// Name identifies the source in logs and metrics; default: the URL's host.
	Name string
	// Kind of the remote; default KindAuto.
	Kind Kind
	// PairedELURL is an EL endpoint of the same remote node, used by a CL source
	// for lookups by number instead of optimism_outputAtBlock. Optional.
	PairedELURL string
	// Timeout bounds each call to the remote. Default 5s.
	Timeout time.Duration
	// MaxResponseBytes bounds each answer's size; a larger one fails the call
	// (rpclimit.ErrResponseTooLarge). Default rpclimit.DefaultMaxResponse.
	MaxResponseBytes int64
	// RollupConfig is the chain's rollup config. Required for an EL remote (to
	// read L1 origins from blocks) and for a paired EL; for a CL it is checked
	// against the remote's optimism_rollupConfig when set.
	RollupConfig *rollup.Config
}

// DefaultConfig returns the defaults; URL still has to be set.
func DefaultConfig() Config {
	return Config{Kind: KindAuto, Timeout: 5 * time.Second}
}

func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultConfig().Timeout
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

// Check reports the first field that is out of range.
func (c Config) Check() error {
	c = c.withDefaults()
	if err := checkURL("URL", c.URL); err != nil {
		return err
	}
	if c.PairedELURL != "" {
		if err := checkURL("PairedELURL", c.PairedELURL); err != nil {
			return err
		}
		if c.RollupConfig == nil {
			return fmt.Errorf("remotel2: PairedELURL: %w", ErrNeedsRollupConfig)
		}
	}
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("remotel2: Timeout %s is negative", c.Timeout)
	case c.MaxResponseBytes < 0:
		return fmt.Errorf("remotel2: MaxResponseBytes %d is negative", c.MaxResponseBytes)
	case c.Kind < KindAuto || c.Kind > KindCL:
		return fmt.Errorf("remotel2: Kind %d is unknown", int(c.Kind))
	case c.Kind == KindEL && c.RollupConfig == nil:
		return fmt.Errorf("remotel2: RollupConfig: %w", ErrNeedsRollupConfig)
	}
	return nil
}

func checkURL(field, s string) error {
	if err := safesource.CheckURL(s); err != nil {
		return fmt.Errorf("remotel2: %s: %w", field, err)
	}
	return nil
}
