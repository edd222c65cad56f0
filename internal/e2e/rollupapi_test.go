package e2e_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/node/safedb"
	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRollupClientSyncStatus: op-service's RollupClient (op-proposer's and
// op-challenger's client) decodes minimal-node's optimism_syncStatus, and
// every field minimal-node populates is the truth: the L2 heads are the
// follower op-geth's labels, the L1 blocks are the in-memory L1's, read again
// when L1 moves on. Fields minimal-node documents as zero for the setup are
// zero.
func TestRollupClientSyncStatus(t *testing.T) {
	// The sequencer's op-geth as an L2 EL source, verified against L1 with
	// --l1: head_l1, safe_l1 and finalized_l1 are the verifier's reads;
	// current_l1 is zero (an L2 EL does not say it).
	t.Run("l2 EL source verified with --l1", func(t *testing.T) {
		w := newL1World(t, 24)
		p1 := w.post(12)
		p2 := w.post(20)
		w.stack.L1().SetLabels(p2.Number, p1.Number) // three different L1 blocks: head, safe, finalized
		w.setRemoteLabels(w.refs[20], w.refs[12])
		follower := w.stack.StartFollower(t)
		w.stack.L1().Advance(1) // the head above safe

		node := startNode(t, "--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
			"--l2.follow.source", w.stack.Sequencer().HTTP(), "--l2.follow.kind", "el", "--rollup.config", w.rollupJSON(),
			"--sync.mode", "backfill", "--l1", w.stack.L1URL(), "--rpc.addr", "127.0.0.1", "--rpc.port", "0")
		node.waitStarted(60 * time.Second)
		l2 := follower.L2(t)
		requireLabels(w.ctx, t, l2, w.refs[20], w.refs[12], node.stderr)
		requireUnsafe(w.ctx, t, l2, w.refs[24], node) // the source is the tip feed
		api := dialRollupAPI(t, node)

		l1 := w.stack.L1()
		st := api.syncStatusWhen(w.ctx, func(st *eth.SyncStatus) bool { return st.HeadL1 == l1.Head() })
		require.Equal(t, l1.Head(), st.HeadL1, "head_l1: L1's head")
		requireL2Truth(w.ctx, t, l2, st)
		require.Equal(t, w.refs[24], st.UnsafeL2)
		require.Equal(t, w.refs[20], st.SafeL2)
		require.Equal(t, w.refs[12], st.FinalizedL2)
		require.Equal(t, l1.Safe(), st.SafeL1, "safe_l1: L1's safe block")
		require.Equal(t, l1.Finalized(), st.FinalizedL1, "finalized_l1: L1's finalized block")
		require.Zero(t, st.CurrentL1, "current_l1: an L2 EL source does not say it")
		requireCurrentL1Finalized(t, st)

		// L1 moves on, its safe and finalized labels stay: head_l1 follows on
		// a later tick
		l1.Advance(2)
		st = api.syncStatusWhen(w.ctx, func(st *eth.SyncStatus) bool { return st.HeadL1 == l1.Head() })
		require.Equal(t, p2, st.SafeL1)
		require.Equal(t, p1, st.FinalizedL1)
		requireL2Truth(w.ctx, t, l2, st)
		node.stop()
	})

	// --source l1: current_l1 is the L1 block derivation reached, the L1 head
	// once all is derived; head_l1, safe_l1 and finalized_l1 are zero (no
	// --l1 verifier runs: minimal-node documents them as the verifier's).
	t.Run("source l1", func(t *testing.T) {
		w := newL1World(t, 24)
		p1 := w.post(12)
		p2 := w.post(20)
		l1 := w.stack.L1()
		l1.SetLabels(p1.Number, p1.Number)
		follower := w.stack.StartFollower(t)

		node := startNode(t, "--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
			"--source", "l1", "--l1", w.stack.L1URL(), "--rollup.config", w.rollupJSON(),
			"--rpc.addr", "127.0.0.1", "--rpc.port", "0")
		node.waitStarted(60 * time.Second)
		l2 := follower.L2(t)
		requireLabels(w.ctx, t, l2, w.refs[20], w.refs[12], node.stderr)
		api := dialRollupAPI(t, node)

		st := api.syncStatusWhen(w.ctx, func(st *eth.SyncStatus) bool {
			return st.SafeL2 == w.refs[20] && st.CurrentL1 == l1.Head()
		})
		requireL2Truth(w.ctx, t, l2, st)
		require.Equal(t, w.refs[20], st.UnsafeL2, "no tip feed: the head is the safe head")
		require.Equal(t, w.refs[12], st.FinalizedL2)
		require.Equal(t, p2, st.CurrentL1, "derived up to the L1 head, the block with the last batch")
		require.Zero(t, st.HeadL1, "head_l1: no --l1 verifier")
		require.Zero(t, st.SafeL1, "safe_l1: no --l1 verifier")
		require.Zero(t, st.FinalizedL1, "finalized_l1: no --l1 verifier")
		requireCurrentL1Finalized(t, st)

		// L1 moves on without batches: derivation reaches its new head
		l1.Advance(3)
		st = api.syncStatusWhen(w.ctx, func(st *eth.SyncStatus) bool { return st.CurrentL1 == l1.Head() })
		requireL2Truth(w.ctx, t, l2, st)
		require.Equal(t, w.refs[20], st.SafeL2)
		node.stop()
	})
}

