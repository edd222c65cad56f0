package rpclimit_test

import (
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource/rpclimit"
)

var limitFlag = flag.Int64("limit", 0, "the limit TestHugeAnswerIsRefusedWithinBoundedMemory runs at (0: the default)")

// hugeAnswer serves a JSON-RPC answer of about size bytes, streamed (the
// server holds none of it), or an HTTP 500 with a body of that size.
func hugeAnswer(t *testing.T, size int, status int) string {
	chunk := []byte(strings.Repeat("00", 32<<10))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x`)
		}
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client stopped reading
			}
		}
		if status == http.StatusOK {
			_, _ = io.WriteString(w, `"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func call(t *testing.T, url string, opts ...rpc.ClientOption) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := rpc.DialOptions(ctx, url, opts...)
	require.NoError(t, err)
	defer c.Close()
	var out hexutil.Bytes
	return c.CallContext(ctx, &out, "eth_getBlockByNumber", "latest", true)
}

// TestHugeAnswerIsRefusedWithinBoundedMemory: a 300 MB answer fails the call
// with ErrResponseTooLarge, and the heap grows by less than 64 MiB; without
// the limit the same call reads it all.
func TestHugeAnswerIsRefusedWithinBoundedMemory(t *testing.T) {
	url := hugeAnswer(t, 300<<20, http.StatusOK)
	var err error
	grew := testutil.PeakHeapGrowth(func() { err = call(t, url, rpclimit.Options(*limitFlag)...) })
	require.ErrorIs(t, err, rpclimit.ErrResponseTooLarge)
	require.ErrorContains(t, err, "above")
	require.Less(t, grew, uint64(64<<20), "heap grew by %d MiB", grew>>20)
	t.Logf("300 MB answer refused; heap grew by %.1f MiB", float64(grew)/(1<<20))

	if testing.Short() {
		return
	}
	// the reference: go-ethereum's client alone takes it all in
	unbounded := testutil.PeakHeapGrowth(func() { _ = call(t, url) })
	t.Logf("without the limit the heap grew by %.1f MiB", float64(unbounded)/(1<<20))
	require.Greater(t, unbounded, uint64(300<<20), "the unbounded client reads the whole answer")
}

// TestErrorBodyIsCut: an HTTP 500 with a 32 MB body becomes an error of a few
// hundred bytes.
func TestErrorBodyIsCut(t *testing.T) {
	url := hugeAnswer(t, 32<<20, http.StatusInternalServerError)
	err := call(t, url, rpclimit.Options(0)...)
	require.Error(t, err)
	require.Less(t, len(err.Error()), 2*rpclimit.MaxErrorBody, "error: %.200s…", err.Error())
	require.Contains(t, err.Error(), "500")
	require.Contains(t, err.Error(), "…(cut)")
}

// TestAnswerAtTheLimitPasses: an answer of exactly the limit is read whole.
func TestAnswerAtTheLimitPasses(t *testing.T) {
	const prefix, suffix = `{"jsonrpc":"2.0","id":1,"result":"0x`, `"}`
	const limit = 1<<20 + len(prefix) + len(suffix) // an even number of hex digits
	body := prefix + strings.Repeat("ab", (limit-len(prefix)-len(suffix))/2) + suffix
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	require.NoError(t, call(t, srv.URL, rpclimit.Options(int64(limit))...))
	require.ErrorIs(t, call(t, srv.URL, rpclimit.Options(int64(limit-1))...), rpclimit.ErrResponseTooLarge)
}
