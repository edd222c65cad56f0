package tipfeed_test

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/safesource/tipfeed"
)

// Example follows the tip of a remote L2 EL (here lightcl's in-memory one)
// over its websocket: the head at start, then each new head as it is pushed.
func Example() {
	tree := fakechain.NewTree()
	chain := tree.Extend(tree.Genesis().Hash(), 3, 1)
	el, err := fakeel.StartEL(tree, fakeel.ELConfig{NoAuth: true})
	if err != nil {
		panic(err)
	}
	defer el.Close()
	el.Insert(chain...)
	el.SetForkchoice(chain[2].Hash(), common.Hash{}, common.Hash{})

	feed, err := tipfeed.New(context.Background(), tipfeed.Config{URL: el.WSURL(), RollupConfig: tree.RollupConfig()}, nil, nil)
	if err != nil {
		panic(err)
	}
	defer feed.Close()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *eth.ExecutionPayloadEnvelope)
	done := make(chan error)
	go func() { done <- feed.Run(ctx, out) }()

	tip := <-out
	fmt.Println("tip:", uint64(tip.ExecutionPayload.BlockNumber))
	next := tree.Child(chain[2].Hash(), 1)
	el.Insert(next)
	el.SetForkchoice(next.Hash(), common.Hash{}, common.Hash{})
	tip = <-out
	fmt.Println("tip:", uint64(tip.ExecutionPayload.BlockNumber), "parent is the last tip:", tip.ExecutionPayload.ParentHash == chain[2].Hash())
	fmt.Println("mode:", feed.Status().Mode)

	cancel()
	if err := <-done; err != nil {
		panic(err)
	}
	// Output:
	// tip: 3
	// tip: 4 parent is the last tip: true
	// mode: subscription
}
