package remotel2_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/fake/fakerpc"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world is a Tree with a main chain a of 30 blocks (a[i] is block i+1) and a
// fork b after block 12 (b[i] is block 13+i).
type world struct {
	tree *fakechain.Tree
	a, b []*types.Block
}

func newWorld() world {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, 1)
	b := tree.Extend(a[11].Hash(), 20, 2)
	return world{tree: tree, a: a, b: b}
}

func (w world) ref(b *types.Block) eth.L2BlockRef { return w.tree.Ref(b) }

// remoteEL is a public L2 EL on a: head 30, safe 20, finalized 10.
func (w world) remoteEL(t *testing.T, cfg fakeel.ELConfig) *fakeel.EL {
	cfg.NoAuth = true
	el := testutil.NewEL(t, w.tree, cfg)
	el.Insert(w.a...)
	el.Insert(w.b...)
	el.SetForkchoice(w.a[29].Hash(), w.a[19].Hash(), w.a[9].Hash())
	return el
}

var currentL1 = eth.L1BlockRef{Hash: common.Hash{0xc1}, Number: 4}

// remoteCL is a rollup node on a: unsafe 30, local-safe 22, safe 20, finalized 10.
func (w world) remoteCL(t *testing.T) *fakerollup.RollupNode {
	n := testutil.NewRollupNode(t, w.tree, fakerollup.RollupNodeConfig{})
	n.Follow(w.a[29], w.a[21], w.a[19], w.a[9], currentL1)
	return n
}

func newSource(t *testing.T, cfg remotel2.Config) (*remotel2.Source, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	s, err := remotel2.New(context.Background(), cfg, nil, nil)
	if err == nil {
		t.Cleanup(s.Close)
	}
	return s, err
}

func TestELRemote(t *testing.T) {
	w := newWorld()
	el := w.remoteEL(t, fakeel.ELConfig{})
	s, err := newSource(t, remotel2.Config{URL: el.URL(), RollupConfig: w.tree.RollupConfig()})
	require.NoError(t, err)
	require.Equal(t, remotel2.KindEL, s.Kind(), "an EL answers optimism_syncStatus with method not found")

	before := el.CallCount("eth_getBlockByNumber")
	h, err := s.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, safesource.Heads{Safe: w.ref(w.a[19]), LocalSafe: w.ref(w.a[19]), Finalized: w.ref(w.a[9])}, h)
	require.Equal(t, before+2, el.CallCount("eth_getBlockByNumber"), "safe and finalized, in one batch")

	ref, err := s.L2BlockRefByNumber(context.Background(), 15)
	require.NoError(t, err)
	require.Equal(t, w.ref(w.a[14]), ref)
	_, err = s.L2BlockRefByNumber(context.Background(), 31)
	require.Error(t, err, "a height above the remote's head")
}

// TestELRemoteFetchesEachHeadBlockOnce: an EL remote's heads are read as
// headers each poll; a block is fetched whole (by hash) only the first time
// it is a head, so a finalized head that was the safe head before costs
// nothing more.
func TestELRemoteFetchesEachHeadBlockOnce(t *testing.T) {
	w := newWorld()
	el := w.remoteEL(t, fakeel.ELConfig{})
	s, err := newSource(t, remotel2.Config{URL: el.URL(), RollupConfig: w.tree.RollupConfig()})
	require.NoError(t, err)
	from := len(el.Calls())
	heads := func(safe, fin *types.Block) (headers, blocks int) {
		t.Helper()
		h, err := s.Heads(context.Background())
		require.NoError(t, err)
		require.Equal(t, safesource.Heads{Safe: w.ref(safe), LocalSafe: w.ref(safe), Finalized: w.ref(fin)}, h)
		calls := el.Calls()
		for _, c := range calls[from:] {
			var params []json.RawMessage
			require.NoError(t, json.Unmarshal(c.Params, &params))
			switch c.Method {
			case "eth_getBlockByNumber":
				require.Equal(t, "false", string(params[1]), "a head is read without its transactions")
				headers++
			case "eth_getBlockByHash":
				require.Equal(t, "true", string(params[1]))
				blocks++
			default:
				t.Fatalf("unexpected call %s", c.Method)
			}
		}
		from = len(calls)
		return headers, blocks
	}
	headers, blocks := heads(w.a[19], w.a[9])
	require.Equal(t, [2]int{2, 2}, [2]int{headers, blocks}, "first poll: two headers, both blocks")
	headers, blocks = heads(w.a[19], w.a[9])
	require.Equal(t, [2]int{2, 0}, [2]int{headers, blocks}, "nothing moved: two headers")

	el.SetForkchoice(w.a[29].Hash(), w.a[24].Hash(), w.a[19].Hash())
	headers, blocks = heads(w.a[24], w.a[19])
	require.Equal(t, [2]int{2, 1}, [2]int{headers, blocks}, "the new safe block; finalized was safe before")

	// a reorg to b (from a[11]): the new safe block is fetched; the
	// finalized head goes back to one read before
	el.SetForkchoice(w.b[15].Hash(), w.b[10].Hash(), w.a[9].Hash())
	headers, blocks = heads(w.b[10], w.a[9])
	require.Equal(t, [2]int{2, 1}, [2]int{headers, blocks})

	// safe and finalized at one new block: fetched once
	el.SetForkchoice(w.b[15].Hash(), w.b[13].Hash(), w.b[13].Hash())
	headers, blocks = heads(w.b[13], w.b[13])
	require.Equal(t, [2]int{2, 1}, [2]int{headers, blocks})
}

