package e2e_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// minimalNode builds examples/minimal-node once for the test process.
func minimalNode(t *testing.T) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lightcl-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "minimal-node")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", binPath, "../../examples/minimal-node")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	require.NoError(t, buildErr, binPath)
	return binPath
}

// TestMinimalNodeAgainstOpGeth runs the minimal-node binary between a real
// follower op-geth and the sequencer op-geth, in both catch-up modes, and
// stops it with SIGTERM.
func TestMinimalNodeAgainstOpGeth(t *testing.T) {
	for _, mode := range []string{"el-sync", "backfill"} {
		t.Run(mode, func(t *testing.T) {
			w := newWorld(t)
			refs := w.build(50, 1)
			w.label(refs[39], refs[29])
			follower := w.follower("follower", mode == "el-sync")

			stderr, stop := runNode(t, "--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
				"--l2.follow.source", w.seq.HTTP(), "--rollup.config", writeRollupJSON(t, w.genesis.RollupConfig()),
				"--sync.mode", mode, "--poll-interval", "200ms")
			requireLabels(w.ctx, t, follower.L2(t), refs[39], refs[29], stderr)
			stop()
		})
	}
}

// writeRollupJSON writes cfg as op-node's rollup.json and returns its path.
func writeRollupJSON(t *testing.T, cfg *rollup.Config) string {
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "rollup.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}
