package main

// Black-box tests: they build the minimal-node binary once, run it against the
// in-memory EL and fake remotes of internal/testutil over loopback, and watch
// what it does from the outside (FCUs at the EL, the status RPC, /metrics,
// stderr and the exit code).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
)

const waitFor = 20 * time.Second

func TestFollowsRemoteRollupNode(t *testing.T) {
	f := newFixture(t, 40)
	rn := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
	rn.Follow(f.block(40), f.block(20), f.block(20), f.block(10), fakechain.L1Ref(3))

	// No --rollup.config: the node reads it from the rollup node.
	p := f.start(t, false, map[string]string{"l2.follow.source": rn.URL()})
	f.checkFollows(t, p, 20, 10)
	require.Equal(t, fakechain.L1Ref(3), f.syncStatus(t).CurrentL1, "current_l1 is the rollup node's")
	st := f.lightclStatus(t)
	require.NotNil(t, st, "lightcl_status answers")
	require.Equal(t, "cl", st.Kind)
	require.Equal(t, f.tree.Ref(f.block(20)).ID(), st.Safe)
	require.Nil(t, st.Quorum, "no quorum object for --source l2")

	rn.Follow(f.block(40), f.block(30), f.block(30), f.block(25), fakechain.L1Ref(5))
	f.checkFollows(t, p, 30, 25)
	p.stop(t)
}

// TestOpNodeFlagNamesAndHealth: op-node's names for the engine's flags
// (--l2, --l2.jwt-secret) work as --engine and --jwt-secret, and the status
// RPC answers op-service's /healthz with the version.
func TestOpNodeFlagNamesAndHealth(t *testing.T) {
	f := newFixture(t, 40)
	rn := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
	rn.Follow(f.block(40), f.block(20), f.block(20), f.block(10), fakechain.L1Ref(3))
	p := startProcess(t, nil, "--l2", f.el.URL(), "--l2.jwt-secret", f.jwt, "--l2.follow.source", rn.URL(),
		"--poll-interval", "100ms", "--rpc.port", strconv.Itoa(f.rpcPort),
		"--metrics.enabled", "--metrics.port", strconv.Itoa(f.promPort))
	p.startLine(t)
	f.checkFollows(t, p, 20, 10)

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", f.rpcPort))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var health struct{ Version string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&health))
	require.Equal(t, "lightcl-minimal-node", health.Version)
	p.stop(t)
}

func TestFollowsRemoteL2EL(t *testing.T) {
	for _, viaEnv := range []bool{false, true} {
		t.Run(map[bool]string{false: "flags", true: "env vars"}[viaEnv], func(t *testing.T) {
			f := newFixture(t, 40)
			remote := testutil.NewEL(t, f.tree, fakeel.ELConfig{NoAuth: true})
			remote.Insert(f.chain...)
			remote.SetForkchoice(f.block(40).Hash(), f.block(20).Hash(), f.block(10).Hash())

			p := f.start(t, viaEnv, map[string]string{
				"l2.follow.source": remote.URL(),
				"rollup.config":    writeRollupConfig(t, f.tree),
			})
			f.checkFollows(t, p, 20, 10)

			remote.SetForkchoice(f.block(40).Hash(), f.block(30).Hash(), f.block(25).Hash())
			f.checkFollows(t, p, 30, 25)
			p.stop(t)
		})
	}
}