// TestHeadsPollAsksNoCompression: the heads poll's answers (headers, a sync
// status) are asked for uncompressed, whole blocks compressed; seen by a proxy
// in front of the remotes.
func TestHeadsPollAsksNoCompression(t *testing.T) {
	w := newWorld()
	for _, kind := range []remotel2.Kind{remotel2.KindEL, remotel2.KindCL} {
		target := w.remoteEL(t, fakeel.ELConfig{}).URL()
		if kind == remotel2.KindCL {
			target = w.remoteCL(t).URL()
		}
		u, err := url.Parse(target)
		require.NoError(t, err)
		var mu sync.Mutex
		asked := map[string]string{} // first method of a request -> its Accept-Encoding
		proxy := httputil.NewSingleHostReverseProxy(u)
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			require.NoError(t, err)
			var m struct {
				Method string `json:"method"`
			}
			var batch []struct {
				Method string `json:"method"`
			}
			if json.Unmarshal(body, &batch) == nil && len(batch) > 0 {
				m.Method = batch[0].Method
			} else {
				_ = json.Unmarshal(body, &m)
			}
			mu.Lock()
			asked[m.Method] = r.Header.Get("Accept-Encoding")
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
			proxy.ServeHTTP(rw, r)
		}))
		t.Cleanup(srv.Close)
		s, err := newSource(t, remotel2.Config{URL: srv.URL, Kind: kind, RollupConfig: w.tree.RollupConfig()})
		require.NoError(t, err)
		_, err = s.Heads(context.Background())
		require.NoError(t, err)
		mu.Lock()
		if kind == remotel2.KindEL {
			require.Equal(t, "identity", asked["eth_getBlockByNumber"], "the headers")
			require.Equal(t, "gzip", asked["eth_getBlockByHash"], "whole blocks")
		} else {
			require.Equal(t, "identity", asked["optimism_syncStatus"])
		}
		mu.Unlock()
	}
}

// TestELRemoteServesPayloads: an EL source serves backfill's payloads; the
// safe block its heads were read from is not fetched again, while it is the
// safe head.
func TestELRemoteServesPayloads(t *testing.T) {
	w := newWorld()
	el := w.remoteEL(t, fakeel.ELConfig{})
	s, err := newSource(t, remotel2.Config{URL: el.URL(), RollupConfig: w.tree.RollupConfig()})
	require.NoError(t, err)
	var provider engineadapter.PayloadProvider = s
	payload := func(b *types.Block) (calls int) {
		t.Helper()
		before := len(el.Calls())
		env, err := provider.PayloadByNumber(context.Background(), b.NumberU64())
		require.NoError(t, err)
		require.Equal(t, b.Hash(), env.ExecutionPayload.BlockHash)
		return len(el.Calls()) - before
	}
	_, err = s.Heads(context.Background())
	require.NoError(t, err)
	require.Zero(t, payload(w.a[19]), "the safe block, read with the heads")
	require.Equal(t, 1, payload(w.a[18]), "another height: fetched")

	el.SetForkchoice(w.a[29].Hash(), w.a[24].Hash(), w.a[9].Hash())
	_, err = s.Heads(context.Background())
	require.NoError(t, err)
	require.Zero(t, payload(w.a[24]))
	// back to a safe head read before (no whole block fetched): the kept
	// block is no longer the safe head, and is not served
	el.SetForkchoice(w.a[29].Hash(), w.a[19].Hash(), w.a[9].Hash())
	_, err = s.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, payload(w.a[24]))
	require.Equal(t, 1, payload(w.a[19]))

	_, err = provider.PayloadByNumber(context.Background(), 40)
	require.ErrorIs(t, err, ethereum.NotFound, "a height the remote does not have")
}

