package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"
)

// TestDemo runs the README's first command in-process, shortened: the node
// must keep the engine's head on the remote's tip through the tip feed (its
// websocket subscription to the remote EL), follow the remote's unsafe reorg
// on the tip path, not the safe path, and end on the remote's unsafe, safe and
// finalized heads; runDemo's own checks (demoStats.summary) fail it otherwise.
func TestDemo(t *testing.T) {
	var out, logs bytes.Buffer
	err := runDemo(context.Background(), demoConfig{duration: 5 * time.Second, poll: 100 * time.Millisecond, level: log.LevelWarn}, &out, &logs)
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", out.String(), logs.String())
	require.Contains(t, out.String(), "remote reorg")
	require.Contains(t, logs.String(), "Unsafe reorg to the tip feed's chain")
	// the tip feed had the fork's blocks in the engine before the remote's
	// safe head moved onto them: the safe path had nothing to reorg
	require.Contains(t, out.String(), "reorgs followed: 1 by the tip path (depth [2]), 0 by the safe path")
	require.NotContains(t, logs.String(), "Reorg to the source's chain")
	require.Contains(t, out.String(), "ok: the engine tracked the remote's unsafe head")
	// the tick in flight when the demo ends is cut short by the stop, which
	// is not a skipped tick worth a warning
	require.NotContains(t, logs.String(), "Skipped tick")
}

// TestDemoTrackingCheck: the demo's tracking check passes a lag of one remote
// step (two blocks, a row read as the remote steps) and fails a head that
// falls further behind in more than a quarter of the rows, or no rows at all.
func TestDemoTrackingCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		lags []int // local unsafe below remote unsafe, one a row
		want bool
	}{
		{"no rows", nil, false},
		{"on the head", []int{0, 0, 0, 0}, true},
		{"one step behind", []int{2, 0, 2, 2}, true},
		{"ahead by a step", []int{-2, 0, 0, 0}, true},
		{"three blocks behind in a quarter of the rows", []int{0, 3, 0, 0}, true},
		{"three blocks behind in half the rows", []int{0, 3, 3, 0}, false},
		{"stuck", []int{4, 6, 8, 10}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newDemoStats()
			for _, lag := range tc.lags {
				s.row(uint64(20), uint64(20-lag))
			}
			require.Equal(t, tc.want, s.tracked())
		})
	}
}
