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

	oplog "github.com/ethereum-optimism/optimism/op-service/log"
	opmetrics "github.com/ethereum-optimism/optimism/op-service/metrics"
	"github.com/ethereum-optimism/optimism/op-service/oppprof"
	oprpc "github.com/ethereum-optimism/optimism/op-service/rpc"
	"github.com/ethereum/go-ethereum/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	"github.com/lightcl/lightcl/safesource/l1verify"
)

// processConfig is what a --chains process sets for itself, not per chain:
// its servers and logs.
type processConfig struct {
	RPC     oprpc.CLIConfig
	Metrics opmetrics.CLIConfig
	Pprof   oppprof.CLIConfig
	Log     oplog.CLIConfig
}

func processConfigFromCLI(c *cli.Context) (processConfig, error) {
	pc := processConfig{RPC: oprpc.ReadCLIConfig(c), Metrics: opmetrics.ReadCLIConfig(c), Pprof: oppprof.ReadCLIConfig(c),
		Log: oplog.ReadCLIConfig(c)}
	if err := pc.Pprof.Check(); err != nil {
		return pc, badFlag(oppprof.PortFlagName, "%v", err)
	}
	if p := pc.RPC.ListenPort; p < -1 || p > 65535 {
		return pc, badFlag(flagRPCPort, "%d: want 0..65535, or -1 for off", p)
	}
	if p := pc.Metrics.ListenPort; p < 0 || p > 65535 { // checked even while off: the flag is wrong either way
		return pc, badFlag(flagMetricsPort, "%d: want 0..65535", p)
	}
	return pc, nil
}

// startPprof starts op-service's pprof service as --pprof.* ask (a server,
// a profile written at exit, or nothing), and returns its stop.
func startPprof(cfg oppprof.CLIConfig) (func(), error) {
	svc := oppprof.New(cfg.ListenEnabled, cfg.ListenAddr, cfg.ListenPort, cfg.ProfileType, cfg.ProfileDir, cfg.ProfileFilename)
	if err := svc.Start(); err != nil {
		return nil, listenError(oppprof.ListenAddrFlagName, oppprof.PortFlagName, err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
	}, nil
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
	states *prometheus.GaugeVec // lightcl_chain_state{chain,state}

	l1Mu sync.Mutex
	l1   map[string]*sharedL1 // by L1 URL

	mu       sync.Mutex      // guards runCtx, stopping and every wg.Add
	runCtx   context.Context // every chain runs under it
	stopping bool            // set once Run ends: no chain starts after
	wg       sync.WaitGroup  // the chains' goroutines

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
	// timeout and maxResponse bound each L1 call: the largest of the chains'
	// l2.follow.timeout and remote.max-response-mib, so that no chain's
	// setting is narrower than it asked
	timeout     time.Duration
	maxResponse int64
}

func newChainHost(specs []chainSpec, cfg processConfig, logger log.Logger) *chainHost {
	h := &chainHost{cfg: cfg, log: logger, byID: map[string]*chain{}, l1: map[string]*sharedL1{},
		proc: prometheus.NewRegistry(),
		states: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "lightcl", Name: "chain_state",
			Help: "1 for each chain's current state (starting, running, stopping, stopped, failed), 0 for the others"},
			[]string{"chain", "state"})}
	h.proc.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), h.states)
	for _, s := range specs {
		c := &chain{spec: s, log: logger.New("chain", s.label()), states: h.states}
		c.setState(chainStopped)
		h.chains = append(h.chains, c)
		h.byID[s.label()] = c
		if u := s.cfg.L1URL; u != "" && s.cfg.L1Verify && s.cfg.Source != sourceL1 {
			l1, ok := h.l1[u]
			if !ok {
				l1 = &sharedL1{lock: make(chan struct{}, 1), maxHeadAge: s.cfg.PollInterval, index: len(h.l1)}
				h.l1[u] = l1
			}
			l1.maxHeadAge = min(l1.maxHeadAge, s.cfg.PollInterval)
			l1.timeout = max(l1.timeout, s.cfg.FollowTimeout)
			l1.maxResponse = max(l1.maxResponse, s.cfg.MaxResponse)
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
// and can be started again with admin_startChain. Run returns only once every
// chain's goroutines have.
func (h *chainHost) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	h.mu.Lock()
	h.runCtx = ctx
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.stopping = true // no start after this; every start before has done its wg.Add
		h.mu.Unlock()
		cancel()
		h.wg.Wait()
		h.stopServers()
		h.closeL1()
	}()
	if err := h.startServers(); err != nil {
		return err
	}
	ids := make([]string, 0, len(h.chains))
	for _, c := range h.chains {
		ids = append(ids, c.spec.label())
	}
	h.log.Info("minimal-node starting chains", "chains", strings.Join(ids, ","), "status_rpc", h.StatusAddr, "metrics", h.MetricsAddr)
	for _, c := range h.chains {
		if err := h.start(c); err != nil && ctx.Err() == nil {
			// started already, through admin_startChain
			c.log.Debug("Chain not started with the process", "err", err)
		}
	}
	<-ctx.Done()
	h.log.Info("Stopping every chain")
	return nil
}

// The states of a chain.
const (
	chainStarting = "starting" // its node is being built: remotes dialed, checks made
	chainRunning  = "running"
	chainStopping = "stopping" // its adapter has stopped; its node is closing
	chainStopped  = "stopped"  // by admin_stopChain, or not started yet
	chainFailed   = "failed"   // its start-up checks or its run failed; error says why
)

