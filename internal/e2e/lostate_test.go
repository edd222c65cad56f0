package e2e_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/stretchr/testify/require"
)

// TestEngineThatLostItsStateRecovers: a follower op-geth with its default
// database flags (path scheme, pebble), fed by the node (tip feed on), is
// killed with SIGKILL while idle and restarted on the same datadir while the
// sequencer builds on: it comes back at genesis. The node, left running, must
// notice, say why in an alarm naming the remedy, and bring the engine back to
// the sequencer's safe and finalized heads without being restarted.
//
// What op-geth v1.101702.3-rc.7 does after SIGKILL: it rewinds its head block
// to genesis (the last state on disk) but keeps the headers, bodies and its
// snap-sync marker above it, and so comes back in snap-sync mode ("snap-sync
// incomplete"), in which newPayload imports nothing and a forkchoice update to
// a block it holds moves nothing. Given the engine's debug RPC
// (--engine.debug-rpc), the node has it drop those blocks (debug_setHead to
// its head block); the engine process stays in snap-sync mode until it is
// restarted, so the node's backfill meets SYNCING twice and the alarm asks
// for a clean restart, which the test does as the operator would. After it,
// op-geth is in full-sync mode and the running node backfills it.
//
// Always run:
//   - backfill mode, no peers, with --engine.debug-rpc: passed 10 of 10 runs
//     here, 4 of the last 5 only after the restart the alarm asked for.
//
// Run only with -e2e.lostate (open defects of op-geth, reproduced here):
//   - EL-sync mode, peered with the sequencer's op-geth, with
//     --engine.debug-rpc: passed 5 of 10. In the others op-geth's snap sync
//     from its peer fails ("missing trie node … layer stale"), marks block 1
//     bad, answers INVALID ("links to previously rejected block") for the
//     source's safe head, and at its clean shutdown persists the half-synced
//     state root as its disk layer, so that after the restart it still cannot
//     import block 1. No Engine API call undoes that.
//   - both modes without --engine.debug-rpc: op-geth keeps the blocks it holds
//     without their state and stays in snap-sync mode across restarts.
//
// With --state.scheme hash the engine keeps its state through SIGKILL and
// TestCrashInTheMiddleOfABackfill covers it.
func TestEngineThatLostItsStateRecovers(t *testing.T) {
	t.Run("backfill, no peers, dropping", func(t *testing.T) { engineLosesItsState(t, false, "backfill", true) })
	if !*lostState {
		t.Log("the other cases reproduce open defects of op-geth (see the comment); run with -e2e.lostate")
		return
	}
	t.Run("el-sync, peered, dropping", func(t *testing.T) { engineLosesItsState(t, true, "el-sync", true) })
	t.Run("el-sync, peered", func(t *testing.T) { engineLosesItsState(t, true, "el-sync", false) })
	t.Run("backfill, no peers", func(t *testing.T) { engineLosesItsState(t, false, "backfill", false) })
}

// engineLosesItsState runs the scenario; drop gives the node the follower's
// debug RPC (--engine.debug-rpc), so that it has op-geth drop the blocks it
// kept above its rewound head.
func engineLosesItsState(t *testing.T, p2p bool, mode string, drop bool) {
	w := newWorld(t)
	refs := w.build(40, 1)
	w.label(refs[29], refs[19])
	follower := w.follower("follower", p2p) // geth's default storage flags
	args := []string{"--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
		"--l2.follow.source", w.seq.HTTP(), "--l2.follow.kind", "el", "--rollup.config", writeRollupJSON(t, w.genesis.RollupConfig()),
		"--sync.mode", mode, "--poll-interval", "200ms"}
	if drop {
		args = append(args, "--engine.debug-rpc", follower.HTTP())
	}
	node := startNode(t, args...)
	node.waitStarted(60 * time.Second)
	requireLabels(w.ctx, t, follower.L2(t), refs[29], refs[19], node.stderr)

	// the follower is killed once it has taken every block (idle); the chain
	// goes on while it is down
	time.Sleep(time.Second)
	follower.Kill()
	w.build(10, 1)
	follower.Restart(t)
	head, err := follower.L2(t).L2BlockRefByLabel(w.ctx, eth.Unsafe)
	require.NoError(t, err)
	t.Logf("follower after SIGKILL and restart: head %d", head.Number)

	more := w.build(5, 1)
	w.label(more[2], more[0])
	l2 := follower.L2(t)
	converged := labelsWithin(w, l2, more[2], more[0], 30*time.Second)
	if !converged && strings.Contains(node.stderr.String(), "Remedy: restart it cleanly") {
		// op-geth came back in snap-sync mode, which imports no payload and,
		// with no peers, never ends: the operator restarts it, as the alarm
		// says; the node, still running, carries on
		t.Logf("the node's alarm asked for a restart of the engine; restarting it cleanly")
		follower.Restart(t)
		l2 = follower.L2(t)
		converged = labelsWithin(w, l2, more[2], more[0], 60*time.Second)
	}
	if !converged {
		t.Fatalf("the engine did not recover; node log:\n%s\nfollower log:\n%s", node.stderr.String(), follower.LogTail(60))
	}
	if head.Number < refs[29].Number {
		require.Contains(t, node.stderr.String(), "ALARM: the engine went back below the safe label")
		require.Contains(t, node.stderr.String(), "--state.scheme hash")
	}
	node.stop()
}

var lostState = flag.Bool("e2e.lostate", false, "also run TestEngineThatLostItsStateRecovers's cases that reproduce open defects of op-geth (EL-sync mode peered, and no --engine.debug-rpc)")

// labelsWithin reports whether the follower's safe and finalized heads become
// safe and fin within d.
func labelsWithin(w *world, l2 *sources.L2Client, safe, fin eth.L2BlockRef, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		s, err1 := l2.L2BlockRefByLabel(w.ctx, eth.Safe)
		f, err2 := l2.L2BlockRefByLabel(w.ctx, eth.Finalized)
		if err1 == nil && err2 == nil && s == safe && f == fin {
			return true
		}
	}
	return false
}
