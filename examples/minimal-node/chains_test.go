package main

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
)

func writeChains(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chains.toml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

// TestChainsFileErrors: a bad --chains file is refused at start, exit 2, with
// one line naming the chain and the key.
func TestChainsFileErrors(t *testing.T) {
	jwt := testutil.WriteJWTSecret(t, fakeel.NewJWTSecret())
	good := fmt.Sprintf(`engine = "http://127.0.0.1:1"
jwt-secret = %q
"l2.follow.source" = "http://127.0.0.1:2"
`, jwt)
	tree := fakechain.NewTree()
	rollup901 := writeRollupConfig(t, tree) // fakechain's chain id, 901
	safedb := t.TempDir()
	for _, tc := range []struct {
		name, file string
		args       []string
		want       []string
	}{
		{"an unknown key", "[chain.901]\n" + good + "engin = \"x\"\n", nil, []string{"chain 901", "engin: not a setting of a chain"}},
		{"a key of the whole process", "[chain.901]\n" + good + "\"rpc.port\" = 9000\n", nil, []string{"chain 901", "rpc.port: a setting of the whole process", "--rpc.port"}},
		{"a table not named by a chain id", "[chain.op]\n" + good, nil, []string{"chain op", "L2 chain id in decimal"}},
		{"a leading zero", "[chain.0901]\n" + good, nil, []string{"chain 0901", "L2 chain id in decimal"}},
		{"a required key missing", "[chain.901]\nengine = \"http://127.0.0.1:1\"\n\"l2.follow.source\" = \"http://127.0.0.1:2\"\n", nil,
			[]string{"chain 901", "jwt-secret: required"}},
		{"a bad value in the second chain", "[chain.901]\n" + good + "[chain.902]\n" + good + "\"poll-interval\" = \"-1s\"\n", nil,
			[]string{"chain 902", "poll-interval: -1s: must be positive"}},
		{"a number for a duration", "[chain.901]\n" + good + "\"poll-interval\" = 5\n", nil, []string{"chain 901", "poll-interval"}},
		{"a quorum of one", "[chain.901]\n" + good + "source = \"quorum\"\n", nil,
			[]string{"chain 901", "l2.follow.source: given once; --source quorum needs at least 2"}},
		{"a key given quoted and nested", "[chain.901]\n" + good + "l2.follow.source = \"http://127.0.0.1:3\"\n", nil,
			[]string{"chain 901", "l2.follow.source: given twice"}},
		{"a JWT secret file that is not there", "[chain.901]\nengine = \"http://127.0.0.1:1\"\njwt-secret = \"/nonexistent/jwt.hex\"\n\"l2.follow.source\" = \"http://127.0.0.1:2\"\n", nil,
			[]string{"chain 901", "jwt-secret:"}},
		{"a rollup config for another chain", "[chain.902]\n" + good + fmt.Sprintf("\"rollup.config\" = %q\n", rollup901), nil,
			[]string{"chain 902", "rollup.config:", "is for L2 chain 901, not the table's chain 902"}},
		{"one safe-head database for two chains", fmt.Sprintf("[chain.901]\n%s\"safedb.path\" = %q\n[chain.902]\n%s\"safedb.path\" = %q\n", good, safedb, good, safedb), nil,
			[]string{"chain 902", "safedb.path: " + safedb + " is chain 901's too"}},
		{"a table outside chain", "[chain.901]\n" + good + "[other]\nx = 1\n", nil, []string{"\"other\" is not a chain table"}},
		{"no chain", "# nothing\n", nil, []string{"no chain"}},
		{"not TOML", "[chain.901\n", nil, []string{"chains.toml"}},
		{"a chain flag beside --chains", "[chain.901]\n" + good, []string{"--engine", "http://127.0.0.1:1"},
			[]string{"--engine: set per chain in the --chains file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--chains", writeChains(t, tc.file)}, tc.args...)
			flag := "chains"
			if tc.args != nil {
				flag = "engine"
			}
			line := requireStartError(t, args, flag, tc.want[0])
			for _, w := range tc.want[1:] {
				require.Contains(t, line, w)
			}
		})
	}
}

