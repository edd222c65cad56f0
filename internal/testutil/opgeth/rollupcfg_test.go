package opgeth

import (
	"testing"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/stretchr/testify/require"
)

func TestWithRollupConfig(t *testing.T) {
	g := NewGenesis()
	calls := 0
	v := g.WithRollupConfig(func(c *rollup.Config) {
		calls++
		c.SeqWindowSize = 20
	})
	require.Equal(t, g.Hash(), v.Hash(), "the same L2 genesis")
	require.Equal(t, g.Block(), v.Block())
	cfg := v.RollupConfig()
	require.Equal(t, uint64(20), cfg.SeqWindowSize)
	require.NoError(t, cfg.Check())
	cfg.SeqWindowSize = 99
	require.Equal(t, uint64(20), v.RollupConfig().SeqWindowSize, "each call gives a fresh config")
	require.Equal(t, 2, calls)
	require.Equal(t, uint64(3600), g.RollupConfig().SeqWindowSize, "the original keeps the default")
}
