package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/log"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

const (
	flagDuration     = "duration"
	flagDemoInterval = "poll-interval"
	flagDemoLogLevel = "log.level"
)

func demoCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name: "demo",
		Usage: "run the node in-process against a simulated remote rollup node that advances, reorgs once and " +
			"finalizes; print a live table, then exit",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: flagDuration, Value: 8 * time.Second, Usage: "how long the demo runs (at least 4s)"},
			&cli.DurationFlag{Name: flagDemoInterval, Value: 200 * time.Millisecond, Usage: "the node's poll interval"},
			&cli.StringFlag{Name: flagDemoLogLevel, Value: "warn", Usage: "the node's log level (logs go to stderr)"},
		},
		Action: func(c *cli.Context) error {
			d, poll := c.Duration(flagDuration), c.Duration(flagDemoInterval)
			if d < 4*time.Second {
				return badFlag(flagDuration, "%s: want at least 4s", d)
			}
			if poll <= 0 || poll > d/10 {
				return badFlag(flagDemoInterval, "%s: want more than 0 and at most a tenth of --%s", poll, flagDuration)
			}
			level, err := parseLevel(c.String(flagDemoLogLevel))
			if err != nil {
				return &flagError{flag: flagDemoLogLevel, err: err}
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, demoConfig{duration: d, poll: poll, level: level}, stdout, stderr)
		},
	}
}

type demoConfig struct {
	duration, poll time.Duration
	level          slog.Level
}

// runDemo runs the real node (the same start-up, adapter and remote source
// over loopback HTTP as the binary) between an in-memory engine and a
// simulated remote rollup node, and checks at the end that the engine holds the
// remote's safe and finalized heads.
func runDemo(ctx context.Context, dc demoConfig, stdout, stderr io.Writer) error {
	stdout = &lockedWriter{w: stdout} // the table and the driver both print
	w, err := newDemoWorld(dc)
	if err != nil {
		return err
	}
	defer w.close()

	cfg := nodeConfig{
		EngineURL: w.engine.URL(), JWTSecretPath: w.jwtPath,
		Source: sourceL2, FollowURLs: []string{w.remote.URL()}, FollowKind: remotel2.KindAuto, FollowTimeout: 2 * time.Second,
		PollInterval: dc.poll, RPCAddr: "127.0.0.1", RPCPort: 0,
		LogLevel: dc.level, LogFormat: "text",
	}
	n, err := newNode(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	stats := newDemoStats()
	n.adapter.OnEvent(stats.record)
	statusRPC, err := client.NewRPC(ctx, log.NewLogger(log.DiscardHandler()), "http://"+n.StatusAddr)
	if err != nil {
		n.close()
		return fmt.Errorf("status RPC: %w", err)
	}
	defer statusRPC.Close()
	status := sources.NewRollupClient(statusRPC)

	fmt.Fprintf(stdout, "minimal-node demo: engine %s, remote rollup node %s, status RPC %s, poll %s, %s\n\n",
		w.engine.URL(), w.remote.URL(), n.StatusAddr, dc.poll, dc.duration)
	fmt.Fprintf(stdout, "%6s | %-22s | %-22s | %s\n", "time", "remote unsafe/safe/fin", "local unsafe/safe/fin", "last action")

	runCtx, cancel := context.WithTimeout(ctx, dc.duration)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return n.Run(gctx) })
	g.Go(func() error { return w.drive(gctx, stdout) })
	g.Go(func() error { return printRows(gctx, stdout, w, status, n.adapter) })
	if err := g.Wait(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("demo interrupted: %w", context.Cause(ctx))
	}
	return stats.summary(stdout, w, n.adapter.Status())
}

// demoWorld is the simulated outside: a remote rollup node on a chain that
// advances, and the local engine, fed by "gossip" of the remote's unsafe blocks
// as a node's p2p layer would.
type demoWorld struct {
	dc      demoConfig
	tree    *testutil.Tree
	main    []*types.Block // the remote's chain before the reorg; main[i] is block i+1
	fork    []*types.Block // after it; fork[0] is block forkAt
	forkAt  uint64
	blocks  int // how many blocks each chain has room for
	remote  *testutil.RollupNode
	engine  *testutil.EL
	jwtPath string
	tmpDir  string

	mu                  sync.Mutex
	unsafe, safe, final uint64
	onFork              bool
	gossipResumesAt     int // step
	gossipFailures      int
}

