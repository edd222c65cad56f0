package l1verify_test

import (
	"context"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/l1verify"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

// countingL1 counts the calls a verifier makes to its L1Source, by kind.
type countingL1 struct {
	inner l1verify.L1Source

	mu       sync.Mutex
	byLabel  map[eth.BlockLabel]int
	byNumber int
}

func count(l1 l1verify.L1Source) *countingL1 {
	return &countingL1{inner: l1, byLabel: map[eth.BlockLabel]int{}}
}

func (c *countingL1) L1BlockRefByLabel(ctx context.Context, label eth.BlockLabel) (eth.L1BlockRef, error) {
	c.mu.Lock()
	c.byLabel[label]++
	c.mu.Unlock()
	return c.inner.L1BlockRefByLabel(ctx, label)
}

func (c *countingL1) L1BlockRefByNumber(ctx context.Context, n uint64) (eth.L1BlockRef, error) {
	c.mu.Lock()
	c.byNumber++
	c.mu.Unlock()
	return c.inner.L1BlockRefByNumber(ctx, n)
}

// calls returns (latest, finalized, by number, total) so far.
func (c *countingL1) calls() (latest, finalized, byNumber, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	latest, finalized = c.byLabel[eth.Unsafe], c.byLabel[eth.Finalized]
	return latest, finalized, c.byNumber, latest + finalized + c.byNumber
}

func (c *countingL1) total() int {
	_, _, _, t := c.calls()
	return t
}

// serverCalls is what the in-memory L1 received: every eth_getBlockBy* call.
func serverCalls(l1 *fakel1.L1) int {
	return l1.CallCount("eth_getBlockByNumber") + l1.CallCount("eth_getBlockByHash")
}

// world is a Tree with a chain of 120 L2 blocks (a[i] is block i+1, L1
// origin (i+1)/6) and the default in-memory L1, whose canonical blocks are
// the Tree's L1 origins, with its head at 25, safe 18, finalized 12.
type world struct {
	tree *fakechain.Tree
	a    []*types.Block
	l1   *fakel1.L1
}

func newWorld(t testing.TB) world {
	tree := fakechain.NewTree()
	return world{
		tree: tree,
		a:    tree.Extend(tree.Genesis().Hash(), 120, 1),
		l1:   testutil.NewL1(t, fakel1.L1Config{Head: 25, Safe: 18, Finalized: 12}),
	}
}

func (w world) ref(n uint64) eth.L2BlockRef { return w.tree.Ref(w.a[n-1]) }

// heads are the Tree's blocks safe, local-safe and finalized, with currentL1.
func (w world) heads(safe, localSafe, finalized uint64, currentL1 eth.L1BlockRef) safesource.Heads {
	return safesource.Heads{Safe: w.ref(safe), LocalSafe: w.ref(localSafe), Finalized: w.ref(finalized), CurrentL1: currentL1}
}

// rollupNode is a fake rollup node on the world's chain: unsafe 120,
// local-safe 100 (origin 16), safe 90 (origin 15), finalized 60 (origin 10),
// current L1 20.
func (w world) rollupNode(t testing.TB) *fakerollup.RollupNode {
	n := testutil.NewRollupNode(t, w.tree, fakerollup.RollupNodeConfig{})
	n.Follow(w.a[119], w.a[99], w.a[89], w.a[59], w.l1.Ref(20))
	return n
}

func remote(t testing.TB, url string) *remotel2.Source {
	s, err := remotel2.New(context.Background(), remotel2.Config{URL: url, Timeout: 2 * time.Second}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// static returns a Static source holding h.
func static(t testing.TB, name string, h safesource.Heads) *safesource.Static {
	s := safesource.NewStatic(name, nil)
	require.NoError(t, s.Set(h))
	return s
}

func wrap(t testing.TB, inner safesource.SafeHeadSource, l1 l1verify.L1Source, cfg l1verify.Config) *l1verify.Source {
	s, err := l1verify.Wrap(inner, l1, cfg, nil, nil)
	require.NoError(t, err)
	return s
}

// synthHeads builds L2 heads whose L1 origins are the given L1 blocks, for an
// L1 that is not the Tree's: the L2 block with origin o is number 6*o+3.
// Labels at adjacent heights are linked as Heads.Check wants.
func synthHeads(safe, localSafe, finalized eth.L1BlockRef, currentL1 eth.L1BlockRef) safesource.Heads {
	return safesource.Heads{
		Safe:      synthL2(safe),
		LocalSafe: synthL2(localSafe),
		Finalized: synthL2(finalized),
		CurrentL1: currentL1,
	}
}

func synthL2(origin eth.L1BlockRef) eth.L2BlockRef {
	n := 6*origin.Number + 3
	return eth.L2BlockRef{
		Hash:           synthHash(n),
		Number:         n,
		ParentHash:     synthHash(n - 1),
		Time:           fakechain.GenesisTime + 2*n,
		L1Origin:       origin.ID(),
		SequenceNumber: 3,
	}
}

func synthHash(n uint64) common.Hash {
	return crypto.Keccak256Hash([]byte("l1verify test L2"), new(big.Int).SetUint64(n).Bytes())
}
