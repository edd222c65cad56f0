// Package p2ppub is a test publisher of OP Stack unsafe blocks over op-node's
// p2p gossip, on 127.0.0.1: what a sequencer's op-node sends, and what a
// receiver must reject.
//
// A Publisher runs two libp2p hosts. The signing host is op-node's own
// (p2p.NewNodeP2P, FloodPublish on, so a block reaches a peer that has just
// joined the topic): Publish signs a payload with the key it is given, and op-node
// encodes it, checks it with its own blocks validator and publishes it on the
// block topic of the payload's timestamp. Its address is the one receivers
// take as a static peer (Addrs). The raw host runs a plain gossipsub router
// with no validator; it dials receivers itself (ConnectRaw) and publishes what
// op-node's validator would hold back: a payload signed by any key encoded as
// op-node encodes it (PublishUnchecked), the same block again, or any bytes
// (PublishBytes).
//
// It is for lightcl's tests and benchmarks only: it does not discover peers,
// its keys are generated at each start, and the signing host's own validator
// takes blocks of any age (Config.TimestampThreshold), since the test chains'
// timestamps are from 2023.
package p2ppub
