package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/httputil"
	oplog "github.com/ethereum-optimism/optimism/op-service/log"
	opmetrics "github.com/ethereum-optimism/optimism/op-service/metrics"
	oprpc "github.com/ethereum-optimism/optimism/op-service/rpc"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/urfave/cli/v2"

	"github.com/lightcl/lightcl/safesource/l1verify"
)

// processConfig is what a --chains process sets for itself, not per chain:
// its servers and logs.
type processConfig struct {
	RPC     oprpc.CLIConfig
	Metrics opmetrics.CLIConfig
	Log     oplog.CLIConfig
}

func processConfigFromCLI(c *cli.Context) (processConfig, error) {
	pc := processConfig{RPC: oprpc.ReadCLIConfig(c), Metrics: opmetrics.ReadCLIConfig(c), Log: oplog.ReadCLIConfig(c)}
	if p := pc.RPC.ListenPort; p < -1 || p > 65535 {
		return pc, badFlag(flagRPCPort, "%d: want 0..65535, or -1 for off", p)
	}
	if p := pc.Metrics.ListenPort; p < 0 || p > 65535 { // checked even while off: the flag is wrong either way
		return pc, badFlag(flagMetricsPort, "%d: want 0..65535", p)
	}
	return pc, nil
}

// chainHost runs the chains of a --chains file in one process. Each chain is
// a node of its own, with its own goroutines, engine, source and adapter; the
// host shares what the chains share: one L1 verifier per L1 URL (so one L1
// read serves every chain on that L1), one status RPC that routes
// /<chain id> to each chain, and one metrics endpoint whose series carry a
// chain label.
type chainHost struct {
	cfg    processConfig
	log    log.Logger
	chains []*chain // by chain id
	byID   map[string]*chain
	proc   *prometheus.Registry // the process's own metrics and the shared verifiers'

	l1Mu sync.Mutex
	l1   map[string]*sharedL1 // by L1 URL

	runCtx context.Context // the host's Run context: every chain runs under it
	wg     sync.WaitGroup  // the chains' goroutines

	// StatusAddr and MetricsAddr are where the servers listen, once started.
	StatusAddr, MetricsAddr string
	stops                   []func() error
}

// sharedL1 is one L1 URL's verifier, shared by every chain on that L1.
type sharedL1 struct {
	lock     chan struct{} // held while the L1 is dialed
	verifier *l1verify.Verifier
	chainID  *big.Int // the L1's chain id
	close    func()
	index    int // its place among the L1 URLs, in chain id order: the l1 label of its metrics
	// maxHeadAge is how old an L1 head read may be to serve another
	// chain's check: the shortest poll interval of the chains on this L1,
	// zero when only one chain is on it
	maxHeadAge time.Duration
	chains     int // how many chains are on this L1
}

func newChainHost(specs []chainSpec, cfg processConfig, logger log.Logger) *chainHost {
	h := &chainHost{cfg: cfg, log: logger, byID: map[string]*chain{}, l1: map[string]*sharedL1{},
		proc: prometheus.NewRegistry()}
	h.proc.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, s := range specs {
		c := &chain{spec: s, log: logger.New("chain", s.label()), state: chainStopped}
		h.chains = append(h.chains, c)
		h.byID[s.label()] = c
		if u := s.cfg.L1URL; u != "" && s.cfg.L1Verify && s.cfg.Source != sourceL1 {
			l1, ok := h.l1[u]
			if !ok {
				l1 = &sharedL1{lock: make(chan struct{}, 1), maxHeadAge: s.cfg.PollInterval, index: len(h.l1)}
				h.l1[u] = l1
			}
			l1.maxHeadAge = min(l1.maxHeadAge, s.cfg.PollInterval)
			l1.chains++
		}
	}
	for _, l1 := range h.l1 {
		if l1.chains == 1 {
			l1.maxHeadAge = 0 // nothing to share: read the head on every check, as a single-chain node does
		}
	}
	return h
}

