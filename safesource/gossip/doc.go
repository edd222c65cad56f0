// Package gossip is a tip feed of the unsafe blocks that an OP Stack chain's
// sequencer gossips over op-node's p2p network (libp2p gossipsub, the
// /optimism/<chain id>/<n>/blocks topics). It runs op-node's own p2p host
// (p2p.NewNodeP2P) with op-node's defaults, and every block has passed
// op-node's own blocks validator: signed by the chain's unsafe block signer
// (Config.Signer: FixedSigner, or L1Signer which reads the SystemConfig on L1
// as op-node does), recent, hashing to its block hash, of the topic's shape,
// and not seen before. Gossipsub relays the blocks it accepted to the host's
// other peers. Feed satisfies the engine adapter's TipFeed and tipfeed.Feed, so
// it merges with remote EL feeds (tipfeed.Merge): the first feed to deliver a
// block wins.
//
// Blocks are handed to Run through a bounded buffer that drops the oldest when
// the tip path falls behind, and the last Config.CacheSize accepted blocks are
// kept for PayloadByHash. Status and Metrics count what became of the blocks:
// received, accepted, rejected by reason (the validator's own log message),
// duplicates, dropped; and the connected peers.
//
// It is not a source of safety: a signed block is only the sequencer's word.
// It does not fetch missing blocks from peers: op-node v1.19.6 has only the
// server side of its request-response sync, which Config.ServePayloads turns
// on. A missing parent comes from PayloadByHash of the other merged feeds, or
// from the adapter's backfill. It does not discover peers: it connects to
// Config.StaticPeers only, and Config.Check refuses Bootnodes
// (ErrDiscoveryUnsupported): op-node's discv5 process leaves goroutines
// running for up to 3s after it returns, so Close could not promise that none
// outlives it. Without a configured key it generates one at each start, so
// its peer id changes; its peerstore lives in memory.
//
// Close stops every goroutine the feed started but one: the minutely sweep of
// the blacklist that op-node gives gossipsub (pubsub.TimeCachedBlacklist has
// no way to stop it). It idles, one per Feed ever created.
package gossip
