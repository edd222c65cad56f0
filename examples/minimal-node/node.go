package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	opmetrics "github.com/ethereum-optimism/optimism/op-service/metrics"
	oprpc "github.com/ethereum-optimism/optimism/op-service/rpc"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/log"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/gossip"
	"github.com/lightcl/lightcl/safesource/l1derive"
	"github.com/lightcl/lightcl/safesource/l1verify"
	"github.com/lightcl/lightcl/safesource/quorum"
	"github.com/lightcl/lightcl/safesource/remotel2"
	"github.com/lightcl/lightcl/safesource/rpclimit"
	"github.com/lightcl/lightcl/safesource/tipfeed"
)

// startTimeout bounds each check made at start (engine reachable, chain ids).
const startTimeout = 10 * time.Second

// quorumRoundCalls is how many member calls in a row a quorum round may take
// before the adapter gives up on it: the heads, then lookups by number.
const quorumRoundCalls = 3

// node is a running minimal-node: its source (one remote, or a quorum of
// remotes), one engine, the adapter between them, and the status RPC and
// metrics servers.
type node struct {
	cfg      nodeConfig
	log      log.Logger
	rollup   *rollup.Config
	engine   *sources.EngineClient
	source   safesource.SafeHeadSource
	members  []*lateMember      // the remotes, in flag order; a quorum's may not be checked yet
	quorum   *quorum.Quorum     // nil unless --source quorum
	deriver  *l1derive.Source   // nil unless --source l1 or --l1.crosscheck
	verifier *l1verify.Verifier // nil unless --l1 verifies the source's heads
	tipFeeds []*tipfeed.Remote  // the tip feeds, in flag order; none when tip following is off
	tipDesc  string             // the tip feeds' URLs, or why there are none
	// tipOffWarning: the source serves no payloads and no tip feed was given
	tipOffWarning bool
	adapter       *engineadapter.Adapter
	safeHeads     *safeHeads                    // nil without --safedb.path
	gossip        *gossip.Feed                  // nil unless gossip is on
	signerDesc    string                        // whose signature gossiped blocks carry
	runs          []func(context.Context) error // what runs beside the adapter until Run ends
	stops         []func(context.Context) error // the servers' Stop, for stopServers
	stopOnce      sync.Once
	// StatusAddr and MetricsAddr are where the servers listen, once started.
	StatusAddr, MetricsAddr string
	closers                 []func()
	configFrom              string   // where the rollup config came from
	l1Verify                string   // the L1 the heads are verified against, or why not
	startLine               []any    // the start-up line's fields, logged once every check passed
	hosted                  *hosting // nil for the one chain of a process; set for a chain of --chains
}

// hosting is what a chain of a --chains process gets from the process: its
// chain id (the table's name, which the rollup config must carry), where its
// metrics go, and the L1 verifiers every chain on an L1 shares.
type hosting struct {
	host    *chainHost
	chainID *big.Int
	reg     prometheus.Registerer
}

// newNode builds a node and checks everything it can at start; errors name the
// flag to fix.
func newNode(ctx context.Context, cfg nodeConfig, logger log.Logger) (*node, error) {
	return newHostedNode(ctx, cfg, logger, nil)
}

