// Package rpclimit bounds what a remote's answers can cost: a response body
// larger than a limit fails the call with ErrResponseTooLarge after reading
// no more than the limit, and an error answer's body (an HTTP status other
// than 2xx) is cut to a few hundred bytes before it becomes part of an error,
// a log line or a status page. Every remote lightcl talks to (sources, quorum
// members, tip feeds, backfill providers, L1 and beacon nodes) is dialed
// through it.
//
// It is not a rate limiter and does not bound how many calls are made.
package rpclimit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/ethereum/go-ethereum/rpc"
)

// DefaultMaxResponse is the default limit on one response: 16 MiB. A block
// with its transactions as JSON carries its calldata as hex, twice its size:
// 16 MiB holds 8 MB of calldata, 128M gas of it at 16 gas a byte. A chain
// whose blocks can carry more needs a larger limit. At 16 MiB a refused answer costs the heap about 28 MiB (the JSON
// decoder's buffer); at 32 MiB it was 112 MiB.
const DefaultMaxResponse = 16 << 20

// MaxErrorBody is how many bytes of an error answer's body are kept.
const MaxErrorBody = 512

// ErrResponseTooLarge is wrapped when a response body exceeds the limit.
var ErrResponseTooLarge = errors.New("response too large")

// Transport wraps next (http.DefaultTransport when nil) so that every
// response body is bounded by max bytes (DefaultMaxResponse when max ≤ 0),
// and the body of a non-2xx answer is cut to MaxErrorBody bytes.
func Transport(next http.RoundTripper, max int64) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if max <= 0 {
		max = DefaultMaxResponse
	}
	return &transport{next: next, max: max}
}

// HTTPClient is an http.Client with Transport(nil, max).
func HTTPClient(max int64) *http.Client { return &http.Client{Transport: Transport(nil, max)} }

// Options are go-ethereum RPC client options that bound responses to max
// bytes over HTTP (HTTPClient) and over websockets (the message size limit).
func Options(max int64) []rpc.ClientOption {
	if max <= 0 {
		max = DefaultMaxResponse
	}
	return []rpc.ClientOption{rpc.WithHTTPClient(HTTPClient(max)), rpc.WithWebsocketMessageSizeLimit(max)}
}

type transport struct {
	next http.RoundTripper
	max  int64
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		// the caller turns this body into an error: keep its head only
		head, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody+1))
		_ = resp.Body.Close()
		if len(head) > MaxErrorBody {
			head = append(head[:MaxErrorBody], "…(cut)"...)
		}
		resp.Body = io.NopCloser(bytes.NewReader(head))
		resp.ContentLength = int64(len(head))
		return resp, nil
	}
	if resp.ContentLength > t.max {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %d bytes announced, limit %d: %w", req.Method, req.URL.Redacted(), resp.ContentLength, t.max, ErrResponseTooLarge)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max, max: t.max}
	return resp, nil
}

// limitedBody fails a read past max bytes.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	max  int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// one more byte tells an exact fit from an excess
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("response body above %d bytes: %w", b.max, ErrResponseTooLarge)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
