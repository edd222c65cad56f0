// Package testutil holds test helpers for lightcl: a scripted tree of real OP
// Stack L2 blocks (Tree) and an in-memory execution engine (EL) served over
// real HTTP JSON-RPC with op-geth's JWT check, with fault switches for tests.
//
// It is for lightcl's own tests only and is not for production use: the EL
// executes nothing, keeps everything in memory and accepts any state root.
package testutil