// steps is how many times the remote advances: it stops a second and a half
// before the end so that the node can settle.
func (w *demoWorld) steps() int {
	return int((w.dc.duration - 1500*time.Millisecond) / w.stepEvery())
}

func (w *demoWorld) stepEvery() time.Duration { return 2 * w.dc.poll }

func newDemoWorld(dc demoConfig) (*demoWorld, error) {
	w := &demoWorld{dc: dc, tree: testutil.NewTree()}
	w.blocks = 2*w.steps() + 16
	w.main = w.tree.Extend(w.tree.Genesis().Hash(), w.blocks, 1)
	var err error
	if w.tmpDir, err = os.MkdirTemp("", "minimal-node-demo"); err != nil {
		return nil, err
	}
	secret := testutil.NewJWTSecret()
	w.jwtPath = filepath.Join(w.tmpDir, "jwt.hex")
	if err := os.WriteFile(w.jwtPath, []byte(hexutil.Encode(secret[:])), 0o600); err != nil {
		w.close()
		return nil, err
	}
	if w.remote, err = testutil.StartRollupNode(w.tree, testutil.RollupNodeConfig{}); err != nil {
		w.close()
		return nil, err
	}
	// the engine syncs the blocks it lacks from the tree, as from p2p peers
	if w.engine, err = testutil.StartEL(w.tree, testutil.ELConfig{JWTSecret: secret, Peer: w.tree, SyncDelay: dc.poll}); err != nil {
		w.close()
		return nil, err
	}
	w.setRemote(4, 0, 0)
	return w, nil
}

func (w *demoWorld) close() {
	if w.engine != nil {
		w.engine.Close()
	}
	if w.remote != nil {
		w.remote.Close()
	}
	_ = os.RemoveAll(w.tmpDir)
}

// block is the remote's block at height n. Callers hold w.mu or own w.
func (w *demoWorld) block(n uint64) *types.Block {
	if n == 0 {
		return w.tree.Genesis()
	}
	if w.onFork && n >= w.forkAt {
		return w.fork[n-w.forkAt]
	}
	return w.main[n-1]
}

func (w *demoWorld) setRemote(unsafe, safe, final uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.unsafe, w.safe, w.final = unsafe, safe, final
	w.remote.Follow(w.block(unsafe), w.block(safe), w.block(safe), w.block(final), testutil.L1Ref(safe/testutil.BlocksPerEpoch))
}

// drive advances the remote two blocks per step, safe four behind unsafe and
// finalized ten behind safe. Past half-way it reorgs the remote's unsafe chain
// from a block above the local safe head, and gossip pauses for a few steps so
// that the node meets the divergence at the safe height itself.
func (w *demoWorld) drive(ctx context.Context, out io.Writer) error {
	t := time.NewTicker(w.stepEvery())
	defer t.Stop()
	for step := 1; step <= w.steps(); step++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		unsafe := uint64(2*step + 4)
		safe := unsafe - 4
		final := uint64(0)
		if safe > 10 {
			final = safe - 10
		}
		reorgNow := !w.onFork && step > w.steps()/2 && w.forkBelowEngineHead(step)
		w.mu.Lock()
		gossip := step >= w.gossipResumesAt
		head := w.block(unsafe).Hash()
		w.mu.Unlock()
		if reorgNow {
			fmt.Fprintf(out, "       | remote reorg: its chain now forks after block %d; the engine's unsafe blocks above it are on the old chain\n",
				w.forkAt-1)
		}
		w.setRemote(unsafe, safe, final)
		if gossip {
			if err := w.engine.Gossip(w.tree, head); err != nil {
				// the engine's labels are not on this chain yet: the node has
				// still to reorg it; gossip again next step
				w.mu.Lock()
				w.gossipFailures++
				w.mu.Unlock()
			}
		}
	}
	return nil
}

