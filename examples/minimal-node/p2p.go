package main

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/lightcl/lightcl/safesource/gossip"
)

// op-node's p2p flag names, where minimal-node has the same meaning; and the
// signer for a node without --l1.
const (
	flagP2PDisable     = "p2p.disable"
	flagP2PListenIP    = "p2p.listen.ip"
	flagP2PListenTCP   = "p2p.listen.tcp"
	flagP2PStatic      = "p2p.static"
	flagP2PBootnodes   = "p2p.bootnodes"
	flagP2PPrivPath    = "p2p.priv.path"
	flagP2PNoDiscovery = "p2p.no-discovery"
	flagP2PScoring     = "p2p.scoring"
	flagP2PThreshold   = "p2p.gossip.timestamp.threshold"
	flagP2PSigner      = "p2p.unsafe-block-signer"
)

// signerReload is how often the unsafe block signer is read again from L1's
// SystemConfig, as op-node's runtime config is.
const signerReload = 10 * time.Minute

func p2pFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: flagP2PDisable, EnvVars: envVar(flagP2PDisable),
			Usage: "no gossip, whatever the other --p2p flags say"},
		&cli.StringFlag{Name: flagP2PListenIP, EnvVars: envVar(flagP2PListenIP), Value: "0.0.0.0",
			Usage: "gossip: the address to listen on. Gossip is on once --" + flagP2PStatic + ", --" + flagP2PListenTCP +
				" or --" + flagP2PListenIP + " is given, and --" + flagP2PDisable + " is not"},
		&cli.IntFlag{Name: flagP2PListenTCP, EnvVars: envVar(flagP2PListenTCP), Value: 9222,
			Usage: "gossip: the TCP port to listen on; 0 picks a free port"},
		&cli.StringSliceFlag{Name: flagP2PStatic, EnvVars: envVar(flagP2PStatic),
			Usage: "gossip: peers to connect to and stay connected to, as multiaddrs ending in /p2p/<peer id> " +
				"(comma-separated, as op-node's)"},
		&cli.StringSliceFlag{Name: flagP2PBootnodes, EnvVars: envVar(flagP2PBootnodes),
			Usage: "refused at start: the node does not discover peers, it connects to --" + flagP2PStatic + " only"},
		&cli.StringFlag{Name: flagP2PPrivPath, EnvVars: envVar(flagP2PPrivPath),
			Usage: "gossip: a file with the host's secp256k1 key as 32 bytes of hex (op-node's format), for a peer id " +
				"that stays across restarts; default: a new key at each start"},
		&cli.BoolFlag{Name: flagP2PNoDiscovery, EnvVars: envVar(flagP2PNoDiscovery),
			Usage: "accepted for op-node's configs: discovery is not built, so the node always runs as with it"},
		&cli.StringFlag{Name: flagP2PScoring, EnvVars: envVar(flagP2PScoring), Value: "light",
			Usage: "gossip: peer scoring, as op-node's: light (peers below -100 are banned for an hour) or none"},
		&cli.DurationFlag{Name: flagP2PThreshold, EnvVars: envVar(flagP2PThreshold), Value: 60 * time.Second,
			Usage: "gossip: blocks older than this are rejected, as op-node's"},
		&cli.StringFlag{Name: flagP2PSigner, EnvVars: envVar(flagP2PSigner),
			Usage: "gossip: the address that signs the chain's unsafe blocks, for a node without --" + flagL1 +
				"; with --" + flagL1 + " it is read from L1's SystemConfig (and again every 10 minutes)"},
	}
}

// p2pConfig is the gossip part of nodeConfig.
type p2pConfig struct {
	Enabled   bool
	ListenIP  net.IP
	ListenTCP int
	Static    []string
	Bootnodes []string
	PrivPath  string
	Scoring   bool
	Threshold time.Duration
	Signer    common.Address // zero: read from L1
}

// p2pFromCLI reads the gossip flags. Gossip is off unless a flag that only
// gossip uses is given, and --p2p.disable wins.
func p2pFromCLI(c *cli.Context) (p2pConfig, error) {
	var pc p2pConfig
	asked := false
	for _, f := range []string{flagP2PStatic, flagP2PListenTCP, flagP2PListenIP} {
		asked = asked || c.IsSet(f)
	}
	pc.Enabled = asked && !c.Bool(flagP2PDisable)
	if pc.ListenIP = net.ParseIP(c.String(flagP2PListenIP)); pc.ListenIP == nil {
		return pc, badFlag(flagP2PListenIP, "%q is not an IP address", c.String(flagP2PListenIP))
	}
	if pc.ListenTCP = c.Int(flagP2PListenTCP); pc.ListenTCP < 0 || pc.ListenTCP > 65535 {
		return pc, badFlag(flagP2PListenTCP, "%d: want 0..65535", pc.ListenTCP)
	}
	pc.Static, pc.Bootnodes, pc.PrivPath = c.StringSlice(flagP2PStatic), c.StringSlice(flagP2PBootnodes), c.String(flagP2PPrivPath)
	if len(pc.Bootnodes) > 0 {
		return pc, badFlag(flagP2PBootnodes, "not supported yet: the node does not discover peers; give --%s", flagP2PStatic)
	}
	switch s := c.String(flagP2PScoring); s {
	case "light":
		pc.Scoring = true
	case "none":
	default:
		return pc, badFlag(flagP2PScoring, "unknown scoring %q: want light or none", s)
	}
	if pc.Threshold = c.Duration(flagP2PThreshold); pc.Threshold <= 0 {
		return pc, badFlag(flagP2PThreshold, "%s: must be positive", pc.Threshold)
	}
	if s := c.String(flagP2PSigner); s != "" {
		if !common.IsHexAddress(s) {
			return pc, badFlag(flagP2PSigner, "%q is not an address", s)
		}
		if c.String(flagL1) != "" {
			return pc, badFlag(flagP2PSigner, "given with --%s, from which the signer is read (L1's SystemConfig): drop one", flagL1)
		}
		pc.Signer = common.HexToAddress(s)
	}
	return pc, nil
}

