package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"
)

// TestDemo runs the README's first command in-process, shortened: the node must
// follow the simulated remote through its reorg to its safe and finalized heads.
func TestDemo(t *testing.T) {
	var out, logs bytes.Buffer
	err := runDemo(context.Background(), demoConfig{duration: 5 * time.Second, poll: 100 * time.Millisecond, level: log.LevelWarn}, &out, &logs)
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", out.String(), logs.String())
	require.Contains(t, out.String(), "remote reorg")
	require.Contains(t, logs.String(), "Reorg to the source's chain")
}