func TestStartErrors(t *testing.T) {
	tree := fakechain.NewTree()
	secret := fakeel.NewJWTSecret()
	engine := testutil.NewEL(t, tree, fakeel.ELConfig{JWTSecret: secret}).URL()
	jwt := testutil.WriteJWTSecret(t, secret)
	cl := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{}).URL()
	remoteEL := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true}).URL()
	otherChain := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true, ChainID: 999}).URL()
	otherCfg := *tree.RollupConfig()
	otherCfg.L2ChainID = big.NewInt(999)
	otherCL := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{RollupConfig: &otherCfg}).URL()
	rollupJSON := writeRollupConfig(t, tree)
	malformed := filepath.Join(t.TempDir(), "bad.hex")
	require.NoError(t, os.WriteFile(malformed, []byte("0xdeadbeef"), 0o600))
	closed := "http://" + closedAddr(t)

	// with is a start that gets past every check but those its args break.
	with := func(args ...string) []string {
		return append([]string{"--engine", engine, "--jwt-secret", jwt, "--rpc.port", "-1"}, args...)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		flag   string // the flag the error line must name
		reason string // and a word of why
	}{
		{"missing engine", []string{"--jwt-secret", jwt, "--l2.follow.source", cl}, "engine", "required"},
		{"missing JWT secret", []string{"--engine", engine, "--l2.follow.source", cl}, "jwt-secret", "required"},
		{"JWT file missing", []string{"--engine", engine, "--jwt-secret", filepath.Join(t.TempDir(), "none.hex"), "--l2.follow.source", cl},
			"jwt-secret", "does not exist"},
		{"JWT file not 32 hex bytes", []string{"--engine", engine, "--jwt-secret", malformed, "--l2.follow.source", cl},
			"jwt-secret", "32 hex"},
		{"wrong JWT secret", []string{"--engine", engine, "--jwt-secret", testutil.WriteJWTSecret(t, fakeel.NewJWTSecret()), "--l2.follow.source", cl},
			"jwt-secret", "401"},
		{"wrong JWT secret, op-node's flag names", []string{"--l2", engine, "--l2.jwt-secret", testutil.WriteJWTSecret(t, fakeel.NewJWTSecret()), "--l2.follow.source", cl},
			"jwt-secret", "401"},
		{"source on another chain", with("--l2.follow.source", otherChain, "--rollup.config", rollupJSON), "l2.follow.source", "999"},
		{"remote EL without rollup config", with("--l2.follow.source", remoteEL), "rollup.config", "required"},
		{"two sources", with("--l2.follow.source", cl, "--l2.follow.source", remoteEL), "l2.follow.source", "2 times"},
		{"l1 source with a remote", with("--l2.follow.source", cl, "--source", "l1"), "l2.follow.source", "not used"},
		{"l1 source without --l1", with("--source", "l1", "--rollup.config", rollupJSON), "l1", "required"},
		{"l1 source without a rollup config", with("--source", "l1", "--l1", closed), "rollup.config", "required"},
		{"l1 source in backfill mode", with("--source", "l1", "--l1", closed, "--rollup.config", rollupJSON, "--sync.mode", "backfill"), "sync.mode", "builds"},
		{"l1 source with a cross-check", with("--source", "l1", "--l1", closed, "--rollup.config", rollupJSON, "--l1.crosscheck"), "l1.crosscheck", "already"},
		{"cross-check without --l1", with("--l2.follow.source", cl, "--l1.crosscheck"), "l1", "required"},
		{"beacon without derivation", with("--l2.follow.source", cl, "--l1.beacon", closed), "l1.beacon", "only used"},
		{"beacon URL without a scheme", with("--source", "l1", "--l1", closed, "--rollup.config", rollupJSON, "--l1.beacon", "localhost:5052"), "l1.beacon", "scheme"},
		{"backfill from a rollup node without a payload source", with("--l2.follow.source", cl, "--sync.mode", "backfill"), "l2.backfill.source", "required"},
		{"unknown sync mode", with("--l2.follow.source", cl, "--sync.mode", "snap"), "sync.mode", "snap"},
		{"backfill source on another chain", with("--l2.follow.source", cl, "--sync.mode", "backfill", "--l2.backfill.source", otherChain), "l2.backfill.source", "999"},
		{"rollup node on another chain than the engine", []string{"--engine", engine, "--jwt-secret", jwt, "--rpc.port", "-1",
			"--l2.follow.source", otherCL}, "l2.follow.source", "901"},
		{"engine debug RPC on another chain", with("--l2.follow.source", cl, "--engine.debug-rpc", otherChain), "engine.debug-rpc", "999"},
		{"engine debug RPC without the debug namespace", with("--l2.follow.source", cl, "--engine.debug-rpc", remoteEL), "engine.debug-rpc", "debug namespace"},
		{"engine debug RPC unreachable", with("--l2.follow.source", cl, "--engine.debug-rpc", closed), "engine.debug-rpc", "unreachable"},
		{"gossip without a signer or --l1", with("--l2.follow.source", cl, "--p2p.listen.ip", "127.0.0.1", "--p2p.listen.tcp", "0"),
			"p2p.unsafe-block-signer", "required for gossip"},
		{"gossip static peer not a multiaddr", with("--l2.follow.source", cl, "--p2p.listen.ip", "127.0.0.1", "--p2p.listen.tcp", "0",
			"--p2p.unsafe-block-signer", "0x00000000000000000000000000000000000000aa", "--p2p.static", "127.0.0.1:9222"), "p2p.static", "StaticPeers"},
		{"gossip bootnodes", with("--l2.follow.source", cl, "--p2p.listen.ip", "127.0.0.1", "--p2p.listen.tcp", "0",
			"--p2p.unsafe-block-signer", "0x00000000000000000000000000000000000000aa", "--p2p.bootnodes", "enr:-abc"), "p2p.bootnodes", "not supported yet"},
		{"negative poll interval", with("--l2.follow.source", cl, "--poll-interval", "-1s"), "poll-interval", "positive"},
		{"unknown follow kind", with("--l2.follow.source", cl, "--l2.follow.kind", "foo"), "l2.follow.kind", "foo"},
		{"poll interval not a duration", with("--l2.follow.source", cl, "--poll-interval", "soon"), "poll-interval", "soon"},
		{"unknown flag", with("--l2.follow.source", cl, "--bogus"), "bogus", "not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireStartError(t, tc.args, tc.flag, tc.reason)
		})
	}
}

