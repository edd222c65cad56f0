// Package opgeth runs real op-geth processes for lightcl's end-to-end tests.
//
// Binary builds op-geth's geth from the Go module cache once per op-geth
// version (see the gethbuild module next to this package) and caches it.
// NewGenesis writes an OP Stack genesis with every fork up to Granite active
// from block 0, together with the rollup config that matches it
// (WithRollupConfig puts the same genesis under another one). Start runs
// an instance on loopback with free ports, a JWT-protected Engine API and a
// datadir that survives Kill and Restart; two instances peer over loopback
// p2p when Config.Peer is set. Sequencer drives one instance through the
// Engine API to build blocks (from its own attributes or the caller's),
// label them safe or finalized, and build forks.
//
// It is for tests only: the L1 that the blocks reference is synthetic, the
// genesis has no predeploy code, and every test that uses it is skipped with
// -short. Processes are reaped in t.Cleanup (and killed by the kernel if the
// test binary dies); on failure the tail of each log is printed.
package opgeth
