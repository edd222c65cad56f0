// Package reorg is lightcl's decision core: given what the source says and what
// the local engine holds, it says what to do next and why.
//
// Step is the whole core in one function, in the shape of etcd's raft: it takes
// the local view and one event (a tick, a tip block, or the answer to
// something it asked for) and returns the next view and the effects to carry
// out, in order: read the engine's head or labels, read the source, read the
// engine at some heights, search the common ancestor, backfill, insert tip
// blocks, send a forkchoice update, build a block, remember a block as
// INVALID, report what happened, and Done at the end of an operation. It is
// pure: no I/O, no goroutines, no clocks. The engine adapter is one loop that
// carries the effects out and feeds the answers back; a node that keeps its
// own engine controller can do the same and use lightcl as an advisor.
//
// The rows are Step's building blocks, each pure and table-tested: Decide
// (the decision table), Apply (the engine's answer to a forkchoice update),
// DecideTip (the tip table) and DecideBuild (a block a deriving source wants
// built). When a decision needs the common ancestor of the engine's chain and
// the source's chain, Step asks for it (FindAncestor) and the caller runs
// Search, which searches two block-by-number functions in O(log n) lookups.
//
// The package is not an engine driver and knows nothing of RPC; see engineadapter.
package reorg
