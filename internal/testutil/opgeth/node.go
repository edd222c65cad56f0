package opgeth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/sources"

	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
)

// Config says how Start runs an op-geth.
type Config struct {
	// Genesis is the chain to run; required.
	Genesis *Genesis
	// DataDir is geth's --datadir. Empty means a fresh t.TempDir(). A datadir
	// that already holds a chain (e.g. another Node's DataDir, once that node
	// is stopped) is reused as is: no `geth init`, same JWT secret.
	DataDir string
	// Peer, if set, is a running Node this one connects to over loopback p2p
	// (admin_addPeer); Start returns once they are peered.
	Peer *Node
	// Name labels the node in test logs; empty means "geth".
	Name string
	// StateScheme is geth's --state.scheme for init and run: "" (geth's
	// default, "path"), "path" or "hash".
	StateScheme string
	// DBEngine is geth's --db.engine for init and run: "" (geth's default,
	// "pebble"), "pebble" or "leveldb".
	DBEngine string
	// ExtraArgs are appended to geth's command line (not to `geth init`).
	ExtraArgs []string
}

// Check reports a Config that Start cannot run.
func (c Config) Check() error {
	if c.Genesis == nil {
		return errors.New("opgeth: Config.Genesis is required")
	}
	switch c.StateScheme {
	case "", "path", "hash":
	default:
		return fmt.Errorf("opgeth: Config.StateScheme %q: want \"\", \"path\" or \"hash\"", c.StateScheme)
	}
	switch c.DBEngine {
	case "", "pebble", "leveldb":
	default:
		return fmt.Errorf("opgeth: Config.DBEngine %q: want \"\", \"pebble\" or \"leveldb\"", c.DBEngine)
	}
	return nil
}

// readyTimeout bounds how long a starting geth may take to answer eth_chainId.
const readyTimeout = 30 * time.Second

// stopGrace is how long Stop waits after SIGINT before it kills.
const stopGrace = 10 * time.Second

// Node is one op-geth process on loopback, with its datadir, ports and JWT
// secret. Its methods may be called from any goroutine.
type Node struct {
	cfg     Config
	name    string
	bin     string
	dataDir string
	jwt     [32]byte
	jwtPath string
	logPath string
	logf    func(format string, args ...any)

	mu    sync.Mutex
	ports ports
	proc  *process // nil while not running
}

// Start runs op-geth for cfg and returns once it answers JSON-RPC (and, with
// cfg.Peer, once it is peered). The process is killed in t.Cleanup; if the
// test failed, the last 100 lines of its log are printed first.
func Start(t testing.TB, cfg Config) *Node {
	t.Helper()
	bin := Binary(t)
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	n := &Node{cfg: cfg, name: cfg.Name, bin: bin, dataDir: cfg.DataDir, logf: t.Logf}
	if n.name == "" {
		n.name = "geth"
	}
	if n.dataDir == "" {
		n.dataDir = t.TempDir()
	}
	n.logPath = filepath.Join(n.dataDir, "geth.log")
	t.Cleanup(func() { n.reap(t) })
	if err := n.prepare(); err != nil {
		t.Fatalf("opgeth: %s: %v", n.name, err)
	}
	n.run(t, ports{})
	return n
}

// run launches geth on p (or fresh ports when p is zero or taken) and peers
// it with cfg.Peer.
func (n *Node) run(t testing.TB, p ports) {
	t.Helper()
	begin := time.Now()
	if p == (ports{}) || !p.free() {
		p = freePorts(t)
	}
	var err error
	for attempt := 0; ; attempt++ {
		err = n.launch(p)
		if !errors.Is(err, errPortInUse) || attempt == 2 {
			break
		}
		p = freePorts(t) // another process took a port between pick and bind
	}
	if err != nil {
		t.Fatalf("opgeth: %s: %v\n--- last lines of %s ---\n%s", n.name, err, n.logPath, n.LogTail(100))
	}
	t.Logf("opgeth: %s up in %s: http %s, authrpc %s, p2p 127.0.0.1:%d, datadir %s",
		n.name, time.Since(begin).Round(time.Millisecond), n.HTTP(), n.AuthRPC(), p.p2p, n.dataDir)
	if n.cfg.Peer != nil {
		if err := n.connect(n.cfg.Peer); err != nil {
			t.Fatalf("opgeth: %s: peering with %s: %v", n.name, n.cfg.Peer.name, err)
		}
	}
}

// prepare creates the datadir, its JWT secret and, for a new datadir, the
// genesis state.
func (n *Node) prepare() error {
	if err := os.MkdirAll(n.dataDir, 0o755); err != nil {
		return err
	}
	n.jwtPath = filepath.Join(n.dataDir, "jwt.hex")
	if raw, err := os.ReadFile(n.jwtPath); err == nil {
		secret, err := hexutil.Decode(strings.TrimSpace(string(raw)))
		if err != nil || len(secret) != 32 {
			return fmt.Errorf("bad JWT secret in %s", n.jwtPath)
		}
		copy(n.jwt[:], secret)
	} else {
		n.jwt = fakeel.NewJWTSecret()
		if err := os.WriteFile(n.jwtPath, []byte(hexutil.Encode(n.jwt[:])), 0o600); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(n.dataDir, "geth", "chaindata")); err == nil {
		return nil // an existing chain: keep it
	}
	genesis, err := n.cfg.Genesis.JSON()
	if err != nil {
		return fmt.Errorf("encoding genesis: %w", err)
	}
	genesisPath := filepath.Join(n.dataDir, "genesis.json")
	if err := os.WriteFile(genesisPath, genesis, 0o644); err != nil {
		return err
	}
	args := append([]string{"init", "--datadir", n.dataDir}, n.storageArgs()...)
	return n.runOnce(append(args, genesisPath)...)
}

