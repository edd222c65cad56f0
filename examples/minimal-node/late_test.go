package main

// In-process tests of a quorum's start-up (dialQuorum) and of lateMember: the
// black-box ones are in quorum_test.go.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

func TestLateMember(t *testing.T) {
	tree := fakechain.NewTree()
	chain := tree.Extend(tree.Genesis().Hash(), 5, 0)
	rn := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{})
	rn.Follow(chain[4], chain[3], chain[3], chain[1], fakechain.L1Ref(1))
	ctx := context.Background()

	m := newLateMember("b:2")
	require.Equal(t, "b:2", m.Name())
	require.Equal(t, memberUnreachable, m.State())
	require.Equal(t, remotel2.KindAuto, m.Kind())
	require.Equal(t, "unknown", m.kindName())
	_, err := m.Heads(ctx)
	require.ErrorIs(t, err, safesource.ErrUnreachable)
	require.ErrorContains(t, err, "b:2: not checked yet: unreachable")
	_, err = m.L2BlockRefByNumber(ctx, 3)
	require.ErrorIs(t, err, safesource.ErrUnreachable)

	m.set(memberWrongChain, errors.New("serves L2 chain 999"))
	_, err = m.Heads(ctx)
	require.ErrorIs(t, err, safesource.ErrWrongChain)
	require.ErrorContains(t, err, "b:2: not checked yet: wrong chain: serves L2 chain 999")

	src, err := remotel2.New(ctx, remotel2.Config{URL: rn.URL(), Name: "b:2"}, nil, nil)
	require.NoError(t, err)
	m.connect(src)
	require.Equal(t, memberChecked, m.State())
	require.Equal(t, "cl", m.kindName())
	h, err := m.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, tree.Ref(chain[3]), h.Safe)
	ref, err := m.L2BlockRefByNumber(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, tree.Ref(chain[2]), ref)

	m.close()
	_, err = m.Heads(ctx)
	require.ErrorIs(t, err, safesource.ErrUnreachable, "closed with the node")
}

// TestDialQuorum: start-up goes on once M members are checked, after every
// member's first try; the members not checked go on being dialed until the
// node closes, and nothing is left running after.
func TestDialQuorum(t *testing.T) {
	tree := fakechain.NewTree()
	rollupJSON := writeRollupConfig(t, tree)
	quorumNode := func(m int, urls ...string) *node {
		return &node{log: log.NewLogger(log.DiscardHandler()), cfg: nodeConfig{
			Source: sourceQuorum, FollowURLs: urls, Quorum: m, FollowKind: remotel2.KindAuto, FollowTimeout: time.Second,
		}}
	}
	startRN := func(t *testing.T) *fakerollup.RollupNode {
		rn, err := fakerollup.StartRollupNode(tree, fakerollup.RollupNodeConfig{})
		require.NoError(t, err)
		return rn
	}
	startEL := func(t *testing.T) *fakeel.EL {
		el, err := fakeel.StartEL(tree, fakeel.ELConfig{NoAuth: true})
		require.NoError(t, err)
		return el
	}
	states := func(n *node) []string {
		var out []string
		for _, m := range n.members {
			out = append(out, m.State()+"/"+m.kindName())
		}
		return out
	}

	t.Run("starts on M, dials the rest until closed", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		rn := startRN(t)
		defer rn.Close()
		n := quorumNode(1, rn.URL(), "http://"+closedAddr(t))
		members, err := n.dialQuorum(context.Background(), remotel2.NoopMetrics{})
		require.NoError(t, err)
		require.Len(t, members, 2)
		require.Equal(t, []string{"checked/cl", "unreachable/unknown"}, states(n))
		require.Equal(t, "optimism_rollupConfig of "+rn.URL(), n.configFrom)
		require.NotNil(t, n.rollup)
		n.close()
	})

	t.Run("every member that is up is checked before start-up goes on", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		rn0, rn1, el := startRN(t), startRN(t), startEL(t)
		defer rn0.Close()
		defer rn1.Close()
		defer el.Close()
		n := quorumNode(1, el.URL(), rn0.URL(), rn1.URL())
		_, err := n.dialQuorum(context.Background(), remotel2.NoopMetrics{})
		require.NoError(t, err)
		require.Equal(t, []string{"checked/el", "checked/cl", "checked/cl"}, states(n))
		require.Equal(t, "optimism_rollupConfig of "+rn0.URL()+", "+rn1.URL(), n.configFrom, "every rollup node's config read, in flag order")
		n.close()
	})

	t.Run("with --rollup.config", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		el := startEL(t)
		defer el.Close()
		n := quorumNode(1, el.URL(), "http://"+closedAddr(t))
		var err error
		n.rollup, err = readRollupConfig(rollupJSON)
		require.NoError(t, err)
		_, err = n.dialQuorum(context.Background(), remotel2.NoopMetrics{})
		require.NoError(t, err)
		require.Equal(t, []string{"checked/el", "unreachable/unknown"}, states(n))
		n.close()
	})

	t.Run("start-up interrupted while too few members are up", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		rn := startRN(t)
		defer rn.Close()
		n := quorumNode(2, rn.URL(), "http://"+closedAddr(t))
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := n.dialQuorum(ctx, remotel2.NoopMetrics{})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		n.close()
	})
}
