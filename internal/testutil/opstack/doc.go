// Package opstack is a mini OP Stack for lightcl's tests of L1 derivation: an
// in-memory L1 (testutil.L1, linked post-merge blocks over JSON-RPC), a real
// op-geth sequencer driven through the Engine API by a test sequencer, and a
// test batcher that posts the sequencer's blocks to the L1 as calldata, so
// that op-node's own derivation pipeline, run against that L1, derives the
// sequencer's chain.
//
// Everything that makes the chain is op-node's or op-geth's code: the rollup
// config (passing rollup.Config.Check) is generated for the L1 genesis, a
// generated batcher key and an op-geth genesis with every fork up to Granite
// at time 0; payload attributes come from derive.FetchingAttributesBuilder
// against the L1 and the sequencer's EL, with L1 origins chosen as op-node's
// sequencer chooses them; batches are encoded by derive's singular or span
// channel-out into frames, sent in dynamic-fee transactions from the batcher
// to the batch inbox.
//
// The clock is the chain: L1 block n has time GenesisTime + 12·n and L2 block
// n time GenesisTime + 2·n. BuildL2 advances the L1 as L2 time passes (the
// L1 head is the last block not later than the new L2 block), PostBatches
// appends the block that carries the batch. A test moves the L1 further with
// L1().Advance, reorgs it with L1().Reorg (which drops the batches above the
// fork point: the next PostBatches posts those blocks again), and posts
// tampered data with BatchData and PostData.
//
// Typical use:
//
//	s := opstack.New(t, opstack.Config{})
//	refs, err := s.BuildL2(ctx, 30, nil)          // L2 blocks 1..30
//	l1Block, err := s.PostBatches(ctx, 12, opstack.Span) // batches for 1..12
//	// derive from s.L1URL() with s.RollupConfig(); the L2 EL of a verifier
//	// is s.StartFollower(t), or s.Sequencer() to consolidate against.
//
// It is for tests only, and slow-ish (it runs op-geth): every test that uses
// it is skipped with -short. It does not reorg the sequencer: once the L1
// origin of its head is reorged out, BuildL2 fails. Deposits, system config
// updates, blobs and forks after Granite are not modelled.
package opstack