// storageArgs are the flags that init and run must agree on.
func (n *Node) storageArgs() []string {
	var args []string
	if n.cfg.StateScheme != "" {
		args = append(args, "--state.scheme", n.cfg.StateScheme)
	}
	if n.cfg.DBEngine != "" {
		args = append(args, "--db.engine", n.cfg.DBEngine)
	}
	return args
}

// HTTP returns the URL of the public JSON-RPC endpoint (no auth; eth, net,
// web3, admin, debug).
func (n *Node) HTTP() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("http://127.0.0.1:%d", n.ports.http)
}

// WS returns the URL of the public websocket JSON-RPC endpoint (eth, net,
// web3; eth_subscribe included), on the HTTP endpoint's port.
func (n *Node) WS() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("ws://127.0.0.1:%d", n.ports.http)
}

// AuthRPC returns the URL of the JWT-protected Engine API endpoint.
func (n *Node) AuthRPC() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("http://127.0.0.1:%d", n.ports.auth)
}

// JWTSecret returns the Engine API JWT secret.
func (n *Node) JWTSecret() [32]byte { return n.jwt }

// JWTPath returns the file holding the JWT secret as 0x-prefixed hex.
func (n *Node) JWTPath() string { return n.jwtPath }

// DataDir returns geth's datadir.
func (n *Node) DataDir() string { return n.dataDir }

// LogPath returns the file geth logs to (appended across restarts).
func (n *Node) LogPath() string { return n.logPath }

// Genesis returns the genesis the node was started with.
func (n *Node) Genesis() *Genesis { return n.cfg.Genesis }

// Restart starts geth again on the same datadir, stopping it first (Stop) if
// it still runs. It keeps the ports if they are free, else picks new ones,
// and peers again with Config.Peer.
func (n *Node) Restart(t testing.TB) {
	t.Helper()
	n.Stop()
	n.mu.Lock()
	p := n.ports
	n.mu.Unlock()
	n.run(t, p)
}

// Engine returns op-service's Engine API client for the node (JWT over
// AuthRPC, the Genesis's rollup config, TrustRPC false so block hashes and
// transaction roots are verified). It is closed in t.Cleanup. It is bound
// to the current port: after a Restart that changed ports, call it again.
func (n *Node) Engine(t testing.TB) *sources.EngineClient {
	t.Helper()
	cfg := sources.EngineClientDefaultConfig(n.cfg.Genesis.RollupConfig())
	cfg.TrustRPC = false
	return testutil.DialEngine(t, n.AuthRPC(), n.jwt, cfg)
}

// L2 returns op-service's L2 client for the node's public HTTP endpoint
// (no auth, TrustRPC false). It is closed in t.Cleanup; like Engine, it is
// bound to the current port.
func (n *Node) L2(t testing.TB) *sources.L2Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lgr := log.NewLogger(log.DiscardHandler())
	rpcClient, err := client.NewRPC(ctx, lgr, n.HTTP(), client.WithCallTimeout(5*time.Second))
	if err != nil {
		t.Fatalf("opgeth: %s: dialing %s: %v", n.name, n.HTTP(), err)
	}
	t.Cleanup(rpcClient.Close)
	l2, err := sources.NewL2Client(rpcClient, lgr, nil, sources.L2ClientDefaultConfig(n.cfg.Genesis.RollupConfig(), false))
	if err != nil {
		t.Fatalf("opgeth: %s: L2 client: %v", n.name, err)
	}
	return l2
}

// connect peers n with peer through admin_addPeer and waits until n
// lists it.
func (n *Node) connect(peer *Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var info struct {
		ID    string `json:"id"`
		Enode string `json:"enode"`
	}
	if err := call(ctx, peer.HTTP(), &info, "admin_nodeInfo"); err != nil {
		return err
	}
	var added bool
	if err := call(ctx, n.HTTP(), &added, "admin_addPeer", info.Enode); err != nil {
		return err
	}
	for {
		var peers []struct {
			ID string `json:"id"`
		}
		if err := call(ctx, n.HTTP(), &peers, "admin_peers"); err != nil {
			return err
		}
		for _, p := range peers {
			if p.ID == info.ID {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s (%s) not among peers after 10 s", peer.name, info.Enode)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// call makes one JSON-RPC call to url.
func call(ctx context.Context, url string, result any, method string, args ...any) error {
	c, err := rpc.DialContext(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CallContext(ctx, result, method, args...); err != nil {
		return fmt.Errorf("%s at %s: %w", method, url, err)
	}
	return nil
}
