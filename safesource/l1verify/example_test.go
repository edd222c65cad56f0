package l1verify_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/l1verify"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

// Example follows a remote rollup node only as far as the user's own L1 node
// confirms it: the L1 origins of its heads must be canonical there. Here the
// remote, the L1 and its client are lightcl's test fakes; in a node, l1 is an
// op-service sources.L1Client on the user's L1 RPC.
func Example() {
	ctx := context.Background()
	tree := fakechain.NewTree()
	chain := tree.Extend(tree.Genesis().Hash(), 60, 1)
	l1Node, err := fakel1.StartL1(fakel1.L1Config{Head: 12, Safe: 10, Finalized: 6})
	if err != nil {
		panic(err)
	}
	defer l1Node.Close()
	node, err := fakerollup.StartRollupNode(tree, fakerollup.RollupNodeConfig{})
	if err != nil {
		panic(err)
	}
	defer node.Close()
	node.Follow(chain[59], chain[54], chain[47], chain[29], l1Node.Ref(10))

	l1, closeL1, err := fakel1.OpenL1Client(l1Node.URL())
	if err != nil {
		panic(err)
	}
	defer closeL1()
	remote, err := remotel2.New(ctx, remotel2.Config{URL: node.URL()}, nil, nil)
	if err != nil {
		panic(err)
	}
	defer remote.Close()

	src, err := l1verify.Wrap(remote, l1, l1verify.Config{}, nil, nil)
	if err != nil {
		panic(err)
	}
	h, err := src.Heads(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("safe:", h.Safe.Number, "L1 origin:", h.Safe.L1Origin.Number)
	fmt.Println("finalized:", h.Finalized.Number, "L1 origin:", h.Finalized.L1Origin.Number)

	// L1 reorgs away the safe head's origin: the next call refuses the heads.
	l1Node.Reorg(7, 1)
	_, err = src.Heads(ctx)
	fmt.Println("after an L1 reorg:", errors.Is(err, safesource.ErrL1Mismatch))
	// Output:
	// safe: 48 L1 origin: 8
	// finalized: 30 L1 origin: 5
	// after an L1 reorg: true
}
