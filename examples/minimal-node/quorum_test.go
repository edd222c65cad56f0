package main

// Black-box tests of --source quorum: the binary against several fake remotes,
// some lying or stalled, watched from the outside like main_test.go does.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
)

func TestQuorumFollowsHonestMajorityPastAForkedMember(t *testing.T) {
	f := newFixture(t, 40)
	fork := f.tree.Extend(f.block(15).Hash(), 25, 7) // blocks 16..40 of another chain
	forked := func(n int) *types.Block { return fork[n-16] }
	onFork := map[common.Hash]bool{}
	for _, b := range fork {
		onFork[b.Hash()] = true
	}
	honest := []*fakerollup.RollupNode{
		testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{}),
		testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{}),
	}
	liar := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
	follow := func(rn *fakerollup.RollupNode, chain func(int) *types.Block, safe, finalized int) {
		rn.Follow(chain(40), chain(safe), chain(safe), chain(finalized), fakechain.L1Ref(3))
	}
	// The liar claims the honest heights, on its fork.
	follow(honest[0], f.block, 30, 20)
	follow(honest[1], f.block, 30, 20)
	follow(liar, forked, 30, 20)

	// The liar sits between the honest two; the threshold is the default
	// majority, 2 of 3.
	p := f.startQuorum(t, []string{honest[0].URL(), liar.URL(), honest[1].URL()})
	start := p.startLine(t)
	require.Contains(t, start, "kind=quorum")
	require.Contains(t, start, "threshold=2")
	require.Contains(t, start, "rollup_config=\"optimism_rollupConfig of "+honest[0].URL()+", "+liar.URL()+", "+honest[1].URL()+"\"")
	f.checkFollows(t, p, 30, 20)

	// The liar runs ahead of both, one honest member lags the other: no two
	// claims match, so every round hears all three, and the agreed heads are
	// the lagging member's, which the leader holds and the liar does not
	// (looked up by number).
	follow(honest[0], f.block, 36, 26)
	follow(honest[1], f.block, 34, 24)
	follow(liar, forked, 38, 28)
	f.checkFollows(t, p, 34, 24)
	liarName, honestNames := hostOf(t, liar.URL()), []string{hostOf(t, honest[0].URL()), hostOf(t, honest[1].URL())}
	st := f.waitStatus(t, p, "a round where the liar disagreed", func(st *nodeStatus) bool {
		return st.Quorum != nil && slices.Equal(st.Quorum.LastRound.Disagreed, []string{liarName})
	})
	require.Equal(t, 2, st.Quorum.Threshold)
	require.ElementsMatch(t, honestNames, st.Quorum.LastRound.Supporters)
	require.Equal(t, f.tree.Ref(forked(38)).ID(), member(st, liarName).LastSafe)

	// The honest two agree again, above the liar's fork point.
	follow(honest[1], f.block, 36, 26)
	f.checkFollows(t, p, 36, 26)
	st = f.waitStatus(t, p, "both honest members at the agreed head", func(st *nodeStatus) bool {
		return st.Safe.Number == 36 && member(st, honestNames[1]).LastSafe.Number == 36
	})
	require.Equal(t, "quorum", st.Source)
	require.Equal(t, "quorum", st.Kind)
	require.Equal(t, f.tree.Ref(f.block(36)).ID(), st.Safe)
	require.Equal(t, f.tree.Ref(f.block(26)).ID(), st.Finalized)
	require.ElementsMatch(t, honestNames, st.Quorum.LastRound.Supporters)
	require.Subset(t, []string{liarName}, st.Quorum.LastRound.Disagreed, "only the liar disagrees (when it answers in time)")
	require.Empty(t, st.Quorum.LastRound.Error)
	require.Equal(t, []string{honestNames[0], liarName, honestNames[1]}, memberNamesOf(st), "members in flag order")
	require.GreaterOrEqual(t, member(st, liarName).Disagreements, 1)
	for _, name := range honestNames {
		m := member(st, name)
		require.Zero(t, m.Disagreements, name)
		require.Zero(t, m.Lag, name)
		require.Zero(t, m.ConsecutiveErrors, name)
		require.Equal(t, f.tree.Ref(f.block(36)).ID(), m.LastSafe, name)
		require.NotNil(t, m.LastAnswerAt, name)
		require.Equal(t, "cl", m.Kind, name)
	}

	for i, fcu := range f.el.ForkchoiceUpdates() {
		for label, h := range map[string]common.Hash{"head": fcu.HeadBlockHash, "safe": fcu.SafeBlockHash, "finalized": fcu.FinalizedBlockHash} {
			require.False(t, onFork[h], "forkchoice update %d sets %s to the liar's block %s", i, label, h)
		}
	}
	metrics := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", f.promPort))
	require.Regexp(t, `lightcl_quorum_member_disagreements_total\{member="`+liarName+`"\} [1-9]`, metrics)
	require.Regexp(t, `lightcl_quorum_rounds_total\{result="agreed"\} [1-9]`, metrics)
	require.Contains(t, metrics, `lightcl_source_requests_total{method="heads",result="ok",source="`+liarName+`"}`)
	p.stop(t)
}