// TestRollupClientSafeHeadAtL1Block: minimal-node --source l1 --safedb.path
// records each safe head with the L1 block it was derived from, and
// op-service's RollupClient reads them back with SafeHeadAtL1Block: the
// record at the highest L1 block at or below the one asked, "not found"
// (safedb.ErrNotFound) below the first. Each safe head answered is the block
// the follower op-geth holds at that number. Stopped and started again on
// the same database, the node answers the same, also after deriving on.
func TestRollupClientSafeHeadAtL1Block(t *testing.T) {
	w := newL1World(t, 24)
	l1 := w.stack.L1()
	follower := w.stack.StartFollower(t)
	l2 := follower.L2(t)
	args := []string{"--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
		"--source", "l1", "--l1", w.stack.L1URL(), "--rollup.config", w.rollupJSON(),
		"--safedb.path", t.TempDir(), "--rpc.addr", "127.0.0.1", "--rpc.port", "0"}

	// blocks 1..12 in L1 block p1, derived before 13..20 are posted in p2
	p1 := w.post(12)
	node := startNode(t, args...)
	node.waitStarted(60 * time.Second)
	requireLabels(w.ctx, t, l2, w.refs[12], w.refs[0], node.stderr)
	api := dialRollupAPI(t, node)
	api.waitDerivedUpTo(w.ctx, p1.ID(), w.refs[12].ID())
	l1.Advance(2) // L1 blocks without batches: no record between p1 and p2
	p2 := w.post(20)
	requireLabels(w.ctx, t, l2, w.refs[20], w.refs[0], node.stderr)
	api.waitDerivedUpTo(w.ctx, p2.ID(), w.refs[20].ID())
	l1.Advance(2) // nor above p2

	want := map[uint64]eth.SafeHeadResponse{
		p1.Number:      {L1Block: p1.ID(), SafeHead: w.refs[12].ID()},
		p1.Number + 2:  {L1Block: p1.ID(), SafeHead: w.refs[12].ID()},
		p2.Number:      {L1Block: p2.ID(), SafeHead: w.refs[20].ID()},
		p2.Number + 2:  {L1Block: p2.ID(), SafeHead: w.refs[20].ID()}, // L1's head
		p2.Number + 10: {L1Block: p2.ID(), SafeHead: w.refs[20].ID()}, // above L1's head
	}
	check := func(api *rollupAPI) {
		t.Helper()
		for n, wantAt := range want {
			got, err := api.rollup.SafeHeadAtL1Block(w.ctx, n)
			require.NoError(t, err, "safe head at L1 block %d; node log:\n%s", n, api.node.stderr.String())
			require.Equal(t, wantAt, *got, "safe head at L1 block %d", n)
			held, err := l2.L2BlockRefByNumber(w.ctx, got.SafeHead.Number)
			require.NoError(t, err)
			require.Equal(t, held.ID(), got.SafeHead, "the follower holds the answered safe head")
		}
		_, err := api.rollup.SafeHeadAtL1Block(w.ctx, p1.Number-1)
		require.ErrorIs(t, err, safedb.ErrNotFound, "below the first record")
	}
	check(api)
	node.stop()

	// the same database, a new process: the same answers once it has derived
	// again up to L1's head (a restart that re-recorded or truncated would show)
	node = startNode(t, args...)
	node.waitStarted(60 * time.Second)
	api = dialRollupAPI(t, node)
	api.waitDerivedUpTo(w.ctx, l1.Head().ID(), w.refs[20].ID())
	api.waitTicks(w.ctx, 3)
	check(api)

	// and records go on: blocks 21..24 in p3
	p3 := w.post(24)
	requireLabels(w.ctx, t, l2, w.refs[24], w.refs[0], node.stderr)
	api.waitDerivedUpTo(w.ctx, p3.ID(), w.refs[24].ID())
	for n := range want {
		if n >= p3.Number {
			want[n] = eth.SafeHeadResponse{L1Block: p3.ID(), SafeHead: w.refs[24].ID()} // above p3: p3's record now
		}
	}
	want[p3.Number] = eth.SafeHeadResponse{L1Block: p3.ID(), SafeHead: w.refs[24].ID()}
	check(api)
	node.stop()
}