// TestChainsFileNestedKeysAndEnv: unquoted dotted keys (TOML's nested tables)
// read as the flag of the same name, a list gives a repeated flag, and a
// LIGHTCL_* variable of a chain flag does not reach the chains.
func TestChainsFileNestedKeysAndEnv(t *testing.T) {
	t.Setenv("LIGHTCL_POLL_INTERVAL", "7s")
	jwt := testutil.WriteJWTSecret(t, fakeel.NewJWTSecret())
	path := writeChains(t, `[chain.10]
engine = "http://127.0.0.1:1"
jwt-secret = "`+jwt+`"
source = "quorum"
l2.follow.source = ["http://127.0.0.1:2", "http://127.0.0.1:3"]
l2.follow.quorum = 2
[chain.8453]
engine = "http://127.0.0.1:4"
jwt-secret = "`+jwt+`"
"l2.follow.source" = "http://127.0.0.1:5"
"poll-interval" = "250ms"
`)
	specs, err := readChains(path)
	require.NoError(t, err)
	require.Len(t, specs, 2)
	require.Equal(t, "10", specs[0].label())
	require.Equal(t, []string{"http://127.0.0.1:2", "http://127.0.0.1:3"}, specs[0].cfg.FollowURLs)
	require.Equal(t, 2, specs[0].cfg.Quorum)
	require.Equal(t, 2*time.Second, specs[0].cfg.PollInterval, "the default, not the env var's 7s")
	require.Equal(t, "8453", specs[1].label())
	require.Equal(t, 250*time.Millisecond, specs[1].cfg.PollInterval)
	require.Equal(t, -1, specs[1].cfg.RPC.ListenPort, "a chain serves no RPC of its own")
}

// chainFixture is one chain of a --chains test: an engine and a rollup node
// answering chain id id, on one Tree's blocks.
type chainFixture struct {
	id     uint64
	tree   *fakechain.Tree
	chain  []*types.Block
	el     *fakeel.EL
	remote *fakerollup.RollupNode
	jwt    string
}

func newChainFixture(t *testing.T, id uint64, n int) *chainFixture {
	f := &chainFixture{id: id, tree: fakechain.NewTree()}
	f.chain = f.tree.Extend(f.tree.Genesis().Hash(), n, 0)
	secret := fakeel.NewJWTSecret()
	f.jwt = testutil.WriteJWTSecret(t, secret)
	f.el = testutil.NewEL(t, f.tree, fakeel.ELConfig{JWTSecret: secret, ChainID: id})
	f.el.Insert(f.chain...)
	f.el.SetForkchoice(f.block(n).Hash(), common.Hash{}, common.Hash{})
	cfg := f.tree.RollupConfig()
	cfg.L2ChainID = new(big.Int).SetUint64(id)
	f.remote = testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{RollupConfig: cfg})
	return f
}

func (f *chainFixture) block(n int) *types.Block { return f.chain[n-1] }

func (f *chainFixture) table() string {
	return fmt.Sprintf("[chain.%d]\nengine = %q\njwt-secret = %q\n\"l2.follow.source\" = %q\n\"poll-interval\" = \"100ms\"\n\"l2.follow.timeout\" = \"500ms\"\n",
		f.id, f.el.URL(), f.jwt, f.remote.URL())
}

// follow has the remote say safe and finalized (heads at the chain's tip).
func (f *chainFixture) follow(safe, finalized int) {
	f.remote.Follow(f.block(len(f.chain)), f.block(safe), f.block(safe), f.block(finalized), fakechain.L1Ref(uint64(safe)))
}

func (f *chainFixture) waitSafe(t *testing.T, p *process, safe int) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, s, _ := f.el.Labels()
		return s.Number == uint64(safe)
	}, waitFor, 20*time.Millisecond, "chain %d: engine safe at %d; stderr:\n%s", f.id, safe, p.stderr)
}

