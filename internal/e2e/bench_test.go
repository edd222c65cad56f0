package e2e_test

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/reorg"
)

// BenchmarkBackfill compares backfill into a fresh op-geth with the engine's
// own insertion speed, in one run:
//
//	direct:   the same payloads, already in memory, sent with newPayload in a
//	          tight loop into another fresh op-geth, with a forkchoice update
//	          every 64 blocks (op-geth drops the state of blocks more than 128
//	          above its head, so it must move) and at the end;
//	backfill: the adapter in backfill mode fetching them from the sequencer's
//	          HTTP JSON-RPC (window 64, 4 in flight), inserting in order, then
//	          the forkchoice update.
//
// Iterations alternate which of the two runs first.
//
// The chain is 1,000 blocks of 4 transfers each (-backfill.blocks). Run it with
//
//	go test ./internal/e2e -run '^$' -bench BenchmarkBackfill -benchtime 1x -timeout 30m
var backfillBlocks = flag.Int("backfill.blocks", 1000, "blocks on the chain BenchmarkBackfill backfills")

func BenchmarkBackfill(b *testing.B) {
	blocks, txs := *backfillBlocks, 4
	w := newWorld(b)
	start := time.Now()
	refs := w.build(blocks, txs)
	w.label(refs[blocks-1], refs[blocks-1])
	b.Logf("sequencer built %d blocks in %s", blocks, time.Since(start).Round(time.Millisecond))

	payloads := make([]*eth.ExecutionPayloadEnvelope, blocks)
	l2 := w.seq.L2(w.t)
	for i := range payloads {
		env, err := l2.PayloadByNumber(w.ctx, uint64(i+1))
		if err != nil {
			b.Fatal(err)
		}
		payloads[i] = env
	}

	var direct, backfill time.Duration
	b.ResetTimer()
	for i := range b.N { // alternate which runs first: the second meets a busier disk
		if i%2 == 0 {
			direct += insertDirectly(b, w, payloads)
			backfill += backfillInto(b, w, refs[blocks-1])
		} else {
			backfill += backfillInto(b, w, refs[blocks-1])
			direct += insertDirectly(b, w, payloads)
		}
	}
	directRate := float64(blocks*b.N) / direct.Seconds()
	backfillRate := float64(blocks*b.N) / backfill.Seconds()
	b.ReportMetric(directRate, "direct-blocks/s")
	b.ReportMetric(backfillRate, "backfill-blocks/s")
	b.ReportMetric(backfillRate/directRate, "backfill/direct")
	b.Logf("backfill of %d blocks (%d txs each): direct newPayload %.0f blocks/s, backfill %.0f blocks/s, ratio %.2f",
		blocks, txs, directRate, backfillRate, backfillRate/directRate)
}

func insertDirectly(b *testing.B, w *world, payloads []*eth.ExecutionPayloadEnvelope) time.Duration {
	b.StopTimer()
	node := w.follower("direct", false)
	engine := node.Engine(w.t)
	b.StartTimer()
	start := time.Now()
	for i, env := range payloads {
		res, err := engine.NewPayload(w.ctx, env.ExecutionPayload, env.ParentBeaconBlockRoot)
		if err != nil || res.Status != eth.ExecutionValid {
			b.Fatalf("newPayload %d: %v %v", uint64(env.ExecutionPayload.BlockNumber), err, res)
		}
		if (i+1)%64 == 0 || i == len(payloads)-1 {
			h := env.ExecutionPayload.BlockHash
			fc := eth.ForkchoiceState{HeadBlockHash: h}
			if i == len(payloads)-1 {
				fc.SafeBlockHash, fc.FinalizedBlockHash = h, h
			}
			if _, err := engine.ForkchoiceUpdate(w.ctx, &fc, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	took := time.Since(start)
	b.StopTimer()
	node.Stop()
	b.StartTimer()
	return took
}

func backfillInto(b *testing.B, w *world, target eth.L2BlockRef) time.Duration {
	b.StopTimer()
	node := w.follower("backfill", false)
	cfg := engineadapter.DefaultConfig()
	cfg.SyncMode, cfg.Payloads = reorg.Backfill, w.seq.L2(w.t)
	cfg.BackfillParallel = 4
	a, err := engineadapter.New(cfg, node.Engine(w.t), w.source, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	start := time.Now()
	if _, err := a.Step(context.Background()); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	b.StopTimer()
	if got := a.Status().Safe; got != target {
		b.Fatalf("backfill ended at safe %d, want %d", got.Number, target.Number)
	}
	node.Stop()
	b.StartTimer()
	return took
}
