// Package remotel2 is a SafeHeadSource backed by one remote L2 node.
//
// The remote is either an L2 execution client (kind EL: its "safe" and
// "finalized" block labels) or a rollup node (kind CL: op-node's
// optimism_syncStatus, which also gives local-safe and the current L1 block).
// The kind is set in the Config or detected once by New. Lookups by number go to
// the EL, or for a CL to a paired EL endpoint when one is given, else to
// optimism_outputAtBlock.
//
// An EL's two labels are read as headers in one JSON-RPC batch, each poll.
// A block is fetched whole (by hash, the new ones of a poll in a second batch)
// and verified against its hash and transaction root only the first time it is
// a head; its reference is kept by hash (the last 128 heads), so a poll whose
// heads stand still, or whose finalized head was the safe head before, costs
// two headers. PayloadByNumber serves backfill from the same remote, and hands
// out the safe block a poll fetched whole without fetching it again.
//
// A remote is trusted only as far as its answers are consistent: wrong chain,
// garbage, unverifiable blocks and heads that fail safesource.Heads.Check are
// wrapped errors, never panics. Whether the heads are on the local finalized
// chain is for the engine adapter to decide; whether they agree with other
// remotes is for the quorum source.
package remotel2
