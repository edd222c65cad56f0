// Command bench measures lightcl against its limits and prints the table the
// README's Performance section shows. Each row is a Go benchmark that measures
// its own reference in the same run (the floor of follow lag, the engine's own
// insertion speed, a walk back block by block, …); this command runs them one
// at a time with `go test -bench`, reads their metrics and prints them.
//
//	go run ./internal/bench            # the full run, about 14 minutes
//	go run ./internal/bench -quick     # a smoke run of every row, about 3 minutes
//	go run ./internal/bench -check     # also fail when a count exceeds its bound
//	go run ./internal/bench -rows lag,steady
//
// -check judges counts only (requests per tick, calls per tip block, lookups
// per reorg depth, engine reads, quorum calls, heap growth), never wall-clock
// times: CI runs `go run ./internal/bench -quick -check`.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// row is one benchmark run and how to show and check its results.
type row struct {
	name  string // for -rows
	title string
	pkg   string
	bench string // -bench pattern
	// benchtime and extra test flags, for the full and the quick run
	full, quick []string
	columns     []string // metrics to show, in order
	checks      []check
}

// check is a bound on one metric of the benchmark whose name ends in /sub
// (every benchmark of the row when sub is empty).
type check struct {
	sub, metric string
	max         float64
	why         string
}

