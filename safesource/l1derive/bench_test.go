package l1derive_test

import (
	"bytes"
	"context"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/internal/testutil/opgeth"
	"github.com/lightcl/lightcl/internal/testutil/opstack"
	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource/l1derive"
)

// benchBlocks is a multiple of 30.
const benchBlocks = 300

// BenchmarkDerive measures, on one chain of benchBlocks blocks (one transfer
// each) posted as span batches:
//   - consolidate: blocks derived from L1 and found in an engine that holds
//     them already (the sequencer's), per second, and where this process's
//     CPU went: op-node's pipeline, op-node's block comparison, the engine
//     reads (op-service and JSON-RPC), and lightcl's own code;
//   - build: blocks derived and built by the adapter on a fresh peerless
//     engine, per second, and the ratio to consolidate;
//   - build-direct: the same attributes sent straight to a fresh engine
//     (the engine's own building speed), and lightcl's build rate as a
//     ratio to it.
//
// op-geth runs in its own processes; its CPU is not in the split.
func BenchmarkDerive(b *testing.B) {
	ctx := context.Background()
	stack := opstack.New(b, opstack.DefaultConfig())
	// posted every 30 blocks (one minute of L2), well inside the
	// sequencing window
	for upTo := uint64(30); upTo <= benchBlocks; upTo += 30 {
		head := stack.SequencerHead().Number
		_, err := stack.BuildL2(ctx, int(upTo-head), func(i int) [][]byte {
			return opgeth.TransferTxs(opgeth.FundedKey(), stack.RollupConfig().L2ChainID, head+uint64(i), 1)
		})
		require.NoError(b, err)
		_, err = stack.PostBatches(ctx, upTo, opstack.Span)
		require.NoError(b, err)
	}
	l1 := testutil.DialL1(b, stack.L1URL())
	seqEngine := stack.Sequencer().Engine(b)

	var consolidatePerSec float64
	b.Run("consolidate", func(b *testing.B) {
		var cpu bytes.Buffer
		require.NoError(b, pprof.StartCPUProfile(&cpu))
		start := time.Now()
		for range b.N {
			src, err := l1derive.New(l1derive.Config{}, stack.RollupConfig(), l1, nil, seqEngine, nil, nil)
			require.NoError(b, err)
			for src.Status().Heads.Safe.Number < benchBlocks {
				_, err := src.Heads(ctx)
				require.NoError(b, err)
				_, building := src.PendingBuild()
				require.False(b, building, "the sequencer holds every block")
			}
		}
		elapsed := time.Since(start)
		pprof.StopCPUProfile()
		consolidatePerSec = float64(benchBlocks*b.N) / elapsed.Seconds()
		b.ReportMetric(consolidatePerSec, "blocks/s")
		for part, share := range cpuSplit(b, &cpu) {
			b.ReportMetric(share*100, "%cpu-"+part)
		}
	})

	var recorded []*eth.PayloadAttributes // what the adapter built from, in order
	var buildPerSec float64
	b.Run("build", func(b *testing.B) {
		var elapsed time.Duration
		for range b.N {
			b.StopTimer()
			follower := stack.StartFollower(b)
			engine := &recordingEngine{EngineClient: follower.Engine(b)}
			src, err := l1derive.New(l1derive.Config{}, stack.RollupConfig(), l1, nil, engine, nil, nil)
			require.NoError(b, err)
			a, err := engineadapter.New(engineadapter.Config{}, engine, src, nil, nil)
			require.NoError(b, err)
			b.StartTimer()
			start := time.Now()
			for a.Status().Safe.Number < benchBlocks {
				d, err := a.Step(ctx)
				require.NoError(b, err)
				require.NotEqual(b, reorg.Skip, d.Action)
			}
			elapsed += time.Since(start)
			b.StopTimer()
			follower.Stop()
			require.Len(b, engine.attrs, benchBlocks)
			recorded = engine.attrs
			b.StartTimer()
		}
		buildPerSec = float64(benchBlocks*b.N) / elapsed.Seconds()
		b.ReportMetric(buildPerSec, "blocks/s")
		if consolidatePerSec > 0 {
			b.ReportMetric(buildPerSec/consolidatePerSec, "x-consolidate")
		}
	})

	// the floor for building: the same attributes sent straight to a fresh
	// engine (forkchoiceUpdated with attributes, getPayload, newPayload,
	// forkchoiceUpdated), no source, no adapter
	b.Run("build-direct", func(b *testing.B) {
		require.Len(b, recorded, benchBlocks, "run with the build benchmark")
		var elapsed time.Duration
		for range b.N {
			b.StopTimer()
			follower := stack.StartFollower(b)
			engine := follower.Engine(b)
			head, err := engine.L2BlockRefByLabel(ctx, eth.Unsafe)
			require.NoError(b, err)
			b.StartTimer()
			start := time.Now()
			for _, attrs := range recorded {
				head = buildDirect(ctx, b, engine, head, attrs)
			}
			elapsed += time.Since(start)
			b.StopTimer()
			follower.Stop()
			b.StartTimer()
		}
		perSec := float64(benchBlocks*b.N) / elapsed.Seconds()
		b.ReportMetric(perSec, "blocks/s")
		if perSec > 0 {
			b.ReportMetric(buildPerSec/perSec, "x-lightcl-build")
		}
	})
}

