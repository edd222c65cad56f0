package e2e_test

import (
	"flag"
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
// It does not, on op-geth v1.101702.3-rc.7 with its default storage, so both
// cases run only when asked for (-e2e.lostate):
//   - backfill mode, no peers: in about half the runs op-geth comes back
//     holding its blocks without their state, and its Engine API offers no way
//     to execute them again. A forkchoice update to such a block finds it in
//     the canonical index and, on an OP chain, moves nothing
//     (eth/catalyst/api.go: neither SetCanonical, which would re-execute it
//     from the nearest state, nor the "old head" branch runs); newPayload of a
//     block it holds answers VALID without executing; a child answers ACCEPTED
//     ("State not available"). The backfill stops at the first block it lacks.
//   - EL-sync mode, peered with the sequencer's op-geth: passed 2 of 6 runs
//     here. In the others op-geth's own sync from its peer fails on its
//     stateless blocks, and it then answers INVALID ("links to previously
//     rejected block") for the source's safe head, each time the node forgives
//     that answer and sends the head again, until op-geth is restarted (its
//     rejected-block memory is not on disk).
//
// The node does its part in both (the alarm naming the remedy, forgiving the
// INVALID answers for blocks the source vouches for, no restart of its own);
// with --state.scheme hash the engine keeps its state through SIGKILL and
// TestCrashInTheMiddleOfABackfill covers it.
func TestEngineThatLostItsStateRecovers(t *testing.T) {
	if !*lostState {
		t.Skip("reproduces an open defect of op-geth with its default storage after SIGKILL (see the comment); run with -e2e.lostate")
	}
	t.Run("el-sync, peered", func(t *testing.T) { engineLosesItsState(t, true, "el-sync") })
	t.Run("backfill, no peers", func(t *testing.T) { engineLosesItsState(t, false, "backfill") })
}

func engineLosesItsState(t *testing.T, p2p bool, mode string) {
	w := newWorld(t)
	refs := w.build(40, 1)
	w.label(refs[29], refs[19])
	follower := w.follower("follower", p2p) // geth's default storage flags
	node := startNode(t, "--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
		"--l2.follow.source", w.seq.HTTP(), "--l2.follow.kind", "el", "--rollup.config", writeRollupJSON(t, w.genesis.RollupConfig()),
		"--sync.mode", mode, "--poll-interval", "200ms")
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
	if !labelsWithin(w, l2, more[2], more[0], 90*time.Second) {
		t.Fatalf("the engine did not recover; node log:\n%s\nfollower log:\n%s", node.stderr.String(), follower.LogTail(60))
	}
	if head.Number < refs[29].Number {
		require.Contains(t, node.stderr.String(), "ALARM: the engine went back below the safe label")
		require.Contains(t, node.stderr.String(), "--state.scheme hash")
	}
	node.stop()
}

var lostState = flag.Bool("e2e.lostate", false, "run TestEngineThatLostItsStateRecovers, which reproduces an open defect")

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