func TestQuorumFollowsWithAStalledMember(t *testing.T) {
	// Two rollup nodes and an L2 EL, no --rollup.config: the config comes from
	// the rollup nodes, and the EL is read with it. Set through env vars.
	f := newFixture(t, 40)
	cl1 := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
	cl2 := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
	el := testutil.NewEL(t, f.tree, fakeel.ELConfig{NoAuth: true})
	el.Insert(f.chain...)
	follow := func(safe, finalized int) {
		for _, rn := range []*fakerollup.RollupNode{cl1, cl2} {
			rn.Follow(f.block(40), f.block(safe), f.block(safe), f.block(finalized), fakechain.L1Ref(3))
		}
		el.SetForkchoice(f.block(40).Hash(), f.block(safe).Hash(), f.block(finalized).Hash())
	}
	follow(30, 20)

	p := f.start(t, true, map[string]string{
		"source": "quorum", "l2.follow.source": cl1.URL() + "," + cl2.URL() + "," + el.URL(), "l2.follow.quorum": "2",
	})
	start := p.startLine(t)
	require.Contains(t, start, `members="`+hostOf(t, cl1.URL())+"=cl,"+hostOf(t, cl2.URL())+"=cl,"+hostOf(t, el.URL())+`=el"`)
	require.Contains(t, start, "rollup_config=\"optimism_rollupConfig of "+cl1.URL()+", "+cl2.URL()+"\"")
	f.checkFollows(t, p, 30, 20)

	cl2.Faults().Stall(time.Minute)
	follow(36, 26)
	began := time.Now()
	f.checkFollows(t, p, 36, 26)
	t.Logf("followed to safe 36 in %s with one member stalled", time.Since(began).Round(time.Millisecond))

	stalled := hostOf(t, cl2.URL())
	st := f.waitStatus(t, p, "the stalled member unanswered", func(st *nodeStatus) bool {
		return st.Quorum != nil && member(st, stalled).Unanswered >= 1
	})
	require.Equal(t, []string{stalled}, st.Quorum.LastRound.Missing)
	require.Empty(t, st.Quorum.LastRound.Disagreed)
	for _, name := range []string{hostOf(t, cl1.URL()), hostOf(t, el.URL())} {
		m := member(st, name)
		require.Zero(t, m.Lag, name)
		require.Zero(t, m.Unanswered, name)
		require.Equal(t, f.tree.Ref(f.block(36)).ID(), m.LastSafe, name)
	}
	require.Equal(t, "el", member(st, hostOf(t, el.URL())).Kind)
	p.stop(t)
}

