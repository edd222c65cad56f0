//go:build race

package sim_test

// defaultSchedules is how many schedules go test -race runs: the race
// detector makes each about five times slower, and .ci/run also runs the
// full 2,000 without it.
const defaultSchedules = 200
