// Command embed runs lightcl's engine adapter end to end on an embedded
// default: an in-memory execution engine served over HTTP JSON-RPC with JWT
// (lightcl's test EL), a source whose safe and finalized heads advance as a
// derivation pipeline's would, and the adapter between them; the embedding
// node's own unsafe blocks reach the engine through Adapter.Tip. It prints
// every event and the final heads. Then it runs the same chain with lightcl as
// an advisor: no adapter, the node feeds reorg.Step and carries out its
// effects itself (advisor.go). It exits 0 when the engine ends on the
// expected heads both ways.
//
//	go run ./examples/embed [-ticks 12] [-interval 100ms] [-v]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/safesource"
)

func main() {
	ticks := flag.Int("ticks", 12, "adapter ticks to run")
	interval := flag.Duration("interval", 100*time.Millisecond, "poll interval")
	verbose := flag.Bool("v", false, "log the adapter's info lines too")
	flag.Parse()
	level := log.LevelWarn
	if *verbose {
		level = log.LevelInfo
	}
	logger := log.NewLogger(log.NewTerminalHandlerWithLevel(os.Stderr, level, false))
	// the adapter drives the engine; then the same chain with lightcl as an
	// advisor to a node that drives its engine itself
	if err := run(*ticks, *interval, logger); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
	if err := advise(*ticks, logger); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run(ticks int, interval time.Duration, logger log.Logger) error {
	if ticks < 1 || interval <= 0 {
		return fmt.Errorf("-ticks must be ≥ 1 and -interval > 0, got %d and %s", ticks, interval)
	}
	w, err := newWorld(ticks, logger)
	if err != nil {
		return err
	}
	defer w.close()
	ctx, tree, blocks, el, engine := context.Background(), w.tree, w.blocks, w.el, w.engine

	// The source: heads pushed by the embedding node.
	source := safesource.NewStatic("embedded-derivation", engine.L2BlockRefByNumber)
	cfg := engineadapter.DefaultConfig()
	cfg.PollInterval = interval
	adapter, err := engineadapter.New(cfg, engine, source, logger, nil)
	if err != nil {
		return err
	}
	adapter.OnEvent(func(e engineadapter.Event) {
		if e.Kind == engineadapter.UnsafeAdvanced {
			fmt.Printf("event %-18s unsafe %3d\n", e.Kind, e.New.Unsafe.Number)
			return
		}
		fmt.Printf("event %-18s safe %3d  finalized %3d  (%s)\n", e.Kind, e.New.Safe.Number, e.New.Finalized.Number, e.Decision.Action)
	})

	for i := 1; i <= ticks; i++ {
		// the node's own pipeline hands the adapter its new unsafe blocks
		for _, b := range blocks[4*i+4 : 4*i+8] {
			env, err := payload(tree, b)
			if err != nil {
				return err
			}
			if _, err := adapter.Tip(ctx, env); err != nil {
				return fmt.Errorf("tip %d: %w", b.NumberU64(), err)
			}
		}
		safe, fin := tree.Ref(blocks[3*i]), tree.Ref(blocks[2*i])
		if err := source.Set(safesource.Heads{Safe: safe, LocalSafe: safe, Finalized: fin}); err != nil {
			return err
		}
		if _, err := adapter.Step(ctx); err != nil {
			return fmt.Errorf("tick %d: %w", i, err)
		}
		time.Sleep(interval)
	}
	_, safe, fin := el.Labels()
	st := adapter.Status()
	fmt.Printf("engine labels: safe %d (%s), finalized %d (%s)\n", safe.Number, safe.Hash, fin.Number, fin.Hash)
	fmt.Printf("adapter status: unsafe %d, safe %d, finalized %d, %d ticks, last action %s\n",
		st.Unsafe.Number, st.Safe.Number, st.Finalized.Number, st.Ticks, st.LastAction)
	if safe != st.Safe || fin != st.Finalized {
		return fmt.Errorf("engine labels and adapter status disagree")
	}
	return nil
}

// world is the chain both ways run on: the embedding node's own unsafe
// pipeline (its gossip, say) has 4 blocks per tick, ahead of what is safe.
// The engine starts with the first 8; the rest reach it through the tip path.
type world struct {
	tree   *fakechain.Tree
	blocks []*types.Block
	el     *fakeel.EL
	engine *sources.EngineClient
	close  func()
}

func newWorld(ticks int, logger log.Logger) (*world, error) {
	tree := fakechain.NewTree()
	blocks := tree.Extend(tree.Genesis().Hash(), 4*ticks+8, 1)
	secret := fakeel.NewJWTSecret()
	el, err := fakeel.StartEL(tree, fakeel.ELConfig{JWTSecret: secret})
	if err != nil {
		return nil, err
	}
	el.Insert(blocks[:8]...)
	el.SetForkchoice(blocks[7].Hash(), common.Hash{}, common.Hash{})
	rpcClient, err := client.NewRPC(context.Background(), logger, el.URL(),
		client.WithGethRPCOptions(rpc.WithHTTPAuth(node.NewJWTAuth(secret))))
	if err != nil {
		el.Close()
		return nil, fmt.Errorf("dial engine: %w", err)
	}
	engine, err := sources.NewEngineClient(rpcClient, logger, nil, sources.EngineClientDefaultConfig(tree.RollupConfig()))
	if err != nil {
		rpcClient.Close()
		el.Close()
		return nil, fmt.Errorf("engine client: %w", err)
	}
	return &world{tree: tree, blocks: blocks, el: el, engine: engine, close: func() { rpcClient.Close(); el.Close() }}, nil
}

// payload is block b as the engine takes it.
func payload(tree *fakechain.Tree, b *types.Block) (*eth.ExecutionPayloadEnvelope, error) {
	p, err := eth.BlockAsPayload(b, tree.RollupConfig())
	if err != nil {
		return nil, fmt.Errorf("block %d as a payload: %w", b.NumberU64(), err)
	}
	return &eth.ExecutionPayloadEnvelope{ExecutionPayload: p, ParentBeaconBlockRoot: b.BeaconRoot()}, nil
}