// TestChainsFollowedInOneProcess: three chains with different chain ids, each
// on its own engine and rollup node, followed by one process. The second
// chain's engine stalls; the third chain's remote stalls, then lies about finalized (its adapter halts), and
// the chain is stopped and started again through the admin API; meanwhile
// the other two keep following, each answering at /<chain id>, and /metrics
// carries each chain's series under its chain label.
func TestChainsFollowedInOneProcess(t *testing.T) {
	a, b, c := newChainFixture(t, 901, 60), newChainFixture(t, 902, 60), newChainFixture(t, 903, 60)
	for _, f := range []*chainFixture{a, b, c} {
		f.follow(10, 5)
	}
	rpcPort, promPort := freePort(t), freePort(t)
	path := writeChains(t, a.table()+b.table()+c.table())
	p := startProcess(t, nil, "--chains", path, "--rpc.port", strconv.Itoa(rpcPort), "--rpc.enable-admin",
		"--metrics.enabled", "--metrics.port", strconv.Itoa(promPort))
	for _, f := range []*chainFixture{a, b, c} {
		f.waitSafe(t, p, 10)
	}
	root := fmt.Sprintf("http://127.0.0.1:%d", rpcPort)

	// each chain at /<chain id>
	for _, f := range []*chainFixture{a, b, c} {
		st := chainSyncStatus(t, fmt.Sprintf("%s/%d", root, f.id))
		require.NotNil(t, st, "chain %d answers optimism_syncStatus", f.id)
		require.Equal(t, f.tree.Ref(f.block(10)).ID(), st.SafeL2.ID())
		var cfgAnswer struct {
			L2ChainID *big.Int `json:"l2_chain_id"`
		}
		require.NoError(t, callRPC(fmt.Sprintf("%s/%d", root, f.id), &cfgAnswer, "optimism_rollupConfig"))
		require.Equal(t, f.id, cfgAnswer.L2ChainID.Uint64())
	}
	var missing any
	require.ErrorContains(t, callRPC(root+"/904", &missing, "optimism_syncStatus"), "404", "no chain 904")
	metrics := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", promPort))
	for _, f := range []*chainFixture{a, b, c} {
		require.Contains(t, metrics, fmt.Sprintf(`lightcl_adapter_head_number{chain="%d",label="safe"} 10`, f.id))
	}
	require.Contains(t, metrics, "process_resident_memory_bytes", "the process's own metrics, once")

	// chain 902's engine stalls: the others go on, and it catches up once
	// its engine answers again
	b.el.Faults().Stall(time.Hour)
	a.follow(15, 5)
	c.follow(15, 5)
	a.waitSafe(t, p, 15)
	c.waitSafe(t, p, 15)
	b.follow(15, 5)
	b.el.Faults().Clear()
	b.waitSafe(t, p, 15)

	// chain 903's remote stalls past its timeout: the others go on
	c.remote.Faults().Stall(time.Hour)
	require.Eventually(t, func() bool { return strings.Contains(chainState(t, root, 903).lastError, "deadline") },
		waitFor, 20*time.Millisecond, "chain 903's source times out")
	for i, safe := range []int{20, 30} {
		a.follow(safe, 5+i)
		b.follow(safe, 5+i)
		a.waitSafe(t, p, safe)
		b.waitSafe(t, p, safe)
	}
	st := chainState(t, root, 903)
	require.Contains(t, st.lastError, "deadline", "chain 903 still stalled")
	require.Equal(t, "running", st.state)
	c.remote.Faults().Clear()
	c.follow(20, 10)
	c.waitSafe(t, p, 20)

	// chain 903's remote lies about finalized: its adapter halts, the others go on
	fork := c.tree.Extend(c.block(5).Hash(), 30, 1)
	c.remote.Follow(fork[29], fork[20], fork[20], fork[10], fakechain.L1Ref(40))
	require.Eventually(t, func() bool { return chainState(t, root, 903).halted }, waitFor, 20*time.Millisecond, "chain 903 halts")
	a.follow(40, 30)
	b.follow(40, 30)
	a.waitSafe(t, p, 40)
	b.waitSafe(t, p, 40)
	_, s, fin := c.el.Labels()
	require.Equal(t, uint64(20), s.Number, "the halted chain's engine keeps its safe head")
	require.Equal(t, uint64(10), fin.Number, "and its finalized head")

	// stop chain 903, put its remote right, start it again
	var none any
	require.NoError(t, callRPC(root, &none, "admin_stopChain", "903"))
	require.Equal(t, "stopped", chainState(t, root, 903).state)
	metrics = httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", promPort))
	require.Contains(t, metrics, `lightcl_chain_state{chain="903",state="stopped"} 1`)
	require.NotContains(t, metrics, `lightcl_adapter_head_number{chain="903"`, "a stopped chain shows no stale series")
	require.Contains(t, metrics, `lightcl_adapter_head_number{chain="901",label="safe"}`)
	err := callRPC(fmt.Sprintf("%s/%d", root, 903), &none, "optimism_syncStatus")
	require.ErrorContains(t, err, "chain 903 is stopped")
	require.Error(t, callRPC(root, &none, "admin_stopChain", 903), "a stopped chain cannot be stopped")
	c.follow(50, 40)
	a.follow(50, 40)
	require.NoError(t, callRPC(root, &none, "admin_startChain", "0x387"), "903 in hex")
	c.waitSafe(t, p, 50)
	a.waitSafe(t, p, 50)
	st = chainState(t, root, 903)
	require.Equal(t, "running", st.state)
	require.Equal(t, 2, st.starts)
	require.False(t, st.halted)
	require.Equal(t, 1, chainState(t, root, 901).starts, "chain 901 was never restarted")
	require.Eventually(t, func() bool {
		metrics = httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", promPort))
		return strings.Contains(metrics, `lightcl_adapter_head_number{chain="903",label="safe"} 50`)
	}, waitFor, 20*time.Millisecond, "the restarted chain's series:\n%s", metrics)
	require.Contains(t, metrics, `lightcl_chain_state{chain="903",state="running"} 1`)
	p.stop(t)
}