// TestRollupClientPostUnsafePayload: with --rpc.enable-admin and no tip feed
// (--l2.unsafe.disable), the sequencer's next blocks, fetched from its
// op-geth and posted with RollupClient.PostUnsafePayload, become the follower
// op-geth's latest block one by one, and stay it across the node's ticks;
// safe and finalized are untouched, and optimism_syncStatus's unsafe_l2
// follows. A payload whose hash does not match its contents is refused and
// moves nothing.
func TestRollupClientPostUnsafePayload(t *testing.T) {
	w := newWorld(t)
	refs := w.build(20, 1) // refs[i] is block i+1
	safe, fin := refs[14], refs[9]
	w.label(safe, fin)
	follower := w.follower("follower", false)
	node := startNode(t, "--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
		"--l2.follow.source", w.seq.HTTP(), "--l2.follow.kind", "el", "--rollup.config", writeRollupJSON(t, w.genesis.RollupConfig()),
		"--sync.mode", "backfill", "--l2.unsafe.disable", "--rpc.enable-admin", "--rpc.addr", "127.0.0.1", "--rpc.port", "0")
	node.waitStarted(60 * time.Second)
	l2 := follower.L2(t)
	requireLabels(w.ctx, t, l2, safe, fin, node.stderr)
	api := dialRollupAPI(t, node)
	api.waitTicks(w.ctx, 3)
	requireHeads(w.ctx, t, l2, safe, safe, fin, "no tip feed: the head is the safe head")
	seq := w.seq.L2(t)

	for _, next := range refs[15:18] { // blocks 16..18
		env, err := seq.PayloadByNumber(w.ctx, next.Number)
		require.NoError(t, err)
		require.NoError(t, api.rollup.PostUnsafePayload(w.ctx, env), "post block %d; node log:\n%s", next.Number, node.stderr.String())
		requireHeads(w.ctx, t, l2, next, safe, fin, "block %d posted: the head once the call returns", next.Number)
		st, err := api.rollup.SyncStatus(w.ctx)
		require.NoError(t, err)
		require.Equal(t, next, st.UnsafeL2, "unsafe_l2 at once, with its L1 origin and sequence number")
	}
	head := refs[17]
	api.waitTicks(w.ctx, 3)
	requireHeads(w.ctx, t, l2, head, safe, fin, "the posted head stays across ticks")
	st, err := api.rollup.SyncStatus(w.ctx)
	require.NoError(t, err)
	require.Equal(t, head, st.UnsafeL2)
	require.Equal(t, safe, st.SafeL2)
	require.Equal(t, fin, st.FinalizedL2)

	env, err := seq.PayloadByNumber(w.ctx, refs[18].Number)
	require.NoError(t, err)
	env.ExecutionPayload.BlockHash = common.Hash{1}
	require.ErrorContains(t, api.rollup.PostUnsafePayload(w.ctx, env), "bad block hash")
	api.waitTicks(w.ctx, 1)
	requireHeads(w.ctx, t, l2, head, safe, fin, "a forged payload moves nothing")
	node.stop()
}

// rollupAPI is a node's status RPC: op-service's RollupClient on it, and the
// same connection for lightcl_status.
type rollupAPI struct {
	t      *testing.T
	node   *nodeProc
	rpc    *rpc.Client
	rollup *sources.RollupClient
}

// dialRollupAPI dials the status RPC at the address the node logs.
func dialRollupAPI(t *testing.T, node *nodeProc) *rollupAPI {
	t.Helper()
	re := regexp.MustCompile(`Status RPC listening +addr=(\S+)`)
	var addr []string
	if !assert.Eventually(t, func() bool {
		node.requireRunning()
		addr = re.FindStringSubmatch(node.stderr.String())
		return len(addr) == 2
	}, 30*time.Second, 50*time.Millisecond) {
		t.Fatalf("no status address in the log:\n%s", node.stderr.String())
	}
	c, err := rpc.Dial("http://" + addr[1])
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return &rollupAPI{t: t, node: node, rpc: c, rollup: sources.NewRollupClient(client.NewBaseRPCClient(c))}
}