// recordingEngine keeps the attributes of every forkchoice update that
// carries some.
type recordingEngine struct {
	*sources.EngineClient
	attrs []*eth.PayloadAttributes
}

func (e *recordingEngine) ForkchoiceUpdate(ctx context.Context, fc *eth.ForkchoiceState, attrs *eth.PayloadAttributes) (*eth.ForkchoiceUpdatedResult, error) {
	if attrs != nil {
		e.attrs = append(e.attrs, attrs)
	}
	return e.EngineClient.ForkchoiceUpdate(ctx, fc, attrs)
}

// buildDirect builds the block of attrs on head and makes it the head.
func buildDirect(ctx context.Context, b *testing.B, engine *sources.EngineClient, head eth.L2BlockRef, attrs *eth.PayloadAttributes) eth.L2BlockRef {
	fc := eth.ForkchoiceState{HeadBlockHash: head.Hash, SafeBlockHash: head.Hash}
	res, err := engine.ForkchoiceUpdate(ctx, &fc, attrs)
	require.NoError(b, err)
	require.NotNil(b, res.PayloadID)
	env, err := engine.GetPayload(ctx, eth.PayloadInfo{ID: *res.PayloadID, Timestamp: uint64(attrs.Timestamp)})
	require.NoError(b, err)
	st, err := engine.NewPayload(ctx, env.ExecutionPayload, env.ParentBeaconBlockRoot)
	require.NoError(b, err)
	require.Equal(b, eth.ExecutionValid, st.Status)
	fc.HeadBlockHash = env.ExecutionPayload.BlockHash
	_, err = engine.ForkchoiceUpdate(ctx, &fc, nil)
	require.NoError(b, err)
	return eth.L2BlockRef{Hash: env.ExecutionPayload.BlockHash, Number: uint64(env.ExecutionPayload.BlockNumber)}
}

// cpuSplit attributes each CPU sample to the first part its stack passes
// through, from the root: the in-process test L1's server side, then (under
// the source's own code) the pipeline's Step, the start's walk back over the
// engine's chain (op-node's FindL2Heads), an engine read of a derived block's
// height, the comparison of derived attributes with it, or else the source's
// own code. The rest (Go runtime, GC, HTTP client transport) is "other".
func cpuSplit(b *testing.B, cpu *bytes.Buffer) map[string]float64 {
	p, err := profile.Parse(cpu)
	require.NoError(b, err)
	parts := []struct{ name, fn string }{
		{"test-l1-server", "net/http.(*conn).serve"},
		{"test-l1-server", "go-ethereum/rpc.(*handler)"},
		{"pipeline", "op-node/rollup/derive.(*DerivationPipeline).Step"},
		{"start-walk", "op-node/rollup/sync.FindL2Heads"},
		{"engine-reads", "op-service/sources.(*EthClient).PayloadByNumber"},
		{"compare", "op-node/rollup/attributes.AttributesMatchBlock"},
		{"lightcl", "github.com/lightcl/lightcl/safesource/l1derive.(*Source)"},
	}
	total, by := 0.0, map[string]float64{}
	for _, s := range p.Sample {
		v := float64(s.Value[len(s.Value)-1])
		total += v
		part := "other"
	stack:
		for i := len(s.Location) - 1; i >= 0; i-- { // root first
			for _, l := range s.Location[i].Line {
				for _, pt := range parts {
					if l.Function != nil && strings.Contains(l.Function.Name, pt.fn) {
						part = pt.name
						if pt.name != "lightcl" {
							break stack
						}
					}
				}
			}
		}
		by[part] += v
	}
	if total == 0 {
		return nil
	}
	for k := range by {
		by[k] /= total
	}
	return by
}
