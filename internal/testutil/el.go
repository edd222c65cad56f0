package testutil

import (
	"testing"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
)

// NewEL starts an EL on 127.0.0.1 that knows only tree's genesis, with all
// labels at genesis, and stops it in t.Cleanup. Setup mistakes fail t.
func NewEL(t testing.TB, tree *fakechain.Tree, cfg fakeel.ELConfig) *fakeel.EL {
	t.Helper()
	e, err := fakeel.StartELReporting(tree, cfg, t.Fatalf)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(e.Close)
	return e
}
