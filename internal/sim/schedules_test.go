//go:build !race

package sim_test

// defaultSchedules is how many schedules a plain go test runs.
const defaultSchedules = 2000