var rows = []row{
	{
		name: "lag", title: "Follow lag: remote rollup node over loopback, in-memory EL with JWT",
		pkg: "./internal/bench", bench: "^BenchmarkFollowLag$",
		full: []string{"-benchtime", "1x"}, quick: []string{"-benchtime", "1x", "-quick"},
		columns: []string{"samples", "p50-ms", "p99-ms", "floor-ms", "p50/floor", "p99/floor"},
	},
	{
		name: "pushlag", title: "Follow lag, source an L2 EL that pushes: safe label moved with a new head (websocket tip feed, TickOnTip, 2 s poll)",
		pkg: "./internal/bench", bench: "^BenchmarkFollowLagPush$",
		full: []string{"-benchtime", "1x"}, quick: []string{"-benchtime", "1x", "-quick"},
		columns: []string{"samples", "p50-ms", "p99-ms", "floor-ms", "p50/floor", "notify-ms", "p50/(floor+notify)", "serial-floor-ms", "p50/serial-floor"},
	},
	{
		name: "tiplag", title: "Tip lag, pushed: remote EL's new head to the local engine's head (websocket tip feed, 2 s poll)",
		pkg: "./internal/bench", bench: "^BenchmarkTipLagPush$",
		full: []string{"-benchtime", "1x"}, quick: []string{"-benchtime", "1x", "-quick"},
		columns: []string{"samples", "p50-ms", "p99-ms", "floor-ms", "p50/floor", "notify-ms", "p50/(floor+notify)"},
	},
	{
		name: "tippoll", title: "Tip lag, polling fallback: the same over the remote EL's HTTP endpoint (feed polls every 2 s; quick: 200 ms)",
		pkg: "./internal/bench", bench: "^BenchmarkTipLagPoll$",
		full: []string{"-benchtime", "1x"}, quick: []string{"-benchtime", "1x", "-quick"},
		columns: []string{"samples", "p50-ms", "p99-ms", "floor-ms", "p50/(interval/2+floor)"},
	},
	{
		name: "gossiplag", title: "Tip lag, gossiped: a loopback op-node p2p peer publishing block n to the local engine's head being n (gossip tip feed, 2 s poll)",
		pkg: "./internal/bench", bench: "^BenchmarkTipLagGossip$",
		full: []string{"-benchtime", "1x"}, quick: []string{"-benchtime", "1x", "-quick"},
		columns: []string{"samples", "p50-ms", "p99-ms", "floor-ms", "p50/floor", "receive-ms"},
	},
	{
		name: "gossipcost", title: "Gossip feed cost, one peer (a publisher in a child process): process CPU and memory over 30 s (quick: 5 s), idle and at 2 blocks/s, against the same process without the feed",
		pkg: "./internal/bench", bench: "^BenchmarkGossipCost$",
		full: []string{"-benchtime", "1x"}, quick: []string{"-benchtime", "1x", "-quick"},
		columns: []string{"blocks", "ref-cpu-ms", "cpu-ms", "cpu-delta-ms", "core-%", "cpu-us/block", "heap-delta-KB", "rss-delta-MB", "goroutines-delta"},
	},
	{
		name: "tipcalls", title: "Calls per tip block, tip path alone (websocket tip feed; 300 blocks, quick: 50)",
		pkg: "./internal/bench", bench: "^BenchmarkTipCalls$",
		full: []string{"-benchtime", "1x"}, quick: []string{"-benchtime", "1x", "-quick"},
		columns: []string{"blocks", "fetch/block", "remote-other/block", "newPayload/block", "forkchoice/block", "engine-other/block"},
		checks: []check{
			{"", "fetch/block", 1, "one payload fetch at the remote per block"},
			{"", "remote-other/block", 0, "nothing else at the remote: heads are pushed"},
			{"", "newPayload/block", 1, "one newPayload per block"},
			{"", "forkchoice/block", 1, "one forkchoice update per block"},
			{"", "engine-other/block", 0, "no engine read for a tip that extends the head"},
		},
	},
	{
		name: "steady", title: "Steady state per tick (remote source + L1 verification + websocket tip feed, stepped by hand)",
		pkg: "./internal/bench", bench: "^BenchmarkSteadyState$",
		full: []string{"-benchtime", "1x"}, quick: []string{"-benchtime", "1x", "-quick"},
		columns: []string{"remote-req/tick", "el-req/tick", "l1-req/tick", "tip-req/tick", "req/hour", "cpu-us/tick"},
		checks: []check{
			{"unchanged", "remote-req/tick", 1, "a tick that finds nothing new makes one request to the source"},
			{"unchanged", "el-req/tick", 1, "and one to the engine"},
			{"unchanged", "l1-req/tick", 1, "and at most one to L1"},
			{"unchanged", "tip-req/tick", 0, "and none to the tip source: heads are pushed"},
			{"moving", "remote-req/tick", 1, "one source request per tick while the chain moves"},
			{"moving", "el-req/tick", 5.5, "the tip's newPayload and forkchoice update; the tick's head, the block at the new safe height (finalized's is remembered from the last update), and forkchoice update"},
			{"moving", "l1-req/tick", 1.2, "L1 verification while the chain moves"},
			{"moving", "tip-req/tick", 1, "one payload fetch per new block"},
		},
	},
	{
		name: "step", title: "One tick of lightcl's own code (in-process engine and source: no clients, no servers)",
		pkg: "./internal/bench", bench: "^BenchmarkStep$",
		full: []string{"-benchmem"}, quick: []string{"-benchmem", "-benchtime", "2000x"},
		columns: []string{"ns/op", "allocs/op", "B/op", "engine-reads/tick"},
		checks: []check{
			{"unchanged", "engine-reads/tick", 1, "a tick that finds nothing new reads the engine's head only"},
		},
	},
	{
		name: "node", title: "minimal-node over one hour of chain (1,800 blocks at 2 s, replayed at a 20 ms poll, tip from the remote EL's websocket; quick: 300)",
		pkg: "./internal/bench", bench: "^BenchmarkMinimalNodeHour$",
		full: []string{"-benchtime", "1x"}, quick: []string{"-benchtime", "1x", "-node.blocks", "300"},
		columns: []string{"ticks", "rss-early-MB", "rss-end-MB", "rss-end/early", "cpu-us/tick", "remote-req/tick", "el-req/tick", "l1-req/tick", "tip-req/tick"},
	},
	{
		name: "chains", title: "Many chains: K chains in one minimal-node --chains process against K single-chain processes, on the same in-memory chains (backfill from a remote L2 EL, L1 verification on one shared L1, 500 ms poll, a block a second; 20 s window, quick: 5 s)",
		pkg: "./internal/bench", bench: "^BenchmarkManyChains$",
		full: []string{"-benchtime", "1x"}, quick: []string{"-benchtime", "1x", "-chains.window", "5s"},
		columns: []string{"one-ticks", "procs-ticks", "one-rss-MB", "procs-rss-MB", "rss-one/procs", "one-cpu-us/tick", "procs-cpu-us/tick", "cpu-one/procs",
			"one-goroutines", "procs-goroutines", "one-l1-req/interval", "procs-l1-req/interval"},
		checks: []check{
			{"", "one-l1-req/interval", 6, "L1 requests do not grow with K: a batched read of L1's head, safe and finalized blocks (3 calls) serves every chain for a poll interval; at most two such reads an interval, also on a loaded machine (K processes make 3.1 calls each)"},
		},
	},
	{
		name: "quorum", title: "Quorum rounds (member latency 2 ms + exp(3 ms), one member stalled)",
		pkg: "./safesource/quorum", bench: "^BenchmarkRound$",
		full: []string{"-benchtime", "100x"}, quick: []string{"-benchtime", "10x"},
		columns: []string{"x-Mth-fastest", "calls/round"},
		checks: []check{
			{"agree/N=3", "calls/round", 3, "agreeing members: one Heads call each"},
			{"agree/N=9", "calls/round", 9, "agreeing members: one Heads call each"},
			{"agree/N=33", "calls/round", 33, "agreeing members: one Heads call each"},
			{"agree/N=65", "calls/round", 65, "agreeing members: one Heads call each"},
		},
	},
	{
		name: "ancestor", title: "Common-ancestor search",
		pkg: "./internal/bench", bench: "^BenchmarkAncestor$",
		full: []string{"-benchtime", "1x"}, quick: []string{"-benchtime", "1x"},
		columns: []string{"lookups/chain", "of-a-walk"},
		checks: []check{
			{"depth=1", "lookups/chain", 2, "lookups grow with the depth"},
			{"depth=100", "lookups/chain", 14, "lookups grow with the depth"},
			{"depth=10000", "lookups/chain", 20, "at most 20 lookups at depth 10,000"},
		},
	},
	{
		name: "memory", title: "Adapter memory while following (in-process engine and source)",
		pkg: "./internal/bench", bench: "^BenchmarkAdapterMemory$",
		full: []string{"-benchtime", "1x"}, quick: []string{"-benchtime", "1x", "-memory.blocks", "100000"},
		columns: []string{"heap-first-KB", "heap-last-KB", "heap-max-KB", "heap-last/first", "goroutines-end", "ns/block"},
		checks: []check{
			{"", "heap-last/first", 1.25, "the heap stays flat"},
		},
	},
	{
		name: "backfill", title: "Catch-up: backfill into a fresh op-geth vs newPayload directly (blocks of 4 transfers: 1,000; quick 200)",
		pkg: "./internal/e2e", bench: "^BenchmarkBackfill$",
		full: []string{"-benchtime", "2x"}, quick: []string{"-benchtime", "1x", "-backfill.blocks", "200"},
		columns: []string{"direct-blocks/s", "backfill-blocks/s", "backfill/direct"},
	},
}