// Run starts the servers and every chain, and runs until ctx ends; then it
// stops every chain and the servers and closes the shared L1 clients. A chain
// that fails does not stop the process: it is logged, shown by lightcl_chains,
// and can be started again with admin_startChain.
func (h *chainHost) Run(ctx context.Context) error {
	defer h.closeL1()
	h.runCtx = ctx
	if err := h.startServers(); err != nil {
		return err
	}
	defer h.stopServers()
	ids := make([]string, 0, len(h.chains))
	for _, c := range h.chains {
		ids = append(ids, c.spec.label())
	}
	h.log.Info("minimal-node starting chains", "chains", strings.Join(ids, ","), "status_rpc", h.StatusAddr, "metrics", h.MetricsAddr)
	for _, c := range h.chains {
		if err := h.start(c); err != nil {
			return err
		}
	}
	<-ctx.Done()
	h.wg.Wait() // every chain runs under ctx: all stop now
	h.log.Info("Every chain stopped; closing servers")
	return nil
}

// The states of a chain.
const (
	chainStarting = "starting" // its node is being built: remotes dialed, checks made
	chainRunning  = "running"
	chainStopped  = "stopped" // by admin_stopChain, or not started yet
	chainFailed   = "failed"  // its start-up checks or its run failed; error says why
)

// chain is one chain of the process and its current run.
type chain struct {
	spec chainSpec
	log  log.Logger

	mu      sync.Mutex
	state   string
	err     error
	node    *node
	handler http.Handler
	reg     *prometheus.Registry // this run's metrics
	cancel  context.CancelFunc
	done    chan struct{}
	starts  int
}

// start starts a chain that is stopped or failed; its node is built and run
// in a goroutine of its own.
func (h *chainHost) start(c *chain) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == chainStarting || c.state == chainRunning {
		return fmt.Errorf("chain %s is %s", c.spec.label(), c.state)
	}
	if h.runCtx == nil || h.runCtx.Err() != nil {
		return errors.New("the process is stopping")
	}
	ctx, cancel := context.WithCancel(h.runCtx)
	reg := prometheus.NewRegistry()
	c.state, c.err, c.cancel, c.done, c.reg = chainStarting, nil, cancel, make(chan struct{}), reg
	c.starts++
	done := c.done
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer close(done)
		defer cancel()
		h.runChain(ctx, c, reg)
	}()
	return nil
}