// syncStatusWhen reads optimism_syncStatus until ok holds of it, and returns
// that answer; it fails the test after 60 s with the last answer.
func (a *rollupAPI) syncStatusWhen(ctx context.Context, ok func(*eth.SyncStatus) bool) *eth.SyncStatus {
	a.t.Helper()
	var st *eth.SyncStatus
	var err error
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		a.node.requireRunning()
		if st, err = a.rollup.SyncStatus(ctx); err == nil && ok(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.t.Fatalf("optimism_syncStatus never as wanted; last %+v (err %v); node log:\n%s", st, err, a.node.stderr.String())
	return nil
}

// lightclStatus is the part of lightcl_status these tests read.
type lightclStatus struct {
	Ticks        uint64 `json:"ticks"`
	L1Derivation *struct {
		Safe      eth.BlockID `json:"safe"`
		CurrentL1 eth.BlockID `json:"current_l1"`
	} `json:"l1_derivation"`
}

func (a *rollupAPI) status(ctx context.Context) (lightclStatus, error) {
	var st lightclStatus
	err := a.rpc.CallContext(ctx, &st, "lightcl_status")
	return st, err
}

// waitTicks waits until the node has made n more ticks.
func (a *rollupAPI) waitTicks(ctx context.Context, n uint64) {
	a.t.Helper()
	st, err := a.status(ctx)
	require.NoError(a.t, err)
	from := st.Ticks
	if !assert.Eventually(a.t, func() bool {
		st, err := a.status(ctx)
		return err == nil && st.Ticks >= from+n
	}, 30*time.Second, 50*time.Millisecond) {
		a.t.Fatalf("no %d ticks after tick %d; node log:\n%s", n, from, a.node.stderr.String())
	}
}

// waitDerivedUpTo waits until the node's L1 derivation has derived safe from
// L1 up to block l1, and a tick has passed since (the adapter applied it).
func (a *rollupAPI) waitDerivedUpTo(ctx context.Context, l1, safe eth.BlockID) {
	a.t.Helper()
	if !assert.Eventually(a.t, func() bool {
		st, err := a.status(ctx)
		return err == nil && st.L1Derivation != nil && st.L1Derivation.CurrentL1 == l1 && st.L1Derivation.Safe == safe
	}, 60*time.Second, 50*time.Millisecond) {
		a.t.Fatalf("not derived up to L1 block %s with safe %s; node log:\n%s", l1, safe, a.node.stderr.String())
	}
	a.waitTicks(ctx, 1)
}

// requireL2Truth checks syncStatus's L2 heads against the follower's labels,
// read after it: nothing moves them meanwhile in these tests.
func requireL2Truth(ctx context.Context, t *testing.T, l2 *sources.L2Client, st *eth.SyncStatus) {
	t.Helper()
	for _, c := range []struct {
		label eth.BlockLabel
		got   eth.L2BlockRef
	}{{eth.Unsafe, st.UnsafeL2}, {eth.Safe, st.SafeL2}, {eth.Finalized, st.FinalizedL2}} {
		want, err := l2.L2BlockRefByLabel(ctx, c.label)
		require.NoError(t, err)
		require.Equal(t, want, c.got, "the follower's %s block", c.label)
	}
	require.Equal(t, st.SafeL2, st.LocalSafeL2, "local_safe_l2 is the safe head")
	require.Equal(t, st.SafeL2, st.PendingSafeL2, "pending_safe_l2 is the safe head")
}

// requireCurrentL1Finalized: current_l1_finalized is deprecated; op-node sets
// it to finalized_l1, minimal-node leaves it zero. Either, never another block.
func requireCurrentL1Finalized(t *testing.T, st *eth.SyncStatus) {
	t.Helper()
	if st.CurrentL1Finalized != (eth.L1BlockRef{}) {
		require.Equal(t, st.FinalizedL1, st.CurrentL1Finalized, "current_l1_finalized")
	}
}

// requireUnsafe waits until the follower's latest block is head.
func requireUnsafe(ctx context.Context, t *testing.T, l2 *sources.L2Client, head eth.L2BlockRef, node *nodeProc) {
	t.Helper()
	if !assert.Eventually(t, func() bool {
		got, err := l2.L2BlockRefByLabel(ctx, eth.Unsafe)
		return err == nil && got == head
	}, 60*time.Second, 50*time.Millisecond) {
		t.Fatalf("the follower's head is not block %d; node log:\n%s", head.Number, node.stderr.String())
	}
}

// requireHeads checks the follower's latest, safe and finalized blocks now.
func requireHeads(ctx context.Context, t *testing.T, l2 *sources.L2Client, unsafe, safe, fin eth.L2BlockRef, msg string, args ...any) {
	t.Helper()
	var got [3]eth.L2BlockRef
	for i, label := range []eth.BlockLabel{eth.Unsafe, eth.Safe, eth.Finalized} {
		var err error
		got[i], err = l2.L2BlockRefByLabel(ctx, label)
		require.NoError(t, err)
	}
	want := [3]eth.L2BlockRef{unsafe, safe, fin}
	if got != want {
		t.Fatalf("%s: latest/safe/finalized %d/%d/%d, want %d/%d/%d",
			fmt.Sprintf(msg, args...), got[0].Number, got[1].Number, got[2].Number, unsafe.Number, safe.Number, fin.Number)
	}
}