func TestQuorumStartErrors(t *testing.T) {
	tree := fakechain.NewTree()
	secret := fakeel.NewJWTSecret()
	engine := testutil.NewEL(t, tree, fakeel.ELConfig{JWTSecret: secret}).URL()
	jwt := testutil.WriteJWTSecret(t, secret)
	cl := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{}).URL()
	cl2 := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{}).URL()
	otherCfg := tree.RollupConfig()
	otherCfg.L2ChainID = big.NewInt(999)
	clOther := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{RollupConfig: otherCfg}).URL()
	laterCfg := tree.RollupConfig()
	granite := uint64(1 << 40)
	laterCfg.GraniteTime = &granite // same chain id and genesis, another fork schedule
	clLater := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{RollupConfig: laterCfg}).URL()
	el1 := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true}).URL()
	el2 := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true}).URL()
	elOther := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true, ChainID: 999}).URL()
	rollupJSON := writeRollupConfig(t, tree)

	quorumOf := func(urls []string, args ...string) []string {
		out := []string{"--engine", engine, "--jwt-secret", jwt, "--rpc.port", "-1", "--source", "quorum"}
		for _, u := range urls {
			out = append(out, "--l2.follow.source", u)
		}
		return append(out, args...)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		flag   string   // the flag the error line must name
		reason []string // and words of why
	}{
		{"quorum of one remote", quorumOf([]string{cl}), "l2.follow.source", []string{"given once", "at least 2"}},
		{"quorum of no remote", quorumOf(nil), "l2.follow.source", []string{"not given", "at least 2"}},
		{"threshold above the number of remotes", quorumOf([]string{cl, cl2, el1}, "--l2.follow.quorum", "4"),
			"l2.follow.quorum", []string{"4 out of range", "1..3"}},
		{"negative threshold", quorumOf([]string{cl, cl2}, "--l2.follow.quorum=-1"), "l2.follow.quorum", []string{"1..2"}},
		{"threshold with --source l2", []string{"--engine", engine, "--jwt-secret", jwt, "--l2.follow.source", cl, "--l2.follow.quorum", "1"},
			"l2.follow.quorum", []string{"only --source quorum"}},
		{"rollup nodes on different chains", quorumOf([]string{cl, clOther, el1}), "l2.follow.source",
			[]string{"different chains", hostOf(t, cl), hostOf(t, clOther), "999"}},
		{"rollup nodes with configs that differ beyond chain id and genesis", quorumOf([]string{cl, clLater, el1}), "l2.follow.source",
			[]string{"differ in granite_time", hostOf(t, cl), hostOf(t, clLater), "--rollup.config"}},
		{"only ELs and no rollup config", quorumOf([]string{el1, el2}), "rollup.config", []string{"required", "none of the 2"}},
		{"EL member on another chain", quorumOf([]string{cl, elOther}), "l2.follow.source", []string{hostOf(t, elOther), "999"}},
		{"rollup node member on another chain than --rollup.config", quorumOf([]string{cl, clOther}, "--rollup.config", rollupJSON),
			"l2.follow.source", []string{hostOf(t, clOther), "999"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := requireStartError(t, tc.args, tc.flag, tc.reason[0])
			t.Log(line)
			for _, r := range tc.reason[1:] {
				require.Contains(t, line, r)
			}
		})
	}
}

// TestQuorumStartsWithAMemberDown: with N=3, M=2 and one member refusing
// connections, the node starts on the other two, shows the third unreachable,
// and takes it into the rounds once it is up.
func TestQuorumStartsWithAMemberDown(t *testing.T) {
	f := newFixture(t, 40)
	var rns []*fakerollup.RollupNode
	for range 3 {
		rns = append(rns, testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{}))
	}
	follow := func(safe, finalized int) {
		for _, rn := range rns {
			rn.Follow(f.block(40), f.block(safe), f.block(safe), f.block(finalized), fakechain.L1Ref(3))
		}
	}
	follow(20, 10)
	late := newLateRemote(t, rns[2].URL(), false)
	lateName := hostOf(t, late.URL())

	p := f.startQuorum(t, []string{rns[0].URL(), rns[1].URL(), late.URL()})
	start := p.startLine(t)
	require.Contains(t, start, "threshold=2")
	require.Contains(t, start, `members="`+hostOf(t, rns[0].URL())+"=cl,"+hostOf(t, rns[1].URL())+"=cl,"+lateName+`=unknown"`)
	require.Contains(t, start, "rollup_config=\"optimism_rollupConfig of "+rns[0].URL()+", "+rns[1].URL()+"\"")
	f.checkFollows(t, p, 20, 10)
	st := f.waitStatus(t, p, "the down member unreachable and missing", func(st *nodeStatus) bool {
		return st.Quorum != nil && slices.Contains(st.Quorum.LastRound.Missing, lateName)
	})
	down := member(st, lateName)
	require.Equal(t, "unreachable", down.State)
	require.Equal(t, "unknown", down.Kind)
	require.Contains(t, down.LastError, lateName+": not checked yet: unreachable")
	for _, rn := range rns[:2] {
		m := member(st, hostOf(t, rn.URL()))
		require.Equal(t, "checked", m.State, m.Name)
		require.Equal(t, "cl", m.Kind, m.Name)
	}

	late.up(t)
	st = f.waitStatus(t, p, "the member checked once up, and among the supporters", func(st *nodeStatus) bool {
		return member(st, lateName).State == "checked" && slices.Contains(st.Quorum.LastRound.Supporters, lateName)
	})
	require.Equal(t, "cl", member(st, lateName).Kind)
	require.Equal(t, 1, countLines(p.stderr.String(), "Quorum member checked", "member="+lateName, "kind=cl"))
	follow(30, 25)
	f.checkFollows(t, p, 30, 25)
	p.stop(t)
}

