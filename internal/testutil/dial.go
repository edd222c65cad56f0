package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/sources"
)

// DialEngine returns op-service's real EngineClient for url, authenticated
// with secret, with a 5 s call timeout; it is closed in t.Cleanup. Pass
// sources.EngineClientDefaultConfig(tree.RollupConfig()), with TrustRPC set
// to false to make the client verify block hashes and transaction roots.
func DialEngine(t testing.TB, url string, secret [32]byte, cfg *sources.EngineClientConfig) *sources.EngineClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lgr := log.NewLogger(log.DiscardHandler())
	rpcClient, err := client.NewRPC(ctx, lgr, url,
		client.WithGethRPCOptions(rpc.WithHTTPAuth(node.NewJWTAuth(secret))),
		client.WithCallTimeout(5*time.Second))
	if err != nil {
		t.Fatalf("testutil: dialing engine %s: %v", url, err)
	}
	t.Cleanup(rpcClient.Close)
	ec, err := sources.NewEngineClient(rpcClient, lgr, nil, cfg)
	if err != nil {
		t.Fatalf("testutil: engine client for %s: %v", url, err)
	}
	return ec
}

// DialNoAuth returns op-service's RPC client for url, without JWT, with the
// given call timeout; it is closed in t.Cleanup.
func DialNoAuth(t testing.TB, url string, callTimeout time.Duration) client.RPC {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.NewRPC(ctx, log.NewLogger(log.DiscardHandler()), url, client.WithCallTimeout(callTimeout))
	if err != nil {
		t.Fatalf("testutil: dialing %s: %v", url, err)
	}
	t.Cleanup(c.Close)
	return c
}
