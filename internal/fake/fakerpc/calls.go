package fakerpc

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// maxRequestSize bounds what the recorder reads of one request body; it is
// go-ethereum's default HTTP request limit.
const maxRequestSize = 5 * 1024 * 1024

// Call is one JSON-RPC call a fake server (EL or RollupNode) received, after
// the faults and the EL's JWT check let it through.
type Call struct {
	// Method is the JSON-RPC method name, e.g. "engine_forkchoiceUpdatedV3".
	Method string
	// Params is the raw JSON params array as sent.
	Params json.RawMessage
}

// Recorder returns next behind a handler that passes the calls in each
// request body to record, then hands the request on.
func Recorder(record func(calls []Call), next http.Handler) http.Handler {
	return &recorder{record: record, next: next}
}

// recorder records the calls in each request body, then hands the request on.
type recorder struct {
	record func(calls []Call)
	next   http.Handler
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestSize+1))
		_ = r.Body.Close()
		if err != nil {
			http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		rec.record(parseCalls(body))
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	rec.next.ServeHTTP(w, r)
}

// parseCalls returns the calls in a single or batch JSON-RPC body; a body
// that is not JSON-RPC gives none and is left to the server to reject.
func parseCalls(body []byte) []Call {
	var msgs []struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] != '[' {
		body = append(append([]byte{'['}, body...), ']')
	}
	if err := json.Unmarshal(body, &msgs); err != nil {
		return nil
	}
	calls := make([]Call, 0, len(msgs))
	for _, m := range msgs {
		calls = append(calls, Call{Method: m.Method, Params: bytes.Clone(m.Params)})
	}
	return calls
}

// CountCalls returns how many of calls are to method.
func CountCalls(calls []Call, method string) int {
	n := 0
	for _, c := range calls {
		if c.Method == method {
			n++
		}
	}
	return n
}
