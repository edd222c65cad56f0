package fakeel_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a hand-stepped clock for ELConfig.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	tree   *fakechain.Tree
	el     *fakeel.EL
	engine *sources.EngineClient
	secret [32]byte // the EL's JWT secret
}

func newFixture(t *testing.T, cfg fakeel.ELConfig) fixture {
	t.Helper()
	cfg.JWTSecret = fakeel.NewJWTSecret()
	tree := fakechain.NewTree()
	if cfg.Peer == nil {
		cfg.Peer = tree
	}
	el := testutil.NewEL(t, tree, cfg)
	return fixture{
		tree:   tree,
		el:     el,
		engine: testutil.DialEngine(t, el.URL(), cfg.JWTSecret, sources.EngineClientDefaultConfig(tree.RollupConfig())),
		secret: cfg.JWTSecret,
	}
}

func fcu(head, safe, finalized *types.Block) *eth.ForkchoiceState {
	return &eth.ForkchoiceState{HeadBlockHash: head.Hash(), SafeBlockHash: safe.Hash(), FinalizedBlockHash: finalized.Hash()}
}

func requireStatus(t *testing.T, want eth.ExecutePayloadStatus, res *eth.ForkchoiceUpdatedResult, err error) {
	t.Helper()
	require.NoError(t, err)
	require.Equal(t, want, res.PayloadStatus.Status)
}

func TestClientRefsMatchTreeRefs(t *testing.T) {
	f := newFixture(t, fakeel.ELConfig{})
	chain := f.tree.Extend(f.tree.Genesis().Hash(), 8, 0)
	side := f.tree.Child(chain[3].Hash(), 1)
	f.el.Insert(chain...)
	f.el.Insert(side)
	f.el.SetForkchoice(chain[7].Hash(), chain[4].Hash(), chain[1].Hash())

	cfg := sources.EngineClientDefaultConfig(f.tree.RollupConfig())
	cfg.TrustRPC = false // recompute block hashes and tx roots
	verifying := testutil.DialEngine(t, f.el.URL(), f.secret, cfg)
	ctx := context.Background()
	for name, c := range map[string]*sources.EngineClient{"trusting": f.engine, "verifying": verifying} {
		t.Run(name, func(t *testing.T) {
			for i, b := range append([]*types.Block{f.tree.Genesis()}, chain...) {
				ref, err := c.L2BlockRefByNumber(ctx, uint64(i))
				require.NoError(t, err)
				require.Equal(t, f.tree.Ref(b), ref)
				ref, err = c.L2BlockRefByHash(ctx, b.Hash())
				require.NoError(t, err)
				require.Equal(t, f.tree.Ref(b), ref)
			}
			for label, want := range map[eth.BlockLabel]*types.Block{eth.Unsafe: chain[7], eth.Safe: chain[4], eth.Finalized: chain[1]} {
				ref, err := c.L2BlockRefByLabel(ctx, label)
				require.NoError(t, err)
				require.Equal(t, f.tree.Ref(want), ref, label)
			}
			ref, err := c.L2BlockRefByHash(ctx, side.Hash())
			require.NoError(t, err, "non-canonical blocks are served by hash")
			require.Equal(t, f.tree.Ref(side), ref)

			_, err = c.L2BlockRefByNumber(ctx, 9)
			require.ErrorIs(t, err, ethereum.NotFound)
			_, err = c.L2BlockRefByHash(ctx, common.Hash{1})
			require.ErrorIs(t, err, ethereum.NotFound)

			id, err := c.ChainID(ctx)
			require.NoError(t, err)
			require.Equal(t, int64(fakechain.ChainID), id.Int64())
		})
	}
}

func TestForkchoiceValidMovesLabelsAndReorgs(t *testing.T) {
	f := newFixture(t, fakeel.ELConfig{})
	ctx := context.Background()
	g := f.tree.Genesis()
	chain := f.tree.Extend(g.Hash(), 5, 0)
	fork := f.tree.Extend(chain[1].Hash(), 4, 1)
	f.el.Insert(chain...)
	f.el.Insert(fork...)

	res, err := f.engine.ForkchoiceUpdate(ctx, fcu(chain[4], chain[2], chain[0]), nil)
	requireStatus(t, eth.ExecutionValid, res, err)
	require.Equal(t, chain[4].Hash(), *res.PayloadStatus.LatestValidHash)
	unsafe, safe, finalized := f.el.Labels()
	require.Equal(t, []eth.L2BlockRef{f.tree.Ref(chain[4]), f.tree.Ref(chain[2]), f.tree.Ref(chain[0])}, []eth.L2BlockRef{unsafe, safe, finalized})

	// Reorg onto the fork that leaves the chain after chain[1].
	res, err = f.engine.ForkchoiceUpdate(ctx, fcu(fork[3], fork[0], chain[1]), nil)
	requireStatus(t, eth.ExecutionValid, res, err)
	ref, err := f.engine.L2BlockRefByNumber(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, f.tree.Ref(fork[0]), ref)
	ref, err = f.engine.L2BlockRefByLabel(ctx, eth.Unsafe)
	require.NoError(t, err)
	require.Equal(t, f.tree.Ref(fork[3]), ref)

	// A zero safe and finalized leave those labels where they are.
	res, err = f.engine.ForkchoiceUpdate(ctx, &eth.ForkchoiceState{HeadBlockHash: fork[2].Hash()}, nil)
	requireStatus(t, eth.ExecutionValid, res, err)
	unsafe, safe, finalized = f.el.Labels()
	require.Equal(t, []eth.L2BlockRef{f.tree.Ref(fork[2]), f.tree.Ref(fork[0]), f.tree.Ref(chain[1])}, []eth.L2BlockRef{unsafe, safe, finalized})
}

