// Package testutil holds test helpers for lightcl: a scripted tree of real OP
// Stack L2 blocks (Tree), an in-memory execution engine (EL) served over real
// HTTP JSON-RPC with op-geth's JWT check or, as a public L2 RPC, without it,
// a fake rollup node (RollupNode) serving op-node's optimism_ methods, and an
// in-memory L1 chain (L1) with scripted reorgs, whose blocks can carry
// transactions with receipts (L1.Include) for derivation. The servers sit behind
// switchable Faults (stall, HTTP status, garbage) and can be made to lie
// (EL.ForceLabels, RollupNode.SetSyncStatus). Real op-geth processes are in the
// opgeth subpackage, and a mini OP Stack built on them (sequencer, batcher,
// L1) in opstack.
//
// It is for lightcl's own tests only and is not for production use: the EL
// executes nothing, keeps everything in memory and accepts any state root;
// the rollup node derives nothing and reports what the test tells it.
package testutil
