package main

// BenchmarkManyChains's processes: starting a side's minimal-node processes,
// reading its chains' status through their status RPC, waiting until they
// have caught up, and sampling them.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// chainsProcessFlags are the process-wide flags of both sides: the status
// RPC and the metrics endpoint on free loopback ports.
var chainsProcessFlags = []string{"--rpc.addr", "127.0.0.1", "--rpc.port", "0", "--metrics.enabled", "--metrics.port", "0"}

// chainsStartLine is the --chains process's start line, which names its
// servers' addresses; nodeMetricsLine is a single-chain process's.
var (
	chainsStartLine = regexp.MustCompile(`minimal-node starting chains .*\bstatus_rpc=(\S+) metrics=(\S+)`)
	nodeMetricsLine = regexp.MustCompile(`Metrics listening +addr=(\S+)`)
)

// chainsProc is one minimal-node process of a side.
type chainsProc struct {
	w       *nodeWorld     // the child: its command, log and status RPC client (at / with --chains)
	metrics string         // its metrics endpoint, host:port
	chains  []*chainsChain // the chains it follows
	hosted  bool           // a --chains process: lightcl_chains at /
}

// startHost starts one --chains process following every chain.
func (w *chainsWorld) startHost(bin string) *chainsProc {
	var file strings.Builder
	for _, c := range w.chains {
		fmt.Fprintf(&file, "[chain.%d]\n", c.id)
		for _, kv := range c.settings(w.l1.URL()) {
			v := strconv.Quote(kv[1])
			if kv[1] == "true" {
				v = "true"
			}
			fmt.Fprintf(&file, "%q = %s\n", kv[0], v)
		}
	}
	path := filepath.Join(w.b.TempDir(), "chains.toml")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		w.b.Fatal(err)
	}
	p := &chainsProc{w: &nodeWorld{b: w.b}, chains: w.chains, hosted: true}
	p.w.launch(bin, append([]string{"--chains", path}, chainsProcessFlags...)...)
	m := p.w.awaitLog(chainsStartLine, 30*time.Second)
	p.w.dialStatus(m[1])
	p.metrics = m[2]
	return p
}

// startSingles starts a single-chain process for each chain, all at once,
// and waits until each listens.
func (w *chainsWorld) startSingles(bin string) []*chainsProc {
	procs := make([]*chainsProc, len(w.chains))
	for i, c := range w.chains {
		var args []string
		for _, kv := range c.settings(w.l1.URL()) {
			args = append(args, "--"+kv[0]+"="+kv[1])
		}
		procs[i] = &chainsProc{w: &nodeWorld{b: w.b}, chains: []*chainsChain{c}}
		procs[i].w.launch(bin, append(args, chainsProcessFlags...)...)
	}
	for _, p := range procs {
		p.w.dialStatus(p.w.awaitLog(nodeStatusLine, 30*time.Second)[1])
		p.metrics = p.w.awaitLog(nodeMetricsLine, 30*time.Second)[1]
	}
	return procs
}

// chainsStatus is the part of a chain's lightcl_status the benchmark reads.
type chainsStatus struct {
	Safe struct {
		Number uint64 `json:"number"`
	} `json:"safe"`
	Ticks      uint64 `json:"ticks"`
	LastAction string `json:"last_action"`
	LastError  string `json:"last_error"`
	Halted     bool   `json:"halted"`
	Syncing    bool   `json:"syncing"`
}

// statuses reads every chain's status: lightcl_chains from a --chains
// process, lightcl_status from a single-chain one. A chain not running
// (starting or stopped) is left out; a failed chain, or a process that
// exited, fails the benchmark.
func (w *chainsWorld) statuses(procs []*chainsProc) map[uint64]chainsStatus {
	out := map[uint64]chainsStatus{}
	for _, p := range procs {
		select {
		case <-p.w.done:
			p.w.fatalf("minimal-node exited (%v)", p.w.waitErr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if !p.hosted {
			var st chainsStatus
			if err := p.w.status.CallContext(ctx, &st, "lightcl_status"); err != nil {
				cancel()
				p.w.fatalf("chain %d: lightcl_status: %v", p.chains[0].id, err)
			}
			cancel()
			out[p.chains[0].id] = st
			continue
		}
		var chains []struct {
			ChainID string        `json:"chain_id"`
			State   string        `json:"state"`
			Error   string        `json:"error"`
			Starts  int           `json:"starts"`
			Status  *chainsStatus `json:"status"`
		}
		err := p.w.status.CallContext(ctx, &chains, "lightcl_chains")
		cancel()
		if err != nil {
			p.w.fatalf("lightcl_chains: %v", err)
		}
		for _, c := range chains {
			id, err := strconv.ParseUint(c.ChainID, 10, 64)
			if err != nil {
				p.w.fatalf("lightcl_chains: chain id %q: %v", c.ChainID, err)
			}
			switch {
			case c.State == "failed":
				p.w.fatalf("chain %d failed (started %d times): %s", id, c.Starts, c.Error)
			case c.State == "running" && c.Status != nil:
				out[id] = *c.Status
			}
		}
	}
	return out
}

// awaitCaughtUp waits until every chain runs and its engine's safe head has
// been its remote's safe head.
func (w *chainsWorld) awaitCaughtUp(procs []*chainsProc) {
	deadline := time.Now().Add(chainsCatchUp)
	caught := map[uint64]bool{}
	for {
		running := w.statuses(procs)
		var behind []string
		for _, c := range w.chains {
			if caught[c.id] {
				continue
			}
			_, remoteSafe, _ := c.remote.Labels()
			_, safe, _ := c.engine.Labels()
			st, ok := running[c.id]
			if ok && safe.Hash == remoteSafe.Hash {
				caught[c.id] = true
				continue
			}
			behind = append(behind, fmt.Sprintf("%d (running %t, engine safe %d, remote safe %d, last error %q)", c.id, ok, safe.Number, remoteSafe.Number, st.LastError))
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			procs[0].w.fatalf("chains not caught up %s after start: %s", chainsCatchUp, strings.Join(behind, ", "))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// chainsSample is a side at one moment.
type chainsSample struct {
	at     time.Time
	l1     int   // calls the fake L1 has received
	cpu    int64 // utime+stime of the side's processes, clock ticks
	status map[uint64]chainsStatus
	safe   map[uint64]uint64 // each chain's engine safe height
}

func (w *chainsWorld) sample(procs []*chainsProc) chainsSample {
	s := chainsSample{at: time.Now(), l1: len(w.l1.Calls()), safe: map[uint64]uint64{}}
	for _, p := range procs {
		cpu, err := nodeCPU(p.w.cmd.Process.Pid)
		if err != nil {
			p.w.fatalf("%v", err)
		}
		s.cpu += cpu
	}
	s.status = w.statuses(procs)
	for _, c := range w.chains {
		if _, ok := s.status[c.id]; !ok {
			procs[0].w.fatalf("chain %d is not running", c.id)
		}
		_, safe, _ := c.engine.Labels()
		s.safe[c.id] = safe.Number
	}
	return s
}

// goroutines is go_goroutines from the process's metrics endpoint.
func (p *chainsProc) goroutines() int {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		p.w.fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				p.w.fatalf("metrics: go_goroutines %q: %v", v, err)
			}
			return int(n)
		}
	}
	p.w.fatalf("metrics at %s: no go_goroutines (%v)", p.metrics, sc.Err())
	return 0
}