// newHostedNode builds a node as newNode does; hosted, when not nil, makes it
// one chain of a --chains process.
func newHostedNode(ctx context.Context, cfg nodeConfig, logger log.Logger, hosted *hosting) (*node, error) {
	n := &node{cfg: cfg, log: logger, hosted: hosted}
	if err := n.setup(ctx); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (n *node) setup(ctx context.Context) error {
	secret, err := oprpc.ObtainJWTSecret(n.log, n.cfg.JWTSecretPath, false)
	if err != nil {
		return &flagError{flag: flagJWTSecret, err: err}
	}
	if n.cfg.RollupConfigPath != "" {
		if n.rollup, err = readRollupConfig(n.cfg.RollupConfigPath); err != nil {
			return &flagError{flag: flagRollupConfig, err: err}
		}
	}

	var reg prometheus.Registerer
	own := prometheus.NewRegistry()
	if n.hosted != nil {
		reg = n.hosted.reg
	} else {
		own.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg = own
	}
	adapterMetrics, err := engineadapter.NewPrometheusMetrics(reg, "lightcl")
	if err != nil {
		return err
	}

	// The remotes first: rollup nodes can supply the rollup config.
	n.configFrom = n.cfg.RollupConfigPath
	if n.cfg.Source != sourceL1 {
		if err := n.buildSource(ctx, reg); err != nil {
			return err
		}
	}
	if err := n.checkRollup(); err != nil {
		return err
	}

	if err := n.dialEngine(ctx, secret); err != nil {
		return err
	}
	drop, err := n.dialEngineDebug(ctx)
	if err != nil {
		return err
	}
	if err := n.deriveFromL1(ctx, reg); err != nil {
		return err
	}
	n.startLine = append(n.sourceDescription(), n.startLine...)
	acfg := engineadapter.DefaultConfig()
	acfg.Drop = drop
	if n.cfg.Backfill {
		acfg.SyncMode = reorg.Backfill
		if acfg.Payloads, err = n.payloadProvider(ctx); err != nil {
			return err
		}
	}
	if acfg.Tip, err = n.tipFeed(ctx, reg); err != nil {
		return err
	}
	// an L2 EL source's labels move with its head: read them when a tip lands,
	// with --poll-interval as the fallback; a rollup node or a quorum is polled
	acfg.TickOnTip = acfg.Tip != nil && n.quorum == nil && n.cfg.Source == sourceL2 && n.members[0].Kind() == remotel2.KindEL
	n.startLine = append(n.startLine, "tip", n.tipDesc)
	acfg.PollInterval = n.cfg.PollInterval
	acfg.SourceTimeout = n.cfg.FollowTimeout
	if n.quorum != nil {
		// a round asks every member for its heads, then some for blocks by
		// number; each call is bounded by --l2.follow.timeout
		acfg.SourceTimeout = quorumRoundCalls * n.cfg.FollowTimeout
	}
	if n.deriver != nil {
		// derivation stops taking new steps after half of --l2.follow.timeout;
		// the step in flight may take one more call
		acfg.SourceTimeout += n.cfg.FollowTimeout
	}
	n.adapter, err = engineadapter.New(acfg, n.engine, n.source, n.log, adapterMetrics)
	if err != nil {
		return err
	}
	if err := n.openSafeHeads(); err != nil {
		return err
	}
	if n.safeHeads != nil {
		n.adapter.OnEvent(n.safeHeads.record)
	}
	// listen before the start-up line: a bad address is a start-up error,
	// reported alone
	if n.cfg.RPC.ListenPort >= 0 {
		if err := n.startStatusRPC(); err != nil {
			return err
		}
	}
	if n.cfg.Metrics.Enabled {
		srv, err := opmetrics.StartServer(own, n.cfg.Metrics.ListenAddr, n.cfg.Metrics.ListenPort)
		if err != nil {
			return listenError(flagMetricsAddr, flagMetricsPort, err)
		}
		n.stops = append(n.stops, srv.Stop)
		n.MetricsAddr = srv.Addr().String()
	}
	n.log.Info("minimal-node starting", n.startLine...)
	if n.gossip != nil && len(n.cfg.P2P.Static) == 0 {
		n.log.Warn("Gossip has no static peers: it gets blocks only from peers that connect to it (discovery is not built)",
			"remedy", "--"+flagP2PStatic)
	}
	if n.tipOffWarning {
		n.log.Warn("Tip following is off: the engine's head moves with the safe head only",
			"source", n.cfg.Source, "remedy", "--"+flagUnsafeSource)
	}
	if n.StatusAddr != "" {
		n.log.Info("Status RPC listening", "addr", n.StatusAddr)
	}
	if n.MetricsAddr != "" {
		n.log.Info("Metrics listening", "addr", n.MetricsAddr)
	}
	return nil
}

// checkRollup checks the rollup config once it is settled (read from
// --rollup.config or from the source), and for a chain of --chains that it is
// the table's chain.
func (n *node) checkRollup() error {
	if err := n.rollup.Check(); err != nil {
		return &flagError{flag: flagRollupConfig, err: fmt.Errorf("rollup config from %s: %w", n.configFrom, err)}
	}
	if h := n.hosted; h != nil && n.rollup.L2ChainID.Cmp(h.chainID) != 0 {
		flag := flagRollupConfig
		if n.cfg.RollupConfigPath == "" {
			flag = flagFollowSource
		}
		return badFlag(flag, "the rollup config from %s is for L2 chain %s, not the table's chain %s", n.configFrom, n.rollup.L2ChainID, h.chainID)
	}
	return nil
}

// dialEngine connects to the engine with the JWT secret, checks that it serves
// the rollup config's chain and reads its heads for the start-up line. An
// engine that cannot be reached yet is waited for.
func (n *node) dialEngine(ctx context.Context, secret eth.Bytes32) error {
	var id *big.Int
	var heads [3]eth.L2BlockRef
	err := n.await(ctx, flagEngine, n.cfg.EngineURL, func(ctx context.Context) error {
		var err error
		id, heads, err = n.tryEngine(ctx, secret)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		var fe *flagError
		if errors.As(err, &fe) {
			return err
		}
		return engineError(n.cfg.EngineURL, err)
	}
	n.startLine = append(n.startLine, "chain_id", id,
		"rollup_config", n.configFrom,
		"unsafe", heads[0].Number, "unsafe_hash", heads[0].Hash, "safe", heads[1].Number, "safe_hash", heads[1].Hash,
		"finalized", heads[2].Number, "finalized_hash", heads[2].Hash)
	return nil
}

// dialEngineDebug dials --engine.debug-rpc, if given, and checks that it
// serves the engine's chain and the debug namespace.
func (n *node) dialEngineDebug(ctx context.Context) (engineadapter.BlockDropper, error) {
	url := n.cfg.EngineDebugURL
	if url == "" {
		return nil, nil
	}
	rpcClient, err := dialRPC(ctx, n.log, url, client.WithCallTimeout(startTimeout))
	if err != nil {
		return nil, badFlag(flagEngineDebug, "%s: %v", url, err)
	}
	n.closers = append(n.closers, rpcClient.Close)
	if err := safesource.CheckChainID(ctx, rpcClient, url, n.rollup.L2ChainID); errors.Is(err, safesource.ErrWrongChain) {
		return nil, badFlag(flagEngineDebug, "it must be the engine's own RPC: %w", err)
	} else if err != nil {
		return nil, badFlag(flagEngineDebug, "%w", err)
	}
	var modules map[string]string
	if err := rpcClient.CallContext(ctx, &modules, "rpc_modules"); err != nil {
		return nil, badFlag(flagEngineDebug, "%s: listing its namespaces (rpc_modules): %v", url, err)
	}
	if _, ok := modules["debug"]; !ok {
		return nil, badFlag(flagEngineDebug, "%s does not serve the debug namespace (op-geth: add debug to --http.api)", url)
	}
	n.startLine = append(n.startLine, "engine_debug", url)
	return engineadapter.DebugSetHead{RPC: rpcClient}, nil
}

// tryEngine is one attempt of dialEngine: on success n.engine is set and the
// client closes with the node; on failure the client is closed.
func (n *node) tryEngine(ctx context.Context, secret eth.Bytes32) (*big.Int, [3]eth.L2BlockRef, error) {
	var heads [3]eth.L2BlockRef
	rpcClient, err := dialRPC(ctx, n.log, n.cfg.EngineURL,
		client.WithGethRPCOptions(rpc.WithHTTPAuth(gethnode.NewJWTAuth(secret)), rpc.WithHTTPClient(engineHTTPClient())),
		client.WithCallTimeout(startTimeout))
	if err != nil {
		return nil, heads, err
	}
	ok := false
	defer func() {
		if !ok {
			rpcClient.Close()
		}
	}()
	if err := safesource.CheckChainID(ctx, rpcClient, n.cfg.EngineURL, n.rollup.L2ChainID); errors.Is(err, safesource.ErrWrongChain) {
		if n.cfg.RollupConfigPath == "" { // the config came from the source: the source is the odd one
			return nil, heads, badFlag(flagFollowSource, "the rollup config from %s does not match the engine: %w", n.configFrom, err)
		}
		return nil, heads, badFlag(flagEngine, "the engine: %w", err)
	} else if err != nil {
		return nil, heads, err
	}
	engine, err := sources.NewEngineClient(rpcClient, n.log, nil, sources.EngineClientDefaultConfig(n.rollup))
	if err != nil {
		return nil, heads, &flagError{flag: flagEngine, err: err}
	}
	for i, label := range []eth.BlockLabel{eth.Unsafe, eth.Safe, eth.Finalized} {
		heads[i], err = engine.L2BlockRefByLabel(ctx, label)
		if i > 0 && errors.Is(err, ethereum.NotFound) {
			err = nil // a fresh engine has no safe or finalized head yet
		}
		if err != nil {
			return nil, heads, fmt.Errorf("reading its %s head: %w", label, err)
		}
	}
	ok = true
	n.engine = engine
	n.closers = append(n.closers, rpcClient.Close)
	return n.rollup.L2ChainID, heads, nil
}

// engineHTTPClient is the engine client's HTTP client: the default
// transport's settings without compression. The engine is the node's own, on
// loopback or a local network, where compressing every answer (op-geth's
// authrpc gzips when asked) costs both sides CPU and saves nothing.
func engineHTTPClient() *http.Client {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultClient
	}
	t = t.Clone()
	t.DisableCompression = true
	return &http.Client{Transport: t}
}

// engineError names the flag to fix: a refused JWT is --jwt-secret's fault,
// anything else --engine's.
func engineError(url string, err error) error {
	var httpErr rpc.HTTPError
	if errors.As(err, &httpErr) && httpErr.StatusCode == http.StatusUnauthorized {
		return badFlag(flagJWTSecret, "the engine at %s refused the JWT (401): the secret does not match the engine's", url)
	}
	return badFlag(flagEngine, "the engine at %s: %v", url, err)
}

// startStatusRPC starts op-service's RPC server (with its /healthz) on
// --rpc.addr and --rpc.port, serving the optimism_ and lightcl_ namespaces
// until Run ends.
func (n *node) startStatusRPC() error {
	srv := oprpc.NewServer(n.cfg.RPC.ListenAddr, n.cfg.RPC.ListenPort, version,
		oprpc.WithLogger(quietLogger(n.log, log.LevelWarn))) // its "registered API" lines would precede a failed start's one line
	for _, api := range n.apis(n.cfg.RPC.EnableAdmin) {
		srv.AddAPI(api)
	}
	if err := srv.Start(); err != nil {
		return listenError(flagRPCAddr, flagRPCPort, err)
	}
	n.stops = append(n.stops, func(context.Context) error { return srv.Stop() })
	n.StatusAddr = srv.Endpoint()
	return nil
}

// apis are the namespaces the status RPC serves for the node: optimism_ and
// lightcl_, and admin_ when admin is set.
func (n *node) apis(admin bool) []rpc.API {
	apis := []rpc.API{
		{Namespace: "optimism", Service: &statusAPI{n: n}},
		{Namespace: "lightcl", Service: &lightclAPI{n: n}},
	}
	if admin {
		apis = append(apis, rpc.API{Namespace: "admin", Service: &adminAPI{n: n}})
	}
	return apis
}

// listenError names addrFlag when the address does not resolve, portFlag
// otherwise.
func listenError(addrFlag, portFlag string, err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &flagError{flag: addrFlag, err: err}
	}
	return &flagError{flag: portFlag, err: err}
}

