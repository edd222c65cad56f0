package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/node/safedb"
	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource"
)

// TestSafeHeadDatabase: with --safedb.path, each safe head the node applies
// from a rollup node is recorded with the rollup node's current_l1, and
// optimism_safeHeadAtL1Block (read with op-service's RollupClient) answers the
// safe head at the highest L1 block at or below the one asked, the same after
// a restart of the node. Without the flag, and with an L2 EL source, it says
// why it cannot.
func TestSafeHeadDatabase(t *testing.T) {
	f := newFixture(t, 40)
	rn := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
	rn.Follow(f.block(40), f.block(20), f.block(20), f.block(10), fakechain.L1Ref(3))
	path := filepath.Join(t.TempDir(), "safedb")
	flags := map[string]string{"l2.follow.source": rn.URL(), "safedb.path": path}
	p := f.start(t, false, flags)
	f.checkFollows(t, p, 20, 10)
	rc := f.rollupClient(t)
	ctx := context.Background()

	requireSafeHeadAt := func(l1, wantL1 uint64, wantSafe int) {
		t.Helper()
		var got *eth.SafeHeadResponse
		require.Eventually(t, func() bool {
			var err error
			got, err = rc.SafeHeadAtL1Block(ctx, l1)
			return err == nil && got.SafeHead == f.tree.Ref(f.block(wantSafe)).ID()
		}, waitFor, 50*time.Millisecond, "safe head at L1 block %d", l1)
		require.Equal(t, fakechain.L1Ref(wantL1).ID(), got.L1Block)
	}
	requireSafeHeadAt(3, 3, 20)
	requireSafeHeadAt(9, 3, 20)
	_, err := rc.SafeHeadAtL1Block(ctx, 2)
	require.ErrorIs(t, err, safedb.ErrNotFound, "op-service's client tells no record by the words \"not found\"")

	rn.Follow(f.block(40), f.block(30), f.block(30), f.block(25), fakechain.L1Ref(5))
	f.checkFollows(t, p, 30, 25)
	requireSafeHeadAt(5, 5, 30)
	requireSafeHeadAt(4, 3, 20)
	p.stop(t)

	// the records outlive the node: asked again before the remote moves on
	p = f.start(t, false, flags)
	got, err := rc.SafeHeadAtL1Block(ctx, 4)
	require.NoError(t, err)
	require.Equal(t, eth.SafeHeadResponse{L1Block: fakechain.L1Ref(3).ID(), SafeHead: f.tree.Ref(f.block(20)).ID()}, *got)
	got, err = rc.SafeHeadAtL1Block(ctx, 5)
	require.NoError(t, err)
	require.Equal(t, f.tree.Ref(f.block(30)).ID(), got.SafeHead)
	p.stop(t)

	// without the flag the method says how to have it
	p = f.start(t, false, map[string]string{"l2.follow.source": rn.URL()})
	_, err = rc.SafeHeadAtL1Block(ctx, 5)
	require.ErrorContains(t, err, "keeps no safe-head database")
	p.stop(t)

	// an L2 EL source cannot feed it: refused at start
	remoteEL := testutil.NewEL(t, f.tree, fakeel.ELConfig{NoAuth: true})
	requireStartError(t, []string{"--engine", f.el.URL(), "--jwt-secret", f.jwt, "--rpc.port", "-1",
		"--l2.follow.source", remoteEL.URL(), "--rollup.config", writeRollupConfig(t, f.tree), "--safedb.path", path},
		"safedb.path", "does not say which L1 block")
}

// rollupClient is op-service's RollupClient on the node's status RPC.
func (f *fixture) rollupClient(t *testing.T) *sources.RollupClient {
	c, err := rpc.DialContext(context.Background(), fmt.Sprintf("http://127.0.0.1:%d", f.rpcPort))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return sources.NewRollupClient(client.NewBaseRPCClient(c))
}

// TestSafeHeadRecordsTruncate: a safe head that moves back (the source's
// chain reorged) truncates the records above it before it is recorded, as
// op-node's reset does; an answer without current_l1, or whose safe head is
// not the one applied, records nothing.
func TestSafeHeadRecordsTruncate(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 40, 1)
	b := tree.Extend(a[19].Hash(), 20, 2) // forks above block 20
	db, err := safedb.NewSafeDB(log.NewLogger(log.DiscardHandler()), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	s := &safeHeads{db: db, log: log.NewLogger(log.DiscardHandler())}
	ref := tree.Ref
	move := func(old, next eth.L2BlockRef, l1 uint64, heads eth.L2BlockRef) {
		h := safesource.Heads{Safe: heads}
		if l1 > 0 {
			h.CurrentL1 = fakechain.L1Ref(l1)
		}
		s.record(engineadapter.Event{Kind: engineadapter.SafeAdvanced, Old: reorg.Local{Safe: old}, New: reorg.Local{Safe: next}, Heads: h})
	}
	at := func(l1 uint64) eth.BlockID {
		_, safe, err := db.SafeHeadAtL1(context.Background(), l1)
		require.NoError(t, err)
		return safe
	}
	move(eth.L2BlockRef{}, ref(a[19]), 3, ref(a[19]))
	move(ref(a[19]), ref(a[29]), 5, ref(a[29]))
	move(ref(a[29]), ref(a[34]), 0, ref(a[34])) // no current_l1: nothing recorded
	move(ref(a[29]), ref(a[34]), 6, ref(a[35])) // not the source's safe head: nothing recorded
	require.Equal(t, ref(a[29]).ID(), at(9))
	move(ref(a[29]), ref(b[4]), 6, ref(b[4])) // block 25 on the other chain, after an L1 reorg
	require.Equal(t, ref(b[4]).ID(), at(6))
	require.Equal(t, ref(a[19]).ID(), at(4))
	require.Equal(t, ref(b[4]).ID(), at(5), "the abandoned chain's safe head at L1 block 5 is replaced")

	// the source derives on up to L1 block 9, then from L1 block 7 again
	// (an L1 reorg): the records above 7 are dropped
	move(ref(b[4]), ref(b[9]), 9, ref(b[9]))   // block 30
	move(ref(b[9]), ref(b[11]), 7, ref(b[11])) // block 32 at L1 block 7
	require.Equal(t, ref(b[11]).ID(), at(7))
	require.Equal(t, ref(b[11]).ID(), at(9), "not block 30, which was recorded at L1 block 9 before")
	require.Equal(t, ref(b[4]).ID(), at(6))
}
