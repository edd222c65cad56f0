package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
)

// TestL1VerifiedFollowing runs the binary with --l1: heads whose L1 origins are
// canonical are followed; after L1 reorgs below the remote's new heads'
// origins, those heads are dropped and the engine stays where it was.
func TestL1VerifiedFollowing(t *testing.T) {
	f := newFixture(t, 40)
	rn := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
	rn.Follow(f.block(40), f.block(20), f.block(20), f.block(10), fakechain.L1Ref(3))
	// block n's L1 origin is n/6: blocks 10..30 have origins 1..5
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 8, Safe: 2, Finalized: 2})

	p := f.start(t, false, map[string]string{"l2.follow.source": rn.URL(), "l1": l1.URL()})
	require.Contains(t, p.startLine(t), "l1_verify="+l1.URL())
	f.checkFollows(t, p, 20, 10)

	l1.Reorg(3, 1) // L1 blocks 4.. replaced: the origins of blocks 24..40 are gone
	rn.Follow(f.block(40), f.block(30), f.block(30), f.block(25), fakechain.L1Ref(5))
	require.Eventually(t, func() bool {
		st := f.lightclStatus(t)
		return st != nil && strings.Contains(st.LastError, "L1")
	}, waitFor, 50*time.Millisecond, "lightcl_status names the L1 mismatch; stderr:\n%s", p.stderr)
	_, safe, fin := f.el.Labels()
	require.Equal(t, uint64(20), safe.Number, "heads with non-canonical L1 origins are not applied")
	require.Equal(t, uint64(10), fin.Number)

	l1.Reorg(3, 0) // the original L1 chain is back, but not final past block 2
	time.Sleep(300 * time.Millisecond)
	_, _, fin = f.el.Labels()
	require.Equal(t, uint64(10), fin.Number, "finalized 25 (L1 origin 4) is not claimed ahead of L1 finality")
	l1.SetLabels(6, 5)
	f.checkFollows(t, p, 30, 25)
	// optimism_syncStatus's L1 fields are the L1 blocks the verifier read to
	// check finalized 25 (a batch of latest, safe and finalized)
	st := f.syncStatus(t)
	require.NotNil(t, st)
	require.Equal(t, [3]eth.L1BlockRef{l1.Head(), l1.Safe(), l1.Finalized()}, [3]eth.L1BlockRef{st.HeadL1, st.SafeL1, st.FinalizedL1},
		"head_l1, safe_l1, finalized_l1")
	p.stop(t)
}

func TestL1VerificationOff(t *testing.T) {
	f := newFixture(t, 40)
	rn := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
	rn.Follow(f.block(40), f.block(20), f.block(20), f.block(10), fakechain.L1Ref(3))
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 8})
	p := f.start(t, false, map[string]string{"l2.follow.source": rn.URL(), "l1": l1.URL(), "l1.verify": "false"})
	f.checkFollows(t, p, 20, 10)
	require.Contains(t, p.stderr.String(), "trusted blindly")
	st := f.syncStatus(t)
	require.NotNil(t, st)
	require.Equal(t, [3]eth.L1BlockRef{}, [3]eth.L1BlockRef{st.HeadL1, st.SafeL1, st.FinalizedL1},
		"nothing read from L1: no L1 fields, never a guess")
	p.stop(t)
}

func TestL1OnAnotherChain(t *testing.T) {
	f := newFixture(t, 40)
	rn := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 8, ChainID: 1})
	requireStartError(t, []string{"--engine", f.el.URL(), "--jwt-secret", f.jwt, "--rpc.port", "-1",
		"--l2.follow.source", rn.URL(), "--l1", l1.URL()}, "l1", "chain 1")
}