func main() {
	quick := flag.Bool("quick", false, "a smoke run of every row: fewer samples, ticks and blocks")
	checkFlag := flag.Bool("check", false, "exit 1 when a count exceeds its bound")
	only := flag.String("rows", "", "comma-separated rows to run (default all): "+rowNames())
	verbose := flag.Bool("v", false, "print the benchmarks' own output too")
	flag.Parse()

	selected, err := selectRows(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	fmt.Printf("lightcl benchmarks, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Printf("machine: %s, %d cores, %s %s/%s", cpuModel(), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if *quick {
		fmt.Print("; quick run (smoke: fewer samples, ticks and blocks)")
	}
	fmt.Println()

	var failures []string
	for _, r := range selected {
		args := r.full
		if *quick {
			args = r.quick
		}
		start := time.Now()
		results, out, err := run(r, args)
		if *verbose || err != nil {
			os.Stdout.Write(out)
		}
		fmt.Printf("\n### %s\n", r.title)
		fmt.Printf("`go test %s -run '^$' -bench '%s' %s` (%s)\n\n", r.pkg, r.bench, strings.Join(args, " "), time.Since(start).Round(time.Second))
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", r.name, err))
			continue
		}
		printTable(os.Stdout, r, results)
		if *checkFlag {
			failures = append(failures, checkRow(r, results)...)
		}
	}
	if len(failures) > 0 {
		fmt.Println()
		for _, f := range failures {
			fmt.Println("FAIL:", f)
		}
		os.Exit(1)
	}
	if *checkFlag {
		fmt.Println("\nall counts within their bounds")
	}
}

