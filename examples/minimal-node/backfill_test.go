package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
)

// TestBackfillFromARemoteEL runs the binary with --sync.mode backfill against a
// fresh engine with no peers (it answers "safe block not found" like a fresh
// op-geth) and a remote L2 EL: the node inserts the remote's blocks with
// newPayload and follows its safe and finalized heads, and the remote's tip
// (block 60) through the tip feed that the remote EL is by default.
func TestBackfillFromARemoteEL(t *testing.T) {
	f := newFixture(t, 60)
	secret := fakeel.NewJWTSecret()
	f.jwt = testutil.WriteJWTSecret(t, secret)
	f.el = testutil.NewEL(t, f.tree, fakeel.ELConfig{JWTSecret: secret, FreshLabels: true})
	remote := testutil.NewEL(t, f.tree, fakeel.ELConfig{NoAuth: true})
	remote.Insert(f.chain...)
	remote.SetForkchoice(f.block(60).Hash(), f.block(50).Hash(), f.block(40).Hash())

	p := f.start(t, false, map[string]string{
		"l2.follow.source": remote.URL(), "rollup.config": writeRollupConfig(t, f.tree), "sync.mode": "backfill",
	})
	require.Eventually(t, func() bool {
		u, s, fin := f.el.Labels()
		return u.Number == 60 && s.Number == 50 && fin.Number == 40
	}, waitFor, 50*time.Millisecond, "engine labels; stderr:\n%s", p.stderr)
	_, safe, _ := f.el.Labels()
	require.Equal(t, f.tree.Ref(f.block(50)), safe)
	require.GreaterOrEqual(t, f.el.CallCount("engine_newPayloadV2"), 60)
	require.Contains(t, p.stderr.String(), "Backfill progress")
	p.stop(t)
}
