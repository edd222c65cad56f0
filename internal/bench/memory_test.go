package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource"
)

var memBlocks = flag.Uint64("memory.blocks", 1_000_000, "blocks BenchmarkAdapterMemory follows (one per tick)")

const (
	// memSafeLag is how far the source's safe head is below the newest block
	// the engine has.
	memSafeLag = 4
	// memFinalizedLag is how far the source's finalized head is below its safe head.
	memFinalizedLag = 64
	// memSamples is how many times the heap is measured over the run.
	memSamples = 10
)

// BenchmarkAdapterMemory measures whether the adapter's memory stays flat while
// it follows a long chain. The real engineadapter.Adapter (default config, no
// metrics, a discarding logger) is driven by calling Step in a loop, with no
// sleeps and no Run, against an in-process engine and source that compute every
// block from its height and hold no chain: the heap measured is the adapter's.
// Each tick the chain grows by one block: the engine has every block up to a
// height that grows by one (as if from a tip feed), and moves its head, safe and
// finalized labels only when it is sent a forkchoice update; the source calls
// safe the block memSafeLag below that height and finalized memFinalizedLag
// below safe. So every tick the adapter sends one forkchoice update that moves
// all three labels by one block.
//
// After each tenth of the blocks it runs runtime.GC and reads
// runtime.MemStats.HeapAlloc: the bytes of live heap objects after a full
// collection (the whole test process, the adapter being all that grows). It
// reports heap-first-KB (after 10%), heap-last-KB (after 100%), heap-max-KB,
// heap-last/first (about 1 when memory is flat), goroutines-end (goroutines
// at the end minus at the start) and ns/block (time in Step per block, the
// measurements excluded), and logs the ten samples. It fails if a Step returns
// an error or the engine's labels end anywhere but at the source's safe and
// finalized heads.
//
// Run the whole chain once (one iteration):
//
//	go test ./internal/bench -run '^$' -bench BenchmarkAdapterMemory -benchtime 1x
//
// -memory.blocks sets the chain's length (default 1,000,000); add
// -memory.blocks 100000 for a quick run.
func BenchmarkAdapterMemory(b *testing.B) {
	blocks := *memBlocks
	if blocks < memSamples {
		b.Fatalf("-memory.blocks %d: need at least %d", blocks, memSamples)
	}
	for b.Loop() {
		memFollow(b, blocks)
	}
}

// memFollow runs one adapter along blocks ticks and reports the metrics.
func memFollow(b *testing.B, blocks uint64) {
	ctx := context.Background()
	goroutinesStart := runtime.NumGoroutine()

	chain := &memChain{available: memSafeLag}
	engine := &memEngine{chain: chain}
	source := &memSource{chain: chain}
	a, err := engineadapter.New(engineadapter.DefaultConfig(), engine, source, log.NewLogger(log.DiscardHandler()), nil)
	if err != nil {
		b.Fatal(err)
	}

	var (
		samples [memSamples]uint64 // HeapAlloc in bytes after each tenth
		actions = map[reorg.Action]uint64{}
		inStep  time.Duration
		ms      runtime.MemStats
	)
	next := 0
	start := time.Now()
	for tick := uint64(1); tick <= blocks; tick++ {
		chain.available++
		d, err := a.Step(ctx)
		if err != nil {
			b.Fatalf("tick %d (source safe %d): Step: %v", tick, chain.safe(), err)
		}
		actions[d.Action]++
		if tick == blocks*uint64(next+1)/memSamples {
			inStep += time.Since(start)
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&ms)
			samples[next] = ms.HeapAlloc
			next++
			b.StartTimer()
			start = time.Now()
		}
	}
	goroutinesEnd := runtime.NumGoroutine()

	safe, fin := chain.safe(), chain.finalized()
	if engine.safe != safe || engine.finalized != fin || engine.head < safe {
		b.Fatalf("engine labels head %d, safe %d, finalized %d; source safe %d, finalized %d: the adapter stopped following",
			engine.head, engine.safe, engine.finalized, safe, fin)
	}

	var maxHeap uint64
	line := fmt.Sprintf("heap (KB) after each tenth of %d blocks:", blocks)
	for _, s := range samples {
		maxHeap = max(maxHeap, s)
		line += fmt.Sprintf(" %d", s/1024)
	}
	b.Log(line) // one line: without -v, go test shows only the first ten lines of a benchmark's log
	b.Logf("decisions: %v; forkchoice updates: %d; engine reads: %d; source reads: %d",
		memActionCounts(actions), engine.forkchoices, engine.reads, source.reads)
	b.ReportMetric(float64(samples[0])/1024, "heap-first-KB")
	b.ReportMetric(float64(samples[memSamples-1])/1024, "heap-last-KB")
	b.ReportMetric(float64(maxHeap)/1024, "heap-max-KB")
	b.ReportMetric(float64(samples[memSamples-1])/float64(samples[0]), "heap-last/first")
	b.ReportMetric(float64(goroutinesEnd-goroutinesStart), "goroutines-end")
	b.ReportMetric(float64(inStep.Nanoseconds())/float64(blocks), "ns/block")
}

// memActionCounts lists the decisions taken by action name, for the log.
func memActionCounts(actions map[reorg.Action]uint64) string {
	var out []string
	for a := reorg.Skip; a <= reorg.Build; a++ {
		if n := actions[a]; n > 0 {
			out = append(out, fmt.Sprintf("%s=%d", a, n))
		}
	}
	return strings.Join(out, " ")
}