// Run follows the source until ctx ends, then lets the tick in flight finish
// and stops the servers.
func (n *node) Run(ctx context.Context) error {
	defer n.close()
	g, gctx := errgroup.WithContext(ctx)
	for _, run := range n.runs {
		g.Go(func() error { return run(gctx) })
	}
	g.Go(func() error {
		err := n.adapter.Run(gctx)
		if len(n.stops) > 0 {
			n.log.Info("Adapter stopped; closing servers")
		} else {
			n.log.Info("Adapter stopped")
		}
		n.stopServers() // no RPC (admin_postUnsafePayload) reaches the engine after the adapter stopped
		return err
	})
	return g.Wait()
}

// stopServers stops the status RPC and metrics servers; a second call does
// nothing.
func (n *node) stopServers() {
	n.stopOnce.Do(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, stop := range n.stops {
			_ = stop(sctx)
		}
	})
}

func (n *node) close() {
	n.stopServers()
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.closers = nil
}

// payloadProvider is where backfill fetches payloads: --l2.backfill.source, or
// the one --l2.follow.source remote when it is an L2 EL. The followed remote
// serves them itself: the safe block its heads were read from is not fetched
// a second time (remotel2.Source.PayloadByNumber).
func (n *node) payloadProvider(ctx context.Context) (engineadapter.PayloadProvider, error) {
	url := n.cfg.BackfillURL
	if url == "" {
		if n.quorum != nil || len(n.members) != 1 || n.members[0].Kind() != remotel2.KindEL {
			return nil, badFlag(flagBackfillSource, "required with --%s backfill unless --%s is one L2 EL: an L2 EL to fetch payloads from",
				flagSyncMode, flagFollowSource)
		}
		src, err := n.members[0].source()
		if err != nil {
			return nil, err
		}
		n.log.Info("Backfill from the followed remote", "url", n.cfg.FollowURLs[0])
		return src, nil
	}
	rpcClient, err := n.dialChain(ctx, flagBackfillSource, url, n.rollup.L2ChainID)
	if err != nil {
		return nil, err
	}
	l2, err := sources.NewL2Client(rpcClient, n.log, nil, sources.L2ClientDefaultConfig(n.rollup, false))
	if err != nil {
		return nil, &flagError{flag: flagBackfillSource, err: err}
	}
	n.log.Info("Backfill payloads from", "url", url)
	return l2, nil
}

