package safesource

import (
	"context"
	"fmt"
	"math/big"
	"net/url"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// CheckURL reports whether s can name a remote node: an http, https, ws or
// wss URL with a host.
func CheckURL(s string) error {
	if s == "" {
		return fmt.Errorf("required: a URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL (want e.g. http://127.0.0.1:8545): %w", s, err)
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return fmt.Errorf("%q: scheme must be http, https, ws or wss", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

// CheckChainID asks the remote at url, through c, for its eth_chainId and
// returns an error wrapping ErrWrongChain unless it is want. A failed call is
// returned wrapped, as it came.
func CheckChainID(ctx context.Context, c client.RPC, url string, want *big.Int) error {
	var hexID hexutil.Big
	if err := c.CallContext(ctx, &hexID, "eth_chainId"); err != nil {
		return fmt.Errorf("eth_chainId at %s: %w", url, err)
	}
	if id := hexID.ToInt(); want == nil || id.Cmp(want) != 0 {
		return fmt.Errorf("%s serves chain %s, want chain %s: %w", url, id, want, ErrWrongChain)
	}
	return nil
}
