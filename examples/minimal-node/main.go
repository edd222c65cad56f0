// Command minimal-node is a light consensus client built only from lightcl's
// public API: it follows the safe and finalized heads of a remote L2 node, or
// those that M of N remote nodes agree on, and keeps a local execution engine
// on them through the Engine API.
//
//	minimal-node --engine http://127.0.0.1:8551 --jwt-secret jwt.hex \
//	    --l2.follow.source http://remote-op-node:9545
//	minimal-node --engine http://127.0.0.1:8551 --jwt-secret jwt.hex --source quorum \
//	    --l2.follow.source http://a:9545 --l2.follow.source http://b:9545 --l2.follow.source http://c:8545
//	minimal-node demo        # everything in-process, no outside service
//
// Every flag can also be set with a LIGHTCL_* environment variable; see --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	oplog "github.com/ethereum-optimism/optimism/op-service/log"
	"github.com/ethereum/go-ethereum/log"
	"github.com/urfave/cli/v2"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run runs the command line and returns the exit code: 0, 1 for a failure while
// running, 2 for a bad flag or a failed start-up check.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.Run(args)
	if err == nil {
		return 0
	}
	// one line, whatever the error joins: op-service joins causes with newlines
	fmt.Fprintln(stderr, "minimal-node:", strings.ReplaceAll(err.Error(), "\n", "; "))
	var fe *flagError
	if errors.As(err, &fe) || isUsageError(err) {
		return 2
	}
	return 1
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:            "minimal-node",
		Usage:           "a light consensus client: follow the safe and finalized heads of a remote L2 node, or those M of N remotes agree on",
		Flags:           nodeFlags(),
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {}, // run prints the error and picks the exit code
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &usageError{err} // an unknown flag or an unparsable value: exit 2, no help dump
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return &usageError{fmt.Errorf("unknown command %q", c.Args().First())}
			}
			if c.IsSet(flagChains) {
				return runChainsFromCLI(c, stderr)
			}
			cfg, err := configFromCLI(c)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			context.AfterFunc(ctx, stop) // a second signal kills at once
			return runNode(ctx, cfg, stderr)
		},
		Commands: []*cli.Command{demoCommand(stdout, stderr)},
	}
}

// runNode starts a node and runs it until ctx ends.
func runNode(ctx context.Context, cfg nodeConfig, logOut io.Writer) error {
	logger := newLogger(cfg, logOut)
	stopPprof, err := startPprof(cfg.Pprof)
	if err != nil {
		return err
	}
	defer stopPprof()
	n, err := newNode(ctx, cfg, logger)
	if err != nil {
		if ctx.Err() != nil {
			logger.Info("Interrupted during start-up", "err", err)
			return nil // a signal during start-up is a clean stop
		}
		return err
	}
	return n.Run(ctx)
}

// runChainsFromCLI runs the chains of --chains in this process until a
// signal.
func runChainsFromCLI(c *cli.Context, stderr io.Writer) error {
	if err := chainsConflict(c); err != nil {
		return err
	}
	pc, err := processConfigFromCLI(c)
	if err != nil {
		return err
	}
	specs, err := readChains(c.String(flagChains))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second signal kills at once
	logger := oplog.NewLogger(stderr, pc.Log)
	stopPprof, err := startPprof(pc.Pprof)
	if err != nil {
		return err
	}
	defer stopPprof()
	// every chain's HTTP clients share the default transport: let it keep
	// idle connections to every remote of every chain (its default keeps 100
	// in all, fewer than 64 chains' engines, sources and L1 hold), as one
	// process per chain would
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t.MaxIdleConns = 0
	}
	return newChainHost(specs, pc, logger).Run(ctx)
}

// quietLogger passes on only logger's records at or above min, through
// op-service's level filter: op-service's clients and servers get it, so that
// their "may connect later" warnings and "registered API" lines do not precede
// the one-line error of a failed start.
func quietLogger(logger log.Logger, min slog.Level) log.Logger {
	return log.NewLogger(oplog.NewDynamicLogHandler(min, logger.Handler()))
}

// version is what optimism_version and the status RPC's /healthz answer.
const version = "lightcl-minimal-node"

type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

func isUsageError(err error) bool {
	var ue *usageError
	return errors.As(err, &ue)
}
