package opgeth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// errPortInUse says geth exited because a port it was given was taken.
var errPortInUse = errors.New("port already in use")

// ports are a node's loopback TCP ports.
type ports struct{ http, auth, p2p int }

// freePorts picks three distinct free ports on 127.0.0.1 by listening on
// port 0 (another process may still take one before geth binds it; launch
// then fails with errPortInUse and is retried).
func freePorts(t testing.TB) ports {
	t.Helper()
	var got [3]int
	for i := range got {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("opgeth: picking a free port: %v", err)
		}
		defer l.Close() // held until all three are picked, so they differ
		got[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports{http: got[0], auth: got[1], p2p: got[2]}
}

// free reports whether every port can be bound on 127.0.0.1 now.
func (p ports) free() bool {
	for _, port := range []int{p.http, p.auth, p.p2p} {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// process is one running geth; done closes once it has been reaped.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's error, set before done closes
}

// args returns geth's command line for ports p.
func (n *Node) args(p ports) []string {
	args := []string{
		"--config", filepath.Join(n.dataDir, "p2p.toml"),
		"--datadir", n.dataDir,
		"--networkid", strconv.FormatUint(n.cfg.Genesis.ChainID(), 10),
		"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(p.http),
		"--http.api", "eth,net,web3,admin,debug",
		// websockets on the HTTP port (geth serves both on one port)
		"--ws", "--ws.addr", "127.0.0.1", "--ws.port", strconv.Itoa(p.http), "--ws.api", "eth,net,web3",
		"--authrpc.addr", "127.0.0.1", "--authrpc.port", strconv.Itoa(p.auth),
		"--authrpc.jwtsecret", n.jwtPath,
		"--nodiscover",
		"--syncmode", "full",
		"--gcmode", "archive",
		"--rollup.disabletxpoolgossip",
		"--nat", "extip:127.0.0.1",
		"--ipcdisable",
		"--verbosity", "3",
	}
	args = append(args, n.storageArgs()...)
	return append(args, n.cfg.ExtraArgs...)
}

// p2pConfig is geth's TOML config for what no flag sets: the p2p listener
// bound to loopback only (--port alone listens on every interface).
func p2pConfig(port int) string {
	return fmt.Sprintf("[Node.P2P]\nListenAddr = \"127.0.0.1:%d\"\n", port)
}

// launch starts geth on p and waits until it answers eth_chainId with the
// genesis's chain id and holds the expected genesis.
func (n *Node) launch(p ports) error {
	if err := os.WriteFile(filepath.Join(n.dataDir, "p2p.toml"), []byte(p2pConfig(p.p2p)), 0o644); err != nil {
		return err
	}
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child holds its own descriptor
	logStart, _ := logFile.Seek(0, io.SeekEnd)
	fmt.Fprintf(logFile, "=== opgeth: starting %s %s\n", n.bin, strings.Join(n.args(p), " "))

	cmd := exec.Command(n.bin, n.args(p)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the test binary dies without running its cleanups, the kernel
	// kills geth.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", n.bin, err)
	}
	proc := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		proc.err = cmd.Wait()
		close(proc.done)
	}()
	n.mu.Lock()
	n.ports, n.proc = p, proc
	n.mu.Unlock()

	if err := n.waitReady(proc); err != nil {
		n.Kill()
		if bytes.Contains(n.logSince(logStart), []byte("address already in use")) {
			return fmt.Errorf("%w: %v", errPortInUse, err)
		}
		return err
	}
	return nil
}

// waitReady polls eth_chainId until geth answers, then checks the chain id
// and the genesis hash.
func (n *Node) waitReady(proc *process) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	url := n.HTTP()
	for {
		var id hexutil.Uint64
		err := call(ctx, url, &id, "eth_chainId")
		if err == nil {
			if want := n.cfg.Genesis.ChainID(); uint64(id) != want {
				return fmt.Errorf("eth_chainId is %d, want %d", id, want)
			}
			return n.checkGenesis(ctx, url)
		}
		select {
		case <-proc.done:
			return fmt.Errorf("geth exited before answering JSON-RPC: %v", proc.err)
		case <-ctx.Done():
			return fmt.Errorf("geth did not answer eth_chainId at %s within %s: %v", url, readyTimeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (n *Node) checkGenesis(ctx context.Context, url string) error {
	var block struct {
		Hash common.Hash `json:"hash"`
	}
	if err := call(ctx, url, &block, "eth_getBlockByNumber", "0x0", false); err != nil {
		return err
	}
	if want := n.cfg.Genesis.Hash(); block.Hash != want {
		return fmt.Errorf("geth's genesis is %s, Genesis.Hash() is %s (datadir from another genesis, or op-geth computes it differently)", block.Hash, want)
	}
	return nil
}

// runOnce runs a short geth subcommand, its output appended to the log.
func (n *Node) runOnce(args ...string) error {
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== opgeth: running %s %s\n", n.bin, strings.Join(args, " "))
	cmd := exec.Command(n.bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("geth %s: %w\n--- last lines of %s ---\n%s", args[0], err, n.logPath, n.LogTail(30))
	}
	return nil
}

// Running reports whether the geth process is up.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc != nil
}

// Kill sends SIGKILL to geth and waits until it is reaped, like a crash:
// whatever geth had not written to disk is lost. A no-op if not running.
func (n *Node) Kill() { n.stop(syscall.SIGKILL, 0) }

// Stop sends SIGINT and waits up to 10 s for geth to shut down cleanly, then
// kills it. A no-op if not running.
func (n *Node) Stop() { n.stop(syscall.SIGINT, stopGrace) }

func (n *Node) stop(sig syscall.Signal, grace time.Duration) {
	n.mu.Lock()
	proc := n.proc
	n.proc = nil
	n.mu.Unlock()
	if proc == nil {
		return
	}
	_ = proc.cmd.Process.Signal(sig) // fails only if it already exited
	if grace > 0 {
		select {
		case <-proc.done:
			return
		case <-time.After(grace):
			n.logf("opgeth: %s did not stop within %s of %s; killing it", n.name, grace, sig)
		}
	}
	_ = proc.cmd.Process.Kill()
	<-proc.done
}

// LogsEnv names the environment variable of a folder where the full log of
// every node of a failed test is copied (the datadir is usually a
// t.TempDir(), removed after the test).
const LogsEnv = "LIGHTCL_GETH_LOGS"

// reap is the t.Cleanup of Start: kill geth and, if the test failed, print
// the log's tail and keep a copy of the log under LogsEnv.
func (n *Node) reap(t testing.TB) {
	n.Kill()
	if !t.Failed() {
		return
	}
	t.Logf("opgeth: %s failed test; last 100 lines of %s:\n%s", n.name, n.logPath, n.LogTail(100))
	if dir := os.Getenv(LogsEnv); dir != "" {
		name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-" + n.name + ".log"
		if err := copyFile(n.logPath, filepath.Join(dir, name)); err != nil {
			t.Logf("opgeth: keeping %s's log: %v", n.name, err)
		} else {
			t.Logf("opgeth: %s's full log kept in %s", n.name, filepath.Join(dir, name))
		}
	}
}

func copyFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	raw, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, raw, 0o644)
}

// maxTailBytes bounds how much of the log LogTail reads.
const maxTailBytes = 256 << 10

// LogTail returns the last (at most) lines lines of geth's log.
func (n *Node) LogTail(lines int) string {
	f, err := os.Open(n.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	from := max(st.Size()-maxTailBytes, 0)
	buf, _ := io.ReadAll(io.NewSectionReader(f, from, st.Size()-from))
	all := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	return strings.Join(all[max(len(all)-lines, 0):], "\n")
}

// logSince returns the log from byte offset off on (at most maxTailBytes).
func (n *Node) logSince(off int64) []byte {
	f, err := os.Open(n.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	buf, _ := io.ReadAll(io.NewSectionReader(f, off, maxTailBytes))
	return buf
}
