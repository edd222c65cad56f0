package gossip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/p2p"
	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	libp2p "github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// ErrDiscoveryUnsupported is wrapped by Check when Bootnodes are given: the
// feed does not run discv5 yet, it connects to StaticPeers only.
var ErrDiscoveryUnsupported = errors.New("peer discovery (bootnodes) is not supported yet, give StaticPeers")

// PayloadSource serves the local chain's blocks by number to peers that ask
// over op-node's request-response protocol. A block it does not have must be
// answered with an error that wraps ethereum.NotFound.
// *sources.L2Client has this method.
type PayloadSource interface {
	PayloadByNumber(ctx context.Context, number uint64) (*eth.ExecutionPayloadEnvelope, error)
}

// Config configures a gossip feed. Zero values take the defaults, which for
// the p2p host are op-node's.
type Config struct {
	// Name identifies the feed in logs and status; default "gossip".
	Name string
	// RollupConfig is the chain's rollup config: its L2 chain id names the
	// topics and is signed over, and its fork times pick the topic versions.
	// Required.
	RollupConfig *rollup.Config
	// Signer tells which key signs the chain's unsafe blocks: FixedSigner, an
	// L1Signer, or op-node's runcfg.RuntimeConfig. Required.
	Signer Signer

	// ListenIP is the address to listen on; default 0.0.0.0.
	ListenIP net.IP
	// ListenTCPPort is the TCP port to listen on; 0 takes a free port, which
	// Status().ListenAddrs tells.
	ListenTCPPort uint16
	// StaticPeers are the peers to connect to and stay connected to, as
	// multiaddrs that end in /p2p/<peer id>, e.g.
	// "/ip4/10.0.0.1/tcp/9222/p2p/16Uiu2HAm...".
	StaticPeers []string
	// Bootnodes are not supported yet: Check refuses them with
	// ErrDiscoveryUnsupported.
	Bootnodes []string

	// PrivateKeyPath is a file holding the host's secp256k1 key as 32 bytes in
	// hex (op-node's --p2p.priv.path format). It is only read.
	PrivateKeyPath string
	// PrivateKey is the host's secp256k1 key as 32 raw bytes. With neither
	// key, New generates one: the peer id then changes at every start.
	PrivateKey []byte

	// PeersLo and PeersHi are the connection manager's low and high water
	// marks; default 20 and 30.
	PeersLo, PeersHi uint
	// PeersGrace is how long a new connection is safe from pruning; default 30s.
	PeersGrace time.Duration
	// TimeoutDial, TimeoutNegotiation and TimeoutAccept bound a connection's
	// set-up; default 10s each.
	TimeoutDial, TimeoutNegotiation, TimeoutAccept time.Duration
	// GossipTimestampThreshold: blocks older than this are rejected; default 60s.
	GossipTimestampThreshold time.Duration
	// DisablePeerScoring turns off op-node's "light" peer scoring, and with it
	// the banning of peers whose score falls below -100.
	DisablePeerScoring bool
	// UserAgent is told to peers; default "lightcl".
	UserAgent string

	// BufferSize bounds the accepted blocks waiting for Run's consumer; when it
	// is full the oldest is dropped. Default 64.
	BufferSize int
	// CacheSize is how many accepted blocks PayloadByHash remembers; default 256.
	CacheSize int

	// ServePayloads, when set, is served to peers that ask for blocks by
	// number (op-node's payload_by_number protocol).
	ServePayloads PayloadSource
}

// DefaultConfig returns the defaults; RollupConfig and Signer still have to be set.
func DefaultConfig() Config {
	return Config{
		Name:                     "gossip",
		ListenIP:                 net.IPv4zero,
		PeersLo:                  20,
		PeersHi:                  30,
		PeersGrace:               30 * time.Second,
		TimeoutDial:              10 * time.Second,
		TimeoutNegotiation:       10 * time.Second,
		TimeoutAccept:            10 * time.Second,
		GossipTimestampThreshold: 60 * time.Second,
		UserAgent:                "lightcl",
		BufferSize:               64,
		CacheSize:                256,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	def := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&c.PeersGrace, d.PeersGrace)
	def(&c.TimeoutDial, d.TimeoutDial)
	def(&c.TimeoutNegotiation, d.TimeoutNegotiation)
	def(&c.TimeoutAccept, d.TimeoutAccept)
	def(&c.GossipTimestampThreshold, d.GossipTimestampThreshold)
	if c.Name == "" {
		c.Name = d.Name
	}
	if c.ListenIP == nil {
		c.ListenIP = d.ListenIP
	}
	if c.PeersLo == 0 {
		c.PeersLo = d.PeersLo
	}
	if c.PeersHi == 0 {
		c.PeersHi = max(d.PeersHi, c.PeersLo)
	}
	if c.UserAgent == "" {
		c.UserAgent = d.UserAgent
	}
	if c.BufferSize == 0 {
		c.BufferSize = d.BufferSize
	}
	if c.CacheSize == 0 {
		c.CacheSize = d.CacheSize
	}
	return c
}

