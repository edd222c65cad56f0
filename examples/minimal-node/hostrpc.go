package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/httputil"
	oprpc "github.com/ethereum-optimism/optimism/op-service/rpc"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

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
func (api *hostAdminAPI) StopChain(ctx context.Context, id chainIDArg) error {
	c, err := api.h.lookup(id)
	if err != nil {
		return err
	}
	return api.h.stop(ctx, c)
}

// StartChain answers admin_startChain: a stopped or failed chain's node is
// built anew (its remotes dialed and checked) and run; the call returns once
// its start has begun.
func (api *hostAdminAPI) StartChain(ctx context.Context, id chainIDArg) error {
	c, err := api.h.lookup(id)
	if err != nil {
		return err
	}
	return api.h.start(c)
}

func (h *chainHost) lookup(id chainIDArg) (*chain, error) {
	if id.Int == nil {
		return nil, errors.New("no chain id")
	}
	c, ok := h.byID[id.String()]
	if !ok {
		return nil, fmt.Errorf("no chain %s in this process", id)
	}
	return c, nil
}

// chainIDArg is a chain id as the admin calls take it: a JSON number, or a
// string in decimal or 0x-hex, as lightcl_chains's chain_id is given.
type chainIDArg struct{ *big.Int }

// UnmarshalJSON reads a number or a string.
func (a *chainIDArg) UnmarshalJSON(b []byte) error {
	text := strings.Trim(string(b), `"`)
	v, ok := new(big.Int).SetString(text, 0)
	if !ok || v.Sign() <= 0 {
		return fmt.Errorf("chain id %s: want a positive number, in decimal or 0x-hex", b)
	}
	a.Int = v
	return nil
}
