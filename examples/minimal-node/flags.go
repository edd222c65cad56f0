package main

import (
	"strings"
	"time"

	opservice "github.com/ethereum-optimism/optimism/op-service"
	oplog "github.com/ethereum-optimism/optimism/op-service/log"
	opmetrics "github.com/ethereum-optimism/optimism/op-service/metrics"
	"github.com/ethereum-optimism/optimism/op-service/oppprof"
	oprpc "github.com/ethereum-optimism/optimism/op-service/rpc"
	"github.com/urfave/cli/v2"

	"github.com/lightcl/lightcl/safesource/rpclimit"
)

// envPrefix starts the name of every environment variable that sets a flag.
const envPrefix = "LIGHTCL"

// envVar is the environment variable that also sets a flag, named as
// op-service names its own: LIGHTCL_ and the flag's name in capitals with
// dots and dashes as underscores.
func envVar(name string) []string {
	return opservice.PrefixEnvVar(envPrefix, strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(name)))
}

const (
	flagEngine         = "engine"
	flagJWTSecret      = "jwt-secret"
	flagEngineDebug    = "engine.debug-rpc"
	flagRollupConfig   = "rollup.config"
	flagSource         = "source"
	flagFollowSource   = "l2.follow.source"
	flagFollowKind     = "l2.follow.kind"
	flagFollowTimeout  = "l2.follow.timeout"
	flagFollowQuorum   = "l2.follow.quorum"
	flagSyncMode       = "sync.mode"
	flagBackfillSource = "l2.backfill.source"
	flagUnsafeSource   = "l2.unsafe.source"
	flagUnsafeDisable  = "l2.unsafe.disable"
	flagMaxResponse    = "remote.max-response-mib"
	flagL1             = "l1"
	flagL1Verify       = "l1.verify"
	flagL1Beacon       = "l1.beacon"
	flagL1CrossCheck   = "l1.crosscheck"
	flagL1CrossState   = "l1.crosscheck.state"
	flagPollInterval   = "poll-interval"
	flagSafeDB         = "safedb.path"
	flagRPCAddr        = oprpc.ListenAddrFlagName
	flagRPCPort        = oprpc.PortFlagName
	flagMetricsAddr    = opmetrics.ListenAddrFlagName
	flagMetricsPort    = opmetrics.PortFlagName
)

// nodeFlags are every flag of the command line.
func nodeFlags() []cli.Flag {
	chains := &cli.StringFlag{Name: flagChains, EnvVars: envVar(flagChains),
		Usage: "a TOML file of chains to follow in this one process, one [chain.<L2 chain id>] table each, whose keys are the flags above " +
			"(engine, jwt-secret, \"l2.follow.source\", ...); the process's servers and logs stay on the command line (--rpc.*, --metrics.*, --log.*). " +
			"The status RPC then answers each chain at /<chain id> and lightcl_chains at /"}
	return append(append(chainFlags(), chains), processFlags()...)
}

// processFlags are the flags of the process as a whole: its servers and logs.
func processFlags() []cli.Flag {
	return append(append(append(rpcFlags(), metricsFlags()...), pprofFlags()...), logFlags()...)
}

// pprofFlags are op-service's pprof flags (op-node's), listening on loopback
// unless told otherwise.
func pprofFlags() []cli.Flag {
	return onLoopback(oppprof.CLIFlags(envPrefix), oppprof.ListenAddrFlagName)
}

