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
// A schedule has no tip feed, the simulation's own (tip_test.go: stall, lie,
// gap, duplicate, garbage), or gossip (gossip_test.go). With gossip, the honest
// sequencer signs each block it makes with its key (op-service's local
// signer) and sends it as op-node publishes it, snappy(signature ‖ SSZ) on the
// topic its timestamp picks (the fake chain is pre-Canyon: /optimism/901/0/blocks).
// Each message passes a model of gossipsub's seen cache (keyed by op-node's
// message id), then op-node's own blocks validator (p2p.BuildBlocksValidator,
// the signer fixed to the sequencer's address, on op-service's deterministic
// clock set to the block's time plus the message's time on the way); only
// the envelopes it accepts reach the adapter's Tip. Its faults: delays (1 to 3
// steps late, after newer blocks; 25 s a step, so 3 steps is "payload is too
// old"), duplicates (the same bytes or recompressed: dropped by the seen
// cache; re-signed: "validated already seen message again"), gaps, and wrong
// signatures: a forged child of the honest head signed by another key, which
// the validator must reject and the engine must never receive, by newPayload
// or as a forkchoice head. Parents that gossip missed come from an honest
// remote (gossip merged with a remote EL feed), which never has a forged
// block. Gossip sends each block once, so after the faults stop the sequencer
// makes a block per tick. What the validator accepted and refused, by its
// reason, is counted in the stats that TestSimulation prints.
//
// There are no sleeps and no timers: the adapter is stepped by hand, and a
// stalled remote answers at once with HTTP 504 (a gateway timeout) rather
// than holding the call, so that a schedule replays exactly from its seed:
//
//	go test ./internal/sim -run TestSimulation -seed N -schedules 1 -v
package sim
