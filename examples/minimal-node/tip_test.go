package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
)

// tipWorld is a remote rollup node (the safe source) and a public L2 EL on
// its chain (the tip source) over a fixture whose engine holds blocks 1..20.
type tipWorld struct {
	f      *fixture
	rn     *fakerollup.RollupNode
	remote *fakeel.EL
	chain  []*types.Block // the remote's canonical chain; chain[i] is block i+1
}

func newTipWorld(t *testing.T) *tipWorld {
	w := &tipWorld{f: newFixture(t, 20)}
	w.chain = append(append([]*types.Block{}, w.f.chain...), w.f.tree.Extend(w.f.chain[19].Hash(), 30, 7)...)
	w.rn = testutil.NewRollupNode(t, w.f.tree, fakerollup.RollupNodeConfig{})
	w.remote = testutil.NewEL(t, w.f.tree, fakeel.ELConfig{NoAuth: true})
	w.remote.Insert(w.chain...)
	w.move(20, 10, 5)
	return w
}

// move sets the remote's heads: its EL's head (which the tip feed sees) and
// the rollup node's safe and finalized heads.
func (w *tipWorld) move(unsafe, safe, fin int) {
	b := func(n int) *types.Block { return w.chain[n-1] }
	w.remote.SetForkchoice(b(unsafe).Hash(), b(safe).Hash(), b(fin).Hash())
	w.rn.Follow(b(unsafe), b(safe), b(safe), b(fin), fakechain.L1Ref(uint64(safe)/fakechain.BlocksPerEpoch))
}

// waitHead waits until the engine's head is the remote's block n.
func (w *tipWorld) waitHead(t *testing.T, p *process, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		u, _, _ := w.f.el.Labels()
		return u.Hash == w.chain[n-1].Hash()
	}, waitFor, 20*time.Millisecond, "engine head at the remote's block %d; stderr:\n%s", n, p.stderr)
}

// TestFollowsTheTipPushedOverAWebsocket: a rollup-node source with
// --l2.unsafe.source naming an L2 EL's websocket: the engine's head follows
// the remote EL's head block by block and through an unsafe reorg above safe,
// while safe and finalized follow the rollup node only.
func TestFollowsTheTipPushedOverAWebsocket(t *testing.T) {
	w := newTipWorld(t)
	p := w.f.start(t, false, map[string]string{"l2.follow.source": w.rn.URL(), "l2.unsafe.source": w.remote.WSURL(),
		"poll-interval": "2s"}) // the tip does not wait for polls
	for n := 21; n <= 30; n++ {
		w.move(n, 10, 5)
		w.waitHead(t, p, n)
	}
	_, safe, fin := w.f.el.Labels()
	require.Equal(t, [2]uint64{10, 5}, [2]uint64{safe.Number, fin.Number}, "the tip moved neither safe nor finalized")

	// the remote's unsafe chain forks after block 25, above safe 10
	fork := w.f.tree.Extend(w.chain[24].Hash(), 10, 8)
	w.chain = append(w.chain[:25], fork...)
	w.remote.Insert(fork...)
	w.move(28, 10, 5)
	w.waitHead(t, p, 28)
	require.Eventually(t, func() bool { return strings.Contains(p.stderr.String(), "Unsafe reorg to the tip feed's chain") },
		waitFor, 10*time.Millisecond, "the reorg is logged once the engine took it; stderr:\n%s", p.stderr)

	st := w.f.waitStatus(t, p, "tip feed subscribed", func(st *nodeStatus) bool {
		return st.Tip != nil && len(st.Tip.Feeds) == 1 && st.Tip.Feeds[0].Mode == "subscription"
	})
	require.Equal(t, w.remote.WSURL(), st.Tip.Feeds[0].URL)
	require.GreaterOrEqual(t, st.Tip.Inserted, uint64(13))
	require.False(t, st.Tip.Failing)
	p.stop(t)
}

// TestTipFollowingOff: --l2.unsafe.disable leaves the head where the safe
// path puts it, and a rollup-node source alone has no tip feed (a warning
// says so).
func TestTipFollowingOff(t *testing.T) {
	t.Run("--l2.unsafe.disable", func(t *testing.T) {
		w := newTipWorld(t)
		w.move(30, 10, 5)
		p := w.f.start(t, false, map[string]string{"l2.follow.source": w.remote.URL(), "l2.unsafe.disable": "true",
			"rollup.config": writeRollupConfig(t, w.f.tree)})
		require.Contains(t, p.startLine(t), `tip="off (--l2.unsafe.disable)"`)
		st := w.f.waitStatus(t, p, "ticks", func(st *nodeStatus) bool { return st.Ticks >= 5 })
		require.Nil(t, st.Tip)
		u, _, _ := w.f.el.Labels()
		require.Equal(t, uint64(20), u.Number, "the head stays")
		p.stop(t)
	})
	t.Run("rollup node without --l2.unsafe.source", func(t *testing.T) {
		w := newTipWorld(t)
		w.move(30, 10, 5)
		p := w.f.start(t, false, map[string]string{"l2.follow.source": w.rn.URL()})
		require.Eventually(t, func() bool {
			return countLines(p.stderr.String(), "Tip following is off", "remedy=--l2.unsafe.source") == 1
		}, waitFor, 20*time.Millisecond)
		p.stop(t)
	})
}

func TestTipFlagErrors(t *testing.T) {
	tree := fakechain.NewTree()
	secret := fakeel.NewJWTSecret()
	engine := testutil.NewEL(t, tree, fakeel.ELConfig{JWTSecret: secret}).URL()
	jwt := testutil.WriteJWTSecret(t, secret)
	cl := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{}).URL()
	otherChain := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true, ChainID: 999}).URL()
	with := func(args ...string) []string {
		return append([]string{"--engine", engine, "--jwt-secret", jwt, "--rpc.port", "-1", "--l2.follow.source", cl}, args...)
	}
	for _, tc := range []struct {
		name, flag, reason string
		args               []string
	}{
		{"tip source without a scheme", "l2.unsafe.source", "scheme", with("--l2.unsafe.source", "localhost:8546")},
		{"tip source and tip following off", "l2.unsafe.source", "l2.unsafe.disable",
			with("--l2.unsafe.source", "ws://127.0.0.1:8546", "--l2.unsafe.disable")},
		{"tip source given twice", "l2.unsafe.source", "twice",
			with("--l2.unsafe.source", "ws://127.0.0.1:8546", "--l2.unsafe.source", "ws://127.0.0.1:8546")},
		{"tip source on another chain", "l2.unsafe.source", "999", with("--l2.unsafe.source", otherChain)},
	} {
		t.Run(tc.name, func(t *testing.T) { requireStartError(t, tc.args, tc.flag, tc.reason) })
	}
}
