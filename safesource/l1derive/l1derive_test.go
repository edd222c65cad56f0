package l1derive_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/testutil/opstack"
)

// TestDerivesThePostedSafeHead: a follower with no peers and no blocks is
// brought to exactly the safe head the batcher posted, by building every
// derived block; unposted blocks stay off it.
func TestDerivesThePostedSafeHead(t *testing.T) {
	for _, kind := range []opstack.BatchKind{opstack.Singular, opstack.Span} {
		t.Run(kind.String(), func(t *testing.T) {
			ctx := testContext(t)
			w := newWorld(t)
			w.build(ctx, t, 24)
			w.post(ctx, t, 12, kind)

			w.follow(ctx, t, 12)
			w.requireSequencersChain(ctx, t, 12)
			require.Equal(t, 12, w.count(engineadapter.Built), "every block built from derived attributes")
			st := w.src.Status()
			require.Equal(t, uint64(12), st.Derived)
			require.Zero(t, st.Building)

			w.post(ctx, t, 24, kind)
			w.follow(ctx, t, 24)
			w.requireSequencersChain(ctx, t, 24)
			require.Zero(t, w.count(engineadapter.Reorged))
		})
	}
}
