package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/reorg"
)

// BenchmarkAncestor counts the block lookups of the common-ancestor search
// (reorg.FindCommonAncestor, which the adapter runs through reorg.Search)
// when two chains fork depth blocks below the top of the range, over ranges
// reaching depth, depth+7, 2·depth and 1,000,000 blocks below the top.
// Reported: the most lookups on each chain over those ranges, and the same as
// a fraction of a walk back block by block (depth+1 lookups on each chain,
// how a search without bisection finds the ancestor).
//
//	go test ./internal/bench -run '^$' -bench BenchmarkAncestor -benchtime 1x
func BenchmarkAncestor(b *testing.B) {
	for _, depth := range []uint64{1, 100, 10_000} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			worst := 0
			for range b.N {
				for _, below := range []uint64{depth, depth + 7, 2 * depth, 1_000_000} {
					const hi = 2_000_000
					var la, lb int
					a := counting(synthChain(1, hi+1), &la)
					forked := counting(forkAt(hi-depth), &lb)
					got, err := reorg.FindCommonAncestor(context.Background(), a, forked, hi-below, hi)
					if err != nil {
						b.Fatal(err)
					}
					if got.Number != hi-depth {
						b.Fatalf("ancestor %d, want %d", got.Number, hi-depth)
					}
					if la != lb {
						b.Fatalf("%d lookups on one chain, %d on the other", la, lb)
					}
					worst = max(worst, la)
				}
			}
			b.ReportMetric(float64(worst), "lookups/chain")
			b.ReportMetric(float64(worst)/float64(depth+1), "of-a-walk")
			b.ReportMetric(0, "ns/op")
		})
	}
}

type lookupFunc = func(context.Context, uint64) (eth.L2BlockRef, error)

func counting(f lookupFunc, n *int) lookupFunc {
	return func(ctx context.Context, h uint64) (eth.L2BlockRef, error) {
		*n++
		return f(ctx, h)
	}
}

// synthChain is a chain of blocks 0..top computed on demand (memHash names
// them; nothing is stored).
func synthChain(tag byte, top uint64) lookupFunc {
	return func(_ context.Context, n uint64) (eth.L2BlockRef, error) {
		if n > top {
			return eth.L2BlockRef{}, fmt.Errorf("height %d above %d", n, top)
		}
		ref := eth.L2BlockRef{Number: n, Hash: memHash(tag, n)}
		if n > 0 {
			ref.ParentHash = memHash(tag, n-1)
		}
		return ref, nil
	}
}

// forkAt is chain 1 up to height at, then chain 2 built on it.
func forkAt(at uint64) lookupFunc {
	base := synthChain(1, at)
	return func(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
		if n <= at {
			return base(ctx, n)
		}
		ref := eth.L2BlockRef{Number: n, Hash: memHash(2, n), ParentHash: memHash(2, n-1)}
		if n == at+1 {
			ref.ParentHash = memHash(1, at)
		}
		return ref, nil
	}
}
