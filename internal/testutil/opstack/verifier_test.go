package opstack

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"

	altda "github.com/ethereum-optimism/optimism/op-alt-da"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/testlog"

	"github.com/lightcl/lightcl/internal/testutil"
)

// maxSteps bounds one derive call; a pipeline that needs more is stuck.
const maxSteps = 10_000

// verifier runs op-node's derivation pipeline on the Stack's L1 and applies
// each derived block with apply, which returns the block the attributes
// made (or matched).
type verifier struct {
	pipeline *derive.DerivationPipeline
	apply    func(*derive.AttributesWithParent) eth.L2BlockRef
	pending  eth.L2BlockRef // the pending-safe head the next attributes build on
}

// newVerifier starts a pipeline from the L2 genesis with l2 as its L2 source
// (the EL that holds, or gets, the derived blocks).
func newVerifier(ctx context.Context, t *testing.T, s *Stack, l2 derive.L2Source, apply func(*derive.AttributesWithParent) eth.L2BlockRef) *verifier {
	t.Helper()
	lgr := testlog.Logger(t, log.LevelWarn)
	l1 := testutil.DialL1(t, s.L1URL())
	p := derive.NewDerivationPipeline(lgr, s.RollupConfig(), nil, l1, noBlobs{}, altda.Disabled, l2, noMetrics{}, nil)
	genesis, err := l2.L2BlockRefByNumber(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, s.RollupConfig().Genesis.L2, genesis.ID())
	p.Reset()
	p.ConfirmEngineReset()
	return &verifier{pipeline: p, apply: apply, pending: genesis}
}

// derive steps the pipeline until it runs out of L1 data (io.EOF) and
// returns the attributes derived on the way, each applied in turn.
func (v *verifier) derive(ctx context.Context, t *testing.T) []*derive.AttributesWithParent {
	t.Helper()
	var out []*derive.AttributesWithParent
	for range maxSteps {
		attrs, err := v.pipeline.Step(ctx, v.pending)
		switch {
		case err == io.EOF:
			return out
		case errors.Is(err, derive.NotEnoughData):
			continue
		case err != nil:
			t.Fatalf("derivation step on %s: %v", v.pending, err)
		case attrs == nil:
			continue
		}
		require.Equal(t, v.pending, attrs.Parent, "attributes build on the pending-safe head")
		v.pending = v.apply(attrs)
		out = append(out, attrs)
	}
	t.Fatalf("derivation not idle after %d steps", maxSteps)
	return nil
}

// noBlobs is the L1 blobs fetcher of an L1 without blobs. The pipeline needs
// one once Ecotone is active, even for calldata.
type noBlobs struct{}

func (noBlobs) GetBlobsByHash(context.Context, uint64, []common.Hash) ([]*eth.Blob, error) {
	return nil, errors.New("opstack test: the L1 has no blobs")
}

// noMetrics is derive.Metrics doing nothing.
type noMetrics struct{}

func (noMetrics) RecordL1Ref(string, eth.L1BlockRef) {}
func (noMetrics) RecordL2Ref(string, eth.L2BlockRef) {}
func (noMetrics) RecordChannelInputBytes(int)        {}
func (noMetrics) RecordHeadChannelOpened()           {}
func (noMetrics) RecordChannelTimedOut()             {}
func (noMetrics) RecordFrame()                       {}
func (noMetrics) RecordDerivedBatches(string)        {}
func (noMetrics) SetDerivationIdle(bool)             {}
func (noMetrics) RecordPipelineReset()               {}

var _ derive.Metrics = noMetrics{}
