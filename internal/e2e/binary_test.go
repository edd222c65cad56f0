package e2e_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
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

			cfgJSON, err := json.Marshal(w.genesis.RollupConfig())
			require.NoError(t, err)
			rollupPath := filepath.Join(t.TempDir(), "rollup.json")
			require.NoError(t, os.WriteFile(rollupPath, cfgJSON, 0o600))

			stderr := &syncWriter{w: &bytes.Buffer{}}
			cmd := exec.Command(minimalNode(t),
				"--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
				"--l2.follow.source", w.seq.HTTP(), "--rollup.config", rollupPath,
				"--sync.mode", mode, "--poll-interval", "200ms", "--rpc.port", "-1")
			cmd.Stderr = stderr
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill() })

			l2 := follower.L2(t)
			require.Eventually(t, func() bool {
				safe, err1 := l2.L2BlockRefByLabel(w.ctx, eth.Safe)
				fin, err2 := l2.L2BlockRefByLabel(w.ctx, eth.Finalized)
				return err1 == nil && err2 == nil && safe == refs[39] && fin == refs[29]
			}, 60*time.Second, 100*time.Millisecond, "follower labels; minimal-node stderr:\n%s", stderr.String())

			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				require.NoError(t, err, "exit after SIGTERM; stderr:\n%s", stderr.String())
			case <-time.After(15 * time.Second):
				t.Fatalf("minimal-node did not exit after SIGTERM; stderr:\n%s", stderr.String())
			}
		})
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