// result is one benchmark line: its name and metrics by unit.
type result struct {
	name    string
	metrics map[string]float64
}

func run(r row, args []string) ([]result, []byte, error) {
	cmdArgs := append([]string{"test", r.pkg, "-run", "^$", "-bench", r.bench, "-timeout", "30m"}, args...)
	cmd := exec.Command("go", cmdArgs...)
	cmd.Dir = moduleRoot()
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if err != nil {
		return nil, buf.Bytes(), fmt.Errorf("go %s: %w", strings.Join(cmdArgs, " "), err)
	}
	results := parse(buf.Bytes())
	if len(results) == 0 {
		return nil, buf.Bytes(), errors.New("no benchmark results in the output")
	}
	return results, buf.Bytes(), nil
}

// parse reads `go test -bench` result lines: name, iterations, then value
// and unit pairs.
func parse(out []byte) []result {
	var results []result
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		res := result{name: trimProcs(f[0]), metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			res.metrics[f[i+1]] = v
		}
		results = append(results, res)
	}
	return results
}

// trimProcs drops the -GOMAXPROCS suffix go test adds to a benchmark's name.
func trimProcs(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

func printTable(w io.Writer, r row, results []result) {
	fmt.Fprintf(w, "| case | %s |\n|---|%s\n", strings.Join(r.columns, " | "), strings.Repeat("---|", len(r.columns)))
	for _, res := range results {
		name := res.name
		if i := strings.IndexByte(name, '/'); i > 0 {
			name = name[i+1:]
		} else {
			name = "-"
		}
		cells := make([]string, len(r.columns))
		for i, c := range r.columns {
			if v, ok := res.metrics[c]; ok {
				cells[i] = format(v)
			} else {
				cells[i] = "–"
			}
		}
		fmt.Fprintf(w, "| %s | %s |\n", name, strings.Join(cells, " | "))
	}
}

func format(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e9:
		return strconv.FormatInt(int64(v), 10)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func checkRow(r row, results []result) []string {
	var failures []string
	for _, c := range r.checks {
		matched := false
		for _, res := range results {
			if c.sub != "" && !strings.HasSuffix(res.name, "/"+c.sub) {
				continue
			}
			v, ok := res.metrics[c.metric]
			if !ok {
				failures = append(failures, fmt.Sprintf("%s: %s reported no %s", r.name, res.name, c.metric))
				continue
			}
			matched = true
			if v > c.max {
				failures = append(failures, fmt.Sprintf("%s: %s %s = %s, above %s (%s)", r.name, res.name, c.metric, format(v), format(c.max), c.why))
			}
		}
		if !matched {
			failures = append(failures, fmt.Sprintf("%s: no result for the check on %q %s", r.name, c.sub, c.metric))
		}
	}
	return failures
}

func selectRows(only string) ([]row, error) {
	if only == "" {
		return rows, nil
	}
	var out []row
	for _, name := range strings.Split(only, ",") {
		i := slices.IndexFunc(rows, func(r row) bool { return r.name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown row %q (rows: %s)", name, rowNames())
		}
		out = append(out, rows[i])
	}
	return out, nil
}

func rowNames() string {
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.name
	}
	return strings.Join(names, ",")
}

// moduleRoot is the directory of the go.mod that `go run` found.
func moduleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "."
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "."
	}
	return strings.TrimSuffix(mod, "/go.mod")
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