func TestForkchoiceUnknownHeadSyncsFromPeerAfterDelay(t *testing.T) {
	clock := &fakeClock{now: time.Unix(fakechain.GenesisTime, 0)}
	f := newFixture(t, fakeel.ELConfig{SyncDelay: 10 * time.Second, Now: clock.Now})
	ctx := context.Background()
	chain := f.tree.Extend(f.tree.Genesis().Hash(), 6, 0)
	state := fcu(chain[5], chain[3], chain[1])

	res, err := f.engine.ForkchoiceUpdate(ctx, state, nil)
	requireStatus(t, eth.ExecutionSyncing, res, err)
	require.Nil(t, res.PayloadStatus.LatestValidHash)

	clock.Add(9 * time.Second)
	res, err = f.engine.ForkchoiceUpdate(ctx, state, nil)
	requireStatus(t, eth.ExecutionSyncing, res, err)
	require.False(t, f.el.Has(chain[0].Hash()), "a repeated FCU does not restart or finish the sync early")

	clock.Add(time.Second)
	res, err = f.engine.ForkchoiceUpdate(ctx, state, nil)
	requireStatus(t, eth.ExecutionValid, res, err)
	for i, b := range chain {
		ref, err := f.engine.L2BlockRefByNumber(ctx, uint64(i+1))
		require.NoError(t, err)
		require.Equal(t, f.tree.Ref(b), ref)
	}
	_, safe, finalized := f.el.Labels()
	require.Equal(t, f.tree.Ref(chain[3]), safe)
	require.Equal(t, f.tree.Ref(chain[1]), finalized)
}

func TestForkchoiceSyncWithZeroDelayCompletesAtNextRequest(t *testing.T) {
	f := newFixture(t, fakeel.ELConfig{})
	ctx := context.Background()
	head := f.tree.Extend(f.tree.Genesis().Hash(), 3, 0)[2]

	res, err := f.engine.ForkchoiceUpdate(ctx, &eth.ForkchoiceState{HeadBlockHash: head.Hash()}, nil)
	requireStatus(t, eth.ExecutionSyncing, res, err)
	ref, err := f.engine.L2BlockRefByLabel(ctx, eth.Unsafe)
	require.NoError(t, err)
	require.Equal(t, f.tree.Ref(head), ref, "the completed sync makes the target the head, as op-geth does")
}

func TestForkchoiceHeadNobodyHasStaysSyncing(t *testing.T) {
	f := newFixture(t, fakeel.ELConfig{})
	ctx := context.Background()
	stranger := fakechain.NewTree()
	head := stranger.Extend(stranger.Genesis().Hash(), 2, 99)[1] // not in the EL's Peer
	for range 3 {
		res, err := f.engine.ForkchoiceUpdate(ctx, &eth.ForkchoiceState{HeadBlockHash: head.Hash()}, nil)
		requireStatus(t, eth.ExecutionSyncing, res, err)
	}
	require.False(t, f.el.Has(head.Hash()))
}

func TestForkchoiceInvalidAndForcedSyncing(t *testing.T) {
	f := newFixture(t, fakeel.ELConfig{})
	ctx := context.Background()
	g := f.tree.Genesis()
	chain := f.tree.Extend(g.Hash(), 2, 0)
	f.el.Insert(chain...)

	f.el.MarkInvalid(chain[1].Hash())
	res, err := f.engine.ForkchoiceUpdate(ctx, fcu(chain[1], g, g), nil)
	requireStatus(t, eth.ExecutionInvalid, res, err)
	require.Equal(t, chain[0].Hash(), *res.PayloadStatus.LatestValidHash)
	res, err = f.engine.ForkchoiceUpdate(ctx, &eth.ForkchoiceState{}, nil)
	requireStatus(t, eth.ExecutionInvalid, res, err)

	f.el.SetForceSyncing(true)
	res, err = f.engine.ForkchoiceUpdate(ctx, fcu(chain[0], g, g), nil)
	requireStatus(t, eth.ExecutionSyncing, res, err)
	f.el.SetForceSyncing(false)
	res, err = f.engine.ForkchoiceUpdate(ctx, fcu(chain[0], g, g), nil)
	requireStatus(t, eth.ExecutionValid, res, err)
}

