package main

// The minimal-node replay's process helpers: building the binary, starting and
// stopping it, reading its memory and CPU from /proc, counting calls, and
// summarising its log.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/lightcl/lightcl/internal/fake/fakerpc"
	"github.com/lightcl/lightcl/internal/testutil"
)

// nodeBuild builds examples/minimal-node once, from the module root found
// above the working directory (internal/bench when go test runs it).
func nodeBuild(b *testing.B) string {
	dir, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			b.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
	bin := filepath.Join(b.TempDir(), "minimal-node")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./examples/minimal-node")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build ./examples/minimal-node in %s: %v\n%s", dir, err, out)
	}
	return bin
}

// nodeStatusLine is the single-chain binary's log line that says its status
// RPC listens, logged once every start-up check has passed.
var nodeStatusLine = regexp.MustCompile(`Status RPC listening +addr=(\S+)`)

// start runs the binary and waits until its status RPC listens, which it
// logs once every start-up check has passed.
func (w *nodeWorld) start(bin string, args ...string) {
	w.launch(bin, args...)
	w.dialStatus(w.awaitLog(nodeStatusLine, 30*time.Second)[1])
}

// launch runs the binary without waiting for anything: it dies with the
// benchmark (Pdeathsig) and is killed at its end (Cleanup) if still running.
func (w *nodeWorld) launch(bin string, args ...string) {
	w.log = new(nodeLog)
	w.done = make(chan struct{})
	w.cmd = exec.Command(bin, args...)
	w.cmd.Env = testutil.EnvWithout("LIGHTCL_")
	w.cmd.Stdout, w.cmd.Stderr = w.log, w.log
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the benchmark
	if err := w.cmd.Start(); err != nil {
		w.b.Fatal(err)
	}
	go func() {
		w.waitErr = w.cmd.Wait()
		close(w.done)
	}()
	w.b.Cleanup(w.kill) // a start-up failure ends the benchmark before its deferred kill
}

// awaitLog waits until the child's log has a line matching re and returns
// the match and its groups; it fails if the child exits first or within
// passes.
func (w *nodeWorld) awaitLog(re *regexp.Regexp, within time.Duration) []string {
	deadline := time.Now().Add(within)
	for {
		if m := re.FindStringSubmatch(w.log.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			w.fatalf("no log line matching %q %s after start", re, within)
		}
		select {
		case <-w.done:
			w.fatalf("minimal-node exited during start-up (%v)", w.waitErr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// dialStatus opens the status RPC client on addr (host:port).
func (w *nodeWorld) dialStatus(addr string) {
	c, err := rpc.Dial("http://" + addr)
	if err != nil {
		w.fatalf("dialing the status RPC at %s: %v", addr, err)
	}
	w.status = c
}

// stop sends SIGTERM and requires exit code 0 within 15 s.
func (w *nodeWorld) stop() {
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		w.fatalf("SIGTERM: %v", err)
	}
	select {
	case <-w.done:
	case <-time.After(15 * time.Second):
		w.fatalf("minimal-node still running 15s after SIGTERM")
	}
	if code := w.cmd.ProcessState.ExitCode(); code != 0 {
		w.fatalf("minimal-node exited with code %d after SIGTERM (%v)", code, w.waitErr)
	}
}

// kill ends the child if it is still running (a failed replay) and closes
// the status RPC client.
func (w *nodeWorld) kill() {
	if w.status != nil {
		w.status.Close()
		w.status = nil
	}
	select {
	case <-w.done:
	default:
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

func (w *nodeWorld) fatalf(format string, args ...any) {
	w.b.Helper()
	w.b.Fatalf("%s; minimal-node log tail:\n%s", fmt.Sprintf(format, args...), w.log.Tail(40))
}

// nodeClockTicks is CLK_TCK, the unit of utime and stime in /proc/<pid>/stat:
// what getconf says, 100 (Linux's USER_HZ everywhere) if it cannot say.
func nodeClockTicks(b *testing.B) int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if hz, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && hz > 0 {
			if hz != 100 {
				b.Logf("getconf CLK_TCK is %d, not the usual 100", hz)
			}
			return hz
		}
	}
	b.Logf("getconf CLK_TCK failed (%v, %q); assuming 100", err, out)
	return 100
}

// nodeRSS is VmRSS of /proc/<pid>/status, in kB.
func nodeRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(v) // "123456 kB"
			if len(fields) != 2 || fields[1] != "kB" {
				return 0, fmt.Errorf("/proc/%d/status: VmRSS line %q", pid, sc.Text())
			}
			return strconv.ParseInt(fields[0], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS line", pid)
}

// nodeCPU is utime+stime of /proc/<pid>/stat (fields 14 and 15), in clock ticks.
func nodeCPU(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// the command name, field 2, is in parentheses and may hold spaces
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')' in %q", pid, data)
	}
	fields := strings.Fields(string(data[i+1:])) // fields[0] is field 3, the state
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return utime + stime, nil
}

// nodeCount counts calls by method; eth_getBlockByNumber by what it asked
// for too, a label ("latest") or a number (#).
func nodeCount(calls []fakerpc.Call) map[string]int {
	m := map[string]int{}
	for _, c := range calls {
		key := c.Method
		if c.Method == "eth_getBlockByNumber" {
			var params []any
			if json.Unmarshal(c.Params, &params) == nil && len(params) > 0 {
				if label, ok := params[0].(string); ok && !strings.HasPrefix(label, "0x") {
					key += "(" + label + ")"
				} else {
					key += "(#)"
				}
			}
		}
		m[key]++
	}
	return m
}

// nodeByMethod formats "method total [steady/tick], ..." in method order.
func nodeByMethod(early, last, end map[string]int, steadyTicks float64) string {
	methods := make([]string, 0, len(end))
	for m := range end {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	parts := make([]string, 0, len(methods))
	for _, m := range methods {
		parts = append(parts, fmt.Sprintf("%s %d [%.2f]", m, end[m], float64(last[m]-early[m])/steadyTicks))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// nodeLog collects the child's stdout and stderr.
type nodeLog struct{ testutil.LogBuffer }

// nodeLogLine matches a text log line: level, [time], message, then the
// key=value pairs, of which action= is kept.
var nodeLogLine = regexp.MustCompile(`^(\w+)\s+\[[^\]]*\]\s+(.*?)(?:\s{2,}|$)(?:.*\baction=(\S+))?`)

// summary counts the log lines by level, message and action, most first.
func (l *nodeLog) summary() string {
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimRight(l.String(), "\n"), "\n") {
		m := nodeLogLine.FindStringSubmatch(line)
		if m == nil {
			continue // a continuation line
		}
		key := m[1] + " " + strconv.Quote(m[2])
		if m[3] != "" {
			key += " action=" + m[3]
		}
		counts[key]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× %s", counts[k], k)
	}
	return strings.Join(parts, "; ")
}
