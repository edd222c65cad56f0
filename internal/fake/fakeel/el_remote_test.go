package fakeel_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
)

// remoteEL is a NoAuth EL on a Tree, as a public L2 RPC, with an L2Client on it.
type remoteEL struct {
	tree *fakechain.Tree
	el   *fakeel.EL
	l2   *sources.L2Client
}

func newRemoteEL(t *testing.T, cfg fakeel.ELConfig) remoteEL {
	t.Helper()
	cfg.NoAuth = true
	tree := fakechain.NewTree()
	el := testutil.NewEL(t, tree, cfg)
	l2, err := sources.NewL2Client(testutil.DialNoAuth(t, el.URL(), 5*time.Second), log.NewLogger(log.DiscardHandler()), nil,
		sources.L2ClientDefaultConfig(tree.RollupConfig(), false))
	require.NoError(t, err)
	return remoteEL{tree: tree, el: el, l2: l2}
}

func TestNoAuthELAnswersWithoutJWT(t *testing.T) {
	r := newRemoteEL(t, fakeel.ELConfig{JWTSecret: fakeel.NewJWTSecret()}) // the secret is ignored
	chain := r.tree.Extend(r.tree.Genesis().Hash(), 3, 0)
	r.el.Insert(chain...)
	r.el.SetForkchoice(chain[2].Hash(), chain[1].Hash(), chain[0].Hash())

	ref, err := r.l2.L2BlockRefByLabel(context.Background(), eth.Safe)
	require.NoError(t, err)
	require.Equal(t, r.tree.Ref(chain[1]), ref)

	resp, err := http.Post(r.el.URL(), "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, "a plain request without JWT")
	http.DefaultClient.CloseIdleConnections()
}

func TestELChainIDOverride(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  uint64
		want int64
	}{
		"default is the Tree's": {0, fakechain.ChainID},
		"wrong chain":           {fakechain.ChainID + 1, fakechain.ChainID + 1},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRemoteEL(t, fakeel.ELConfig{ChainID: tc.cfg})
			id, err := r.l2.ChainID(context.Background())
			require.NoError(t, err)
			require.Equal(t, tc.want, id.Int64())
		})
	}
}

func TestELForceLabelsLies(t *testing.T) {
	r := newRemoteEL(t, fakeel.ELConfig{})
	ctx := context.Background()
	g := r.tree.Genesis()
	chain := r.tree.Extend(g.Hash(), 6, 0)
	fork := r.tree.Extend(g.Hash(), 2, 1)
	r.el.Insert(chain...)
	r.el.Insert(fork...)

	r.el.ForceLabels(chain[3].Hash(), chain[1].Hash(), chain[5].Hash()) // finalized above safe and head
	for label, want := range map[eth.BlockLabel]eth.L2BlockRef{
		eth.Unsafe:    r.tree.Ref(chain[3]),
		eth.Safe:      r.tree.Ref(chain[1]),
		eth.Finalized: r.tree.Ref(chain[5]),
	} {
		ref, err := r.l2.L2BlockRefByLabel(ctx, label)
		require.NoError(t, err, label)
		require.Equal(t, want, ref, label)
	}

	r.el.ForceLabels(chain[5].Hash(), fork[1].Hash(), g.Hash()) // safe on another fork
	ref, err := r.l2.L2BlockRefByLabel(ctx, eth.Safe)
	require.NoError(t, err)
	require.Equal(t, r.tree.Ref(fork[1]), ref)
	ref, err = r.l2.L2BlockRefByNumber(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, r.tree.Ref(chain[1]), ref, "head's chain is canonical")
}

func TestELForceLabelsNeedsKnownBlocks(t *testing.T) {
	tree := fakechain.NewTree()
	el, err := fakeel.StartEL(tree, fakeel.ELConfig{NoAuth: true})
	require.NoError(t, err)
	defer el.Close()
	g := tree.Genesis()
	unknown := tree.Child(g.Hash(), 0)
	require.Panics(t, func() { el.ForceLabels(g.Hash(), unknown.Hash(), g.Hash()) })
	require.Panics(t, func() { el.ForceLabels(g.Hash(), g.Hash(), [32]byte{}) })
}

func TestELBatchOfTwoBlocksByLabel(t *testing.T) {
	r := newRemoteEL(t, fakeel.ELConfig{})
	chain := r.tree.Extend(r.tree.Genesis().Hash(), 5, 0)
	r.el.Insert(chain...)
	r.el.SetForkchoice(chain[4].Hash(), chain[3].Hash(), chain[1].Hash())

	c := testutil.DialNoAuth(t, r.el.URL(), 5*time.Second)
	var safe, finalized *sources.RPCBlock
	batch := []rpc.BatchElem{
		{Method: "eth_getBlockByNumber", Args: []any{"safe", true}, Result: &safe},
		{Method: "eth_getBlockByNumber", Args: []any{"finalized", true}, Result: &finalized},
	}
	require.NoError(t, c.BatchCallContext(context.Background(), batch))
	for i, want := range []*sources.RPCBlock{safe, finalized} {
		require.NoError(t, batch[i].Error)
		require.NotNil(t, want)
		require.NoError(t, want.Verify(), "hash and transaction root check out")
	}
	require.Equal(t, chain[3].Hash(), safe.Hash)
	require.Equal(t, chain[1].Hash(), finalized.Hash)
	require.Len(t, safe.Transactions, 1, "full transactions")
	require.Equal(t, 2, r.el.CallCount("eth_getBlockByNumber"))
}
