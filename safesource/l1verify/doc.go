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
//     L1 finality (else safesource.ErrAheadOfL1, but see below).
//
// A finalized claim ahead of L1's finality, when it is the only failure (every
// origin canonical, none above the L1 head), is a lag rather than a lie: the
// source's L1 node may see finality before this one. It does not cost the safe
// head. The heads are passed on with the source's safe and local-safe heads
// and with finalized held at the last finalized head verified in full for
// that source (Status.VerifiedFinalized; result ResultFinalizedHeld, logged
// once per held claim), until L1's finality reaches a claim and finalized
// advances again. An older finalized head is harmless: the engine adapter
// never moves finalized backwards. The heads are still dropped with
// safesource.ErrAheadOfL1 when there is nothing to hold at: before a finalized
// head has been verified for the source, or when the held head does not fit
// the new heads (not below the claim, or rejected by safesource.Heads.Check).
// A finalized head whose origin is not canonical is a mismatch, as above, and
// drops the heads.
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
// reads one block per request, so there it costs a second. While a finalized
// claim is ahead of L1's finality (held, or dropped), L1's finalized block is
// read again on its own on every call, so that its catching up is seen on the
// next call. The cache is
// emptied when the head shows an L1 reorg, so a reorg that removes a cached
// origin is caught on the very next call. A Verifier may be shared by several
// wrapped sources (the members of a quorum, say), which then share its cache
// and its L1 head reads. It may also serve several L2 chains on the same L1:
// Verifier.WrapChain gives each source its own chain's genesis, and
// Config.MaxHeadAge lets one L1 head read serve the chains' calls within that
// long of it, at the price of seeing an L1 reorg up to that much later.
// Sources checked at once share the reads their checks need, too: a block by
// number, or L1's finalized block, that one check is reading is waited for by
// the others rather than read again (when it began after the L1 head read
// they check against), so the chains of one process whose ticks fall together
// make one read of a new L1 origin, not one each.
//
// Verifier.Status reports L1's head, safe and finalized blocks (op-node's
// optimism_syncStatus head_l1, safe_l1 and finalized_l1) from the reads the
// checks make, with no request of their own: RPCSource's batched request
// carries L1's safe block too. See VerifierStatus for how fresh each is.
//
// The package does not judge L2 blocks themselves: whether the heads are on
// the local finalized chain is for the engine adapter, and whether they agree
// with other sources is for the quorum source. It does not derive anything
// from L1 either (see l1derive).
package l1verify
