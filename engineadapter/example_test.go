package engineadapter_test

import (
	"context"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/safesource"
)

// Example embeds lightcl in a node that already knows its safe and finalized
// heads: it pushes them into a safesource.Static, and the adapter moves the
// engine's labels there with engine_forkchoiceUpdated. The engine is lightcl's
// in-memory test EL holding 20 blocks; in production it is op-geth's authrpc
// endpoint and its JWT secret.
func Example() {
	tree := fakechain.NewTree()
	blocks := tree.Extend(tree.Genesis().Hash(), 20, 1)
	secret := fakeel.NewJWTSecret()
	el, err := fakeel.StartEL(tree, fakeel.ELConfig{JWTSecret: secret})
	if err != nil {
		panic(err)
	}
	defer el.Close()
	el.Insert(blocks...)
	el.SetForkchoice(blocks[19].Hash(), common.Hash{}, common.Hash{})

	// The embedding: op-service's EngineClient with JWT, a source, an adapter.
	ctx := context.Background()
	logger := log.NewLogger(log.DiscardHandler())
	rpcClient, err := client.NewRPC(ctx, logger, el.URL(),
		client.WithGethRPCOptions(rpc.WithHTTPAuth(node.NewJWTAuth(secret))))
	if err != nil {
		panic(err)
	}
	defer rpcClient.Close()
	engine, err := sources.NewEngineClient(rpcClient, logger, nil, sources.EngineClientDefaultConfig(tree.RollupConfig()))
	if err != nil {
		panic(err)
	}
	source := safesource.NewStatic("my-derivation", engine.L2BlockRefByNumber)
	safe, fin := tree.Ref(blocks[14]), tree.Ref(blocks[9])
	if err := source.Set(safesource.Heads{Safe: safe, LocalSafe: safe, Finalized: fin}); err != nil {
		panic(err)
	}
	adapter, err := engineadapter.New(engineadapter.DefaultConfig(), engine, source, logger, nil)
	if err != nil {
		panic(err)
	}
	// adapter.Run(ctx) polls until ctx ends; one Step is one tick.
	d, err := adapter.Step(ctx)
	if err != nil {
		panic(err)
	}
	st := adapter.Status()
	fmt.Println("action:", d.Action)
	fmt.Println("unsafe:", st.Unsafe.Number, "safe:", st.Safe.Number, "finalized:", st.Finalized.Number)
	// Output:
	// action: consolidate
	// unsafe: 20 safe: 15 finalized: 10
}
