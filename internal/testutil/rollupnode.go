package testutil

import (
	"testing"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
)

// NewRollupNode starts a rollup node on 127.0.0.1 that follows only tree's
// genesis (every L2 label at genesis, current_l1 at fakechain.L1Ref(0)) and stops
// it in t.Cleanup. Setup mistakes fail t.
func NewRollupNode(t testing.TB, tree *fakechain.Tree, cfg fakerollup.RollupNodeConfig) *fakerollup.RollupNode {
	t.Helper()
	n, err := fakerollup.StartRollupNodeReporting(tree, cfg, t.Fatalf)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(n.Close)
	return n
}
