package main

import (
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/BurntSushi/toml"
	oprpc "github.com/ethereum-optimism/optimism/op-service/rpc"
	"github.com/ethereum/go-ethereum/log"
	"github.com/urfave/cli/v2"
)

// flagChains names the file of chains one process follows.
const flagChains = "chains"

// chainSpec is one chain of a --chains file: its chain id (the table's name)
// and the settings its table gives, read and checked as the single-chain flags.
type chainSpec struct {
	ID  *big.Int
	cfg nodeConfig
}

// readChains reads a --chains file: a TOML file with one table per chain,
// named by its L2 chain id, whose keys are the single-chain flags' names:
//
//	[chain.901]
//	engine = "http://127.0.0.1:8551"
//	jwt-secret = "/secrets/901.hex"
//	"l2.follow.source" = "http://op-node-901:9545"
//
// A key given several times on a command line takes a list. Every table is
// checked as the command line is; the first bad one is refused with an error
// naming the chain and the key.
func readChains(path string) ([]chainSpec, error) {
	specs, err := parseChains(path)
	if err != nil {
		return nil, err
	}
	if err := checkChains(specs); err != nil {
		return nil, badFlag(flagChains, "%s: %w", path, err)
	}
	return specs, nil
}

// parseChains reads and checks a --chains file's tables, without opening the
// files they name.
func parseChains(path string) ([]chainSpec, error) {
	var file struct {
		Chain map[string]map[string]any `toml:"chain"`
	}
	md, err := toml.DecodeFile(path, &file)
	if err != nil {
		return nil, badFlag(flagChains, "%s: %w", path, err)
	}
	for _, k := range md.Undecoded() {
		// keys below a chain's table are its settings, read below; anything
		// else is not of this file
		if len(k) < 3 || k[0] != "chain" {
			return nil, badFlag(flagChains, "%s: %q is not a chain table: every table is [chain.<L2 chain id>]", path, k.String())
		}
	}
	if len(file.Chain) == 0 {
		return nil, badFlag(flagChains, "%s: no chain: give one [chain.<L2 chain id>] table per chain", path)
	}
	ids := make([]string, 0, len(file.Chain))
	for id := range file.Chain {
		ids = append(ids, id)
	}
	// the file's order is lost in the map: go by chain id
	sort.Slice(ids, func(i, j int) bool { return chainIDLess(ids[i], ids[j]) })
	specs := make([]chainSpec, 0, len(ids))
	for _, id := range ids {
		spec, err := readChain(id, file.Chain[id])
		if err != nil {
			return nil, badFlag(flagChains, "%s: chain %s: %w", path, id, err)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// checkChains checks at start what a chain would otherwise fail on only once
// it starts, while the others run: its JWT secret and rollup config files,
// and files or ports two chains cannot both hold.
func checkChains(specs []chainSpec) error {
	quiet := log.NewLogger(log.DiscardHandler())
	held := map[string]string{} // "key value" -> the chain holding it
	for _, s := range specs {
		id := s.label()
		if _, err := oprpc.ObtainJWTSecret(quiet, s.cfg.JWTSecretPath, false); err != nil {
			return fmt.Errorf("chain %s: %s: %w", id, flagJWTSecret, err)
		}
		if path := s.cfg.RollupConfigPath; path != "" {
			cfg, err := readRollupConfig(path)
			if err == nil {
				err = cfg.Check()
			}
			if err == nil && (cfg.L2ChainID == nil || cfg.L2ChainID.Cmp(s.ID) != 0) {
				err = fmt.Errorf("%s is for L2 chain %v, not the table's chain %s", path, cfg.L2ChainID, id)
			}
			if err != nil {
				return fmt.Errorf("chain %s: %s: %w", id, flagRollupConfig, err)
			}
		}
		exclusive := map[string]string{flagSafeDB: s.cfg.SafeDBPath, flagL1CrossState: s.cfg.L1CrossState, flagP2PPrivPath: s.cfg.P2P.PrivPath}
		if p := s.cfg.P2P; p.Enabled && p.ListenTCP != 0 {
			exclusive[flagP2PListenTCP] = net.JoinHostPort(p.ListenIP.String(), strconv.Itoa(p.ListenTCP))
		}
		for _, key := range []string{flagSafeDB, flagL1CrossState, flagP2PPrivPath, flagP2PListenTCP} {
			v := exclusive[key]
			if v == "" {
				continue
			}
			if other, ok := held[key+" "+v]; ok {
				return fmt.Errorf("chain %s: %s: %s is chain %s's too: each chain needs its own", id, key, v, other)
			}
			held[key+" "+v] = id
		}
	}
	return nil
}

func chainIDLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// readChain reads one chain's table: its keys become the command line of a
// single-chain node, read by configFromCLI as the process's own is.
func readChain(id string, table map[string]any) (chainSpec, error) {
	chainID, ok := new(big.Int).SetString(id, 10)
	if !ok || chainID.Sign() <= 0 || id != chainID.String() {
		return chainSpec{}, fmt.Errorf("the table's name must be the L2 chain id in decimal, as [chain.10]")
	}
	settings := map[string]any{}
	if err := flatten("", table, settings); err != nil {
		return chainSpec{}, err
	}
	known, process := chainFlagNames(), processFlagNames()
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{"chain"}
	for _, k := range keys {
		switch {
		case process[k]:
			return chainSpec{}, fmt.Errorf("%s: a setting of the whole process: give it on the command line as --%s", k, k)
		case !known[k]:
			return chainSpec{}, fmt.Errorf("%s: not a setting of a chain (the keys are the single-chain flags' names; see --help)", k)
		}
		values, err := argValues(settings[k])
		if err != nil {
			return chainSpec{}, fmt.Errorf("%s: %w", k, err)
		}
		for _, v := range values {
			args = append(args, "--"+k+"="+v)
		}
	}
	cfg, err := parseChainArgs(args)
	if err != nil {
		var fe *flagError
		if errors.As(err, &fe) {
			return chainSpec{}, fmt.Errorf("%s: %w", fe.flag, fe.err)
		}
		return chainSpec{}, err
	}
	// the process serves every chain's status and metrics itself
	cfg.RPC.ListenPort = -1
	cfg.Metrics.Enabled = false
	return chainSpec{ID: chainID, cfg: cfg}, nil
}

// flatten turns nested tables (TOML's dotted keys without quotes:
// l2.follow.source = "...") into dotted names. A name given both ways is
// refused.
func flatten(prefix string, table map[string]any, out map[string]any) error {
	for k, v := range table {
		if prefix != "" {
			k = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			if err := flatten(k, sub, out); err != nil {
				return err
			}
			continue
		}
		if _, ok := out[k]; ok {
			return fmt.Errorf("%s: given twice (quoted and as nested keys)", k)
		}
		out[k] = v
	}
	return nil
}

// argValues renders a TOML value as flag values: a list gives one value per
// item.
func argValues(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case bool:
		return []string{strconv.FormatBool(v)}, nil
	case int64:
		return []string{strconv.FormatInt(v, 10)}, nil
	case []any:
		var out []string
		for _, item := range v {
			s, ok := item.(string)
			if !ok {
				return nil, fmt.Errorf("a list holds strings only, not %T", item)
			}
			out = append(out, s)
		}
		return out, nil
	case time.Time:
		return nil, errors.New("a date is not a setting; durations are strings, as \"2s\"")
	default:
		return nil, fmt.Errorf("a %T is not a setting's value: give a string, a number, true or false, or a list of strings", v)
	}
}

// parseChainArgs reads one chain's settings as a command line, with the
// process's own parsing and checks, and without the environment: LIGHTCL_*
// variables set the process, not each chain.
func parseChainArgs(args []string) (nodeConfig, error) {
	var cfg nodeConfig
	flags := chainFlags()
	for _, f := range flags {
		if err := clearEnv(f); err != nil {
			return cfg, err
		}
	}
	app := &cli.App{
		Name: "chain", Flags: flags, Writer: io.Discard, ErrWriter: io.Discard,
		HideHelp: true, HideHelpCommand: true, HideVersion: true,
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return err
		},
		Action: func(c *cli.Context) error {
			var err error
			cfg, err = chainConfigFromCLI(c)
			return err
		},
	}
	err := app.Run(args)
	return cfg, err
}

// clearEnv takes the environment variables off a flag.
func clearEnv(f cli.Flag) error {
	switch f := f.(type) {
	case *cli.StringFlag:
		f.EnvVars = nil
	case *cli.StringSliceFlag:
		f.EnvVars = nil
	case *cli.IntFlag:
		f.EnvVars = nil
	case *cli.BoolFlag:
		f.EnvVars = nil
	case *cli.DurationFlag:
		f.EnvVars = nil
	case *cli.GenericFlag:
		f.EnvVars = nil
	default:
		return fmt.Errorf("--%s: a flag of type %T cannot be read per chain", f.Names()[0], f)
	}
	return nil
}

// chainFlagNames are the names (and aliases) a chain's table may use.
func chainFlagNames() map[string]bool {
	out := map[string]bool{}
	for _, f := range chainFlags() {
		for _, n := range f.Names() {
			out[n] = true
		}
	}
	return out
}

// processFlagNames are the flags of the whole process: its servers and logs.
func processFlagNames() map[string]bool {
	out := map[string]bool{flagChains: true}
	for _, f := range processFlags() {
		for _, n := range f.Names() {
			out[n] = true
		}
	}
	return out
}

// chainsConflict returns the first chain flag given on the command line (or
// in the environment) beside --chains: each chain's settings are in the file.
func chainsConflict(c *cli.Context) error {
	for _, f := range chainFlags() {
		name := f.Names()[0]
		if c.IsSet(name) {
			return badFlag(name, "set per chain in the --%s file, not on the command line or in the environment beside it", flagChains)
		}
	}
	return nil
}

// label is a chain's name in logs, metrics and the status RPC's paths: its
// chain id in decimal.
func (s chainSpec) label() string { return s.ID.String() }