func TestForkchoiceBadLabelsAreInvalidForkchoiceState(t *testing.T) {
	f := newFixture(t, fakeel.ELConfig{})
	ctx := context.Background()
	g := f.tree.Genesis()
	chain := f.tree.Extend(g.Hash(), 4, 0)
	fork := f.tree.Extend(g.Hash(), 2, 1)
	f.el.Insert(chain...)
	f.el.Insert(fork...)
	f.el.SetForkchoice(chain[1].Hash(), chain[0].Hash(), g.Hash())

	for name, state := range map[string]*eth.ForkchoiceState{
		"safe on another fork":      fcu(chain[3], fork[1], g),
		"safe unknown":              {HeadBlockHash: chain[3].Hash(), SafeBlockHash: common.Hash{1}},
		"finalized above safe":      fcu(chain[3], chain[1], chain[2]),
		"finalized above head":      {HeadBlockHash: chain[2].Hash(), FinalizedBlockHash: chain[3].Hash()},
		"finalized on another fork": fcu(chain[3], chain[2], fork[0]),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.engine.ForkchoiceUpdate(ctx, state, nil)
			var rpcErr rpc.Error
			require.ErrorAs(t, err, &rpcErr)
			require.Equal(t, -38002, rpcErr.ErrorCode(), err.Error())
			unsafe, safe, finalized := f.el.Labels()
			require.Equal(t, state.HeadBlockHash, unsafe.Hash, "the head moves before the labels are checked, as in op-geth")
			require.Equal(t, f.tree.Ref(chain[0]), safe, "labels stay on a bad forkchoice")
			require.Equal(t, f.tree.Ref(g), finalized)
		})
	}
}

func TestForkchoiceWithAttributesIsRefused(t *testing.T) {
	f := newFixture(t, fakeel.ELConfig{})
	g := f.tree.Genesis()
	_, err := f.engine.ForkchoiceUpdate(context.Background(), fcu(g, g, g), &eth.PayloadAttributes{Timestamp: fakechain.GenesisTime + 2})
	require.ErrorContains(t, err, "payload building not supported")
}

func TestNewPayloadThenForkchoice(t *testing.T) {
	f := newFixture(t, fakeel.ELConfig{Peer: fakechain.NewTree()}) // a Peer that lacks these blocks
	ctx := context.Background()
	cfg := f.tree.RollupConfig()
	chain := f.tree.Extend(f.tree.Genesis().Hash(), 3, 0)
	payload := func(b *types.Block) *eth.ExecutionPayload {
		p, err := eth.BlockAsPayload(b, cfg)
		require.NoError(t, err)
		return p
	}

	st, err := f.engine.NewPayload(ctx, payload(chain[0]), nil)
	require.NoError(t, err)
	require.Equal(t, eth.ExecutionValid, st.Status)
	require.Equal(t, chain[0].Hash(), *st.LatestValidHash)
	res, err := f.engine.ForkchoiceUpdate(ctx, &eth.ForkchoiceState{HeadBlockHash: chain[0].Hash()}, nil)
	requireStatus(t, eth.ExecutionValid, res, err)

	bad := payload(chain[1])
	bad.BlockHash = common.Hash{1}
	st, err = f.engine.NewPayload(ctx, bad, nil)
	require.NoError(t, err)
	require.Equal(t, eth.ExecutionInvalid, st.Status)
	require.Contains(t, *st.ValidationError, "block hash mismatch")

	// chain[2] before its parent: remembered, SYNCING, and an FCU to it
	// syncs once the parent arrives.
	st, err = f.engine.NewPayload(ctx, payload(chain[2]), nil)
	require.NoError(t, err)
	require.Equal(t, eth.ExecutionSyncing, st.Status)
	res, err = f.engine.ForkchoiceUpdate(ctx, &eth.ForkchoiceState{HeadBlockHash: chain[2].Hash()}, nil)
	requireStatus(t, eth.ExecutionSyncing, res, err)
	st, err = f.engine.NewPayload(ctx, payload(chain[1]), nil)
	require.NoError(t, err)
	require.Equal(t, eth.ExecutionValid, st.Status)
	res, err = f.engine.ForkchoiceUpdate(ctx, &eth.ForkchoiceState{HeadBlockHash: chain[2].Hash()}, nil)
	requireStatus(t, eth.ExecutionValid, res, err)

	f.el.MarkInvalid(chain[1].Hash())
	st, err = f.engine.NewPayload(ctx, payload(chain[1]), nil)
	require.NoError(t, err)
	require.Equal(t, eth.ExecutionInvalid, st.Status, "block marked invalid")
	child := f.tree.Child(chain[1].Hash(), 5)
	st, err = f.engine.NewPayload(ctx, payload(child), nil)
	require.NoError(t, err)
	require.Equal(t, eth.ExecutionInvalid, st.Status, "child of an invalid block")
	require.Equal(t, 6, f.el.CallCount("engine_newPayloadV2"))
}

