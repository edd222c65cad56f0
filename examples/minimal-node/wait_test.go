package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
)

// lateRemote stands at an address before the remote behind it is up: until
// up is called it refuses connections (nothing listens) or, as a gateway
// whose backend is down, answers 502.
type lateRemote struct {
	addr    string
	gateway bool
	target  *url.URL
	ready   atomic.Bool
	srv     *http.Server
}

func newLateRemote(t *testing.T, target string, gateway bool) *lateRemote {
	u, err := url.Parse(target)
	require.NoError(t, err)
	r := &lateRemote{addr: closedAddr(t), gateway: gateway, target: u}
	proxy := httputil.NewSingleHostReverseProxy(u)
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !r.ready.Load() {
			http.Error(w, "upstream connect error: connection refused", http.StatusBadGateway)
			return
		}
		proxy.ServeHTTP(w, req)
	}), ReadHeaderTimeout: 5 * time.Second}
	t.Cleanup(func() { _ = r.srv.Close() })
	if gateway {
		r.listen(t)
	}
	return r
}

func (r *lateRemote) URL() string { return "http://" + r.addr }

func (r *lateRemote) listen(t *testing.T) {
	ln, err := net.Listen("tcp", r.addr)
	require.NoError(t, err)
	go func() { _ = r.srv.Serve(ln) }()
}

// up brings the remote up.
func (r *lateRemote) up(t *testing.T) {
	r.ready.Store(true)
	if !r.gateway {
		r.listen(t)
	}
}

// TestWaitsForRemotesAtStart: an engine or remote that cannot be reached when
// the node starts (connection refused, or a gateway's 502) is waited for with a
// log line naming its flag, and followed once it is up; the node does not exit.
func TestWaitsForRemotesAtStart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		late    string // the flag whose remote comes up late
		gateway bool
	}{
		{"engine refused", "engine", false},
		{"engine behind a gateway answering 502", "engine", true},
		{"source refused", "l2.follow.source", false},
		{"source behind a gateway answering 502", "l2.follow.source", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 40)
			rn := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
			rn.Follow(f.block(40), f.block(20), f.block(20), f.block(10), fakechain.L1Ref(3))
			flags := map[string]string{"l2.follow.source": rn.URL()}
			var late *lateRemote
			if tc.late == "engine" {
				late = newLateRemote(t, f.el.URL(), tc.gateway)
				flags["engine"] = late.URL()
			} else {
				late = newLateRemote(t, rn.URL(), tc.gateway)
				flags["l2.follow.source"] = late.URL()
			}
			p := f.startWaiting(t, flags, tc.late)
			late.up(t)
			p.startLine(t)
			require.Contains(t, p.stderr.String(), "Remote reached")
			f.checkFollows(t, p, 20, 10)
			p.stop(t)
		})
	}
}

// TestQuorumWaitsForAMemberAtStart: a quorum member that is down at start is
// waited for, like a single remote.
func TestQuorumWaitsForAMemberAtStart(t *testing.T) {
	f := newFixture(t, 40)
	var urls []string
	for range 2 {
		rn := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
		rn.Follow(f.block(40), f.block(20), f.block(20), f.block(10), fakechain.L1Ref(3))
		urls = append(urls, rn.URL())
	}
	late := newLateRemote(t, urls[1], false)
	p := f.startWaiting(t, map[string]string{"source": "quorum",
		"l2.follow.source": urls[0] + "," + late.URL()}, "l2.follow.source")
	late.up(t)
	p.startLine(t)
	f.checkFollows(t, p, 20, 10)
	p.stop(t)
}

// TestSignalWhileWaitingAtStart: SIGTERM while the engine is awaited is a
// clean stop.
func TestSignalWhileWaitingAtStart(t *testing.T) {
	f := newFixture(t, 40)
	rn := testutil.NewRollupNode(t, f.tree, fakerollup.RollupNodeConfig{})
	p := f.startWaiting(t, map[string]string{"engine": "http://" + closedAddr(t), "l2.follow.source": rn.URL()}, "engine")
	p.stop(t)
	require.Contains(t, p.stderr.String(), "Interrupted during start-up")
}

// startWaiting starts the node and waits until it logs that it waits for the
// remote named by flag, twice (so it retried), without having exited.
func (f *fixture) startWaiting(t *testing.T, flags map[string]string, flag string) *process {
	t.Helper()
	all := map[string]string{"engine": f.el.URL(), "jwt-secret": f.jwt, "poll-interval": "100ms",
		"rpc.port": strconv.Itoa(f.rpcPort), "metrics.enabled": "true", "metrics.port": strconv.Itoa(f.promPort)}
	for k, v := range flags {
		all[k] = v
	}
	var args []string
	for k, v := range all {
		args = append(args, "--"+k+"="+v)
	}
	p := startProcess(t, nil, args...)
	require.Eventually(t, func() bool {
		select {
		case <-p.done:
			t.Fatalf("minimal-node exited while a remote was down; stderr:\n%s", p.stderr)
		default:
		}
		return countLines(p.stderr.String(), "Waiting for a remote that cannot be reached yet", "flag=--"+flag) >= 2
	}, waitFor, 50*time.Millisecond, "two waiting lines for --%s; stderr:\n%s", flag, p.stderr)
	return p
}

// countLines counts the lines of s that hold every one of subs.
func countLines(s string, subs ...string) int {
	n := 0
	for _, line := range strings.Split(s, "\n") {
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(line, sub)
		}
		if all {
			n++
		}
	}
	return n
}

// TestUnreachable classifies errors of real calls: not reached or not
// answered is transient, an answer is not.
func TestUnreachable(t *testing.T) {
	tree := fakechain.NewTree()
	withJWT := testutil.NewEL(t, tree, fakeel.ELConfig{JWTSecret: fakeel.NewJWTSecret()}).URL()
	open := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true}).URL()
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no upstream", http.StatusBadGateway)
	}))
	t.Cleanup(gateway.Close)
	stall := make(chan struct{})
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(stall); stalled.Close() })

	call := func(url, method string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		c, err := dialRPC(ctx, log.NewLogger(log.DiscardHandler()), url)
		if err != nil {
			return err
		}
		defer c.Close()
		var out hexutil.Big
		return c.CallContext(ctx, &out, method)
	}
	for _, tc := range []struct {
		name        string
		err         error
		unreachable bool
	}{
		{"connection refused", call("http://"+closedAddr(t), "eth_chainId"), true},
		{"gateway 502", call(gateway.URL, "eth_chainId"), true},
		{"no answer in time", call(stalled.URL, "eth_chainId"), true},
		{"JWT refused (401)", call(withJWT, "eth_chainId"), false},
		{"method not found", call(open, "eth_noSuchMethod"), false},
		{"a flag error", badFlag(flagEngine, "wrong chain"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, tc.err)
			require.Equal(t, tc.unreachable, unreachable(tc.err), "error: %v", tc.err)
		})
	}
}
