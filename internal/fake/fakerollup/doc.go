// Package fakerollup is a fake rollup (CL) node serving op-node's optimism_
// methods (syncStatus, outputAtBlock, rollupConfig, version) over HTTP
// JSON-RPC, behind fakerpc.Faults. It reports the fakechain.Tree blocks and
// labels it is told to follow (RollupNode.Follow), or a lie
// (RollupNode.SetSyncStatus). Start one with StartRollupNode; tests use
// testutil.NewRollupNode.
//
// It is for lightcl's tests and runnable examples, not for production: it
// derives nothing and reports what it is told.
package fakerollup
