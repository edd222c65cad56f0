package remotel2_test

import (
	"context"
	"fmt"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

// Example follows one remote rollup node (here lightcl's fake) as a source: its
// kind is detected, and its heads are checked before they are returned.
func Example() {
	tree := fakechain.NewTree()
	chain := tree.Extend(tree.Genesis().Hash(), 30, 1)
	node, err := fakerollup.StartRollupNode(tree, fakerollup.RollupNodeConfig{})
	if err != nil {
		panic(err)
	}
	defer node.Close()
	node.Follow(chain[29], chain[24], chain[19], chain[9], fakechain.L1Ref(3))

	src, err := remotel2.New(context.Background(), remotel2.Config{URL: node.URL()}, nil, nil)
	if err != nil {
		panic(err)
	}
	defer src.Close()
	h, err := src.Heads(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("kind:", src.Kind())
	fmt.Println("safe:", h.Safe.Number, "local-safe:", h.LocalSafe.Number, "finalized:", h.Finalized.Number)
	// Output:
	// kind: cl
	// safe: 20 local-safe: 25 finalized: 10
}
