package fakerpc

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// GarbageBody is what a server answers while Garbage is on: a JSON-RPC
// response with a bare hex number, which no JSON decoder accepts.
const GarbageBody = `{"jsonrpc":"2.0","id":1,"result":{"number":0x1}}`

// Faults switches failures on and off for a fake server; safe for concurrent use.
// Get one from the Faults method of fakeel.EL, fakel1.L1 or
// fakerollup.RollupNode. The faults act in front of
// everything else the server does (JWT check, call recording), in this order:
// Stall, then HTTPStatus, then Garbage. A request a fault answers is not
// recorded in Calls; a stalled request that is then served is.
type Faults struct {
	mu       sync.Mutex
	stall    time.Duration
	status   int
	garbage  bool
	changed  chan struct{} // closed and replaced on every change
	closed   chan struct{} // closed when the server closes
	stalling int           // requests waiting in a stall now, for tests
}

// Stall makes each request wait d before it is served; 0 turns stalling off.
// A stalled request stops waiting when the client gives up (its connection
// closes) or the server closes, in which case the connection is dropped
// without an answer. Changing the stall applies to requests already waiting,
// measured from their arrival.
func (f *Faults) Stall(d time.Duration) {
	if d < 0 {
		panic(fmt.Sprintf("testutil: Faults.Stall(%v): negative duration", d))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stall = d
	f.notifyLocked()
}

// HTTPStatus makes every request answer with HTTP status code and a short
// plain-text body; 0 turns it off. code must be 0 or in [200, 599].
func (f *Faults) HTTPStatus(code int) {
	if code != 0 && (code < 200 || code > 599) {
		panic(fmt.Sprintf("testutil: Faults.HTTPStatus(%d): want 0 or a status in [200, 599]", code))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = code
	f.notifyLocked()
}

// Garbage makes every request answer with HTTP 200 and malformed JSON while on.
func (f *Faults) Garbage(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.garbage = on
	f.notifyLocked()
}

// Clear turns every fault off; stalled requests go on to be served.
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stall, f.status, f.garbage = 0, 0, false
	f.notifyLocked()
}

// notifyLocked wakes the requests waiting in a stall. Callers hold f.mu.
func (f *Faults) notifyLocked() {
	if f.changed != nil {
		close(f.changed)
	}
	f.changed = make(chan struct{})
}

// channelsLocked returns the change and close channels, making them on first
// use so that a zero Faults works. Callers hold f.mu.
func (f *Faults) channelsLocked() (changed, closed chan struct{}) {
	if f.changed == nil {
		f.changed = make(chan struct{})
	}
	if f.closed == nil {
		f.closed = make(chan struct{})
	}
	return f.changed, f.closed
}

// Close ends every stall, now and later, so that the server can close
// promptly. The server calls it from its own Close; it may be called again.
func (f *Faults) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, closed := f.channelsLocked()
	select {
	case <-closed:
	default:
		close(closed)
	}
}

// Stalled returns how many requests are waiting in a stall now.
func (f *Faults) Stalled() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stalling
}

// Wrap returns next behind the faults.
func (f *Faults) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http notices a client hanging up, and cancels r's context,
		// only once the request body has been read to the end.
		if r.Body != nil {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestSize+1))
			_ = r.Body.Close()
			if err != nil {
				http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if !f.wait(r) {
			// The client is gone or the server is closing: drop the
			// connection without an answer (net/http does not log this).
			panic(http.ErrAbortHandler)
		}
		f.mu.Lock()
		status, garbage := f.status, f.garbage
		f.mu.Unlock()
		switch {
		case status != 0:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, "testutil: injected HTTP status %d\n", status)
		case garbage:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(GarbageBody))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// wait holds r for the stall in force, re-reading it whenever the faults
// change. It reports false if the request's context ended or the server
// closed first.
func (f *Faults) wait(r *http.Request) bool {
	start := time.Now()
	counted := false
	defer func() {
		if counted {
			f.mu.Lock()
			f.stalling--
			f.mu.Unlock()
		}
	}()
	for {
		f.mu.Lock()
		d := f.stall
		changed, closed := f.channelsLocked()
		left := d - time.Since(start)
		if d > 0 && left > 0 && !counted {
			f.stalling++
			counted = true
		}
		f.mu.Unlock()
		select {
		case <-closed:
			return false
		default:
		}
		if d == 0 || left <= 0 {
			return true
		}
		timer := time.NewTimer(left)
		select {
		case <-timer.C:
			return true
		case <-changed:
			timer.Stop()
		case <-r.Context().Done():
			timer.Stop()
			return false
		case <-closed:
			timer.Stop()
			return false
		}
	}
}
