// Package e2e holds lightcl's end-to-end tests against real op-geth processes
// on loopback: EL sync through p2p, backfill without peers, divergence, a crash
// in the middle of a backfill, and the minimal-node binary; and the backfill
// benchmark. `go test -short` skips them (they build op-geth on first use).
package e2e