var chainStates = []string{chainStarting, chainRunning, chainStopping, chainStopped, chainFailed}

// chain is one chain of the process and its current run.
type chain struct {
	spec   chainSpec
	log    log.Logger
	states *prometheus.GaugeVec

	mu      sync.Mutex
	state   string
	err     error
	node    *node
	handler http.Handler
	reg     *prometheus.Registry // this run's metrics; nil when no run is on
	cancel  context.CancelFunc
	done    chan struct{}
	starts  int
}

// setState sets the chain's state and its lightcl_chain_state series.
// Callers hold c.mu, or own c alone.
func (c *chain) setState(state string) {
	c.state = state
	for _, s := range chainStates {
		v := 0.0
		if s == state {
			v = 1
		}
		c.states.WithLabelValues(c.spec.label(), s).Set(v)
	}
}

// start starts a chain that is stopped or failed; its node is built and run
// in a goroutine of its own.
func (h *chainHost) start(c *chain) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping || h.runCtx == nil || h.runCtx.Err() != nil {
		return errors.New("the process is stopping")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == chainStarting || c.state == chainRunning || c.state == chainStopping {
		return fmt.Errorf("chain %s is %s", c.spec.label(), c.state)
	}
	ctx, cancel := context.WithCancel(h.runCtx)
	reg := prometheus.NewRegistry()
	c.err, c.cancel, c.done, c.reg = nil, cancel, make(chan struct{}), reg
	c.setState(chainStarting)
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
			// the route closes as soon as the adapter stops, as a
			// single-chain node's servers do: no RPC
			// (admin_postUnsafePayload) reaches the engine after
			n.stops = append(n.stops, func(context.Context) error {
				c.mu.Lock()
				c.handler = nil
				c.setState(chainStopping)
				c.mu.Unlock()
				handler.Stop()
				return nil
			})
			c.mu.Lock()
			c.node, c.handler = n, handler
			c.setState(chainRunning)
			c.mu.Unlock()
			awaitTickPhase(ctx, c.spec.cfg.PollInterval)
			err = n.Run(ctx) // ends at once if ctx ended during the wait
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.node, c.handler, c.reg = nil, nil, nil // a stopped chain shows no stale series
	switch {
	case ctx.Err() != nil:
		c.setState(chainStopped)
		c.log.Info("Chain stopped")
	default:
		if err == nil {
			err = errors.New("its adapter stopped")
		}
		c.err = err
		c.setState(chainFailed)
		c.log.Error("Chain failed: the other chains go on; admin_startChain starts it again", "err", err)
	}
}

// awaitTickPhase waits until the next multiple of interval (counted from
// Go's zero time), or until ctx ends, before a chain's adapter starts: its
// ticks then fall on those multiples, and the chains of the process that poll
// at the same interval tick together, whenever each was started. The process
// then wakes once an interval for all of them and does their work in one
// burst; chains ticking at scattered times wake it once each, which costs
// more CPU than the work (BenchmarkManyChains, K = 32 on 2 cores: about
// 1.0 ms of CPU a chain and tick together, 2.0 ms spread evenly over the
// interval). A chain's first tick waits at most one interval.
func awaitTickPhase(ctx context.Context, interval time.Duration) {
	wait := tickPhase(time.Now(), interval)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// tickPhase is how long it is from now to the next multiple of interval.
func tickPhase(now time.Time, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	return now.Truncate(interval).Add(interval).Sub(now)
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
// on that L1 (waiting while it cannot be reached: the other chains on this L1
// wait with it, the rest go on). Every chain on one L1 URL must agree on its
// chain id. The client's timeout and response limit are the largest of the
// chains on that L1 (newChainHost), whichever chain dials it.
func (h *chainHost) verifier(ctx context.Context, n *node) (*l1verify.Verifier, error) {
	url, want := n.cfg.L1URL, n.rollup.L1ChainID
	if want == nil {
		return nil, badFlag(flagRollupConfig, "the rollup config from %s has no L1 chain id", n.configFrom)
	}
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
		if l1.chainID.Cmp(want) != 0 {
			return nil, badFlag(flagL1, "%s serves L1 chain %s, the rollup config's L1 is chain %s", url, l1.chainID, want)
		}
		return l1.verifier, nil
	}
	var rpcClient interface{ Close() }
	var src *l1verify.RPCSource
	err := n.await(ctx, flagL1, url, func(ctx context.Context) error {
		c, err := tryChainWith(ctx, h.log, flagL1, url, want, l1.timeout, l1.maxResponse)
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
	cfg.Timeout = l1.timeout
	cfg.MaxHeadAge = l1.maxHeadAge
	v, err := l1verify.New(src, cfg, h.log.New("l1", url), vMetrics)
	if err != nil {
		rpcClient.Close()
		return nil, &flagError{flag: flagL1, err: err}
	}
	h.l1Mu.Lock()
	l1.verifier, l1.chainID, l1.close = v, want, rpcClient.Close
	h.l1Mu.Unlock()
	h.log.Info("L1 verifier shared by the chains on this L1", "l1", url, "chains", l1.chains, "max_head_age", l1.maxHeadAge)
	return v, nil
}

// closeL1 closes the shared L1 clients, once every chain has stopped.
func (h *chainHost) closeL1() {
	h.l1Mu.Lock()
	defer h.l1Mu.Unlock()
	for _, l1 := range h.l1 {
		if l1.close != nil {
			l1.close()
			l1.close = nil
		}
	}
}