// dialChain dials a public JSON-RPC endpoint given by flag, closes it with
// the node, and checks it serves chain want; errors name the flag. An endpoint
// that cannot be reached yet is waited for.
func (n *node) dialChain(ctx context.Context, flag, url string, want *big.Int) (client.RPC, error) {
	var rpcClient client.RPC
	err := n.await(ctx, flag, url, func(ctx context.Context) error {
		var err error
		rpcClient, err = n.tryChain(ctx, flag, url, want)
		return err
	})
	if err != nil {
		var fe *flagError
		if ctx.Err() != nil || errors.As(err, &fe) {
			return nil, err
		}
		return nil, badFlag(flag, "%s: %v", url, err)
	}
	n.closers = append(n.closers, rpcClient.Close)
	return rpcClient, nil
}

// tryChain is one attempt of dialChain; on failure the client is closed.
func (n *node) tryChain(ctx context.Context, flag, url string, want *big.Int) (client.RPC, error) {
	return tryChainWith(ctx, n.log, flag, url, want, n.cfg.FollowTimeout, n.cfg.MaxResponse)
}

// tryChainWith dials url with a call timeout and a response limit and checks
// that it serves chain want; on failure the client is closed.
func tryChainWith(ctx context.Context, logger log.Logger, flag, url string, want *big.Int, timeout time.Duration, maxResponse int64) (client.RPC, error) {
	rpcClient, err := dialRPC(ctx, logger, url, client.WithCallTimeout(timeout),
		client.WithGethRPCOptions(rpclimit.Options(maxResponse)...))
	if err != nil {
		return nil, err
	}
	if err := safesource.CheckChainID(ctx, rpcClient, url, want); err != nil {
		rpcClient.Close()
		if errors.Is(err, safesource.ErrWrongChain) {
			return nil, &flagError{flag: flag, err: err}
		}
		return nil, err
	}
	return rpcClient, nil
}

func readRollupConfig(path string) (*rollup.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cfg rollup.Config
	if err := cfg.ParseRollupConfig(f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &cfg, nil
}