// requireStartError runs the binary with args and requires it to exit with
// code 2 and exactly one line on stderr that names --flag and contains reason;
// it returns that line.
func requireStartError(t *testing.T, args []string, flag, reason string) string {
	t.Helper()
	code, stderr := runToExit(t, args...)
	require.Equal(t, 2, code, "exit code; stderr:\n%s", stderr)
	require.NotContains(t, stderr, "panic")
	require.NotContains(t, stderr, "goroutine ")
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	require.Len(t, lines, 1, "one line on stderr, nothing else:\n%s", stderr)
	line := lines[0]
	require.True(t, strings.HasPrefix(line, "minimal-node: "), "stderr line: %q", line)
	require.Contains(t, line, "-"+flag, "the error names the flag")
	require.Contains(t, line, reason)
	return line
}

func TestHelpListsEveryFlagWithEnvVar(t *testing.T) {
	cmd := exec.Command(binary(t), "--help")
	out, err := cmd.Output()
	require.NoError(t, err)
	help := string(out)
	// The flags issue 3 asks for, with their env vars spelt out.
	for flag, env := range map[string]string{
		"engine": "LIGHTCL_ENGINE", "jwt-secret": "LIGHTCL_JWT_SECRET", "rollup.config": "LIGHTCL_ROLLUP_CONFIG",
		"source": "LIGHTCL_SOURCE", "l2.follow.source": "LIGHTCL_L2_FOLLOW_SOURCE", "l2.follow.kind": "LIGHTCL_L2_FOLLOW_KIND",
		"sync.mode": "LIGHTCL_SYNC_MODE", "poll-interval": "LIGHTCL_POLL_INTERVAL", "rpc.addr": "LIGHTCL_RPC_ADDR",
		"rpc.port": "LIGHTCL_RPC_PORT", "metrics.enabled": "LIGHTCL_METRICS_ENABLED", "metrics.addr": "LIGHTCL_METRICS_ADDR",
		"metrics.port": "LIGHTCL_METRICS_PORT", "log.level": "LIGHTCL_LOG_LEVEL", "log.format": "LIGHTCL_LOG_FORMAT",
	} {
		require.Regexp(t, `--`+regexp.QuoteMeta(flag)+`\b.*\(\$`+env+`\)`, help, "--%s with $%s", flag, env)
	}
	// And every flag the binary declares, so a new one cannot be left out.
	for _, f := range nodeFlags() {
		name := f.Names()[0]
		env := "LIGHTCL_" + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(name))
		require.Regexp(t, `--`+regexp.QuoteMeta(name)+`\b.*\(\$`+env+`\)`, help, "--%s with $%s", name, env)
	}
}

// fixture is a chain of n blocks and a local EL (with JWT) holding it all,
// head at n and labels at genesis, for a node to drive.
type fixture struct {
	tree              *fakechain.Tree
	chain             []*types.Block
	el                *fakeel.EL
	jwt               string
	rpcPort, promPort int
}

func newFixture(t *testing.T, n int) *fixture {
	f := &fixture{tree: fakechain.NewTree(), rpcPort: freePort(t), promPort: freePort(t)}
	f.chain = f.tree.Extend(f.tree.Genesis().Hash(), n, 0)
	secret := fakeel.NewJWTSecret()
	f.jwt = testutil.WriteJWTSecret(t, secret)
	f.el = testutil.NewEL(t, f.tree, fakeel.ELConfig{JWTSecret: secret})
	f.el.Insert(f.chain...)
	f.el.SetForkchoice(f.block(n).Hash(), common.Hash{}, common.Hash{})
	return f
}

func (f *fixture) block(n int) *types.Block { return f.chain[n-1] }

// start runs the node on f's EL with the given flags added, as flags or as
// LIGHTCL_* env vars, and checks its start-up line.
func (f *fixture) start(t *testing.T, viaEnv bool, extra map[string]string) *process {
	flags := map[string]string{
		"engine": f.el.URL(), "jwt-secret": f.jwt, "poll-interval": "100ms",
		"rpc.port": strconv.Itoa(f.rpcPort), "metrics.enabled": "true", "metrics.port": strconv.Itoa(f.promPort),
	}
	for k, v := range extra {
		flags[k] = v
	}
	var args, env []string
	for k, v := range flags {
		if viaEnv {
			env = append(env, "LIGHTCL_"+strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(k))+"="+v)
		} else {
			args = append(args, "--"+k+"="+v)
		}
	}
	p := startProcess(t, env, args...)
	p.startLine(t)
	return p
}

