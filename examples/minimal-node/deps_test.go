package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBinaryLinksNoTestKit: the binary links nothing under internal/testutil
// and no package of this module that imports Go's testing package; its demo
// runs on internal/fake, which imports no test package. Go's testing package
// is still linked, through the optimism module: op-node/rollup (rollup.Config,
// which every source needs) imports op-service/event, whose system.go imports
// testing, and op-node's derivation packages (--source l1, --l1.crosscheck)
// import op-service/testutils. The test names each such importer so that a
// new one shows.
func TestBinaryLinksNoTestKit(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, ".").Output()
	require.NoError(t, err)
	var importers []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		require.NotContains(t, pkg, "/internal/testutil", "the binary links the test kit")
		if slices.Contains(imports, "testing") {
			require.False(t, strings.HasPrefix(pkg, "github.com/lightcl/lightcl"), "%s, linked by the binary, imports testing", pkg)
			importers = append(importers, pkg)
		}
	}
	slices.Sort(importers)
	require.Equal(t, []string{"github.com/ethereum-optimism/optimism/op-service/event",
		"github.com/ethereum-optimism/optimism/op-service/testutils"}, importers,
		"the packages outside this module that bring in testing")
}
