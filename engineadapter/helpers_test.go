package engineadapter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakerpc"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
)

// chainSource is a source that holds one chain of the test's Tree canonical and
// says which of its blocks are safe and finalized. Tests move it, fork it, or
// make it fail.
type chainSource struct {
	tree *fakechain.Tree

	mu    sync.Mutex
	chain []*types.Block // index i is block i+1; genesis is implied
	safe  uint64
	fin   uint64
	err   error
	calls int
}

var _ safesource.SafeHeadSource = (*chainSource)(nil)

func newChainSource(tree *fakechain.Tree) *chainSource { return &chainSource{tree: tree} }

// follow makes the chain ending at head canonical, with safe and finalized at
// the given heights.
func (s *chainSource) follow(head *types.Block, safe, fin uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chain, s.safe, s.fin, s.err = s.tree.Chain(head.Hash()), safe, fin, nil
}

func (s *chainSource) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *chainSource) Name() string { return "test-source" }

func (s *chainSource) at(n uint64) (eth.L2BlockRef, error) {
	if n == 0 {
		return s.tree.Ref(s.tree.Genesis()), nil
	}
	if n > uint64(len(s.chain)) {
		return eth.L2BlockRef{}, fmt.Errorf("height %d: %w", n, safesource.ErrNotFound)
	}
	return s.tree.Ref(s.chain[n-1]), nil
}

func (s *chainSource) Heads(ctx context.Context) (safesource.Heads, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return safesource.Heads{}, s.err
	}
	safe, err := s.at(s.safe)
	if err != nil {
		return safesource.Heads{}, err
	}
	fin, err := s.at(s.fin)
	if err != nil {
		return safesource.Heads{}, err
	}
	return safesource.Heads{Safe: safe, LocalSafe: safe, Finalized: fin}, nil
}

func (s *chainSource) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at(n)
}

// rig is an in-memory EL served over HTTP with JWT, op-service's real
// EngineClient talking to it, and an adapter between the EL and a chainSource.
type rig struct {
	t      *testing.T
	tree   *fakechain.Tree
	el     *fakeel.EL
	engine *sources.EngineClient
	src    *chainSource
	a      *engineadapter.Adapter
	events []engineadapter.Event
}

func newRig(t *testing.T, tree *fakechain.Tree, elCfg fakeel.ELConfig) *rig {
	if elCfg.JWTSecret == ([32]byte{}) {
		elCfg.JWTSecret = fakeel.NewJWTSecret()
	}
	el := testutil.NewEL(t, tree, elCfg)
	cfg := sources.EngineClientDefaultConfig(tree.RollupConfig())
	cfg.TrustRPC = false // verify every block hash the EL sends
	r := &rig{t: t, tree: tree, el: el, src: newChainSource(tree)}
	r.engine = testutil.DialEngine(t, el.URL(), elCfg.JWTSecret, cfg)
	r.a = r.newAdapter()
	return r
}

func (r *rig) newAdapter() *engineadapter.Adapter {
	a, err := engineadapter.New(engineadapter.DefaultConfig(), r.engine, r.src, nil, nil)
	require.NoError(r.t, err)
	a.OnEvent(func(e engineadapter.Event) { r.events = append(r.events, e) })
	return a
}

// elHas gives the EL the chain to head and makes head canonical with the given
// labels.
func (r *rig) elHas(head *types.Block, safe, fin *types.Block) {
	r.el.Insert(r.tree.Chain(head.Hash())...)
	r.el.SetForkchoice(head.Hash(), safe.Hash(), fin.Hash())
}

func (r *rig) step() error {
	_, err := r.a.Step(context.Background())
	return err
}

// labels returns the EL's own labels as block numbers and hashes.
func (r *rig) labels() (unsafe, safe, fin eth.L2BlockRef) { return r.el.Labels() }

func (r *rig) ref(b *types.Block) eth.L2BlockRef { return r.tree.Ref(b) }

