package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
)

// TestCrossCheckState: --l1.crosscheck keeps its confirmed finalized block in
// a file named after the chain in the user's cache directory, written at
// start; --l1.crosscheck.state names another file. A state file that is not
// one, is another chain's or cannot be written, and the flag without
// --l1.crosscheck, stop the start with one line naming the flag.
func TestCrossCheckState(t *testing.T) {
	f := newFixture(t, 40)
	rn := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
	rn.Follow(f.block(40), f.block(20), f.block(20), f.block(10), fakechain.L1Ref(3))
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 8})
	args := []string{"--engine", f.el.URL(), "--jwt-secret", f.jwt, "--rpc.port", "-1",
		"--l2.follow.source", rn.URL(), "--l1", l1.URL(), "--l1.crosscheck"}

	t.Run("default in the user's cache directory", func(t *testing.T) {
		cache := t.TempDir()
		p := startProcess(t, []string{"XDG_CACHE_HOME=" + cache}, args...)
		cfg := f.tree.RollupConfig()
		want := filepath.Join(cache, "lightcl", "l1crosscheck-901-"+cfg.Genesis.L2.Hash.Hex()[2:10]+".json")
		require.Contains(t, p.startLine(t), "l1_crosscheck_state="+want)
		require.FileExists(t, want, "written at start")
		require.Contains(t, p.stderr.String(), "a first run, re-deriving from the L2 genesis")
		p.stop(t)
	})

	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	otherChain := `{"l2_chain_id": 901, "l2_genesis": "0x` + strings.Repeat("11", 32) +
		`", "confirmed_finalized": {"hash": "0x` + strings.Repeat("22", 32) + `", "number": 7}}`
	with := func(more ...string) []string { return append(append([]string{}, args...), more...) }
	for _, tc := range []struct {
		name, reason string
		args         []string
	}{
		{"state without the cross-check", "only used", []string{"--engine", f.el.URL(), "--jwt-secret", f.jwt, "--rpc.port", "-1",
			"--l2.follow.source", rn.URL(), "--l1.crosscheck.state", filepath.Join(dir, "s.json")}},
		{"state file not JSON", "not a confirmed-finalized file", with("--l1.crosscheck.state", write("garbage.json", "7"))},
		{"state file of another chain", "genesis", with("--l1.crosscheck.state", write("other.json", otherChain))},
		{"state file under a file", "not a directory", with("--l1.crosscheck.state", filepath.Join(write("plain", ""), "s.json"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireStartError(t, tc.args, "l1.crosscheck.state", tc.reason)
		})
	}
}