// gossipFeed starts the gossip host when gossip is on: its signer is
// --p2p.unsafe-block-signer, or read from L1's SystemConfig with --l1.
func (n *node) gossipFeed(ctx context.Context, reg prometheus.Registerer) (*gossip.Feed, error) {
	pc := n.cfg.P2P
	if !pc.Enabled {
		return nil, nil
	}
	cfg := gossip.DefaultConfig()
	cfg.RollupConfig, cfg.ListenIP, cfg.ListenTCPPort = n.rollup, pc.ListenIP, uint16(pc.ListenTCP)
	cfg.StaticPeers, cfg.Bootnodes, cfg.PrivateKeyPath = pc.Static, pc.Bootnodes, pc.PrivPath
	cfg.DisablePeerScoring, cfg.GossipTimestampThreshold = !pc.Scoring, pc.Threshold
	cfg.ServePayloads = n.engine // peers may ask for the engine's blocks by number, as op-node serves them
	switch {
	case pc.Signer != (common.Address{}):
		cfg.Signer = gossip.FixedSigner(pc.Signer)
		n.signerDesc = pc.Signer.Hex()
	case n.cfg.L1URL != "":
		signer, err := n.l1Signer(ctx)
		if err != nil {
			return nil, err
		}
		cfg.Signer = signer
		n.signerDesc = "L1 SystemConfig " + n.rollup.L1SystemConfigAddress.Hex()
	default:
		return nil, badFlag(flagP2PSigner, "required for gossip without --%s: the address that signs the chain's unsafe blocks", flagL1)
	}
	if err := cfg.Check(); err != nil {
		return nil, gossipFlagError(err)
	}
	metrics, err := gossip.NewPrometheusMetrics(reg, "lightcl")
	if err != nil {
		return nil, err
	}
	feed, err := gossip.New(ctx, cfg, n.log, metrics)
	if err != nil {
		return nil, gossipFlagError(err)
	}
	n.closers = append(n.closers, func() { _ = feed.Close() })
	n.gossip = feed
	st := feed.Status()
	addrs := make([]string, len(st.ListenAddrs))
	for i, a := range st.ListenAddrs {
		addrs[i] = a.String()
	}
	n.startLine = append(n.startLine, "gossip", strings.Join(addrs, ","), "unsafe_signer", n.signerDesc,
		"static_peers", len(pc.Static))
	return feed, nil
}

// gossipFlagError names the flag a gossip config error is about.
func gossipFlagError(err error) error {
	flag := flagP2PListenTCP
	for _, f := range []struct{ field, flag string }{
		{"StaticPeers", flagP2PStatic}, {"Bootnodes", flagP2PBootnodes}, {"PrivateKey", flagP2PPrivPath},
	} {
		if strings.Contains(err.Error(), f.field) {
			flag = f.flag
		}
	}
	return &flagError{flag: flag, err: err}
}

// l1Signer reads the unsafe block signer from L1's SystemConfig at the L1
// head once at start, and again every signerReload while the node runs.
func (n *node) l1Signer(ctx context.Context) (*gossip.L1Signer, error) {
	rpcClient, err := n.dialChain(ctx, flagL1, n.cfg.L1URL, n.rollup.L1ChainID)
	if err != nil {
		return nil, err
	}
	l1, err := sources.NewL1Client(rpcClient, n.log, nil, sources.L1ClientDefaultConfig(n.rollup, false, sources.RPCKindStandard))
	if err != nil {
		return nil, &flagError{flag: flagL1, err: err}
	}
	signer := gossip.NewL1Signer(n.log, l1, n.rollup)
	rctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := signer.RefreshHead(rctx); err != nil {
		// blocks are ignored until a read succeeds; L1 may be down for a while
		n.log.Warn("Could not read the unsafe block signer from L1 yet; gossiped blocks are ignored until it is read",
			"l1", n.cfg.L1URL, "err", err)
	}
	n.runs = append(n.runs, func(ctx context.Context) error { return signer.Run(ctx, signerReload) })
	return signer, nil
}

// gossipStatus is lightcl_status's gossip part.
type gossipStatus struct {
	ID          string            `json:"id"`
	ListenAddrs []string          `json:"listen_addrs"`
	Peers       int               `json:"peers"`
	Signer      string            `json:"signer"`
	Received    uint64            `json:"received"`
	Accepted    uint64            `json:"accepted"`
	Rejected    map[string]uint64 `json:"rejected"`
	Duplicates  uint64            `json:"duplicates"`
	Dropped     uint64            `json:"dropped"`
	Head        eth.BlockID       `json:"head"`
}

func (n *node) gossipStatus() *gossipStatus {
	if n.gossip == nil {
		return nil
	}
	st := n.gossip.Status()
	out := &gossipStatus{
		ID: st.ID.String(), Peers: len(st.Peers), Signer: n.signerDesc,
		Received: st.Received, Accepted: st.Accepted, Rejected: st.Rejected,
		Duplicates: st.Duplicates, Dropped: st.Dropped, Head: st.Head,
	}
	for _, a := range st.ListenAddrs {
		out.ListenAddrs = append(out.ListenAddrs, a.String())
	}
	if out.Rejected == nil {
		out.Rejected = map[string]uint64{}
	}
	if out.ListenAddrs == nil {
		out.ListenAddrs = []string{}
	}
	return out
}