// runChain builds the chain's node and runs it until ctx ends or it fails.
func (h *chainHost) runChain(ctx context.Context, c *chain, reg *prometheus.Registry) {
	hosted := &hosting{host: h, chainID: c.spec.ID,
		reg: prometheus.WrapRegistererWith(prometheus.Labels{"chain": c.spec.label()}, reg)}
	n, err := newHostedNode(ctx, c.spec.cfg, c.log, hosted)
	if err == nil {
		handler := oprpc.NewHandler(version, oprpc.WithLogger(quietLogger(c.log, log.LevelWarn)))
		for _, api := range n.apis(h.cfg.RPC.EnableAdmin) {
			if err = handler.AddAPI(api); err != nil {
				n.close()
				break
			}
		}
		if err == nil {
			c.mu.Lock()
			c.state, c.node, c.handler = chainRunning, n, handler
			c.mu.Unlock()
			err = n.Run(ctx)
			handler.Stop()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.node, c.handler = nil, nil
	switch {
	case ctx.Err() != nil:
		c.state = chainStopped
		c.log.Info("Chain stopped")
	default:
		if err == nil {
			err = errors.New("its adapter stopped")
		}
		c.state, c.err = chainFailed, err
		c.log.Error("Chain failed: the other chains go on; admin_startChain starts it again", "err", err)
	}
}

// stop stops a running or starting chain and waits until it has stopped.
func (h *chainHost) stop(ctx context.Context, c *chain) error {
	c.mu.Lock()
	if c.state != chainStarting && c.state != chainRunning {
		state := c.state
		c.mu.Unlock()
		return fmt.Errorf("chain %s is %s", c.spec.label(), state)
	}
	cancel, done := c.cancel, c.done
	c.mu.Unlock()
	c.log.Info("Stopping chain (admin_stopChain)")
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("chain %s is still stopping: %w", c.spec.label(), ctx.Err())
	}
}

// verifier returns the L1 verifier of n's --l1, dialing it for the first chain
// on that L1. Every chain on one L1 URL must agree on its chain id.
func (h *chainHost) verifier(ctx context.Context, n *node) (*l1verify.Verifier, error) {
	url := n.cfg.L1URL
	h.l1Mu.Lock()
	l1 := h.l1[url]
	h.l1Mu.Unlock()
	if l1 == nil {
		return nil, fmt.Errorf("no shared verifier for %s", url) // newChainHost makes one for every chain's --l1
	}
	select {
	case l1.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-l1.lock }()
	if l1.verifier != nil {
		if l1.chainID.Cmp(n.rollup.L1ChainID) != 0 {
			return nil, badFlag(flagL1, "%s serves L1 chain %s, the rollup config's L1 is chain %s", url, l1.chainID, n.rollup.L1ChainID)
		}
		return l1.verifier, nil
	}
	var rpcClient interface{ Close() }
	var src *l1verify.RPCSource
	err := n.await(ctx, flagL1, url, func(ctx context.Context) error {
		c, err := n.tryChain(ctx, flagL1, url, n.rollup.L1ChainID)
		if err != nil {
			return err
		}
		rpcClient, src = c, l1verify.NewRPCSource(c)
		return nil
	})
	if err != nil {
		var fe *flagError
		if ctx.Err() != nil || errors.As(err, &fe) {
			return nil, err
		}
		return nil, badFlag(flagL1, "%s: %v", url, err)
	}
	vMetrics, err := l1verify.NewPrometheusMetrics(
		prometheus.WrapRegistererWith(prometheus.Labels{"l1": fmt.Sprint(l1.index)}, h.proc), "lightcl")
	if err != nil {
		rpcClient.Close()
		return nil, err
	}
	cfg := l1verify.DefaultConfig()
	cfg.Timeout = n.cfg.FollowTimeout
	cfg.MaxHeadAge = l1.maxHeadAge
	v, err := l1verify.New(src, cfg, h.log.New("l1", url), vMetrics)
	if err != nil {
		rpcClient.Close()
		return nil, &flagError{flag: flagL1, err: err}
	}
	l1.verifier, l1.chainID, l1.close = v, n.rollup.L1ChainID, rpcClient.Close
	h.log.Info("L1 verifier shared by the chains on this L1", "l1", url, "max_head_age", l1.maxHeadAge)
	return v, nil
}

func (h *chainHost) closeL1() {
	h.l1Mu.Lock()
	defer h.l1Mu.Unlock()
	for _, l1 := range h.l1 {
		if l1.close != nil {
			l1.close()
		}
	}
}

// startServers starts the status RPC (each chain at /<chain id>; the host's
// lightcl_chains, and with --rpc.enable-admin admin_stopChain and
// admin_startChain, at /) and the metrics endpoint (every chain's series with
// their chain label, and the process's).
func (h *chainHost) startServers() error {
	if h.cfg.RPC.ListenPort >= 0 {
		srv := oprpc.NewServer(h.cfg.RPC.ListenAddr, h.cfg.RPC.ListenPort, version,
			oprpc.WithLogger(quietLogger(h.log, log.LevelWarn)),
			oprpc.WithMiddleware(h.route))
		srv.AddAPI(rpc.API{Namespace: "lightcl", Service: &hostAPI{h: h}})
		if h.cfg.RPC.EnableAdmin {
			srv.AddAPI(rpc.API{Namespace: "admin", Service: &hostAdminAPI{h: h}})
		}
		if err := srv.Start(); err != nil {
			return listenError(flagRPCAddr, flagRPCPort, err)
		}
		h.stops = append(h.stops, srv.Stop)
		h.StatusAddr = srv.Endpoint()
	}
	if h.cfg.Metrics.Enabled {
		gather := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return h.gatherers().Gather() })
		srv, err := httputil.StartHTTPServer(
			fmt.Sprintf("%s:%d", h.cfg.Metrics.ListenAddr, h.cfg.Metrics.ListenPort),
			promhttp.HandlerFor(gather, promhttp.HandlerOpts{}))
		if err != nil {
			return listenError(flagMetricsAddr, flagMetricsPort, err)
		}
		h.stops = append(h.stops, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Stop(ctx)
		})
		h.MetricsAddr = srv.Addr().String()
	}
	return nil
}

