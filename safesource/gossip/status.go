package gossip

import (
	"maps"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// Status is a snapshot of the feed.
type Status struct {
	// ID is the host's peer id.
	ID peer.ID
	// ListenAddrs are the host's addresses, each ending in /p2p/<ID>, as a
	// peer's static peer.
	ListenAddrs []multiaddr.Multiaddr
	// Peers are the connected peers.
	Peers []peer.ID
	// Received counts the block messages from peers: each was delivered
	// (Accepted), Rejected, or a duplicate.
	Received uint64
	// Accepted counts the blocks op-node's validator accepted.
	Accepted uint64
	// Rejected counts the blocks rejected or ignored, by reason (Reasons()).
	Rejected map[string]uint64
	// Duplicates counts messages dropped as already seen.
	Duplicates uint64
	// Dropped counts accepted blocks that never reached Run: dropped from a
	// full buffer, or by pubsub when op-node's subscriber lagged.
	Dropped uint64
	// Head is the last accepted block; zero before the first.
	Head eth.BlockID
}

// Status returns a snapshot of the feed's state.
func (f *Feed) Status() Status {
	c := f.count
	c.mu.Lock()
	st := Status{
		Received:   c.received,
		Accepted:   c.accepted,
		Rejected:   maps.Clone(c.rejected),
		Duplicates: c.duplicates,
		Dropped:    c.dropped,
		Head:       c.head,
	}
	c.mu.Unlock()
	st.ID = f.node.Host().ID()
	st.ListenAddrs = f.listenAddrs()
	st.Peers = f.node.Host().Network().Peers()
	return st
}

func (f *Feed) listenAddrs() []multiaddr.Multiaddr {
	h := f.node.Host()
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err != nil { // only when the id is empty
		return nil
	}
	return addrs
}
