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
	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/l1verify"
	"github.com/lightcl/lightcl/safesource/remotel2"
	"github.com/lightcl/lightcl/safesource/tipfeed"
)

// quick makes every row a smoke run of a few seconds: fewer samples and ticks.
var quick = flag.Bool("quick", false, "fewer samples and ticks: a smoke run of every row")

var discard = log.NewLogger(log.DiscardHandler())

// rig is what minimal-node runs, in-process: the adapter following a fake
// remote rollup node over loopback HTTP, optionally verified against an
// in-memory L1, into an in-memory EL behind op-geth's JWT check, all through
// op-service's clients. With a tip feed, the remote also has a public L2 EL
// (no JWT) whose head the feed follows; it holds the chain up to the remote's
// unsafe head, and move advances it with Insert and SetForkchoice. The local
// engine starts as a synced engine does, holding the chain up to the
// configured unsafe head with its labels (newRig, before any adapter runs);
// after that only the adapter writes into it.
type rig struct {
	tree   *fakechain.Tree
	chain  []*types.Block // chain[i] is block i+1
	el     *fakeel.EL
	remote *fakerollup.RollupNode
	l1     *fakel1.L1
	engine *sources.EngineClient
	source safesource.SafeHeadSource
	a      *engineadapter.Adapter

	// With a tip feed: remoteEL is the remote's L2 EL and tip the feed on it
	// (the adapter's Config.Tip); with counting on, tipCalls counts the feed's
	// calls over its websocket.
	remoteEL    *fakeel.EL
	remoteELTop int // the highest block inserted into remoteEL
	tip         *tipfeed.Remote
	tipCalls    *wsCounter

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

	// tip is the adapter's tip feed on the remote's L2 EL: "" none, "ws" its
	// websocket (new heads pushed; with count, its calls are counted by a
	// wsCounter), "http" its HTTP endpoint (polled every tipPoll; its calls
	// are in remoteEL.Calls).
	tip     string
	tipPoll time.Duration
	// elSource makes the remote's L2 EL the source (remotel2, kind el, over
	// HTTP) instead of the rollup node; it needs a tip feed.
	elSource  bool
	tickOnTip bool
}

func newRig(tb testing.TB, cfg rigConfig) *rig {
	tb.Helper()
	ctx := context.Background()
	r := &rig{tree: fakechain.NewTree(), remoteReq: new(atomic.Int64), elReq: new(atomic.Int64), l1Req: new(atomic.Int64)}
	r.chain = r.tree.Extend(r.tree.Genesis().Hash(), cfg.blocks, 1)
	secret := [32]byte{7}
	r.el = testutil.NewEL(tb, r.tree, fakeel.ELConfig{JWTSecret: secret})
	r.el.Insert(r.chain[:cfg.unsafe]...)
	r.el.SetForkchoice(r.chain[cfg.unsafe-1].Hash(), r.chain[cfg.safe-1].Hash(), r.chain[cfg.fin-1].Hash())
	r.remote = testutil.NewRollupNode(tb, r.tree, fakerollup.RollupNodeConfig{})
	if cfg.tip != "" {
		r.remoteEL = testutil.NewEL(tb, r.tree, fakeel.ELConfig{NoAuth: true})
	}
	r.move(cfg.unsafe, cfg.safe, cfg.fin)

	through := func(u string, n *atomic.Int64) string {
		if !cfg.count {
			return u
		}
		return countingProxy(tb, u, n)
	}
	srcCfg := remotel2.Config{URL: through(r.remote.URL(), r.remoteReq), Timeout: 2 * time.Second, RollupConfig: r.tree.RollupConfig()}
	if cfg.elSource {
		if r.remoteEL == nil {
			tb.Fatal("rigConfig.elSource needs a tip feed")
		}
		srcCfg.URL, srcCfg.Kind = through(r.remoteEL.URL(), r.remoteReq), remotel2.KindEL
	}
	src, err := remotel2.New(ctx, srcCfg, discard, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(src.Close)
	r.source = src
	if cfg.verify {
		// the Tree's blocks take the synthetic L1 block n/BlocksPerEpoch as
		// origin; L1 holds them all, finalized
		top := uint64(cfg.blocks/fakechain.BlocksPerEpoch + 1)
		r.l1 = testutil.NewL1(tb, fakel1.L1Config{Head: top, Safe: top, Finalized: top})
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
	acfg := engineadapter.Config{PollInterval: cfg.interval, TickOnTip: cfg.tickOnTip}
	switch cfg.tip {
	case "":
	case "ws", "http":
		u := r.remoteEL.URL()
		if cfg.tip == "ws" {
			u = r.remoteEL.WSURL()
			if cfg.count {
				r.tipCalls = newWSCounter(tb, u)
				u = r.tipCalls.URL()
			}
		}
		r.tip, err = tipfeed.New(ctx, tipfeed.Config{URL: u, RollupConfig: r.tree.RollupConfig(), Timeout: 2 * time.Second,
			PollInterval: cfg.tipPoll}, discard, nil)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(r.tip.Close)
		acfg.Tip = r.tip
	default:
		tb.Fatalf("rigConfig.tip %q: want \"\", \"ws\" or \"http\"", cfg.tip)
	}
	r.a, err = engineadapter.New(acfg, r.engine, r.source, discard, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// follow sets the rollup node's heads: unsafe, safe (and local-safe), finalized.
func (r *rig) follow(unsafe, safe, fin int) {
	r.remote.Follow(r.chain[unsafe-1], r.chain[safe-1], r.chain[safe-1], r.chain[fin-1],
		fakechain.L1Ref(uint64(safe/fakechain.BlocksPerEpoch)))
}

// move sets the remote's heads: its L2 EL's first (when it has one; the
// blocks up to unsafe are inserted, then SetForkchoice, which pushes the new
// head to subscribers), then the rollup node's.
func (r *rig) move(unsafe, safe, fin int) {
	if r.remoteEL != nil {
		r.moveEL(unsafe, safe, fin)
	}
	r.follow(unsafe, safe, fin)
}

// moveEL inserts the blocks up to unsafe into the remote's L2 EL and sets its
// head and labels.
func (r *rig) moveEL(unsafe, safe, fin int) {
	r.insertRemote(unsafe)
	r.remoteEL.SetForkchoice(r.chain[unsafe-1].Hash(), r.chain[safe-1].Hash(), r.chain[fin-1].Hash())
}

// insertRemote gives the remote's L2 EL the blocks up to n it lacks, without
// moving its head.
func (r *rig) insertRemote(n int) {
	if n > r.remoteELTop {
		r.remoteEL.Insert(r.chain[r.remoteELTop:n]...)
		r.remoteELTop = n
	}
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
