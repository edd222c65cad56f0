// Package fakel1 is an in-memory L1 chain served over HTTP JSON-RPC without
// auth, behind fakerpc.Faults, answered so that op-service's L1Client reads
// it with its hash and receipt checks on. The chain is scripted (SetHead,
// Advance, Reorg, SetLabels) and its blocks can carry transactions with
// receipts (L1.Include) for derivation. Start one with StartL1; tests use
// testutil.NewL1.
//
// It is for lightcl's tests and runnable examples, not for production: it
// executes nothing and keeps everything in memory.
package fakel1
