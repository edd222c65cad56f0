// Package l1verify checks any SafeHeadSource against the user's own L1 node
// before its heads are used.
//
// Wrap decorates a source. Each Heads call then passes on the inner source's
// heads only if
//   - the L1 origins of the safe, local-safe and finalized heads, and the
//     source's current L1 block when it reports one, are the canonical L1
//     blocks at their heights (else the error wraps safesource.ErrL1Mismatch,
//     naming the head and both hashes);
//   - no origin is above the L1 head, and the finalized head's origin is at or
//     below L1's finalized block: a source cannot claim L2 finality ahead of
//     L1 finality (else safesource.ErrAheadOfL1).
//
// A current L1 block above this node's L1 head is not an error (the remote's
// L1 node may simply be a block ahead): it is dropped from the heads, as
// unknown, until this node's L1 reaches it.
//
// The L1 is read through an L1Source: RPCSource over op-service's
// client.RPC, or op-service's sources.L1Client. Canonical (number, hash) pairs
// are cached, so that a steady follower costs one L1 request per Heads call:
// the L1 head, read in parallel with the inner source. The finality check
// also needs L1's finalized block whenever a finalized claim passes the last
// one read, once per L1 finality advance. RPCSource reads it in the same
// batched request as the head (while the sources' finalized claims keep up
// with L1 finality), so such a tick is still one request; sources.L1Client
// reads one block per request, so there it costs a second. The cache is
// emptied when the head shows an L1 reorg, so a reorg that removes a cached
// origin is caught on the very next call. A Verifier may be shared by several
// wrapped sources (the members of a quorum, say), which then share its cache
// and its L1 head reads.
//
// The package does not judge L2 blocks themselves: whether the heads are on
// the local finalized chain is for the engine adapter, and whether they agree
// with other sources is for the quorum source. It does not derive anything
// from L1 either (see l1derive).
package l1verify
