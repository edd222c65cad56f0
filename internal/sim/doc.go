// Package sim holds lightcl's deterministic fault simulation: the real
// engineadapter with real sources (remotel2 members, a quorum, l1verify)
// against simulated remotes, L1 and execution engine (lightcl's in-process
// test servers), driven tick by tick through random fault schedules. The
// simulation is its test (go test ./internal/sim); this file only documents
// it.
//
// Each schedule is one seeded run: a chain that advances and sometimes
// reorgs its unsafe and safe blocks, N remote members (rollup nodes and L2
// ELs) that each may lag, stall, fail, send garbage, regress or lie on a fork
// (at most N-M at a time), an L1 that may reorg the origins of the heads, an
// engine that may answer SYNCING or INVALID or lose its unflushed blocks, and
// restarts of the adapter. After every tick the invariants of docs/DESIGN.md are
// checked on every forkchoice update the engine received; after the faults
// stop the node must reach the honest safe and finalized heads within a
// bounded number of ticks.
//
// There are no sleeps and no timers: the adapter is stepped by hand, and a
// stalled remote answers at once with HTTP 504 (a gateway timeout) rather
// than holding the call, so that a schedule replays exactly from its seed:
//
//	go test ./internal/sim -run TestSimulation -seed N -schedules 1 -v
package sim