func TestCLRemote(t *testing.T) {
	w := newWorld()
	cl := w.remoteCL(t)
	s, err := newSource(t, remotel2.Config{URL: cl.URL()})
	require.NoError(t, err)
	require.Equal(t, remotel2.KindCL, s.Kind())

	h, err := s.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, safesource.Heads{Safe: w.ref(w.a[19]), LocalSafe: w.ref(w.a[21]), Finalized: w.ref(w.a[9]), CurrentL1: currentL1}, h)
	require.Equal(t, 1, cl.CallCount("optimism_syncStatus")-1, "one call per Heads after detection")

	ref, err := s.L2BlockRefByNumber(context.Background(), 15)
	require.NoError(t, err)
	require.Equal(t, w.ref(w.a[14]), ref)
	require.Positive(t, cl.CallCount("optimism_outputAtBlock"))

	cfg, err := s.RemoteRollupConfig(context.Background())
	require.NoError(t, err)
	require.Equal(t, w.tree.RollupConfig().L2ChainID, cfg.L2ChainID)
}

func TestCLRemoteWithPairedEL(t *testing.T) {
	w := newWorld()
	cl := w.remoteCL(t)
	el := w.remoteEL(t, fakeel.ELConfig{})
	s, err := newSource(t, remotel2.Config{URL: cl.URL(), Kind: remotel2.KindCL, PairedELURL: el.URL(), RollupConfig: w.tree.RollupConfig()})
	require.NoError(t, err)
	ref, err := s.L2BlockRefByNumber(context.Background(), 15)
	require.NoError(t, err)
	require.Equal(t, w.ref(w.a[14]), ref)
	require.Zero(t, cl.CallCount("optimism_outputAtBlock"), "lookups go to the paired EL")
}

func TestWrongChain(t *testing.T) {
	w := newWorld()
	el := w.remoteEL(t, fakeel.ELConfig{ChainID: 999})
	_, err := newSource(t, remotel2.Config{URL: el.URL(), RollupConfig: w.tree.RollupConfig()})
	require.ErrorIs(t, err, safesource.ErrWrongChain)
	require.ErrorContains(t, err, "999")

	cl := w.remoteCL(t)
	other := *w.tree.RollupConfig()
	other.L2ChainID = big.NewInt(10)
	_, err = newSource(t, remotel2.Config{URL: cl.URL(), RollupConfig: &other})
	require.ErrorIs(t, err, safesource.ErrWrongChain)
}

func TestELRemoteNeedsRollupConfig(t *testing.T) {
	w := newWorld()
	el := w.remoteEL(t, fakeel.ELConfig{})
	_, err := newSource(t, remotel2.Config{URL: el.URL()})
	require.ErrorIs(t, err, remotel2.ErrNeedsRollupConfig)
}

func TestUnreachableRemote(t *testing.T) {
	_, err := newSource(t, remotel2.Config{URL: "http://127.0.0.1:1"})
	require.Error(t, err)
	require.ErrorContains(t, err, "127.0.0.1:1")
}

// faulty is a remote of either kind whose faults a test switches.
type faulty struct {
	name   string
	faults *fakerpc.Faults
	src    *remotel2.Source
	// lie makes the remote claim finalized above safe, and linkBreak claims a
	// safe head whose parent is not the finalized head right below it.
	lie, linkBreak, regress func()
}

