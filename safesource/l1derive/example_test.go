package l1derive_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/log"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/safesource/l1derive"
)

// Example wires a node that trusts only L1: the source derives the chain
// from the user's L1 node and checks it against the local engine, and the
// adapter builds every derived block the engine lacks. It needs a real L1
// and op-geth, so it is compiled but not run here; the package's tests run
// the same wiring against a real op-geth and a test L1.
func Example() {
	ctx := context.Background()
	logger := log.NewLogger(log.NewTerminalHandlerWithLevel(os.Stderr, slog.LevelInfo, false))
	var cfg rollup.Config // op-node's rollup.json for the chain
	f, err := os.Open("rollup.json")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if err := cfg.ParseRollupConfig(f); err != nil {
		panic(err)
	}

	l1RPC, err := client.NewRPC(ctx, logger, "http://127.0.0.1:8545")
	if err != nil {
		panic(err)
	}
	l1, err := sources.NewL1Client(l1RPC, logger, nil, sources.L1ClientDefaultConfig(&cfg, false, sources.RPCKindStandard))
	if err != nil {
		panic(err)
	}
	var secret [32]byte // the engine's JWT secret
	engineRPC, err := client.NewRPC(ctx, logger, "http://127.0.0.1:8551",
		client.WithGethRPCOptions(rpc.WithHTTPAuth(gethnode.NewJWTAuth(secret))))
	if err != nil {
		panic(err)
	}
	engine, err := sources.NewEngineClient(engineRPC, logger, nil, sources.EngineClientDefaultConfig(&cfg))
	if err != nil {
		panic(err)
	}

	// nil blob fetcher: batches posted as blobs are refused with a clear
	// error; pass a sources.L1BeaconClient to read them
	src, err := l1derive.New(l1derive.DefaultConfig(), &cfg, l1, nil, engine, logger, nil)
	if err != nil {
		panic(err)
	}
	adapter, err := engineadapter.New(engineadapter.DefaultConfig(), engine, src, logger, nil)
	if err != nil {
		panic(err)
	}
	_ = adapter.Run(ctx) // until ctx ends
}
