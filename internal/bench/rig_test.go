package main

import (
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/log"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/l1verify"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

// quick makes every row a smoke run of a few seconds: fewer samples and ticks.
var quick = flag.Bool("quick", false, "fewer samples and ticks: a smoke run of every row")

var discard = log.NewLogger(log.DiscardHandler())

// rig is what minimal-node runs, in-process: the adapter following a fake
// remote rollup node over loopback HTTP, optionally verified against an
// in-memory L1, into an in-memory EL behind op-geth's JWT check, all through
// op-service's clients.
type rig struct {
	tree   *testutil.Tree
	chain  []*types.Block // chain[i] is block i+1
	el     *testutil.EL
	remote *testutil.RollupNode
	l1     *testutil.L1
	engine *sources.EngineClient
	source safesource.SafeHeadSource
	a      *engineadapter.Adapter

	// requests counts HTTP requests (a batch is one) to each server, when
	// the rig was built with counting on.
	remoteReq, elReq, l1Req *atomic.Int64
}

type rigConfig struct {
	blocks   int // blocks on the chain
	unsafe   int // the EL's and the remote's first unsafe head
	safe     int // the first safe and finalized heights
	fin      int
	interval time.Duration
	verify   bool // verify the source against an in-memory L1
	count    bool // put a request counter in front of every server
}

func newRig(tb testing.TB, cfg rigConfig) *rig {
	tb.Helper()
	ctx := context.Background()
	r := &rig{tree: testutil.NewTree(), remoteReq: new(atomic.Int64), elReq: new(atomic.Int64), l1Req: new(atomic.Int64)}
	r.chain = r.tree.Extend(r.tree.Genesis().Hash(), cfg.blocks, 1)
	secret := [32]byte{7}
	r.el = testutil.NewEL(tb, r.tree, testutil.ELConfig{JWTSecret: secret})
	r.el.Insert(r.chain[:cfg.unsafe]...)
	r.el.SetForkchoice(r.chain[cfg.unsafe-1].Hash(), r.chain[cfg.safe-1].Hash(), r.chain[cfg.fin-1].Hash())
	r.remote = testutil.NewRollupNode(tb, r.tree, testutil.RollupNodeConfig{})
	r.follow(cfg.unsafe, cfg.safe, cfg.fin)

	through := func(u string, n *atomic.Int64) string {
		if !cfg.count {
			return u
		}
		return countingProxy(tb, u, n)
	}
	src, err := remotel2.New(ctx, remotel2.Config{URL: through(r.remote.URL(), r.remoteReq), Timeout: 2 * time.Second,
		RollupConfig: r.tree.RollupConfig()}, discard, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(src.Close)
	r.source = src
	if cfg.verify {
		// the Tree's blocks take the synthetic L1 block n/BlocksPerEpoch as
		// origin; L1 holds them all, finalized
		top := uint64(cfg.blocks/testutil.BlocksPerEpoch + 1)
		r.l1 = testutil.NewL1(tb, testutil.L1Config{Head: top, Safe: top, Finalized: top})
		l1rpc, err := client.NewRPC(ctx, discard, through(r.l1.URL(), r.l1Req), client.WithCallTimeout(2*time.Second))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(l1rpc.Close)
		v, err := l1verify.Wrap(src, l1verify.NewRPCSource(l1rpc), l1verify.DefaultConfig(), discard, nil)
		if err != nil {
			tb.Fatal(err)
		}
		r.source = v
	}
	r.engine = testutil.DialEngine(tb, through(r.el.URL(), r.elReq), secret, sources.EngineClientDefaultConfig(r.tree.RollupConfig()))
	r.a, err = engineadapter.New(engineadapter.Config{PollInterval: cfg.interval}, r.engine, r.source, discard, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// follow sets the remote's heads: unsafe, safe (and local-safe), finalized.
func (r *rig) follow(unsafe, safe, fin int) {
	r.remote.Follow(r.chain[unsafe-1], r.chain[safe-1], r.chain[safe-1], r.chain[fin-1],
		testutil.L1Ref(uint64(safe/testutil.BlocksPerEpoch)))
}

// countingProxy serves u's server through a reverse proxy on 127.0.0.1 that
// counts the HTTP requests it passes on.
func countingProxy(tb testing.TB, u string, n *atomic.Int64) string {
	tb.Helper()
	target, err := url.Parse(u)
	if err != nil {
		tb.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n.Add(1)
		proxy.ServeHTTP(w, req)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}