func faultyRemotes(t *testing.T, w world) []faulty {
	el := w.remoteEL(t, fakeel.ELConfig{})
	elSrc, err := newSource(t, remotel2.Config{URL: el.URL(), RollupConfig: w.tree.RollupConfig(), Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	cl := w.remoteCL(t)
	clSrc, err := newSource(t, remotel2.Config{URL: cl.URL(), Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	status := func(safe, fin *types.Block) eth.SyncStatus { return statusOf(w, safe, fin) }
	return []faulty{
		{
			name: "el", faults: el.Faults(), src: elSrc,
			lie:       func() { el.ForceLabels(w.a[29].Hash(), w.a[9].Hash(), w.a[19].Hash()) },
			linkBreak: func() { el.ForceLabels(w.b[5].Hash(), w.b[2].Hash(), w.a[13].Hash()) }, // b 15 on a 14
			regress:   func() { el.SetForkchoice(w.a[29].Hash(), w.a[14].Hash(), w.a[9].Hash()) },
		},
		{
			name: "cl", faults: cl.Faults(), src: clSrc,
			lie:       func() { cl.SetSyncStatus(status(w.a[9], w.a[19])) },
			linkBreak: func() { cl.SetSyncStatus(status(w.b[2], w.a[13])) },
			regress:   func() { cl.Follow(w.a[29], w.a[14], w.a[14], w.a[9], currentL1) },
		},
	}
}

func TestRemoteFaults(t *testing.T) {
	w := newWorld()
	for _, r := range faultyRemotes(t, w) {
		t.Run(r.name, func(t *testing.T) {
			ctx := context.Background()
			_, err := r.src.Heads(ctx)
			require.NoError(t, err)

			t.Run("stall past the timeout", func(t *testing.T) {
				r.faults.Stall(time.Minute)
				defer r.faults.Clear()
				start := time.Now()
				_, err := r.src.Heads(ctx)
				require.Error(t, err)
				require.ErrorIs(t, err, context.DeadlineExceeded)
				require.Less(t, time.Since(start), 5*time.Second)
				require.ErrorContains(t, err, r.src.Name())
			})
			t.Run("HTTP 500", func(t *testing.T) {
				r.faults.HTTPStatus(500)
				defer r.faults.Clear()
				_, err := r.src.Heads(ctx)
				require.ErrorContains(t, err, "500")
				_, err = r.src.L2BlockRefByNumber(ctx, 3)
				require.ErrorContains(t, err, "500")
			})
			t.Run("malformed JSON", func(t *testing.T) {
				r.faults.Garbage(true)
				defer r.faults.Clear()
				_, err := r.src.Heads(ctx)
				require.Error(t, err)
				_, err = r.src.L2BlockRefByNumber(ctx, 3)
				require.Error(t, err)
			})
			t.Run("finalized above safe", func(t *testing.T) {
				r.lie()
				_, err := r.src.Heads(ctx)
				require.ErrorIs(t, err, safesource.ErrInconsistentHeads)
			})
			t.Run("safe whose parent is not the finalized block below it", func(t *testing.T) {
				r.linkBreak()
				_, err := r.src.Heads(ctx)
				require.ErrorIs(t, err, safesource.ErrInconsistentHeads)
			})
			t.Run("safe regressing passes through", func(t *testing.T) {
				r.regress()
				h, err := r.src.Heads(ctx)
				require.NoError(t, err, "a rollup node may reset its safe head; the adapter keeps its own")
				require.Equal(t, uint64(15), h.Safe.Number)
			})
		})
	}
}

func TestConfigCheck(t *testing.T) {
	w := newWorld()
	for _, tc := range []struct {
		name string
		cfg  remotel2.Config
		want string
	}{
		{"empty URL", remotel2.Config{}, "URL: required"},
		{"bad scheme", remotel2.Config{URL: "ftp://x"}, "scheme"},
		{"no host", remotel2.Config{URL: "http://"}, "no host"},
		{"negative timeout", remotel2.Config{URL: "http://x", Timeout: -time.Second}, "Timeout"},
		{"EL without rollup config", remotel2.Config{URL: "http://x", Kind: remotel2.KindEL}, "rollup config"},
		{"paired EL without rollup config", remotel2.Config{URL: "http://x", PairedELURL: "http://y"}, "rollup config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, tc.cfg.Check(), tc.want)
		})
	}
	require.NoError(t, remotel2.Config{URL: "http://x", Kind: remotel2.KindEL, RollupConfig: w.tree.RollupConfig()}.Check())
	_, err := remotel2.ParseKind("rollup")
	require.Error(t, err)
	k, err := remotel2.ParseKind("CL")
	require.NoError(t, err)
	require.Equal(t, remotel2.KindCL, k)
}

// statusOf is a sync status at unsafe 30 with the given safe (and local-safe)
// and finalized blocks, consistent or not.
func statusOf(w world, safe, fin *types.Block) eth.SyncStatus {
	return eth.SyncStatus{UnsafeL2: w.ref(w.a[29]), SafeL2: w.ref(safe), LocalSafeL2: w.ref(safe), FinalizedL2: w.ref(fin)}
}
