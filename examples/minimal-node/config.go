package main

import (
	"fmt"
	"io"
	"time"

	oplog "github.com/ethereum-optimism/optimism/op-service/log"
	opmetrics "github.com/ethereum-optimism/optimism/op-service/metrics"
	"github.com/ethereum-optimism/optimism/op-service/oppprof"
	oprpc "github.com/ethereum-optimism/optimism/op-service/rpc"
	"github.com/ethereum/go-ethereum/log"
	"github.com/urfave/cli/v2"

	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

// flagError is a bad flag value: one line naming the flag, exit code 2.
type flagError struct {
	flag string
	err  error
}

func (e *flagError) Error() string { return fmt.Sprintf("--%s: %v", e.flag, e.err) }
func (e *flagError) Unwrap() error { return e.err }

func badFlag(flag string, format string, args ...any) error {
	return &flagError{flag: flag, err: fmt.Errorf(format, args...)}
}

// The values of --source that are built.
const (
	sourceL2     = "l2"
	sourceQuorum = "quorum"
	sourceL1     = "l1"
)

// nodeConfig is minimal-node's configuration, read from flags and checked.
type nodeConfig struct {
	EngineURL        string
	JWTSecretPath    string
	EngineDebugURL   string // --engine.debug-rpc; empty: blocks above a rewound head are not dropped
	RollupConfigPath string
	Source           string   // sourceL2, sourceQuorum or sourceL1
	FollowURLs       []string // one for sourceL2, at least two for sourceQuorum
	Quorum           int      // M for sourceQuorum; 0: a strict majority
	FollowKind       remotel2.Kind
	FollowTimeout    time.Duration
	L1URL            string   // --l1; empty: no L1 verification
	L1Verify         bool     // --l1.verify
	L1BeaconURL      string   // --l1.beacon; empty: blob batches refused
	L1CrossCheck     bool     // --l1.crosscheck
	L1CrossState     string   // --l1.crosscheck.state; empty: a file in the user's cache directory
	Backfill         bool     // --sync.mode backfill
	BackfillURL      string   // where payloads come from; empty: the single EL source
	UnsafeURLs       []string // --l2.unsafe.source; empty: the single EL source, if any
	UnsafeDisable    bool     // --l2.unsafe.disable
	MaxResponse      int64    // --remote.max-response-mib, in bytes
	PollInterval     time.Duration
	SafeDBPath       string              // --safedb.path; empty: no safe-head database
	P2P              p2pConfig           // --p2p.*: gossip
	RPC              oprpc.CLIConfig     // ListenPort -1: off
	Metrics          opmetrics.CLIConfig // --metrics.*
	Pprof            oppprof.CLIConfig   // --pprof.*
	Log              oplog.CLIConfig     // --log.*
}

// configFromCLI reads a single-chain node's command line: one chain's flags
// and the process's.
func configFromCLI(c *cli.Context) (nodeConfig, error) {
	cfg, err := chainConfigFromCLI(c)
	if err != nil {
		return cfg, err
	}
	pc, err := processConfigFromCLI(c)
	cfg.RPC, cfg.Metrics, cfg.Pprof, cfg.Log = pc.RPC, pc.Metrics, pc.Pprof, pc.Log
	return cfg, err
}

// chainConfigFromCLI reads and checks one chain's flags: the command line's,
// or a --chains table's.
func chainConfigFromCLI(c *cli.Context) (nodeConfig, error) {
	cfg := nodeConfig{
		EngineURL:        c.String(flagEngine),
		JWTSecretPath:    c.String(flagJWTSecret),
		RollupConfigPath: c.String(flagRollupConfig),
		FollowTimeout:    c.Duration(flagFollowTimeout),
		PollInterval:     c.Duration(flagPollInterval),
		SafeDBPath:       c.String(flagSafeDB),
	}
	if err := checkURL(flagEngine, cfg.EngineURL); err != nil {
		return cfg, err
	}
	if cfg.JWTSecretPath == "" {
		return cfg, badFlag(flagJWTSecret, "required: the path of the engine's JWT secret file")
	}
	if cfg.EngineDebugURL = c.String(flagEngineDebug); cfg.EngineDebugURL != "" {
		if err := checkURL(flagEngineDebug, cfg.EngineDebugURL); err != nil {
			return cfg, err
		}
	}
	cfg.Source = c.String(flagSource)
	cfg.FollowURLs = c.StringSlice(flagFollowSource)
	cfg.Quorum = c.Int(flagFollowQuorum)
	if err := checkFollow(cfg.Source, cfg.FollowURLs, cfg.Quorum); err != nil {
		return cfg, err
	}
	kind, err := remotel2.ParseKind(c.String(flagFollowKind))
	if err != nil {
		return cfg, &flagError{flag: flagFollowKind, err: err}
	}
	cfg.FollowKind = kind
	cfg.L1URL, cfg.L1Verify = c.String(flagL1), c.Bool(flagL1Verify)
	cfg.L1BeaconURL, cfg.L1CrossCheck = c.String(flagL1Beacon), c.Bool(flagL1CrossCheck)
	cfg.L1CrossState = c.String(flagL1CrossState)
	if err := checkL1(cfg); err != nil {
		return cfg, err
	}
	cfg.BackfillURL = c.String(flagBackfillSource)
	switch m := c.String(flagSyncMode); m {
	case "el-sync":
		if cfg.BackfillURL != "" {
			return cfg, badFlag(flagBackfillSource, "only --%s backfill fetches payloads", flagSyncMode)
		}
	case "backfill":
		if cfg.Source == sourceL1 {
			return cfg, badFlag(flagSyncMode, "backfill fetches payloads from a remote; --%s %s builds the derived blocks itself", flagSource, sourceL1)
		}
		cfg.Backfill = true
		if cfg.BackfillURL != "" {
			if err := checkURL(flagBackfillSource, cfg.BackfillURL); err != nil {
				return cfg, err
			}
		}
	default:
		return cfg, badFlag(flagSyncMode, "unknown mode %q: want el-sync or backfill", m)
	}
	cfg.UnsafeURLs, cfg.UnsafeDisable = c.StringSlice(flagUnsafeSource), c.Bool(flagUnsafeDisable)
	if err := checkUnsafe(cfg); err != nil {
		return cfg, err
	}
	if cfg.P2P, err = p2pFromCLI(c); err != nil {
		return cfg, err
	}
	if cfg.SafeDBPath != "" && cfg.Source == sourceQuorum {
		return cfg, badFlag(flagSafeDB, "a quorum's members do not agree on an L1 block their safe heads were derived up to: "+
			"only a rollup-node source (--%s %s) or --%s %s feed the safe-head database", flagSource, sourceL2, flagSource, sourceL1)
	}
	if cfg.P2P.Enabled && cfg.UnsafeDisable {
		return cfg, badFlag(flagUnsafeDisable, "turns tip following off, which gossip feeds: drop one of them")
	}
	if mib := c.Int(flagMaxResponse); mib < 1 || mib > 4096 {
		return cfg, badFlag(flagMaxResponse, "%d: want 1..4096 (MiB)", mib)
	} else {
		cfg.MaxResponse = int64(mib) << 20
	}
	if cfg.PollInterval <= 0 {
		return cfg, badFlag(flagPollInterval, "%s: must be positive", cfg.PollInterval)
	}
	if cfg.FollowTimeout <= 0 {
		return cfg, badFlag(flagFollowTimeout, "%s: must be positive", cfg.FollowTimeout)
	}
	return cfg, nil
}

// checkFollow checks --source, --l2.follow.source and --l2.follow.quorum
// together: one remote for l2, at least two and 1 <= M <= N for quorum.
func checkFollow(source string, urls []string, m int) error {
	switch source {
	case sourceL1:
		if len(urls) > 0 {
			return badFlag(flagFollowSource, "not used with --%s %s, which follows no remote (--%s adds an L1 check to --%s %s)",
				flagSource, sourceL1, flagL1CrossCheck, flagSource, sourceL2)
		}
		if m != 0 {
			return badFlag(flagFollowQuorum, "%d: only --%s %s takes a threshold", m, flagSource, sourceQuorum)
		}
	case sourceL2:
		switch len(urls) {
		case 0:
			return badFlag(flagFollowSource, "required with --%s %s: the URL of the remote L2 node", flagSource, sourceL2)
		case 1:
		default:
			return badFlag(flagFollowSource, "given %d times; --%s %s follows one remote (--%s %s follows several)",
				len(urls), flagSource, sourceL2, flagSource, sourceQuorum)
		}
		if m != 0 {
			return badFlag(flagFollowQuorum, "%d: only --%s %s takes a threshold", m, flagSource, sourceQuorum)
		}
	case sourceQuorum:
		if len(urls) < 2 {
			return badFlag(flagFollowSource, "%s; --%s %s needs at least 2 remotes, one --%s each",
				map[int]string{0: "not given", 1: "given once"}[len(urls)], flagSource, sourceQuorum, flagFollowSource)
		}
		if m < 0 || m > len(urls) {
			return badFlag(flagFollowQuorum, "%d out of range: want 1..%d (the number of --%s), or 0 for a strict majority",
				m, len(urls), flagFollowSource)
		}
	default:
		return badFlag(flagSource, "unknown source %q: want %s, %s or %s", source, sourceL2, sourceQuorum, sourceL1)
	}
	for _, u := range urls {
		if err := checkURL(flagFollowSource, u); err != nil {
			return err
		}
	}
	return nil
}

// checkL1 checks the L1 flags against --source: deriving from L1 (--source
// l1 or --l1.crosscheck) needs --l1, and --source l1 a rollup config file.
func checkL1(cfg nodeConfig) error {
	if cfg.L1URL != "" {
		if err := checkURL(flagL1, cfg.L1URL); err != nil {
			return err
		}
	}
	if cfg.L1BeaconURL != "" {
		if err := checkURL(flagL1Beacon, cfg.L1BeaconURL); err != nil {
			return err
		}
	}
	derives := cfg.Source == sourceL1 || cfg.L1CrossCheck
	switch {
	case cfg.Source == sourceL1 && cfg.L1CrossCheck:
		return badFlag(flagL1CrossCheck, "--%s %s derives from L1 already; the cross-check is for --%s %s or %s",
			flagSource, sourceL1, flagSource, sourceL2, sourceQuorum)
	case derives && cfg.L1URL == "":
		if cfg.Source == sourceL1 {
			return badFlag(flagL1, "required with --%s %s: the L1 JSON-RPC URL to derive from", flagSource, sourceL1)
		}
		return badFlag(flagL1, "required with --%s: the L1 JSON-RPC URL to derive from", flagL1CrossCheck)
	case cfg.Source == sourceL1 && cfg.RollupConfigPath == "":
		return badFlag(flagRollupConfig, "required with --%s %s: op-node's rollup.json for the chain to derive", flagSource, sourceL1)
	case !derives && cfg.L1BeaconURL != "":
		return badFlag(flagL1Beacon, "only used when deriving from L1 (--%s %s or --%s)", flagSource, sourceL1, flagL1CrossCheck)
	case cfg.L1CrossState != "" && !cfg.L1CrossCheck:
		return badFlag(flagL1CrossState, "only used with --%s", flagL1CrossCheck)
	}
	return nil
}

// checkUnsafe checks the tip feed's flags.
func checkUnsafe(cfg nodeConfig) error {
	if cfg.UnsafeDisable && len(cfg.UnsafeURLs) > 0 {
		return badFlag(flagUnsafeSource, "given with --%s, which turns tip following off", flagUnsafeDisable)
	}
	seen := map[string]bool{}
	for _, u := range cfg.UnsafeURLs {
		if err := checkURL(flagUnsafeSource, u); err != nil {
			return err
		}
		if seen[u] {
			return badFlag(flagUnsafeSource, "%s is given twice", u)
		}
		seen[u] = true
	}
	return nil
}

// checkURL checks a flag's remote URL (safesource.CheckURL).
func checkURL(flag, s string) error {
	if err := safesource.CheckURL(s); err != nil {
		return &flagError{flag: flag, err: err}
	}
	return nil
}

func newLogger(cfg nodeConfig, w io.Writer) log.Logger { return oplog.NewLogger(w, cfg.Log) }