type chainStateAnswer struct {
	state     string
	starts    int
	halted    bool
	lastError string
}

// chainState reads one chain's entry of lightcl_chains at root.
func chainState(t *testing.T, root string, id uint64) chainStateAnswer {
	t.Helper()
	var chains []chainSummary
	require.NoError(t, callRPC(root, &chains, "lightcl_chains"))
	for _, c := range chains {
		if c.ChainID == strconv.FormatUint(id, 10) {
			out := chainStateAnswer{state: c.State, starts: c.Starts}
			if c.Status != nil {
				out.halted, out.lastError = c.Status.Halted, c.Status.LastError
			}
			return out
		}
	}
	t.Fatalf("chain %d not in lightcl_chains: %+v", id, chains)
	return chainStateAnswer{}
}

func chainSyncStatus(t *testing.T, url string) *eth.SyncStatus {
	t.Helper()
	var st eth.SyncStatus
	if err := callRPC(url, &st, "optimism_syncStatus"); err != nil {
		t.Logf("optimism_syncStatus at %s: %v", url, err)
		return nil
	}
	return &st
}

func callRPC(url string, out any, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.DialContext(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CallContext(ctx, out, method, args...); err != nil {
		return fmt.Errorf("%s: %w", strings.TrimSpace(method), err)
	}
	return nil
}

// TestChainsShareOneL1Verifier: four chains on one L1 share one L1 verifier:
// the L1 head is read about once per poll interval for all of them, not once
// per chain's poll, and every chain's heads are still checked against it
// (an L1 reorg under their origins holds every chain).
func TestChainsShareOneL1Verifier(t *testing.T) {
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 8, Safe: 2, Finalized: 2})
	var chains []*chainFixture
	var file strings.Builder
	for id := uint64(901); id <= 904; id++ {
		f := newChainFixture(t, id, 40)
		f.follow(20, 10) // block n's L1 origin is n/6: origins 3 and 1, canonical, and 1 final
		chains = append(chains, f)
		file.WriteString(f.table() + fmt.Sprintf("l1 = %q\n", l1.URL()))
	}
	rpcPort := freePort(t)
	root := fmt.Sprintf("http://127.0.0.1:%d", rpcPort)
	p := startProcess(t, nil, "--chains", writeChains(t, file.String()), "--rpc.port", strconv.Itoa(rpcPort))
	for _, f := range chains {
		f.waitSafe(t, p, 20)
	}
	require.Equal(t, 1, strings.Count(p.stderr.String(), "L1 verifier shared by the chains on this L1"), "one verifier:\n%s", p.stderr)

	// count over a stretch of polling: the L1 head reads (eth_getBlockByNumber
	// "latest") against the polls of all four sources
	count := func() (l1Reads, polls int) {
		for _, c := range l1.Calls() {
			if c.Method == "eth_getBlockByNumber" && strings.Contains(string(c.Params), `"latest"`) {
				l1Reads++
			}
		}
		for _, f := range chains {
			polls += f.remote.CallCount("optimism_syncStatus")
		}
		return l1Reads, polls
	}
	reads0, polls0 := count()
	require.Eventually(t, func() bool { _, polls := count(); return polls-polls0 >= 80 }, waitFor, 50*time.Millisecond)
	reads1, polls1 := count()
	reads, polls := reads1-reads0, polls1-polls0
	t.Logf("%d L1 head reads for %d polls of 4 chains", reads, polls)
	require.LessOrEqual(t, 2*reads, polls, "L1 head reads are shared: at most half as many as the chains' polls (a quarter when the ticks line up)")
	require.Positive(t, reads)

	// an L1 reorg under the origins of every chain's next heads: none moves
	l1.Reorg(3, 1) // L1 blocks 4.. replaced: the origins of blocks 24..40 are gone
	for _, f := range chains {
		f.follow(30, 25)
	}
	for _, f := range chains {
		require.Eventually(t, func() bool { return strings.Contains(chainState(t, root, f.id).lastError, "L1") },
			waitFor, 20*time.Millisecond, "chain %d names the L1 mismatch", f.id)
	}
	for _, f := range chains {
		_, s, _ := f.el.Labels()
		require.Equal(t, uint64(20), s.Number, "chain %d: heads whose L1 origins were reorged out are not applied", f.id)
	}
	l1.Reorg(3, 0) // the original L1 chain is back
	l1.SetLabels(6, 5)
	for _, f := range chains {
		f.waitSafe(t, p, 30)
	}
	p.stop(t)
}

