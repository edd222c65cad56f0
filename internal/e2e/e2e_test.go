package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/testutil/opgeth"
)

// TestELSyncThroughP2P: the follower op-geth is peered with the sequencer's;
// the adapter points it at the source's safe head and it syncs the blocks
// itself.
func TestELSyncThroughP2P(t *testing.T) {
	w := newWorld(t)
	refs := w.build(40, 2)
	w.label(refs[29], refs[19])
	follower := w.follower("follower", true)
	a, rec := w.adapter(follower, "el-sync", 0)
	w.converge(a, follower, 60*time.Second)
	w.requireFinalizedNeverBack(rec)
}

// TestBackfillWithoutPeers: no p2p at all; the adapter inserts the payloads
// itself with newPayload.
func TestBackfillWithoutPeers(t *testing.T) {
	w := newWorld(t)
	refs := w.build(60, 2)
	w.label(refs[49], refs[39])
	follower := w.follower("follower", false)
	a, rec := w.adapter(follower, "backfill", 16)
	w.converge(a, follower, 60*time.Second)
	w.requireFinalizedNeverBack(rec)
}

// TestDivergenceIsReorged: the follower holds the sequencer's old blocks when
// the sequencer reorgs below them; the follower is moved onto the new chain.
func TestDivergenceIsReorged(t *testing.T) {
	w := newWorld(t)
	refs := w.build(30, 1)
	w.label(refs[19], refs[9])
	follower := w.follower("follower", false)
	a, rec := w.adapter(follower, "backfill", 8)
	var reorgs []engineadapter.Event
	a.OnEvent(func(e engineadapter.Event) {
		if e.Kind == engineadapter.Reorged {
			reorgs = append(reorgs, e)
		}
	})
	w.converge(a, follower, 60*time.Second) // follower holds blocks 1..20

	fork, err := w.builder.Fork(w.ctx, refs[14], 12, 7) // new blocks 16..27
	require.NoError(t, err)
	w.label(fork[6], refs[9]) // safe: the fork's block 22
	w.converge(a, follower, 60*time.Second)

	got, err := follower.L2(t).L2BlockRefByNumber(w.ctx, 18)
	require.NoError(t, err)
	require.Equal(t, fork[2], got, "the follower's block 18 is the fork's")
	require.Len(t, reorgs, 1)
	require.Equal(t, uint64(15), reorgs[0].Decision.Ancestor.Number)
	require.Equal(t, uint64(5), reorgs[0].Depth, "blocks 16..20 abandoned")
	w.requireFinalizedNeverBack(rec)
}

// TestCrashInTheMiddleOfABackfill kills the follower op-geth (SIGKILL) while the
// adapter backfills, restarts it on the same datadir, and requires the run to
// converge with finalized never sent backwards.
//
// The follower keeps its state on disk as it goes (--state.scheme hash,
// --db.engine leveldb). With op-geth's defaults (path scheme, pebble) state
// lives in memory until a clean stop: after SIGKILL op-geth rewinds to genesis
// and waits for a snap sync from p2p peers, ignoring newPayload, so a node with
// no peers cannot be backfilled until it is re-initialised.
func TestCrashInTheMiddleOfABackfill(t *testing.T) {
	w := newWorld(t)
	refs := w.build(400, 0)
	w.label(refs[379], refs[299])
	follower := w.follower("follower", false, func(c *opgeth.Config) { c.StateScheme, c.DBEngine = "hash", "leveldb" })
	a, rec := w.adapter(follower, "backfill", 32)

	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	l2 := follower.L2(t)
	require.Eventually(t, func() bool {
		head, err := l2.L2BlockRefByLabel(w.ctx, eth.Unsafe)
		return err == nil && head.Number >= 96
	}, 60*time.Second, 20*time.Millisecond, "backfill under way")
	follower.Kill()
	time.Sleep(time.Second) // the adapter's calls fail meanwhile
	follower.Restart(t)
	cancel()
	require.NoError(t, <-done)

	w.converge(a, follower, 120*time.Second)
	w.requireFinalizedNeverBack(rec)
}
