package quorum_test

import (
	"context"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum/go-ethereum/log"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/quorum"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

// newQuorumOf is what an embedder writes (11 lines): one remotel2 source per
// URL, whatever its kind (rollup node or L2 EL, detected), and a quorum of them.
// The caller closes the remotes.
func newQuorumOf(ctx context.Context, urls []string, cfg *rollup.Config, logger log.Logger) (*quorum.Quorum, []*remotel2.Source, error) {
	var members []safesource.SafeHeadSource
	var remotes []*remotel2.Source
	for _, url := range urls {
		s, err := remotel2.New(ctx, remotel2.Config{URL: url, RollupConfig: cfg}, logger, nil)
		if err != nil {
			return nil, remotes, err
		}
		members, remotes = append(members, s), append(remotes, s)
	}
	q, err := quorum.New(quorum.Config{Threshold: 2}, members, logger, nil)
	return q, remotes, err
}

// Example builds a quorum of two rollup nodes and one L2 EL, mixed, and reads
// what two of them agree on. The remotes here are lightcl's test fakes.
func Example() {
	tree := fakechain.NewTree()
	chain := tree.Extend(tree.Genesis().Hash(), 30, 1)
	var urls []string
	for range 2 {
		cl, _ := fakerollup.StartRollupNode(tree, fakerollup.RollupNodeConfig{})
		defer cl.Close()
		cl.Follow(chain[29], chain[19], chain[19], chain[9], fakechain.L1Ref(3))
		urls = append(urls, cl.URL())
	}
	el, _ := fakeel.StartEL(tree, fakeel.ELConfig{NoAuth: true})
	defer el.Close()
	el.Insert(chain...)
	el.SetForkchoice(chain[29].Hash(), chain[17].Hash(), chain[9].Hash())
	urls = append(urls, el.URL())

	q, remotes, err := newQuorumOf(context.Background(), urls, tree.RollupConfig(), log.NewLogger(log.DiscardHandler()))
	for _, r := range remotes {
		defer r.Close()
	}
	if err != nil {
		panic(err)
	}
	h, err := q.Heads(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("agreed safe:", h.Safe.Number, "finalized:", h.Finalized.Number)
	// Output: agreed safe: 20 finalized: 10
}
