// Package engineadapter keeps a local execution engine on the chain a
// safesource.SafeHeadSource calls safe and finalized.
//
// An Adapter is one event loop over reorg.Step: every tick, tip block and
// answer goes through the pure step, and the adapter carries out the effects
// it returns (read the engine or the source, search the common ancestor,
// backfill, newPayload, engine_forkchoiceUpdated, build) and feeds their
// answers back. It is the only writer of the step's view. The step's rows
// are reorg.Decide's:
// consolidate (move safe and finalized), reorg (reset unsafe to the source's safe
// head), catch up (EL sync: point the engine at the source's safe head and let it
// fetch the blocks from its peers), or halt when the source contradicts the local
// finalized chain. It never sends a forkchoice update that moves finalized
// backwards, and never sends again a head the engine called INVALID.
//
// Run is the poll loop; Step is one tick and Tip one tip block, for tests and
// for embedders that drive their own loop. Neither starts goroutines. An
// embedder that keeps its own engine controller can skip the Adapter and feed
// reorg.Step itself (examples/embed shows both). The package does not produce
// blocks, gossip, or derive from L1; those belong to the node around it or to a
// source.
package engineadapter