// chainFlags are the flags of one chain: with --chains, each chain's table
// gives them.
func chainFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: flagEngine, Aliases: []string{"l2"}, EnvVars: envVar(flagEngine),
			Usage: "the local execution engine's authenticated Engine API endpoint (op-geth's --authrpc), e.g. http://127.0.0.1:8551 (required; --l2 as in op-node)"},
		&cli.StringFlag{Name: flagJWTSecret, Aliases: []string{"l2.jwt-secret"}, EnvVars: envVar(flagJWTSecret),
			Usage: "path to the engine's JWT secret: 32 bytes as hex (required; --l2.jwt-secret as in op-node)"},
		&cli.StringFlag{Name: flagEngineDebug, EnvVars: envVar(flagEngineDebug),
			Usage: "the same engine's plain JSON-RPC with the debug namespace (op-geth --http --http.api eth,debug, on loopback): " +
				"when the engine comes back below the safe label after an unclean stop, the node has it drop the blocks it " +
				"holds above its head without their state (debug_setHead), which it otherwise cannot execute again until " +
				"it is re-synced. It must be this engine's own RPC: another op-geth of the same chain passes the start-up checks " +
				"and would have its blocks dropped. Optional"},
		&cli.StringFlag{Name: flagRollupConfig, EnvVars: envVar(flagRollupConfig),
			Usage: "path to op-node's rollup.json; when absent, the optimism_rollupConfig of the rollup-node remotes is used " +
				"(for a quorum every rollup-node member is asked and all must describe the same chain)"},
		&cli.StringFlag{Name: flagSource, EnvVars: envVar(flagSource), Value: sourceL2,
			Usage: "where safe and finalized come from: l2 (one remote L2 node), quorum (what --" + flagFollowQuorum +
				" of the --" + flagFollowSource + " remotes agree on) or l1 (derived from --" + flagL1 + " by op-node's derivation pipeline; needs --" + flagRollupConfig + ")"},
		&cli.StringSliceFlag{Name: flagFollowSource, EnvVars: envVar(flagFollowSource),
			Usage: "a remote L2 node to follow: an L2 EL's JSON-RPC or a rollup node's RPC URL; once for --source l2, " +
				"at least twice for --source quorum (comma-separated in the env var)"},
		&cli.IntFlag{Name: flagFollowQuorum, EnvVars: envVar(flagFollowQuorum),
			Usage: "with --source quorum: how many remotes (M of the N --" + flagFollowSource + ") must agree on a head; 0 is a strict majority (N/2+1)"},
		&cli.StringFlag{Name: flagFollowKind, EnvVars: envVar(flagFollowKind), Value: "auto",
			Usage: "kind of the remotes: auto (detected for each remote at start), el or cl"},
		&cli.DurationFlag{Name: flagFollowTimeout, EnvVars: envVar(flagFollowTimeout), Value: 5 * time.Second,
			Usage: "timeout of each call to a remote"},
		&cli.StringFlag{Name: flagSyncMode, EnvVars: envVar(flagSyncMode), Value: "el-sync",
			Usage: "how the engine catches up: el-sync (it fetches blocks from its p2p peers) or backfill (the node inserts them with newPayload; no p2p needed)"},
		&cli.StringFlag{Name: flagBackfillSource, EnvVars: envVar(flagBackfillSource),
			Usage: "backfill: an L2 EL's JSON-RPC URL to fetch payloads from; default: the --l2.follow.source remote when it is one L2 EL"},
		&cli.StringSliceFlag{Name: flagUnsafeSource, EnvVars: envVar(flagUnsafeSource),
			Usage: "an L2 EL whose unsafe blocks keep the engine at the chain's tip: ws:// or wss:// to have new heads pushed " +
				"(eth_subscribe newHeads), http:// or https:// to poll; repeat it for several (comma-separated in the env var); " +
				"default: the --" + flagFollowSource + " remote when it is one L2 EL and gossip is off (with gossip on, give this flag " +
				"to have both). Tip blocks never move safe or finalized"},
		&cli.BoolFlag{Name: flagUnsafeDisable, EnvVars: envVar(flagUnsafeDisable),
			Usage: "follow safe and finalized only: no tip feed (the engine's head then moves with the safe head)"},
		&cli.StringFlag{Name: flagL1, EnvVars: envVar(flagL1),
			Usage: "an L1 JSON-RPC URL: every head's L1 origin is checked canonical on it, and finality not claimed ahead of L1's"},
		&cli.StringFlag{Name: flagL1Beacon, EnvVars: envVar(flagL1Beacon),
			Usage: "an L1 beacon node's HTTP URL, for batches posted as blobs (--" + flagSource + " l1 and --" + flagL1CrossCheck + ")"},
		&cli.BoolFlag{Name: flagL1CrossCheck, EnvVars: envVar(flagL1CrossCheck),
			Usage: "with --" + flagSource + " l2 or quorum and --" + flagL1 + ": also derive from L1 in the background and halt, with an alarm, when the followed chain differs from L1's; " +
				"the followed finalized head is not applied ahead of the last finalized block derivation has confirmed"},
		&cli.StringFlag{Name: flagL1CrossState, EnvVars: envVar(flagL1CrossState),
			Usage: "with --" + flagL1CrossCheck + ": the file that keeps the last finalized block the cross-check confirmed, so that a restart checks on from it; " +
				"without the file (a first run) the check re-derives from the L2 genesis block. " +
				"Default: lightcl/l1crosscheck-<L2 chain id>-<first 8 hex digits of the L2 genesis hash>.json in the user's cache directory ($XDG_CACHE_HOME, else ~/.cache)"},
		&cli.BoolFlag{Name: flagL1Verify, EnvVars: envVar(flagL1Verify), Value: true,
			Usage: "with --l1, verify the source's heads against L1; false trusts the source blindly (a warning says so)"},
		&cli.IntFlag{Name: flagMaxResponse, EnvVars: envVar(flagMaxResponse), Value: rpclimit.DefaultMaxResponse >> 20,
			Usage: "the largest answer, in MiB, taken from any remote (sources, quorum members, tip feeds, backfill source, L1, beacon); " +
				"a larger one fails the call. Raise it for a chain whose blocks, as JSON with their transactions, are larger"},
		&cli.DurationFlag{Name: flagPollInterval, EnvVars: envVar(flagPollInterval), Value: 2 * time.Second,
			Usage: "time between polls of the source"},
		&cli.StringFlag{Name: flagSafeDB, EnvVars: envVar(flagSafeDB),
			Usage: "a directory for the safe-head database (op-node's, on pebble), as op-node's --safedb.path: each safe head is recorded " +
				"with the L1 block its source derived it up to, for optimism_safeHeadAtL1Block. Needs a rollup-node source or --" +
				flagSource + " " + sourceL1 + ". Default: none"},
	}
	return append(flags, p2pFlags()...)
}

