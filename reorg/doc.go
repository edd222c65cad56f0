// Package reorg is lightcl's decision core: given what the source says and what
// the local engine holds, it says what to do next and why.
//
// Decide is pure: no I/O, no goroutines, no clocks. The engine adapter gathers
// the inputs (the source's heads, the engine's blocks at the source's safe and
// finalized heights), calls Decide, carries out the returned forkchoice update and
// hands the engine's answer to Apply. When a decision needs the common ancestor of
// the engine's chain and the source's chain, it says so (NeedAncestor) and the
// adapter runs FindCommonAncestor, which searches two block-by-number functions in
// O(log n) lookups, and decides again with the result.
//
// The package is not an engine driver and knows nothing of RPC; see engineadapter.
package reorg
