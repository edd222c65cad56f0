// Package remotel2 is a SafeHeadSource backed by one remote L2 node.
//
// The remote is either an L2 execution client (kind EL: its "safe" and
// "finalized" block labels, fetched together in one JSON-RPC batch and verified
// against their hashes) or a rollup node (kind CL: op-node's optimism_syncStatus,
// which also gives local-safe and the current L1 block). The kind is set in the
// Config or detected once by New. Lookups by number go to the EL, or for a CL to a
// paired EL endpoint when one is given, else to optimism_outputAtBlock.
//
// A remote is trusted only as far as its answers are consistent: wrong chain,
// garbage, unverifiable blocks and heads that fail safesource.Heads.Check are
// wrapped errors, never panics. Whether the heads are on the local finalized
// chain is for the engine adapter to decide; whether they agree with other
// remotes is for the quorum source.
package remotel2
