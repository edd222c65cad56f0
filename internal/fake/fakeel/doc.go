// Package fakeel is an in-memory execution engine (EL) served over real HTTP
// JSON-RPC: the Engine API with op-geth's JWT check (or, as a public L2 RPC,
// without it), eth_getBlockBy*, and eth_subscribe("newHeads") on websockets.
// It stores the blocks of a fakechain.Tree, keeps a canonical chain and the safe
// and finalized labels, can "sync" unknown heads from a peer Tree, records
// every call, sits behind fakerpc.Faults and can be made to lie
// (EL.ForceLabels). Start one with StartEL; tests use testutil.NewEL.
//
// It is for lightcl's tests and runnable examples, not for production: it
// executes nothing, keeps everything in memory, accepts any state root and
// builds no payloads.
package fakeel
