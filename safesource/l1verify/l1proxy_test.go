package l1verify_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// l1Proxy is an HTTP front for an in-memory L1 that counts the HTTP requests
// it receives, each batch one request, as the L1 node's operator would see
// them. With noSafe on it answers every eth_getBlockByNumber "safe" call, in
// a batch or alone, with the error geth gives before L1 has a safe block
// ("safe block not found"), which fakel1 cannot do: its safe label is always
// a block (genesis by default).
type l1Proxy struct {
	url      string
	target   string
	client   *http.Client
	requests atomic.Int64
	noSafe   atomic.Bool
}

// newL1Proxy starts a proxy to the L1 at target; closed in t.Cleanup.
func newL1Proxy(t testing.TB, target string) *l1Proxy {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections) // after the server below is closed
	p := &l1Proxy{target: target, client: &http.Client{Transport: tr}}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// Requests returns how many HTTP requests the proxy has received.
func (p *l1Proxy) Requests() int { return int(p.requests.Load()) }

func (p *l1Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := p.client.Post(p.target, r.Header.Get("Content-Type"), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if p.noSafe.Load() && resp.StatusCode == http.StatusOK {
		answer = withoutSafe(body, answer)
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// withoutSafe replaces, in answer (a single or batch JSON-RPC response), the
// answer to every eth_getBlockByNumber "safe" call in request with geth's
// error for an L1 without a safe block. Anything it cannot parse is left as
// it is.
func withoutSafe(request, answer []byte) []byte {
	type call struct {
		ID     json.RawMessage   `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	batch := len(bytes.TrimSpace(request)) > 0 && bytes.TrimSpace(request)[0] == '['
	var calls []call
	var answers []json.RawMessage
	if batch {
		if json.Unmarshal(request, &calls) != nil || json.Unmarshal(answer, &answers) != nil {
			return answer
		}
	} else {
		var c call
		if json.Unmarshal(request, &c) != nil {
			return answer
		}
		calls, answers = []call{c}, []json.RawMessage{answer}
	}
	safeIDs := map[string]bool{}
	for _, c := range calls {
		if c.Method == "eth_getBlockByNumber" && len(c.Params) > 0 && string(c.Params[0]) == `"safe"` {
			safeIDs[string(c.ID)] = true
		}
	}
	for i, a := range answers {
		var id struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(a, &id) == nil && safeIDs[string(id.ID)] {
			answers[i] = json.RawMessage(`{"jsonrpc":"2.0","id":` + string(id.ID) + `,"error":{"code":-32000,"message":"safe block not found"}}`)
		}
	}
	if !batch {
		return answers[0]
	}
	out, err := json.Marshal(answers)
	if err != nil {
		return answer
	}
	return out
}