// memChain is one L2 chain computed from the height: no block is stored. The
// hash of block n is a SHA-256 of a tag and n with n in its last eight bytes, so
// a hash names its height and can be checked by computing it again.
type memChain struct {
	// available is the newest block the engine has; the source's heads trail it.
	available uint64
}

const memGenesisTime = 1_700_000_000

func memHash(tag byte, n uint64) common.Hash {
	var in [9]byte
	in[0] = tag
	binary.BigEndian.PutUint64(in[1:], n)
	h := common.Hash(sha256.Sum256(in[:]))
	binary.BigEndian.PutUint64(h[24:], n)
	return h
}

// memRef is block n: two seconds apart, six to an L1 origin.
func memRef(n uint64) eth.L2BlockRef {
	ref := eth.L2BlockRef{
		Hash:           memHash('L', n),
		Number:         n,
		Time:           memGenesisTime + 2*n,
		L1Origin:       eth.BlockID{Hash: memHash('1', n/6), Number: n / 6},
		SequenceNumber: n % 6,
	}
	if n > 0 {
		ref.ParentHash = memHash('L', n-1)
	}
	return ref
}

// memHeight returns the height of the block h, if h is one of the chain's
// blocks up to available.
func (c *memChain) memHeight(h common.Hash) (uint64, bool) {
	n := binary.BigEndian.Uint64(h[24:])
	return n, n <= c.available && h == memHash('L', n)
}

func (c *memChain) safe() uint64 { return c.available - memSafeLag }

func (c *memChain) finalized() uint64 { return c.safe() - min(c.safe(), memFinalizedLag) }

// memEngine is an execution engine that has every block of its chain up to
// available; its labels, genesis at first, move only by forkchoice updates.
// Called from one goroutine (the benchmark's Step loop).
type memEngine struct {
	chain                 *memChain
	head, safe, finalized uint64
	forkchoices, reads    uint64
}

var _ engineadapter.Engine = (*memEngine)(nil)

// ForkchoiceUpdate answers VALID and moves the labels when it has the three
// blocks and they are in order, SYNCING for an unknown head, and an error for
// anything else: on one chain, a correct adapter never sends that.
func (e *memEngine) ForkchoiceUpdate(_ context.Context, state *eth.ForkchoiceState, attr *eth.PayloadAttributes) (*eth.ForkchoiceUpdatedResult, error) {
	e.forkchoices++
	if attr != nil {
		return nil, errors.New("mem engine: does not build blocks")
	}
	head, ok := e.chain.memHeight(state.HeadBlockHash)
	if !ok {
		return &eth.ForkchoiceUpdatedResult{PayloadStatus: eth.PayloadStatusV1{Status: eth.ExecutionSyncing}}, nil
	}
	safe, okSafe := e.chain.memHeight(state.SafeBlockHash)
	fin, okFin := e.chain.memHeight(state.FinalizedBlockHash)
	if !okSafe || !okFin || fin > safe || safe > head {
		return nil, fmt.Errorf("mem engine: forkchoice head %d, safe %s, finalized %s is not a chain it has",
			head, state.SafeBlockHash, state.FinalizedBlockHash)
	}
	e.head, e.safe, e.finalized = head, safe, fin
	valid := state.HeadBlockHash
	return &eth.ForkchoiceUpdatedResult{PayloadStatus: eth.PayloadStatusV1{Status: eth.ExecutionValid, LatestValidHash: &valid}}, nil
}

// NewPayload is not used in EL-sync mode.
func (e *memEngine) NewPayload(context.Context, *eth.ExecutionPayload, *common.Hash) (*eth.PayloadStatusV1, error) {
	return nil, errors.New("mem engine: newPayload is not expected in EL-sync mode")
}

// L2BlockRefByLabel returns the block a label points at.
func (e *memEngine) L2BlockRefByLabel(_ context.Context, label eth.BlockLabel) (eth.L2BlockRef, error) {
	e.reads++
	switch label {
	case eth.Unsafe:
		return memRef(e.head), nil
	case eth.Safe:
		return memRef(e.safe), nil
	case eth.Finalized:
		return memRef(e.finalized), nil
	}
	return eth.L2BlockRef{}, fmt.Errorf("mem engine: label %q: %w", label, ethereum.NotFound)
}

// L2BlockRefByNumber returns block n of the canonical chain, which ends at head.
func (e *memEngine) L2BlockRefByNumber(_ context.Context, n uint64) (eth.L2BlockRef, error) {
	e.reads++
	if n > e.head {
		return eth.L2BlockRef{}, fmt.Errorf("mem engine: block %d: %w", n, ethereum.NotFound)
	}
	return memRef(n), nil
}

// memSource calls safe and finalized the blocks memSafeLag and
// memSafeLag+memFinalizedLag below the chain's available height.
type memSource struct {
	chain *memChain
	reads uint64
}

var _ safesource.SafeHeadSource = (*memSource)(nil)

func (s *memSource) Heads(context.Context) (safesource.Heads, error) {
	s.reads++
	safe := memRef(s.chain.safe())
	h := safesource.Heads{Safe: safe, LocalSafe: safe, Finalized: memRef(s.chain.finalized())}
	return h, h.Check()
}

func (s *memSource) L2BlockRefByNumber(_ context.Context, n uint64) (eth.L2BlockRef, error) {
	s.reads++
	if n > s.chain.safe() {
		return eth.L2BlockRef{}, fmt.Errorf("mem source: block %d: %w", n, safesource.ErrNotFound)
	}
	return memRef(n), nil
}

func (s *memSource) Name() string { return "mem-source" }
