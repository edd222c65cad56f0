package tipfeed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource/tipfeed"
)

// lie rewrites an eth_getBlockByHash call: its params on the way to the EL,
// and the block object in the answer on the way back.
type lie struct {
	params func(params []json.RawMessage)
	block  func(block map[string]json.RawMessage)
}

// lyingRemote serves el's answers over HTTP, except that it lies about
// eth_getBlockByHash; it handles single (not batch) calls, which is all a
// feed sends.
func lyingRemote(t *testing.T, el *fakeel.EL, l lie) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			JSONRPC string            `json:"jsonrpc"`
			ID      json.RawMessage   `json:"id"`
			Method  string            `json:"method"`
			Params  []json.RawMessage `json:"params"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		lying := req.Method == "eth_getBlockByHash"
		if lying && l.params != nil {
			l.params(req.Params)
		}
		body, _ := json.Marshal(req)
		resp, err := http.Post(el.URL(), "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		answer, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if lying && l.block != nil {
			var msg map[string]json.RawMessage
			var block map[string]json.RawMessage
			if json.Unmarshal(answer, &msg) == nil && json.Unmarshal(msg["result"], &block) == nil && block != nil {
				l.block(block)
				msg["result"], _ = json.Marshal(block)
				answer, _ = json.Marshal(msg)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestLyingRemoteDeliversNothing(t *testing.T) {
	tree := fakechain.NewTree()
	for _, tc := range []struct {
		name    string
		lie     lie
		wantBad bool // the error wraps ErrBadPayload
	}{
		{"a field changed under the same hash", lie{block: func(b map[string]json.RawMessage) {
			b["gasUsed"] = json.RawMessage(`"0x1234"`)
		}}, true},
		{"another block than the one asked for", lie{params: func(p []json.RawMessage) {
			p[0], _ = json.Marshal(tree.Genesis().Hash())
		}}, true},
		{"a transaction list that is not the block's", lie{block: func(b map[string]json.RawMessage) {
			b["transactions"] = json.RawMessage(`[]`)
		}}, true},
		{"a block with a malformed field", lie{block: func(b map[string]json.RawMessage) {
			b["baseFeePerGas"] = json.RawMessage(`"not a number"`)
		}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			el := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true})
			chain := tree.Extend(tree.Genesis().Hash(), 2, 1)
			el.Insert(chain...)
			el.SetForkchoice(chain[1].Hash(), common.Hash{}, common.Hash{})
			metrics := &recordingMetrics{errors: map[string]int{}}
			f, err := tipfeed.New(context.Background(), tipfeed.Config{
				URL: lyingRemote(t, el, tc.lie), RollupConfig: tree.RollupConfig(), PollInterval: 10 * time.Millisecond,
			}, testLogger(t), metrics)
			require.NoError(t, err)
			defer f.Close()

			env, err := f.PayloadByHash(context.Background(), chain[1].Hash())
			require.Error(t, err)
			require.Nil(t, env)
			if tc.wantBad {
				require.ErrorIs(t, err, tipfeed.ErrBadPayload)
			}

			out := make(chan *eth.ExecutionPayloadEnvelope, 8)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- f.Run(ctx, out) }()
			eventually(t, func() bool { return metrics.errorCount("payload") >= 3 }, "every poll's fetch fails")
			cancel()
			require.NoError(t, <-done)
			require.Empty(t, out, "nothing is delivered")
			s := f.Status()
			require.Zero(t, s.Delivered)
			require.GreaterOrEqual(t, s.Errors, uint64(3))
			require.Contains(t, s.LastError, chain[1].Hash().String())
		})
	}
}
