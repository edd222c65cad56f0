package testutil

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// maxRequestSize bounds what the recorder reads of one request body; it is
// go-ethereum's default HTTP request limit.
const maxRequestSize = 5 * 1024 * 1024

// Call is one JSON-RPC call the EL received (after the JWT check).
type Call struct {
	// Method is the JSON-RPC method name, e.g. "engine_forkchoiceUpdatedV3".
	Method string
	// Params is the raw JSON params array as sent.
	Params json.RawMessage
}

// recorder records the calls in each request body, then hands the request on.
type recorder struct {
	el   *EL
	next http.Handler
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestSize+1))
		_ = r.Body.Close()
		if err != nil {
			http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		rec.el.record(body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	rec.next.ServeHTTP(w, r)
}

// record appends the calls in a single or batch JSON-RPC body; a body that is
// not JSON-RPC is left to the server to reject.
func (e *EL) record(body []byte) {
	var msgs []struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] != '[' {
		body = append(append([]byte{'['}, body...), ']')
	}
	if err := json.Unmarshal(body, &msgs); err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range msgs {
		e.calls = append(e.calls, Call{Method: m.Method, Params: bytes.Clone(m.Params)})
	}
}

// Calls returns every JSON-RPC call received so far, in order of arrival.
func (e *EL) Calls() []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Call(nil), e.calls...)
}

// ForkchoiceUpdates returns the forkchoice state of every engine_forkchoiceUpdated
// call received so far (any version), in order.
func (e *EL) ForkchoiceUpdates() []eth.ForkchoiceState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]eth.ForkchoiceState(nil), e.fcus...)
}

// CallCount returns how many calls to method were received so far.
func (e *EL) CallCount(method string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.calls {
		if c.Method == method {
			n++
		}
	}
	return n
}
