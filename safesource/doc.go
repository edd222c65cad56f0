// Package safesource defines where a light consensus client's safe and finalized
// L2 heads come from.
//
// A SafeHeadSource answers two questions: what are your heads now (Heads), and
// which block do you hold canonical at height n (L2BlockRefByNumber). The engine
// adapter polls one source; quorum, L1 verification and L1 derivation are all
// SafeHeadSources too, so they compose.
//
// This package owns the interface, the Heads type with its shared consistency
// check, the sentinel errors every source wraps, and two small helpers (Func and
// Static) for tests and for embedders that push heads themselves. It does no I/O.
package safesource
