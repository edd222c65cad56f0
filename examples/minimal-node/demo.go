package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	oplog "github.com/ethereum-optimism/optimism/op-service/log"
	oprpc "github.com/ethereum-optimism/optimism/op-service/rpc"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/log"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/lightcl/lightcl/engineadapter"
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
		Usage: "run the node in-process against a simulated remote (a rollup node and its L2 EL) that advances, " +
			"reorgs its unsafe chain once and finalizes; print a live table, then exit",
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
			level, err := oplog.LevelFromString(c.String(flagDemoLogLevel))
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

// runDemo runs the real node (the same start-up, adapter, remote source over
// loopback HTTP and tip feed over a websocket as the binary) between an
// in-memory engine and a simulated remote (a rollup node and its L2 EL), and
// checks at the end that the engine tracked the remote's tip and holds its
// unsafe, safe and finalized heads (see demoStats.summary).
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
		UnsafeURLs:   []string{w.remoteEL.WSURL()},
		PollInterval: dc.poll,
		RPC:          oprpc.CLIConfig{ListenAddr: "127.0.0.1", ListenPort: 0},
		Log:          oplog.CLIConfig{Level: dc.level, Format: oplog.FormatTerminal},
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

	fmt.Fprintf(stdout, "minimal-node demo: engine %s, remote rollup node %s (safe source), remote L2 EL %s (tip feed), "+
		"status RPC %s, poll %s, %s\n\n", w.engine.URL(), w.remote.URL(), w.remoteEL.WSURL(), n.StatusAddr, dc.poll, dc.duration)
	fmt.Fprintf(stdout, "%6s | %-22s | %-22s | %s\n", "time", "remote unsafe/safe/fin", "local unsafe/safe/fin", "last action")

	runCtx, cancel := context.WithTimeout(ctx, dc.duration)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return n.Run(gctx) })
	g.Go(func() error { return w.drive(gctx, stdout) })
	g.Go(func() error { return printRows(gctx, stdout, w, status, n.adapter, stats) })
	if err := g.Wait(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("demo interrupted: %w", context.Cause(ctx))
	}
	return stats.summary(stdout, w, n.adapter.Status())
}

// printRows prints a table row every half second, reading the local heads
// back through the node's status RPC (optimism_syncStatus), and gives each
// row after the first second to stats for the tracking check.
func printRows(ctx context.Context, out io.Writer, w *demoWorld, status *sources.RollupClient, a *engineadapter.Adapter, stats *demoStats) error {
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
		u, s, f := w.remoteHeads() // read after the local heads: the remote is never behind them
		since := time.Since(start)
		as := a.Status()
		fmt.Fprintf(out, "%5.1fs | %-22s | %-22s | %s\n", since.Seconds(),
			fmt.Sprintf("%d / %d / %d", u, s, f),
			fmt.Sprintf("%d / %d / %d", st.UnsafeL2.Number, st.SafeL2.Number, st.FinalizedL2.Number),
			lastAction(as))
		if since > time.Second {
			stats.row(u, st.UnsafeL2.Number)
		}
	}
}

// lastAction is the table's last column: the safe path's last decision, and
// the tip path's once it decided something.
func lastAction(st engineadapter.Status) string {
	if st.Tip.LastAction == "" {
		return st.LastAction
	}
	return st.LastAction + ", " + st.Tip.LastAction
}

// maxLag is how many blocks the local unsafe head may be behind the remote's
// in a table row and still count as tracking it: one step of the remote.
const maxLag = 2

// demoStats counts the adapter's events and the table's tracking rows.
type demoStats struct {
	mu                    sync.Mutex
	counts                map[engineadapter.EventKind]int
	tipDepths, safeDepths []uint64 // reorgs followed by the tip path and by the safe path
	rows, tracking        int      // table rows after the first second; those within maxLag
}

func newDemoStats() *demoStats { return &demoStats{counts: map[engineadapter.EventKind]int{}} }

func (s *demoStats) record(e engineadapter.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[e.Kind]++
	switch {
	case e.Kind == engineadapter.Reorged:
		s.safeDepths = append(s.safeDepths, e.Depth)
	case e.Kind == engineadapter.UnsafeAdvanced && e.Depth > 0:
		s.tipDepths = append(s.tipDepths, e.Depth)
	}
}

// row counts one table row read after the first second.
func (s *demoStats) row(remote, local uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows++
	if local <= remote+maxLag && remote <= local+maxLag {
		s.tracking++
	}
}

// tracked reports whether the local unsafe head tracked the remote's: within
// maxLag blocks in at least three quarters of the rows, and there were rows.
// Callers hold s.mu.
func (s *demoStats) tracked() bool { return s.rows > 0 && 4*s.tracking >= 3*s.rows }

// summary prints what happened and fails unless
//   - the engine ends on the remote's unsafe, safe and finalized heads;
//   - the tip path followed the remote's unsafe reorg (an UnsafeAdvanced event
//     with Depth > 0);
//   - finalized advanced;
//   - the local unsafe head was within maxLag blocks of the remote's in at
//     least three quarters of the table rows printed after the first second
//     (the remote moves two blocks a step, so a row read just as it steps
//     shows a lag of two; more than that means the tip is not followed live).
func (s *demoStats) summary(out io.Writer, w *demoWorld, st engineadapter.Status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unsafe, safe, final := w.remoteRefs()
	elUnsafe, elSafe, elFinal := w.engine.Labels()
	fmt.Fprintf(out, "\nsummary: %d ticks, %d tip blocks inserted; safe advanced %d times, finalized %d times; "+
		"reorgs followed: %d by the tip path (depth %v), %d by the safe path (depth %v); engine answered SYNCING %d times\n",
		st.Ticks, st.Tip.Inserted, s.counts[engineadapter.SafeAdvanced], s.counts[engineadapter.FinalizedAdvanced],
		len(s.tipDepths), s.tipDepths, len(s.safeDepths), s.safeDepths, s.counts[engineadapter.EngineSyncing])
	fmt.Fprintf(out, "tracking: local unsafe within %d blocks of remote unsafe in %d of %d rows after the first second\n",
		maxLag, s.tracking, s.rows)
	heads := func(u, s, f eth.L2BlockRef) string {
		return fmt.Sprintf("unsafe %d (%s), safe %d (%s), finalized %d (%s)", u.Number, u.Hash.TerminalString(),
			s.Number, s.Hash.TerminalString(), f.Number, f.Hash.TerminalString())
	}
	fmt.Fprintf(out, "remote: %s\n", heads(unsafe, safe, final))
	fmt.Fprintf(out, "engine: %s\n", heads(elUnsafe, elSafe, elFinal))
	var problems []string
	if elUnsafe != unsafe {
		problems = append(problems, "the engine did not end on the remote's unsafe head")
	}
	if elSafe != safe || elFinal != final {
		problems = append(problems, "the engine did not end on the remote's safe and finalized heads")
	}
	if len(s.tipDepths) == 0 {
		problems = append(problems, "the tip path followed no reorg")
	}
	if s.counts[engineadapter.FinalizedAdvanced] == 0 || final.Number == 0 {
		problems = append(problems, "finalized never advanced")
	}
	if !s.tracked() {
		problems = append(problems, fmt.Sprintf("local unsafe was within %d blocks of remote unsafe in only %d of %d rows",
			maxLag, s.tracking, s.rows))
	}
	if len(problems) > 0 {
		return fmt.Errorf("demo failed: %v", problems)
	}
	fmt.Fprintln(out, "ok: the engine tracked the remote's unsafe head through the tip feed, followed its unsafe reorg, "+
		"and ended on its unsafe, safe and finalized heads")
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
