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
// database flags (path scheme, pebble), fed by the node (backfill mode, tip
// feed on), is killed with SIGKILL while idle and restarted on the same
// datadir while the sequencer builds on: it rewinds to genesis. The node,
// left running, must notice, say why in an alarm naming the remedy, and bring
// the engine back to the sequencer's safe and finalized heads without being
// restarted.
//
// It fails in about half the runs, on a defect still open: op-geth comes back
// holding the blocks it had (without their state), answers VALID to their
// payloads without executing them, and SYNCING to the first one it lacks,
// also after the node points it at that block's parent; the backfill stops
// there every tick. So it runs only when asked for (-e2e.lostate).
func TestEngineThatLostItsStateRecovers(t *testing.T) {
	if !*lostState {
		t.Skip("reproduces an open defect (op-geth back without its state stalls the backfill at the first block it lacks); run with -e2e.lostate")
	}
	w := newWorld(t)
	refs := w.build(40, 1)
	w.label(refs[29], refs[19])
	follower := w.follower("follower", false) // geth's default storage flags
	node := startNode(t, "--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
		"--l2.follow.source", w.seq.HTTP(), "--l2.follow.kind", "el", "--rollup.config", writeRollupJSON(t, w.genesis.RollupConfig()),
		"--sync.mode", "backfill", "--poll-interval", "200ms")
	node.waitStarted(60 * time.Second)
	requireLabels(w.ctx, t, follower.L2(t), refs[29], refs[19], node.stderr)

	// the follower is killed once it has taken every block (idle); the chain
	// goes on while it is down. (Killed while it inserts, op-geth came back
	// holding blocks without their state, and the node did not recover: see
	// the README's Reliability table.)
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
	require.Contains(t, node.stderr.String(), "ALARM: the engine went back below the safe label")
	require.Contains(t, node.stderr.String(), "--state.scheme hash")
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