func (r *rig) eventKinds() []engineadapter.EventKind {
	var out []engineadapter.EventKind
	for _, e := range r.events {
		out = append(out, e.Kind)
	}
	return out
}

// checkInvariants checks docs/DESIGN.md's invariants on every forkchoice update the EL
// received: finalized ≤ safe ≤ head, each an ancestor of the next, and finalized
// never lower than in an earlier update. A zero safe or finalized hash leaves
// the engine's label as it is (op-geth's reading): a checkpoint that names
// neither is checked for its head only.
func (r *rig) checkInvariants() {
	var lastFin uint64
	for i, fc := range r.el.ForkchoiceUpdates() {
		head, ok := r.tree.Block(fc.HeadBlockHash)
		require.True(r.t, ok, "FCU %d: unknown head", i)
		if fc.SafeBlockHash == (common.Hash{}) || fc.FinalizedBlockHash == (common.Hash{}) {
			// a checkpoint below a label leaves it out; it names nothing else
			require.True(r.t, fc.SafeBlockHash == (common.Hash{}), "FCU %d: finalized left out, safe named", i)
			if fc.FinalizedBlockHash != (common.Hash{}) {
				finB, ok := r.tree.Block(fc.FinalizedBlockHash)
				require.True(r.t, ok, "FCU %d: unknown finalized", i)
				require.True(r.t, onChainOf(r.tree, head, r.ref(finB)), "FCU %d: finalized not an ancestor of head", i)
			}
			continue
		}
		chain := r.tree.Chain(head.Hash())
		onChain := func(h eth.L2BlockRef) bool {
			if h.Number == 0 {
				return h.Hash == r.tree.Genesis().Hash()
			}
			return h.Number <= uint64(len(chain)) && chain[h.Number-1].Hash() == h.Hash
		}
		safeB, ok := r.tree.Block(fc.SafeBlockHash)
		require.True(r.t, ok, "FCU %d: unknown safe", i)
		finB, ok := r.tree.Block(fc.FinalizedBlockHash)
		require.True(r.t, ok, "FCU %d: unknown finalized", i)
		safe, fin := r.ref(safeB), r.ref(finB)
		require.True(r.t, onChain(safe), "FCU %d: safe %d not an ancestor of head %d", i, safe.Number, head.NumberU64())
		require.True(r.t, onChain(fin), "FCU %d: finalized %d not an ancestor of head", i, fin.Number)
		require.LessOrEqual(r.t, fin.Number, safe.Number, "FCU %d", i)
		require.GreaterOrEqual(r.t, fin.Number, lastFin, "FCU %d: finalized regressed", i)
		lastFin = fin.Number
	}
}

// onChainOf reports whether ref is on the chain ending at head.
func onChainOf(tree *fakechain.Tree, head *types.Block, ref eth.L2BlockRef) bool {
	if ref.Number == 0 {
		return ref.Hash == tree.Genesis().Hash()
	}
	chain := tree.Chain(head.Hash())
	return ref.Number <= uint64(len(chain)) && chain[ref.Number-1].Hash() == ref.Hash
}

func testutilEngineConfig(tree *fakechain.Tree) *sources.EngineClientConfig {
	cfg := sources.EngineClientDefaultConfig(tree.RollupConfig())
	cfg.TrustRPC = false
	return cfg
}

// blockReads counts the eth_getBlockByNumber calls among calls: as a header,
// and whole (with the block's transactions).
func blockReads(t *testing.T, calls []fakerpc.Call) (headers, whole int) {
	t.Helper()
	for _, c := range calls {
		if c.Method != "eth_getBlockByNumber" {
			continue
		}
		var params []json.RawMessage
		require.NoError(t, json.Unmarshal(c.Params, &params))
		if len(params) > 1 && string(params[1]) == "true" {
			whole++
		} else {
			headers++
		}
	}
	return headers, whole
}