// TestQuorumMemberOnAnotherChainComesUpLate: a member that is down at start
// and serves another chain once up is left out as "wrong chain", with an
// error log; the node keeps following the other two.
func TestQuorumMemberOnAnotherChainComesUpLate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remote func(t *testing.T, f *fixture) string
	}{
		{"rollup node", func(t *testing.T, f *fixture) string {
			cfg := *f.tree.RollupConfig()
			cfg.L2ChainID = big.NewInt(999)
			return testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{RollupConfig: &cfg}).URL()
		}},
		{"L2 EL", func(t *testing.T, f *fixture) string {
			return testutil.NewEL(t, f.tree, fakeel.ELConfig{NoAuth: true, ChainID: 999}).URL()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 40)
			honest := []*fakerollup.RollupNode{
				testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{}),
				testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{}),
			}
			follow := func(safe, finalized int) {
				for _, rn := range honest {
					rn.Follow(f.block(40), f.block(safe), f.block(safe), f.block(finalized), fakechain.L1Ref(3))
				}
			}
			follow(20, 10)
			late := newLateRemote(t, tc.remote(t, f), false)
			lateName := hostOf(t, late.URL())

			p := f.startQuorum(t, []string{honest[0].URL(), late.URL(), honest[1].URL()})
			f.checkFollows(t, p, 20, 10)
			late.up(t)
			st := f.waitStatus(t, p, "the late member on the wrong chain", func(st *nodeStatus) bool {
				m := member(st, lateName)
				return m.State == "wrong chain" && strings.Contains(m.LastError, "999")
			})
			require.Equal(t, "unknown", member(st, lateName).Kind)
			require.Equal(t, 1, countLines(p.stderr.String(), "Quorum member failed its checks", "member="+lateName, "999"))

			follow(30, 25)
			f.checkFollows(t, p, 30, 25)
			st = f.waitStatus(t, p, "the honest two supporting", func(st *nodeStatus) bool {
				return st.Safe.Number == 30 && len(st.Quorum.LastRound.Supporters) == 2
			})
			require.ElementsMatch(t, []string{hostOf(t, honest[0].URL()), hostOf(t, honest[1].URL())}, st.Quorum.LastRound.Supporters)
			require.Equal(t, []string{lateName}, st.Quorum.LastRound.Missing)
			require.Equal(t, "wrong chain", member(st, lateName).State)
			p.stop(t)
		})
	}
}

func TestMemberNamesAreUnique(t *testing.T) {
	for _, tc := range []struct {
		name string
		urls []string
		want []string
	}{
		{"hosts differ", []string{"http://a:1", "https://b:2/rpc", "ws://c:3"}, []string{"a:1", "b:2", "c:3"}},
		{"two share a host", []string{"http://a:1/x", "http://b:2", "http://a:1/y"}, []string{"a:1#1", "b:2", "a:1#3"}},
		{"same URL twice", []string{"http://a:1", "http://a:1"}, []string{"a:1#1", "a:1#2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, memberNames(tc.urls))
		})
	}
}

// startQuorum runs the node on f's EL with --source quorum, one
// --l2.follow.source flag per URL and the default threshold.
func (f *fixture) startQuorum(t *testing.T, urls []string, extra ...string) *process {
	args := []string{
		"--engine", f.el.URL(), "--jwt-secret", f.jwt, "--poll-interval", "100ms", "--source", "quorum",
		"--rpc.port", strconv.Itoa(f.rpcPort), "--metrics.enabled", "--metrics.port", strconv.Itoa(f.promPort),
	}
	for _, u := range urls {
		args = append(args, "--l2.follow.source", u)
	}
	p := startProcess(t, nil, append(args, extra...)...)
	p.startLine(t)
	return p
}