// startLine waits for the start-up line with chain_id=901 and returns it.
func (p *process) startLine(t *testing.T) string {
	t.Helper()
	var start string
	require.Eventually(t, func() bool {
		for _, line := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(line, "minimal-node starting") && strings.Contains(line, "chain_id=901") {
				start = line
				return true
			}
		}
		return false
	}, waitFor, 50*time.Millisecond, "start-up line with chain_id=901; stderr:\n%s", p.stderr)
	return start
}

// checkFollows waits until the EL's labels are safe/finalized, with the
// unsafe head untouched, then checks the status RPC and /metrics agree.
func (f *fixture) checkFollows(t *testing.T, p *process, safe, finalized int) {
	head := len(f.chain)
	require.Eventually(t, func() bool {
		u, s, fin := f.el.Labels()
		return u.Number == uint64(head) && s.Number == uint64(safe) && fin.Number == uint64(finalized)
	}, waitFor, 50*time.Millisecond, "EL labels safe %d finalized %d; stderr:\n%s", safe, finalized, p.stderr)

	var st *eth.SyncStatus
	require.Eventually(t, func() bool {
		st = f.syncStatus(t)
		return st != nil && st.SafeL2.Number == uint64(safe) && st.FinalizedL2.Number == uint64(finalized)
	}, waitFor, 50*time.Millisecond, "optimism_syncStatus; stderr:\n%s", p.stderr)
	require.Equal(t, f.tree.Ref(f.block(head)), st.UnsafeL2, "unsafe_l2")
	require.Equal(t, f.tree.Ref(f.block(safe)), st.SafeL2, "safe_l2")
	require.Equal(t, f.tree.Ref(f.block(safe)), st.LocalSafeL2, "local_safe_l2")
	require.Equal(t, f.tree.Ref(f.block(finalized)), st.FinalizedL2, "finalized_l2")

	var metrics string
	require.Eventually(t, func() bool {
		metrics = httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", f.promPort))
		return strings.Contains(metrics, fmt.Sprintf(`lightcl_adapter_head_number{label="safe"} %d`, safe))
	}, waitFor, 50*time.Millisecond, "safe head in /metrics:\n%s", metrics)
	require.Contains(t, metrics, fmt.Sprintf(`lightcl_adapter_head_number{label="finalized"} %d`, finalized))
	require.Contains(t, metrics, "lightcl_source_requests_total")
}

// syncStatus asks the node's status RPC for optimism_syncStatus; nil while it
// does not answer.
func (f *fixture) syncStatus(t *testing.T) *eth.SyncStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := rpc.DialContext(ctx, fmt.Sprintf("http://127.0.0.1:%d", f.rpcPort))
	require.NoError(t, err)
	defer c.Close()
	st, err := sources.NewRollupClient(client.NewBaseRPCClient(c)).SyncStatus(ctx)
	if err != nil {
		return nil
	}
	return st
}

var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "minimal-node-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary builds the minimal-node binary on first use and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	path := filepath.Join(binDir, "minimal-node")
	buildOnce.Do(func() {
		out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", path, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return path
}

// process is a running minimal-node, killed in t.Cleanup; its stderr is
// printed if the test fails.
type process struct {
	cmd    *exec.Cmd
	stderr *testutil.LogBuffer
	done   chan struct{} // closed when it has exited
}

func startProcess(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(binary(t), args...), stderr: new(testutil.LogBuffer), done: make(chan struct{})}
	p.cmd.Env = append(testutil.EnvWithout("LIGHTCL_"), env...)
	p.cmd.Stdout = io.Discard
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("minimal-node %s stderr:\n%s", strings.Join(args, " "), p.stderr)
		}
	})
	return p
}

// stop sends SIGTERM and requires a clean exit within 10 s.
func (p *process) stop(t *testing.T) {
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("minimal-node did not exit within 10s of SIGTERM")
	}
	require.Equal(t, 0, p.cmd.ProcessState.ExitCode(), "exit code after SIGTERM")
}

// runToExit runs the binary to its end (at most 30 s) and returns its exit
// code and stderr.
func runToExit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	p := startProcess(t, nil, args...)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("minimal-node still running after 30s; stderr:\n%s", p.stderr)
	}
	return p.cmd.ProcessState.ExitCode(), p.stderr.String()
}

func writeRollupConfig(t *testing.T, tree *fakechain.Tree) string {
	data, err := json.Marshal(tree.RollupConfig())
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "rollup.json")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

func freePort(t *testing.T) int {
	// below Linux's ephemeral range (32768-60999): a port the kernel handed
	// out with :0 and that was closed again may be handed out anew to a fake
	// server started later in the test, before the node binds it
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatal("no free port in 20000-31999")
	return 0
}

// closedAddr is a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func httpGet(url string) string {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