// TestReadmeChainsExample: the --chains file the README shows reads as it
// says.
func TestReadmeChainsExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "### Many chains in one process")
	require.True(t, ok, "the README's --chains section")
	_, block, ok := strings.Cut(after, "```toml\n")
	require.True(t, ok, "its TOML example")
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok)
	specs, err := parseChains(writeChains(t, block)) // its files are not here: parsed, not opened
	require.NoError(t, err)
	require.Len(t, specs, 2)
	op, base := specs[0].cfg, specs[1].cfg
	require.Equal(t, "10", specs[0].label())
	require.Equal(t, []string{"ws://op-geth-10:8546"}, op.UnsafeURLs)
	require.Equal(t, "8453", specs[1].label())
	require.Equal(t, sourceQuorum, base.Source)
	require.Len(t, base.FollowURLs, 3)
	require.Equal(t, 2, base.Quorum)
	require.True(t, base.Backfill)
	require.Equal(t, time.Second, base.PollInterval)
	require.Equal(t, op.L1URL, base.L1URL, "both on one L1")
}

// TestChainsOneFailsItsStartUpCheck: a chain whose rollup config is for
// another chain than its table's fails its start, and is shown failed with
// the reason, while the other chain runs; the process keeps running.
func TestChainsOneFailsItsStartUpCheck(t *testing.T) {
	a, b := newChainFixture(t, 901, 30), newChainFixture(t, 902, 30)
	a.follow(10, 5)
	b.follow(10, 5)
	// chain 902's table points at chain 901's remote, whose config says 901
	bad := strings.Replace(b.table(), b.remote.URL(), a.remote.URL(), 1)
	rpcPort := freePort(t)
	root := fmt.Sprintf("http://127.0.0.1:%d", rpcPort)
	p := startProcess(t, nil, "--chains", writeChains(t, a.table()+bad), "--rpc.port", strconv.Itoa(rpcPort))
	a.waitSafe(t, p, 10)
	require.Eventually(t, func() bool { return chainState(t, root, 902).state == "failed" }, waitFor, 20*time.Millisecond)
	var chains []chainSummary
	require.NoError(t, callRPC(root, &chains, "lightcl_chains"))
	require.Contains(t, chains[1].Error, "is for L2 chain 901, not the table's chain 902")
	require.Contains(t, p.stderr.String(), "Chain failed")
	a.follow(20, 10)
	a.waitSafe(t, p, 20)
	p.stop(t)
}

// TestTickPhase: a hosted chain's adapter starts at the next multiple of its
// poll interval, so chains polling at one interval tick together; a stopping
// process does not wait for it.
func TestTickPhase(t *testing.T) {
	at := func(ms int64) time.Time { return time.UnixMilli(1_700_000_000_000 + ms) } // a multiple of 500 ms
	require.Equal(t, 500*time.Millisecond, tickPhase(at(0), 500*time.Millisecond), "on a multiple: the next one")
	require.Equal(t, 380*time.Millisecond, tickPhase(at(120), 500*time.Millisecond))
	require.Equal(t, time.Millisecond, tickPhase(at(1999), 2*time.Second))
	require.Zero(t, tickPhase(at(120), 0))
	// two chains started 300 ms apart start ticking at the same instant
	require.Equal(t, at(120).Add(tickPhase(at(120), time.Second)), at(420).Add(tickPhase(at(420), time.Second)))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	awaitTickPhase(ctx, time.Hour)
	require.Less(t, time.Since(start), time.Minute, "an ended context ends the wait")
}
