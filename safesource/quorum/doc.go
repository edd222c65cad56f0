// Package quorum is a SafeHeadSource that follows what M of N member sources
// agree on, trusting none of them alone.
//
// A round asks every member for its heads in parallel. For each label (safe,
// local-safe, finalized) the agreed head is the highest block that at least M
// members support, where a member supports a block when its own head is at or
// above it and its canonical chain holds it there. Members that merely lag
// support the leaders' older blocks; a member on another fork supports nothing
// of the others'. While fewer than M members lie, no block only liars vouch for
// is adopted; with M a strict majority of N (the default) that covers up to
// N−M liars. A member that stalls does not hold a round past a short straggler
// wait once M members have answered.
//
// The agreement itself is a pure function (decide.go): given the members'
// heads and the lookups answered so far, it returns either the agreed heads
// or the lookups it still needs; it asks nothing more of a member whose
// lookup outlasted the member timeout. The round (round.go) makes those
// lookups in parallel, each at most once per member and height, and hands
// their results back as they come.
//
// Members can be any SafeHeadSource: remote ELs and rollup nodes (remotel2),
// or sources of other kinds, mixed freely. The package does not judge whether
// the agreed heads are on the local finalized chain; the engine adapter does.
package quorum