// Check reports the first field that is missing or out of range.
func (c Config) Check() error {
	switch {
	case c.RollupConfig == nil:
		return errors.New("gossip: RollupConfig is missing")
	case c.RollupConfig.L2ChainID == nil:
		return errors.New("gossip: RollupConfig has no L2ChainID")
	case c.RollupConfig.BlockTime == 0:
		return errors.New("gossip: RollupConfig has no BlockTime")
	case c.Signer == nil:
		return errors.New("gossip: Signer is missing")
	case len(c.Bootnodes) > 0:
		return fmt.Errorf("gossip: Bootnodes: %w", ErrDiscoveryUnsupported)
	case c.PrivateKeyPath != "" && c.PrivateKey != nil:
		return errors.New("gossip: both PrivateKeyPath and PrivateKey are set")
	case c.PrivateKey != nil && len(c.PrivateKey) != 32:
		return fmt.Errorf("gossip: PrivateKey has %d bytes, want 32", len(c.PrivateKey))
	case c.PeersHi != 0 && c.PeersLo > c.PeersHi:
		return fmt.Errorf("gossip: PeersLo %d is above PeersHi %d", c.PeersLo, c.PeersHi)
	case c.PeersGrace < 0, c.TimeoutDial < 0, c.TimeoutNegotiation < 0, c.TimeoutAccept < 0:
		return errors.New("gossip: PeersGrace and the Timeouts must not be negative")
	case c.GossipTimestampThreshold < 0:
		return fmt.Errorf("gossip: GossipTimestampThreshold %s is negative", c.GossipTimestampThreshold)
	case c.BufferSize < 0:
		return fmt.Errorf("gossip: BufferSize %d is negative", c.BufferSize)
	case c.CacheSize < 0:
		return fmt.Errorf("gossip: CacheSize %d is negative", c.CacheSize)
	}
	if _, err := parsePeers(c.StaticPeers); err != nil {
		return err
	}
	return nil
}

// parsePeers parses static peers, each of which must name its peer id.
func parsePeers(addrs []string) ([]multiaddr.Multiaddr, error) {
	out := make([]multiaddr.Multiaddr, 0, len(addrs))
	for i, s := range addrs {
		a, err := multiaddr.NewMultiaddr(strings.TrimSpace(s))
		if err == nil {
			_, err = peer.AddrInfoFromP2pAddr(a)
		}
		if err != nil {
			return nil, fmt.Errorf("gossip: StaticPeers[%d] %q: %w", i, s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// p2pConfig builds op-node's host config from c (with its defaults). It
// reports whether the key was generated.
func (c Config) p2pConfig() (*p2p.Config, bool, error) {
	key, generated, err := c.key()
	if err != nil {
		return nil, false, err
	}
	peers, err := parsePeers(c.StaticPeers)
	if err != nil {
		return nil, false, err
	}
	conf := &p2p.Config{
		Priv:                     key,
		NoDiscovery:              true,
		ListenIP:                 c.ListenIP,
		ListenTCPPort:            c.ListenTCPPort,
		StaticPeers:              peers,
		HostMux:                  []libp2p.Option{p2p.YamuxC(), p2p.MplexC()},
		HostSecurity:             []libp2p.Option{p2p.NoiseC()},
		PeersLo:                  c.PeersLo,
		PeersHi:                  c.PeersHi,
		PeersGrace:               c.PeersGrace,
		MeshD:                    p2p.DefaultMeshD,
		MeshDLo:                  p2p.DefaultMeshDlo,
		MeshDHi:                  p2p.DefaultMeshDhi,
		MeshDLazy:                p2p.DefaultMeshDlazy,
		GossipTimestampThreshold: c.GossipTimestampThreshold,
		UserAgent:                c.UserAgent,
		TimeoutDial:              c.TimeoutDial,
		TimeoutNegotiation:       c.TimeoutNegotiation,
		TimeoutAccept:            c.TimeoutAccept,
		Store:                    dssync.MutexWrap(ds.NewMapDatastore()),
		EnableReqRespSync:        c.ServePayloads != nil,
		EnablePingService:        true,
	}
	if !c.DisablePeerScoring {
		if conf.ScoringParams, err = p2p.GetScoringParams("light", c.RollupConfig.BlockTime); err != nil {
			return nil, false, fmt.Errorf("gossip: peer scoring: %w", err)
		}
		// op-node's defaults for --p2p.ban.peers, .threshold and .duration
		conf.BanningEnabled, conf.BanningThreshold, conf.BanningDuration = true, -100, time.Hour
	}
	return conf, generated, nil
}

// key reads or generates the host key.
func (c Config) key() (*crypto.Secp256k1PrivateKey, bool, error) {
	raw := c.PrivateKey
	if c.PrivateKeyPath != "" {
		data, err := os.ReadFile(c.PrivateKeyPath)
		if err != nil {
			return nil, false, fmt.Errorf("gossip: PrivateKeyPath: %w", err)
		}
		s := strings.TrimPrefix(strings.TrimSpace(string(data)), "0x")
		if raw, err = hex.DecodeString(s); err != nil || len(raw) != 32 {
			// the error would quote the key
			return nil, false, fmt.Errorf("gossip: PrivateKeyPath %s does not hold 32 bytes in hex", c.PrivateKeyPath)
		}
	}
	if raw == nil {
		k, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
		if err != nil {
			return nil, false, fmt.Errorf("gossip: generating a host key: %w", err)
		}
		return k.(*crypto.Secp256k1PrivateKey), true, nil
	}
	k, err := crypto.UnmarshalSecp256k1PrivateKey(raw)
	if err != nil {
		return nil, false, errors.New("gossip: the private key is not a valid secp256k1 key")
	}
	return k.(*crypto.Secp256k1PrivateKey), false, nil
}