// forkBelowEngineHead switches the remote to a fork that leaves its chain one
// block below the engine's head, above the safe head, so that the engine holds
// two unsafe blocks the remote no longer has; gossip pauses while the remote's
// safe head moves onto the fork. It reports false (try next step) while the
// engine's head is too close to the safe head for that.
func (w *demoWorld) forkBelowEngineHead(step int) bool {
	engineHead, _, _ := w.engine.Labels()
	w.mu.Lock()
	defer w.mu.Unlock()
	if engineHead.Number < w.safe+3 {
		return false
	}
	w.forkAt = engineHead.Number - 1
	w.fork = w.tree.Extend(w.main[w.forkAt-2].Hash(), w.blocks, 2)
	w.onFork = true
	w.gossipResumesAt = step + 4
	return true
}

func (w *demoWorld) remoteHeads() (uint64, uint64, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.unsafe, w.safe, w.final
}

// printRows prints a table row every half second, reading the local heads
// back through the node's status RPC (optimism_syncStatus).
func printRows(ctx context.Context, out io.Writer, w *demoWorld, status *sources.RollupClient, a *engineadapter.Adapter) error {
	start := time.Now()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := status.SyncStatus(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading the status RPC: %w", err)
		}
		u, s, f := w.remoteHeads()
		fmt.Fprintf(out, "%5.1fs | %-22s | %-22s | %s\n", time.Since(start).Seconds(),
			fmt.Sprintf("%d / %d / %d", u, s, f),
			fmt.Sprintf("%d / %d / %d", st.UnsafeL2.Number, st.SafeL2.Number, st.FinalizedL2.Number),
			a.Status().LastAction)
	}
}

// demoStats counts the adapter's events.
type demoStats struct {
	mu     sync.Mutex
	counts map[engineadapter.EventKind]int
	depths []uint64
}

func newDemoStats() *demoStats { return &demoStats{counts: map[engineadapter.EventKind]int{}} }

func (s *demoStats) record(e engineadapter.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[e.Kind]++
	if e.Kind == engineadapter.Reorged {
		s.depths = append(s.depths, e.Depth)
	}
}

// summary prints what happened and fails unless the node followed, reorged and
// finalized, and ended on the remote's safe and finalized heads.
func (s *demoStats) summary(out io.Writer, w *demoWorld, st engineadapter.Status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, safe, final := w.remoteHeads()
	_, elSafe, elFinal := w.engine.Labels()
	wantSafe, wantFinal := w.tree.Ref(w.block(safe)), w.tree.Ref(w.block(final))
	fmt.Fprintf(out, "\nsummary: %d ticks; safe advanced %d times, finalized %d times; %d reorg(s), depth %v; engine answered SYNCING %d times\n",
		st.Ticks, s.counts[engineadapter.SafeAdvanced], s.counts[engineadapter.FinalizedAdvanced],
		s.counts[engineadapter.Reorged], s.depths, s.counts[engineadapter.EngineSyncing])
	fmt.Fprintf(out, "remote: safe %d (%s), finalized %d (%s)\n", wantSafe.Number, wantSafe.Hash, wantFinal.Number, wantFinal.Hash)
	fmt.Fprintf(out, "engine: safe %d (%s), finalized %d (%s)\n", elSafe.Number, elSafe.Hash, elFinal.Number, elFinal.Hash)
	var problems []string
	if elSafe != wantSafe || elFinal != wantFinal {
		problems = append(problems, "the engine did not end on the remote's safe and finalized heads")
	}
	if s.counts[engineadapter.Reorged] == 0 {
		problems = append(problems, "no reorg was followed")
	}
	if s.counts[engineadapter.FinalizedAdvanced] == 0 || wantFinal.Number == 0 {
		problems = append(problems, "finalized never advanced")
	}
	if len(problems) > 0 {
		return fmt.Errorf("demo failed: %v", problems)
	}
	fmt.Fprintln(out, "ok: the engine followed the remote, through its reorg, to its safe and finalized heads")
	return nil
}

// lockedWriter serialises writes from the demo's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