// rpcFlags are op-service's RPC server flags with minimal-node's defaults:
// loopback, port 9545, and -1 to turn the status RPC off.
func rpcFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range oprpc.CLIFlagsWithCategory(envPrefix, "", oprpc.CLIConfig{ListenAddr: "127.0.0.1", ListenPort: 9545}) {
		switch f := f.(type) {
		case *cli.StringFlag: // rpc.addr
			f.Usage = "status RPC listen address (answers optimism_syncStatus like op-node; /healthz for health checks)"
		case *cli.IntFlag: // rpc.port
			f.Usage = "status RPC port; 0 picks a free port; -1 turns the status RPC off"
		case *cli.BoolFlag: // rpc.enable-admin
			f.Usage = "serve op-node's admin_postUnsafePayload on the status RPC: a posted payload enters the tip path " +
				"(never safe or finalized). Off by default"
		}
		out = append(out, f)
	}
	return out
}

// metricsFlags are op-service's metrics flags, listening on loopback unless
// told otherwise.
func metricsFlags() []cli.Flag {
	return onLoopback(opmetrics.CLIFlags(envPrefix), opmetrics.ListenAddrFlagName)
}

// onLoopback sets the default of flags' listen-address flag addrFlag to
// 127.0.0.1: op-service's servers listen on every interface by default.
func onLoopback(flags []cli.Flag, addrFlag string) []cli.Flag {
	for _, f := range flags {
		if f, ok := f.(*cli.StringFlag); ok && f.Name == addrFlag {
			f.Value = "127.0.0.1"
		}
	}
	return flags
}

// logFlags are op-service's log flags (op-node's), with the terminal format,
// which minimal-node has always printed, as the default.
func logFlags() []cli.Flag {
	flags := oplog.CLIFlags(envPrefix)
	for _, f := range flags {
		if f, ok := f.(*cli.GenericFlag); ok && f.Name == oplog.FormatFlagName {
			f.Value = oplog.NewFormatFlagValue(oplog.FormatTerminal)
		}
	}
	return flags
}