// The JSON names of lightcl_status are its contract with monitoring; these
// lists are the README's.
var (
	statusKeys = []string{"source", "kind", "unsafe", "safe", "finalized", "last_action", "last_reason",
		"halted", "syncing", "last_error", "ticks"}
	// optionalKeys appear with a quorum, with tip following on, and with L1 derivation
	optionalKeys = []string{"quorum", "tip", "l1_derivation"}
	tipKeys      = []string{"head", "inserted", "ignored", "failing", "last_action", "last_reason", "last_error", "feeds"}
	feedKeys     = []string{"url", "mode", "head", "delivered", "errors", "last_error"}
	quorumKeys   = []string{"threshold", "last_round", "members"}
	roundKeys    = []string{"supporters", "disagreed", "missing", "no_quorum", "error"}
	memberKeys   = []string{"name", "kind", "state", "last_safe", "last_answer_at", "last_error", "consecutive_errors",
		"unanswered", "lag", "disagreements"}
	blockKeys = []string{"hash", "number"}
)

// lightclStatus asks the node's status RPC for lightcl_status, checks the
// JSON names against the lists above, and decodes it; nil while the node
// does not answer.
func (f *fixture) lightclStatus(t *testing.T) *nodeStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := rpc.DialContext(ctx, fmt.Sprintf("http://127.0.0.1:%d", f.rpcPort))
	require.NoError(t, err)
	defer c.Close()
	var raw json.RawMessage
	if err := c.CallContext(ctx, &raw, "lightcl_status"); err != nil {
		return nil
	}
	var top map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &top))
	wantTop := slices.Clone(statusKeys)
	for _, k := range optionalKeys {
		if _, ok := top[k]; ok {
			wantTop = append(wantTop, k)
		}
	}
	requireKeys(t, "lightcl_status", top, wantTop)
	if tip, ok := top["tip"]; ok {
		tm := object(t, tip)
		requireKeys(t, "tip", tm, tipKeys)
		var feeds []map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(tm["feeds"], &feeds))
		require.NotEmpty(t, feeds, "tip.feeds")
		for _, f := range feeds {
			requireKeys(t, "tip.feeds[]", f, feedKeys)
		}
	}
	requireKeys(t, "safe", object(t, top["safe"]), blockKeys)
	if q, ok := top["quorum"]; ok {
		qm := object(t, q)
		requireKeys(t, "quorum", qm, quorumKeys)
		requireKeys(t, "quorum.last_round", object(t, qm["last_round"]), roundKeys)
		var members []map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(qm["members"], &members))
		for _, m := range members {
			requireKeys(t, "quorum.members[]", m, memberKeys)
			requireKeys(t, "quorum.members[].last_safe", object(t, m["last_safe"]), blockKeys)
		}
	}
	var st nodeStatus
	require.NoError(t, json.Unmarshal(raw, &st))
	return &st
}

// waitStatus polls lightcl_status until ok holds, and returns that answer.
func (f *fixture) waitStatus(t *testing.T, p *process, what string, ok func(*nodeStatus) bool) *nodeStatus {
	var st *nodeStatus
	require.Eventually(t, func() bool {
		st = f.lightclStatus(t)
		return st != nil && ok(st)
	}, waitFor, 50*time.Millisecond, "lightcl_status: %s; last answer %+v; stderr:\n%s", what, st, p.stderr)
	return st
}

func object(t *testing.T, raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

func requireKeys(t *testing.T, what string, m map[string]json.RawMessage, want []string) {
	require.ElementsMatch(t, want, slices.Collect(maps.Keys(m)), "JSON names of %s", what)
}

// member returns the named member's status; a zero one if there is none.
func member(st *nodeStatus, name string) memberStatus {
	for _, m := range st.Quorum.Members {
		if m.Name == name {
			return m
		}
	}
	return memberStatus{}
}

func memberNamesOf(st *nodeStatus) []string {
	var names []string
	for _, m := range st.Quorum.Members {
		names = append(names, m.Name)
	}
	return names
}

func hostOf(t *testing.T, s string) string {
	u, err := url.Parse(s)
	require.NoError(t, err)
	require.NotEmpty(t, u.Host)
	return u.Host
}
