// Package engineadapter keeps a local execution engine on the chain a
// safesource.SafeHeadSource calls safe and finalized.
//
// An Adapter polls its source, reads the engine's blocks at the source's heights,
// asks reorg.Decide what to do and carries it out with engine_forkchoiceUpdated:
// consolidate (move safe and finalized), reorg (reset unsafe to the source's safe
// head), catch up (EL sync: point the engine at the source's safe head and let it
// fetch the blocks from its peers), or halt when the source contradicts the local
// finalized chain. It never sends a forkchoice update that moves finalized
// backwards, and never sends again a head the engine called INVALID.
//
// Run is the poll loop; Step is one tick, for tests and for embedders that drive
// their own loop. Neither starts goroutines. The package does not produce
// blocks, gossip, or derive from L1; those belong to the node around it or to a
// source.
package engineadapter