func TestDropAboveForgetsBlocksAndClampsLabels(t *testing.T) {
	f := newFixture(t, fakeel.ELConfig{})
	g := f.tree.Genesis()
	chain := f.tree.Extend(g.Hash(), 6, 0)
	side := f.tree.Child(chain[3].Hash(), 1)
	f.el.Insert(chain...)
	f.el.Insert(side)
	f.el.SetForkchoice(chain[5].Hash(), chain[4].Hash(), chain[1].Hash())

	f.el.DropAbove(3)
	unsafe, safe, finalized := f.el.Labels()
	require.Equal(t, f.tree.Ref(chain[2]), unsafe)
	require.Equal(t, f.tree.Ref(chain[2]), safe)
	require.Equal(t, f.tree.Ref(chain[1]), finalized)
	require.False(t, f.el.Has(chain[3].Hash()))
	require.False(t, f.el.Has(side.Hash()))
	_, err := f.engine.L2BlockRefByNumber(context.Background(), 4)
	require.ErrorIs(t, err, ethereum.NotFound)
}

func TestCallsAreRecorded(t *testing.T) {
	f := newFixture(t, fakeel.ELConfig{})
	ctx := context.Background()
	g := f.tree.Genesis()
	state := fcu(g, g, g)
	_, err := f.engine.ForkchoiceUpdate(ctx, state, nil)
	require.NoError(t, err)
	_, err = f.engine.L2BlockRefByLabel(ctx, eth.Safe)
	require.NoError(t, err)

	calls := f.el.Calls()
	require.Len(t, calls, 2)
	require.Equal(t, "engine_forkchoiceUpdatedV3", calls[0].Method)
	require.JSONEq(t, `["safe", true]`, string(calls[1].Params))
	require.Equal(t, []eth.ForkchoiceState{*state}, f.el.ForkchoiceUpdates())
	require.Equal(t, 1, f.el.CallCount("eth_getBlockByNumber"))
	require.Zero(t, f.el.CallCount("engine_newPayloadV2"))
}

func TestBadRequestsGetJSONRPCErrors(t *testing.T) {
	f := newFixture(t, fakeel.ELConfig{})
	ctx := context.Background()
	for _, tc := range []struct {
		method string
		params []any
	}{
		{"eth_getBlockByNumber", []any{"yesterday", true}},
		{"eth_getBlockByHash", []any{"0x1234", true}},
		{"engine_forkchoiceUpdatedV3", []any{"nonsense", nil}},
		{"engine_newPayloadV2", []any{map[string]any{"blockNumber": "0x1"}}},
		{"engine_newPayloadV3", []any{}},
	} {
		var out any
		err := f.engine.RPC.CallContext(ctx, &out, tc.method, tc.params...)
		var rpcErr rpc.Error
		if !errors.As(err, &rpcErr) {
			// newPayload of a payload that cannot be rebuilt answers INVALID, not an error
			require.NoError(t, err, tc.method)
			require.Equal(t, "INVALID", out.(map[string]any)["status"], tc.method)
			continue
		}
		require.Equal(t, -32602, rpcErr.ErrorCode(), "%s: %v", tc.method, err)
	}
}

func TestFaultsActBeforeELJWTCheck(t *testing.T) {
	f := newFixture(t, fakeel.ELConfig{})
	f.el.Faults().HTTPStatus(http.StatusServiceUnavailable)
	_, err := f.engine.L2BlockRefByLabel(context.Background(), eth.Unsafe)
	require.ErrorContains(t, err, "503")

	resp, err := http.Post(f.el.URL(), "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "no JWT, still the fault")
	http.DefaultClient.CloseIdleConnections()
	require.Zero(t, f.el.CallCount("eth_getBlockByNumber"))

	f.el.Faults().Clear()
	_, err = f.engine.L2BlockRefByLabel(context.Background(), eth.Unsafe)
	require.NoError(t, err)
}
