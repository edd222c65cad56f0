package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/internal/testutil/opgeth"
	"github.com/lightcl/lightcl/internal/testutil/opstack"
)

// l1World is a mini OP Stack with a chain built and batches posted.
type l1World struct {
	t     *testing.T
	ctx   context.Context
	stack *opstack.Stack
	seq   *sources.EngineClient
	refs  []eth.L2BlockRef
}

func newL1World(t *testing.T, n int) *l1World {
	if testing.Short() {
		t.Skip("end-to-end test: runs op-geth processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	w := &l1World{t: t, ctx: ctx, stack: opstack.New(t, opstack.DefaultConfig())}
	w.seq = w.stack.Sequencer().Engine(t)
	refs, err := w.stack.BuildL2(ctx, n, func(i int) [][]byte {
		return opgeth.TransferTxs(opgeth.FundedKey(), w.stack.RollupConfig().L2ChainID, uint64(i), 1)
	})
	require.NoError(t, err)
	genesis, err := w.seq.L2BlockRefByNumber(ctx, 0)
	require.NoError(t, err)
	w.refs = append([]eth.L2BlockRef{genesis}, refs...) // w.refs[n] is block n
	return w
}

func (w *l1World) post(upTo uint64) eth.L1BlockRef {
	ref, err := w.stack.PostBatches(w.ctx, upTo, opstack.Span)
	require.NoError(w.t, err)
	return ref
}

func (w *l1World) rollupJSON() string { return writeRollupJSON(w.t, w.stack.RollupConfig()) }

// runNode starts minimal-node with args and returns its stderr and a stop
// function that sends SIGTERM and requires exit code 0.
func runNode(t *testing.T, args ...string) (*testutil.LogBuffer, func()) {
	p := startNode(t, args...)
	return p.stderr, p.stop
}

// nodeProc is a running minimal-node.
type nodeProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *testutil.LogBuffer
	done   chan struct{} // closed when it has exited
}

// startNode runs the minimal-node binary with args, killed at the end of the test.
func startNode(t *testing.T, args ...string) *nodeProc {
	return startNodeWith(t, append([]string{"--poll-interval", "100ms", "--rpc.port", "-1"}, args...)...)
}

// startNodeWith runs the minimal-node binary with args alone, killed at the
// end of the test.
func startNodeWith(t *testing.T, args ...string) *nodeProc {
	p := &nodeProc{t: t, stderr: new(testutil.LogBuffer), done: make(chan struct{})}
	p.cmd = exec.Command(minimalNode(t), args...)
	p.cmd.Env = testutil.EnvWithout("LIGHTCL_")     // the test sets the flags
	p.cmd.Stderr, p.cmd.Stdout = p.stderr, p.stderr // the logs, and start errors
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	return p
}

// exited reports whether the node has exited.
func (p *nodeProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// requireRunning fails the test at once, with the node's log, if it has exited.
func (p *nodeProc) requireRunning() {
	p.t.Helper()
	if p.exited() {
		p.t.Fatalf("minimal-node exited (%s); its log:\n%s", p.cmd.ProcessState, p.stderr.String())
	}
}

// waitStarted waits for the node's start-up line, failing at once if it exits.
func (p *nodeProc) waitStarted(within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.stderr.String(), "minimal-node starting") {
		p.requireRunning()
		if time.Now().After(deadline) {
			p.t.Fatalf("minimal-node did not start within %s; its log:\n%s", within, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and requires a clean exit within 15 s.
func (p *nodeProc) stop() {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
		require.True(p.t, p.cmd.ProcessState.Success(), "exit after SIGTERM (%s); stderr:\n%s", p.cmd.ProcessState, p.stderr.String())
	case <-time.After(15 * time.Second):
		p.t.Fatalf("minimal-node did not exit after SIGTERM; stderr:\n%s", p.stderr.String())
	}
}

func requireLabels(ctx context.Context, t *testing.T, l2 *sources.L2Client, safe, fin eth.L2BlockRef, stderr *testutil.LogBuffer) {
	t.Helper()
	if !assert.Eventually(t, func() bool {
		s, err1 := l2.L2BlockRefByLabel(ctx, eth.Safe)
		f, err2 := l2.L2BlockRefByLabel(ctx, eth.Finalized)
		return err1 == nil && err2 == nil && s == safe && f == fin
	}, 60*time.Second, 50*time.Millisecond) {
		t.Fatalf("want safe %d, finalized %d; minimal-node stderr:\n%s", safe.Number, fin.Number, stderr.String())
	}
}

// TestMinimalNodeDerivesFromL1: minimal-node --source l1 brings a peerless
// follower to the posted safe head and the L1-finalized head, building the
// blocks itself.
func TestMinimalNodeDerivesFromL1(t *testing.T) {
	w := newL1World(t, 24)
	p1 := w.post(12)
	w.post(20)
	w.stack.L1().SetLabels(p1.Number, p1.Number)
	follower := w.stack.StartFollower(t)

	stderr, stop := runNode(t, "--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
		"--source", "l1", "--l1", w.stack.L1URL(), "--rollup.config", w.rollupJSON(), "--rpc.port", "0")
	l2 := follower.L2(t)
	requireLabels(w.ctx, t, l2, w.refs[20], w.refs[12], stderr)
	head, err := l2.L2BlockRefByLabel(w.ctx, eth.Unsafe)
	require.NoError(t, err)
	require.Equal(t, w.refs[20], head, "nothing past the posted blocks")

	// the status RPC says what the derivation did
	addr := regexp.MustCompile(`Status RPC listening +addr=(\S+)`).FindStringSubmatch(stderr.String())
	require.Len(t, addr, 2, "status address in the log:\n%s", stderr.String())
	var st struct {
		Kind         string `json:"kind"`
		L1Derivation struct {
			Safe      eth.BlockID `json:"safe"`
			Finalized eth.BlockID `json:"finalized"`
			Derived   uint64      `json:"derived"`
			Building  uint64      `json:"building"`
		} `json:"l1_derivation"`
	}
	rpcClient, err := rpc.Dial("http://" + addr[1])
	require.NoError(t, err)
	defer rpcClient.Close()
	require.NoError(t, rpcClient.CallContext(w.ctx, &st, "lightcl_status"))
	require.Equal(t, "l1", st.Kind)
	require.Equal(t, w.refs[20].ID(), st.L1Derivation.Safe)
	require.Equal(t, w.refs[12].ID(), st.L1Derivation.Finalized)
	require.Equal(t, uint64(20), st.L1Derivation.Derived)
	require.Zero(t, st.L1Derivation.Building)
	stop()
}

// TestMinimalNodeCrossCheck: minimal-node --source l2 --l1.crosscheck stays
// quiet while the remote follows L1, and halts with an alarm when the remote's
// safe chain is not the one L1 derives.
func TestMinimalNodeCrossCheck(t *testing.T) {
	for _, lie := range []bool{false, true} {
		t.Run(map[bool]string{false: "honest remote", true: "lying remote"}[lie], func(t *testing.T) {
			w := newL1World(t, 20)
			w.post(20)
			safe := w.refs[20]
			if lie {
				// the remote's chain from block 11 on: same L1 origins, other transactions
				safe = w.forkRemote(10, 10)
			}
			w.setRemoteLabels(safe, w.refs[0])
			follower := w.stack.StartFollower(t)

			stderr, stop := runNode(t, "--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
				"--l2.follow.source", w.stack.Sequencer().HTTP(), "--rollup.config", w.rollupJSON(),
				"--sync.mode", "backfill", "--l1", w.stack.L1URL(), "--l1.crosscheck",
				"--l1.crosscheck.state", filepath.Join(t.TempDir(), "crosscheck.json"))
			l2 := follower.L2(t)
			requireLabels(w.ctx, t, l2, safe, w.refs[0], stderr)
			if !lie {
				// the check derives all 20 blocks and finds them in the engine
				time.Sleep(2 * time.Second)
				require.NotContains(t, stderr.String(), "ALARM")
				stop()
				return
			}
			if !assert.Eventually(t, func() bool { return strings.Contains(stderr.String(), "ALARM") }, 30*time.Second, 50*time.Millisecond) {
				t.Fatalf("no alarm; stderr:\n%s", stderr.String())
			}
			require.Contains(t, stderr.String(), "block 11")
			// halted: a later finalized label from the remote is not applied
			w.setRemoteLabels(safe, w.refs[5])
			time.Sleep(time.Second)
			fin, err := l2.L2BlockRefByLabel(w.ctx, eth.Finalized)
			require.NoError(t, err)
			require.Equal(t, w.refs[0], fin, "nothing applied after the alarm")
			stop()
		})
	}
}

// TestMinimalNodeCrossCheckRestart: the cross-check applies the remote's
// finalized head only once L1 derivation has confirmed it, and keeps the
// confirmed block in --l1.crosscheck.state. Restarted after the remote has
// moved onto another chain above it, claiming a block of that chain final,
// the node checks on from the confirmed block, keeps finalized there and
// raises the alarm; restarted once more without the file it re-derives from
// genesis and raises it again, not taking the engine's labels as checked.
func TestMinimalNodeCrossCheckRestart(t *testing.T) {
	w := newL1World(t, 20)
	p1 := w.post(10)
	w.post(20)
	w.stack.L1().SetLabels(p1.Number, p1.Number) // L1 has finalized the batch of blocks 1..10
	w.setRemoteLabels(w.refs[10], w.refs[10])
	follower := w.stack.StartFollower(t)
	l2 := follower.L2(t)
	state := filepath.Join(t.TempDir(), "crosscheck.json")
	args := []string{"--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
		"--l2.follow.source", w.stack.Sequencer().HTTP(), "--rollup.config", w.rollupJSON(),
		"--sync.mode", "backfill", "--l1", w.stack.L1URL(), "--l1.crosscheck", "--l1.crosscheck.state", state}

	p := startNode(t, args...)
	requireLabels(w.ctx, t, l2, w.refs[10], w.refs[10], p.stderr)
	require.Contains(t, p.stderr.String(), "Finalized held at the block L1 derivation confirmed", "finalized 10 waited for derivation")
	p.stop()

	// the remote moves onto another chain from block 11 and calls its block 15 final
	lyingSafe := w.forkRemote(10, 10)
	lyingFin, err := w.seq.L2BlockRefByNumber(w.ctx, 15)
	require.NoError(t, err)
	w.setRemoteLabels(lyingSafe, lyingFin)

	alarm := func(p *nodeProc) {
		t.Helper()
		if !assert.Eventually(t, func() bool { return strings.Contains(p.stderr.String(), "ALARM") }, 30*time.Second, 50*time.Millisecond) {
			t.Fatalf("no alarm; stderr:\n%s", p.stderr.String())
		}
		require.Contains(t, p.stderr.String(), "block 11")
		fin, err := l2.L2BlockRefByLabel(w.ctx, eth.Finalized)
		require.NoError(t, err)
		require.Equal(t, w.refs[10], fin, "the remote's finalized 15 is never applied")
	}
	p = startNode(t, args...)
	alarm(p)
	require.Regexp(t, `Read the confirmed finalized block +source=l1crosscheck number=10 `, p.stderr.String())
	p.stop()

	require.NoError(t, os.Remove(state))
	p = startNode(t, args...)
	alarm(p)
	require.Contains(t, p.stderr.String(), "a first run, re-deriving from the L2 genesis")
	p.stop()
}

// setRemoteLabels moves the sequencer's safe and finalized labels.
func (w *l1World) setRemoteLabels(safe, fin eth.L2BlockRef) {
	head, err := w.seq.L2BlockRefByLabel(w.ctx, eth.Unsafe)
	require.NoError(w.t, err)
	res, err := w.seq.ForkchoiceUpdate(w.ctx, &eth.ForkchoiceState{HeadBlockHash: head.Hash, SafeBlockHash: safe.Hash, FinalizedBlockHash: fin.Hash}, nil)
	require.NoError(w.t, err)
	require.Equal(w.t, eth.ExecutionValid, res.PayloadStatus.Status)
}

// forkRemote rebuilds the sequencer's chain above block at with n blocks of
// the same L1 origins and L1-info deposits but two transfers each instead of
// one: a valid chain that L1 does not derive. It returns the new head.
func (w *l1World) forkRemote(at uint64, n int) eth.L2BlockRef {
	l1 := testutil.DialL1(w.t, w.stack.L1URL())
	builder := derive.NewFetchingAttributesBuilder(w.stack.RollupConfig(), nil, nil, l1, w.seq)
	parent := w.refs[at]
	for i := range n {
		like := w.refs[at+1+uint64(i)]
		attrs, err := builder.PreparePayloadAttributes(w.ctx, parent, like.L1Origin)
		require.NoError(w.t, err)
		attrs.NoTxPool = true
		for _, tx := range opgeth.TransferTxs(opgeth.FundedKey(), w.stack.RollupConfig().L2ChainID, at+uint64(2*i), 2) {
			attrs.Transactions = append(attrs.Transactions, tx)
		}
		parent = w.buildOn(parent, attrs)
		require.NotEqual(w.t, like.Hash, parent.Hash)
	}
	return parent
}

// buildOn builds one block on parent from attrs on the sequencer and makes
// it the head.
func (w *l1World) buildOn(parent eth.L2BlockRef, attrs *eth.PayloadAttributes) eth.L2BlockRef {
	fc := eth.ForkchoiceState{HeadBlockHash: parent.Hash, SafeBlockHash: w.refs[0].Hash, FinalizedBlockHash: w.refs[0].Hash}
	res, err := w.seq.ForkchoiceUpdate(w.ctx, &fc, attrs)
	require.NoError(w.t, err)
	require.NotNil(w.t, res.PayloadID)
	env, err := w.seq.GetPayload(w.ctx, eth.PayloadInfo{ID: *res.PayloadID, Timestamp: uint64(attrs.Timestamp)})
	require.NoError(w.t, err)
	st, err := w.seq.NewPayload(w.ctx, env.ExecutionPayload, env.ParentBeaconBlockRoot)
	require.NoError(w.t, err)
	require.Equal(w.t, eth.ExecutionValid, st.Status)
	fc.HeadBlockHash = env.ExecutionPayload.BlockHash
	_, err = w.seq.ForkchoiceUpdate(w.ctx, &fc, nil)
	require.NoError(w.t, err)
	ref, err := derive.PayloadToBlockRef(w.stack.RollupConfig(), env.ExecutionPayload)
	require.NoError(w.t, err)
	return ref
}
