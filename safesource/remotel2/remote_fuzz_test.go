package remotel2_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

// fzName names the fuzzed source; every error must carry it.
const fzName = "fuzzed-remote"

// fzRequest is one JSON-RPC request as the fake remote reads it.
type fzRequest struct {
	ID     json.RawMessage   `json:"id"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
}

// fzRemote is a JSON-RPC server on 127.0.0.1 that answers with fuzzed bytes.
// Until live is set it answers what remotel2.New asks of an EL (eth_chainId,
// the genesis block) truthfully; after that, a single call gets the result
// set for its method spliced in verbatim, and a batch gets what batch builds
// from the request ids.
type fzRemote struct {
	srv     *httptest.Server
	genesis json.RawMessage

	mu      sync.Mutex
	live    bool
	results map[string][]byte
	batch   func(reqs []fzRequest) []byte
}

func newFzRemote(f *testing.F, genesis json.RawMessage) *fzRemote {
	r := &fzRemote{genesis: genesis}
	r.srv = httptest.NewUnstartedServer(r)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	r.srv.Listener = l
	// Fuzzed answers that do not decode make the client close its
	// connection early, one connection per input. Closing the server side
	// with a reset leaves no TIME_WAIT socket behind, so a long run cannot
	// use up the machine's ephemeral ports.
	r.srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if tc, ok := c.(*net.TCPConn); ok && s == http.StateNew {
			_ = tc.SetLinger(0)
		}
	}
	r.srv.Start()
	f.Cleanup(r.srv.Close)
	return r
}

// set makes the remote live with these answers.
func (r *fzRemote) set(results map[string][]byte, batch func(reqs []fzRequest) []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live, r.results, r.batch = true, results, batch
}

func (r *fzRemote) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// with the length known, the client sees the end of every answer it
	// reads to the end, and keeps its connection
	reply := func(b []byte) {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '[' {
		var reqs []fzRequest
		_ = json.Unmarshal(body, &reqs)
		if r.batch == nil {
			http.Error(w, "no batch answer", http.StatusInternalServerError)
			return
		}
		reply(r.batch(reqs))
		return
	}
	var q fzRequest
	_ = json.Unmarshal(body, &q)
	var result []byte
	switch {
	case !r.live && q.Method == "eth_chainId":
		result = []byte(fmt.Sprintf("%q", hexutil.EncodeUint64(fakechain.ChainID)))
	case !r.live && q.Method == "eth_getBlockByNumber":
		result = r.genesis
	case r.live:
		result = r.results[q.Method]
	}
	if result == nil {
		reply(fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"method not found"}}`, q.ID))
		return
	}
	reply(fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"result":%s}`, q.ID, result))
}

// fzWorld is the chain the seeds come from: testutil's Tree with a main chain
// a of 12 blocks and a fork b after block 6, and the JSON an EL serves for
// each block (eth_getBlockByNumber with full transactions).
type fzWorld struct {
	tree   *fakechain.Tree
	a      []*types.Block             // by height, genesis included
	blocks map[uint64]json.RawMessage // a's blocks by height
	fork   map[uint64]json.RawMessage // b's blocks by height
}

func newFzWorld(f *testing.F) fzWorld {
	w := fzWorld{tree: fakechain.NewTree(), blocks: map[uint64]json.RawMessage{}, fork: map[uint64]json.RawMessage{}}
	a := append([]*types.Block{w.tree.Genesis()}, w.tree.Extend(w.tree.Genesis().Hash(), 12, 1)...)
	b := w.tree.Extend(a[6].Hash(), 6, 2)
	w.a = a
	el, err := fakeel.StartEL(w.tree, fakeel.ELConfig{NoAuth: true})
	if err != nil {
		f.Fatal(err)
	}
	defer el.Close()
	el.Insert(a[1:]...)
	el.Insert(b...)
	c, err := rpc.Dial(el.URL())
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	get := func(out map[uint64]json.RawMessage, hash common.Hash, n uint64) {
		var raw json.RawMessage
		if err := c.Call(&raw, "eth_getBlockByHash", hash, true); err != nil {
			f.Fatal(err)
		}
		out[n] = raw
	}
	for _, x := range a {
		get(w.blocks, x.Hash(), x.NumberU64())
	}
	for _, x := range b {
		get(w.fork, x.Hash(), x.NumberU64())
	}
	return w
}

// withdrawalsRootOnly adds a withdrawals root to a block's JSON without a
// withdrawals list: the shape op-service's block checks would dereference.
func withdrawalsRootOnly(block json.RawMessage) []byte {
	return []byte(strings.Replace(string(block), `"uncles":[]`,
		`"uncles":[],"withdrawalsRoot":"0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"`, 1))
}

// trueRef is the record of the tree's block with hash h; false when the tree
// has no such block.
func (w fzWorld) trueRef(h common.Hash) (eth.L2BlockRef, bool) {
	b, ok := w.tree.Block(h)
	if !ok {
		return eth.L2BlockRef{}, false
	}
	return w.tree.Ref(b), true
}

func (w fzWorld) ref(n uint64) eth.L2BlockRef { return w.tree.Ref(w.a[n]) }

func newFzSource(f *testing.F, cfg remotel2.Config) *remotel2.Source {
	cfg.Name, cfg.Timeout = fzName, 5*time.Second
	s, err := remotel2.New(context.Background(), cfg, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	return s
}

// checkFzErr asserts that an error names the source.
func checkFzErr(t *testing.T, err error) {
	t.Helper()
	if !strings.Contains(err.Error(), fzName) {
		t.Fatalf("error does not name the source: %v", err)
	}
}

// checkFzHeads asserts what any heads the source returns must be: consistent
// by Check, and never a finalized head above the safe head.
func checkFzHeads(t *testing.T, h safesource.Heads) {
	t.Helper()
	if err := h.Check(); err != nil {
		t.Fatalf("heads fail Check: %v: %+v", err, h)
	}
	if h.Finalized.Number > h.Safe.Number {
		t.Fatalf("finalized %d above safe %d", h.Finalized.Number, h.Safe.Number)
	}
}

// FuzzSyncStatus serves fuzzed optimism_syncStatus and optimism_outputAtBlock
// results to a CL source and calls Heads and L2BlockRefByNumber. Invariants:
// no panic; Heads returns an error naming the source, or heads that pass
// Check (so never finalized above safe) and are exactly what the answer says
// (local-safe taken as safe when absent); L2BlockRefByNumber returns an error
// naming the source, or the block at the asked height with a non-zero hash.
func FuzzSyncStatus(f *testing.F) {
	w := newFzWorld(f)
	status := func(fin, safe, localSafe uint64) []byte {
		st := eth.SyncStatus{UnsafeL2: w.ref(12), SafeL2: w.ref(safe), FinalizedL2: w.ref(fin), CurrentL1: fakechain.L1Ref(2)}
		if localSafe != 0 {
			st.LocalSafeL2 = w.ref(localSafe)
		}
		b, _ := json.Marshal(st)
		return b
	}
	output := func(n uint64) []byte {
		b, _ := json.Marshal(eth.OutputResponse{BlockRef: w.ref(n)})
		return b
	}
	f.Add(status(3, 8, 10), output(5), uint64(5))
	f.Add(status(3, 8, 0), output(5), uint64(6))      // no local-safe: taken as safe; lookup answers another height
	f.Add(status(8, 3, 0), []byte(`null`), uint64(5)) // finalized above safe; empty output
	f.Add(status(7, 8, 9), output(0), uint64(0))      // adjacent labels that link; genesis
	f.Add([]byte(`{"safe_l2":{"number":5},"finalized_l2":{"number":2}}`), []byte(`{"blockRef":{"number":"0x5"}}`), uint64(5))
	f.Add([]byte(`null`), []byte(`{}`), uint64(0))
	f.Add([]byte(`[1,2]`), []byte(`"x"`), uint64(1<<63))

	remote := newFzRemote(f, nil)
	s := newFzSource(f, remotel2.Config{URL: remote.srv.URL, Kind: remotel2.KindCL})
	f.Fuzz(func(t *testing.T, statusJSON, outputJSON []byte, n uint64) {
		remote.set(map[string][]byte{"optimism_syncStatus": statusJSON, "optimism_outputAtBlock": outputJSON}, nil)
		ctx := context.Background()
		h, err := s.Heads(ctx)
		if err != nil {
			checkFzErr(t, err)
		} else {
			checkFzHeads(t, h)
			var st *eth.SyncStatus
			if json.Valid(statusJSON) {
				if err := json.Unmarshal(statusJSON, &st); err != nil || st == nil {
					t.Fatalf("heads %+v from an answer that does not decode: %v", h, err)
				}
				want := safesource.Heads{Safe: st.SafeL2, LocalSafe: st.LocalSafeL2, Finalized: st.FinalizedL2, CurrentL1: st.CurrentL1}
				if want.LocalSafe == (eth.L2BlockRef{}) {
					want.LocalSafe = want.Safe
				}
				if h != want {
					t.Fatalf("heads %+v, the answer says %+v", h, want)
				}
			}
		}
		ref, err := s.L2BlockRefByNumber(ctx, n)
		if err != nil {
			checkFzErr(t, err)
		} else if ref.Number != n || ref.Hash == (common.Hash{}) {
			t.Fatalf("asked for block %d, got %d (%s)", n, ref.Number, ref.Hash)
		}
	})
}

// FuzzBlockByNumber serves a fuzzed eth_getBlockByNumber result to an EL
// source's L2BlockRefByNumber. Invariants: no panic; an error names the
// source; a returned ref is at the asked height and is the true record of a
// real block (the block hash and transaction root bind number, parent, time
// and L1 origin, so no fuzzed answer can change them).
func FuzzBlockByNumber(f *testing.F) {
	w := newFzWorld(f)
	for _, n := range []uint64{0, 1, 6, 7, 12} {
		f.Add([]byte(w.blocks[n]), n)
	}
	f.Add([]byte(w.fork[8]), uint64(8))
	f.Add([]byte(w.blocks[7]), uint64(8)) // another height than asked
	f.Add([]byte(`null`), uint64(3))
	f.Add([]byte(`{"number":"0x3","hash":"0x01"}`), uint64(3))
	f.Add(withdrawalsRootOnly(w.blocks[4]), uint64(4))

	remote := newFzRemote(f, w.blocks[0])
	s := newFzSource(f, remotel2.Config{URL: remote.srv.URL, Kind: remotel2.KindEL, RollupConfig: w.tree.RollupConfig()})
	f.Fuzz(func(t *testing.T, block []byte, n uint64) {
		remote.set(map[string][]byte{"eth_getBlockByNumber": block}, nil)
		ref, err := s.L2BlockRefByNumber(context.Background(), n)
		if err != nil {
			checkFzErr(t, err)
			return
		}
		if ref.Number != n {
			t.Fatalf("asked for block %d, got %d", n, ref.Number)
		}
		if want, ok := w.trueRef(ref.Hash); !ok || ref != want {
			t.Fatalf("ref %+v is not the record of a real block (%+v)", ref, want)
		}
	})
}

// fzHash is the "hash" a fuzzed block's JSON claims, "" when it has none.
func fzHash(block []byte) string {
	var b struct {
		Hash string `json:"hash"`
	}
	_ = json.Unmarshal(block, &b)
	return b.Hash
}

// batch response shapes for FuzzHeadsBatch
const (
	batchInOrder  = iota // [safe, finalized]
	batchReversed        // [finalized, safe]
	batchNoFin           // the finalized answer missing
	batchFinError        // an error object for finalized
	batchRaw             // the raw fuzzed body, "$0" and "$1" replaced by the request ids
	batchShapes
)

// FuzzHeadsBatch serves an EL source's safe/finalized batch from fuzzed
// block JSON in fuzzed response shapes, or a raw fuzzed batch body, and the
// blocks it then asks for by hash (those it has not read before) from the
// same fuzzed blocks. Invariants:
// no panic; Heads returns an error naming the source, or heads that pass
// Check, never finalized above safe, with local-safe = safe, whose blocks are
// the true records of real blocks.
func FuzzHeadsBatch(f *testing.F) {
	w := newFzWorld(f)
	raw := func(safe, fin uint64) []byte {
		return []byte(fmt.Sprintf(`[{"jsonrpc":"2.0","id":$0,"result":%s},{"jsonrpc":"2.0","id":$1,"result":%s}]`, w.blocks[safe], w.blocks[fin]))
	}
	f.Add([]byte(w.blocks[8]), []byte(w.blocks[3]), byte(batchInOrder), []byte(nil))
	f.Add([]byte(w.blocks[8]), []byte(w.blocks[7]), byte(batchReversed), []byte(nil))
	f.Add([]byte(w.blocks[3]), []byte(w.blocks[8]), byte(batchInOrder), []byte(nil)) // finalized above safe
	f.Add([]byte(w.fork[9]), []byte(w.blocks[8]), byte(batchInOrder), []byte(nil))   // safe on a fork right above finalized
	f.Add([]byte(w.blocks[8]), []byte(w.blocks[3]), byte(batchNoFin), []byte(nil))
	f.Add([]byte(w.blocks[8]), []byte(w.blocks[3]), byte(batchFinError), []byte(nil))
	f.Add([]byte(`null`), []byte(`null`), byte(batchInOrder), []byte(nil))
	f.Add(withdrawalsRootOnly(w.blocks[8]), []byte(w.blocks[3]), byte(batchInOrder), []byte(nil))
	f.Add([]byte(nil), []byte(nil), byte(batchRaw), raw(8, 3))
	f.Add([]byte(nil), []byte(nil), byte(batchRaw), raw(3, 8))
	// headers naming blocks 11 and 10; by hash, the remote answers block 3
	f.Add([]byte(w.blocks[5]), []byte(w.blocks[3]), byte(batchRaw), raw(11, 10))
	f.Add([]byte(nil), []byte(nil), byte(batchRaw), []byte(`[{"jsonrpc":"2.0","id":$0,"result":null}]`))
	f.Add([]byte(nil), []byte(nil), byte(batchRaw), []byte(`{"jsonrpc":"2.0","id":$0,"result":{}}`))
	f.Add([]byte(nil), []byte(nil), byte(batchRaw), []byte(`[{"jsonrpc":"2.0","id":$0,"result":{}},{"jsonrpc":"2.0","id":$0,"result":{}}]`))

	remote := newFzRemote(f, w.blocks[0])
	s := newFzSource(f, remotel2.Config{URL: remote.srv.URL, Kind: remotel2.KindEL, RollupConfig: w.tree.RollupConfig()})
	f.Fuzz(func(t *testing.T, safeJSON, finJSON []byte, shape byte, rawBody []byte) {
		remote.set(nil, func(reqs []fzRequest) []byte {
			elem := func(id json.RawMessage, result []byte) string {
				return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%s}`, id, result)
			}
			if len(reqs) > 0 && reqs[0].Method == "eth_getBlockByHash" {
				// the blocks the header answers named and the source has not
				// read before: each answered with the fuzzed block of that
				// hash, else the finalized one
				out := make([]string, len(reqs))
				for i, q := range reqs {
					block := finJSON
					if len(q.Params) > 0 && bytes.Equal(bytes.ToLower(q.Params[0]), bytes.ToLower([]byte(strconv.Quote(fzHash(safeJSON))))) {
						block = safeJSON
					}
					out[i] = elem(q.ID, block)
				}
				return []byte("[" + strings.Join(out, ",") + "]")
			}
			if len(reqs) != 2 {
				return []byte(`[]`)
			}
			safe, fin := elem(reqs[0].ID, safeJSON), elem(reqs[1].ID, finJSON)
			switch shape % batchShapes {
			case batchReversed:
				return []byte("[" + fin + "," + safe + "]")
			case batchNoFin:
				return []byte("[" + safe + "]")
			case batchFinError:
				return []byte("[" + safe + `,{"jsonrpc":"2.0","id":` + string(reqs[1].ID) + `,"error":{"code":-32000,"message":"finalized block not found"}}]`)
			case batchRaw:
				b := bytes.ReplaceAll(rawBody, []byte("$0"), reqs[0].ID)
				return bytes.ReplaceAll(b, []byte("$1"), reqs[1].ID)
			}
			return []byte("[" + safe + "," + fin + "]")
		})
		s.ForgetHeads() // every block this input names is fetched and verified
		h, err := s.Heads(context.Background())
		if err != nil {
			checkFzErr(t, err)
			return
		}
		checkFzHeads(t, h)
		if h.LocalSafe != h.Safe || h.CurrentL1 != (eth.L1BlockRef{}) {
			t.Fatalf("an EL's heads with local-safe %+v and current L1 %+v", h.LocalSafe, h.CurrentL1)
		}
		for _, ref := range []eth.L2BlockRef{h.Safe, h.Finalized} {
			if want, ok := w.trueRef(ref.Hash); !ok || ref != want {
				t.Fatalf("head %+v is not the record of a real block (%+v)", ref, want)
			}
		}
	})
}