func (h *chainHost) stopServers() {
	for _, stop := range h.stops {
		_ = stop()
	}
	h.stops = nil
}

// gatherers are the process's registry and each chain's current run's.
func (h *chainHost) gatherers() prometheus.Gatherers {
	out := prometheus.Gatherers{h.proc}
	for _, c := range h.chains {
		c.mu.Lock()
		if c.reg != nil {
			out = append(out, c.reg)
		}
		c.mu.Unlock()
	}
	return out
}

// route sends a request for /<chain id> (or below it) to that chain's
// handler, as op-supernode routes by its first path segment; anything else
// goes to the host's own handler.
func (h *chainHost) route(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		c, ok := h.byID[first]
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		c.mu.Lock()
		handler, state := c.handler, c.state
		c.mu.Unlock()
		if handler == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"chain %s is %s"}}`+"\n", first, state)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + rest
		r2.URL.RawPath = ""
		handler.ServeHTTP(w, r2)
	})
}

// chainSummary is one chain in lightcl_chains.
type chainSummary struct {
	ChainID string `json:"chain_id"`
	// State is starting, running, stopped or failed.
	State string `json:"state"`
	// Error says why a failed chain failed.
	Error string `json:"error,omitempty"`
	// Starts counts the chain's starts (1 once started with the process).
	Starts int `json:"starts"`
	// Status is the chain's lightcl_status while it runs.
	Status *nodeStatus `json:"status,omitempty"`
}

// hostAPI answers lightcl_chains at /.
type hostAPI struct{ h *chainHost }

// Chains answers lightcl_chains: every chain's state and, while it runs, its
// lightcl_status.
func (api *hostAPI) Chains(ctx context.Context) ([]chainSummary, error) {
	out := make([]chainSummary, 0, len(api.h.chains))
	for _, c := range api.h.chains {
		c.mu.Lock()
		s := chainSummary{ChainID: c.spec.label(), State: c.state, Error: errString(c.err), Starts: c.starts}
		n := c.node
		c.mu.Unlock()
		if n != nil {
			s.Status = n.status()
		}
		out = append(out, s)
	}
	return out, nil
}

// hostAdminAPI answers admin_stopChain and admin_startChain at /, with
// --rpc.enable-admin.
type hostAdminAPI struct{ h *chainHost }

// StopChain answers admin_stopChain: the chain's node stops (its adapter
// finishes the tick in flight) and the call returns once it has; the other
// chains go on.
func (api *hostAdminAPI) StopChain(ctx context.Context, id *big.Int) error {
	c, err := api.h.lookup(id)
	if err != nil {
		return err
	}
	return api.h.stop(ctx, c)
}

// StartChain answers admin_startChain: a stopped or failed chain's node is
// built anew (its remotes dialed and checked) and run; the call returns once
// its start has begun.
func (api *hostAdminAPI) StartChain(ctx context.Context, id *big.Int) error {
	c, err := api.h.lookup(id)
	if err != nil {
		return err
	}
	return api.h.start(c)
}

func (h *chainHost) lookup(id *big.Int) (*chain, error) {
	if id == nil {
		return nil, errors.New("no chain id")
	}
	c, ok := h.byID[id.String()]
	if !ok {
		return nil, fmt.Errorf("no chain %s in this process", id)
	}
	return c, nil
}
