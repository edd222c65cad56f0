package main

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	require.NoError(t, run(4, time.Millisecond, log.NewLogger(log.DiscardHandler())))
	require.Error(t, run(0, time.Millisecond, log.NewLogger(log.DiscardHandler())))
}

func TestAdvise(t *testing.T) {
	require.NoError(t, advise(4, log.NewLogger(log.DiscardHandler())))
	require.Error(t, advise(0, log.NewLogger(log.DiscardHandler())))
}
