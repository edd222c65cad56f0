package remotel2_test

import (
	"context"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

// TestAdapterFollowsRemote runs the adapter between an in-memory local engine
// and a remote rollup node: it follows the remote, ignores a regression of the
// remote's safe and finalized heads, and skips lies without touching the engine.
func TestAdapterFollowsRemote(t *testing.T) {
	w := newWorld()
	ctx := context.Background()
	cl := w.remoteCL(t)
	src, err := newSource(t, remotel2.Config{URL: cl.URL()})
	require.NoError(t, err)

	secret := fakeel.NewJWTSecret()
	local := testutil.NewEL(t, w.tree, fakeel.ELConfig{JWTSecret: secret})
	local.Insert(w.a...)
	local.SetForkchoice(w.a[29].Hash(), w.tree.Genesis().Hash(), w.tree.Genesis().Hash())
	engine := testutil.DialEngine(t, local.URL(), secret, sources.EngineClientDefaultConfig(w.tree.RollupConfig()))
	ad, err := engineadapter.New(engineadapter.DefaultConfig(), engine, src, nil, nil)
	require.NoError(t, err)

	_, err = ad.Step(ctx)
	require.NoError(t, err)
	_, safe, fin := local.Labels()
	require.Equal(t, w.ref(w.a[19]), safe)
	require.Equal(t, w.ref(w.a[9]), fin)

	// the remote's heads go backwards: the local ones stay
	cl.Follow(w.a[29], w.a[14], w.a[14], w.a[4], currentL1)
	_, err = ad.Step(ctx)
	require.NoError(t, err)
	_, safe, fin = local.Labels()
	require.Equal(t, w.ref(w.a[19]), safe)
	require.Equal(t, w.ref(w.a[9]), fin)

	// the remote lies (finalized above safe): skipped, the engine untouched
	n := len(local.ForkchoiceUpdates())
	cl.SetSyncStatus(statusOf(w, w.a[24], w.a[26]))
	_, err = ad.Step(ctx)
	require.Error(t, err)
	require.Len(t, local.ForkchoiceUpdates(), n)

	// the remote moves on: so does the engine
	cl.Follow(w.a[29], w.a[27], w.a[25], w.a[15], currentL1)
	_, err = ad.Step(ctx)
	require.NoError(t, err)
	_, safe, fin = local.Labels()
	require.Equal(t, w.ref(w.a[25]), safe)
	require.Equal(t, w.ref(w.a[15]), fin)
	require.Equal(t, w.ref(w.a[27]), ad.Status().SourceHeads.LocalSafe)
}
