package remotel2_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource/remotel2"
	"github.com/lightcl/lightcl/safesource/rpclimit"
)

// TestHugeAnswerFailsTheCall: a remote that answers optimism_syncStatus with
// 300 MB fails the call with ErrResponseTooLarge, and the heap in use grows by
// less than 64 MiB; an HTTP 500 with a 32 MB body fails with an error of a
// few hundred bytes.
func TestHugeAnswerFailsTheCall(t *testing.T) {
	chunk := []byte(strings.Repeat(" ", 64<<10)) // JSON whitespace: the decoder must read it all
	var status int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
		size := 300 << 20
		if status != http.StatusOK {
			size = 32 << 20
		}
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	src, err := remotel2.New(context.Background(), remotel2.Config{URL: srv.URL, Kind: remotel2.KindCL, Timeout: time.Minute}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(src.Close)

	status = http.StatusOK
	grew := testutil.PeakHeapGrowth(func() { _, err = src.Heads(context.Background()) })
	require.ErrorIs(t, err, rpclimit.ErrResponseTooLarge)
	require.Less(t, grew, uint64(64<<20), "heap growth of the refused call: %d MiB", grew>>20)
	t.Logf("300 MB answer refused; heap grew by %.1f MiB", float64(grew)/(1<<20))

	status = http.StatusInternalServerError
	_, err = src.Heads(context.Background())
	require.Error(t, err)
	require.Less(t, len(err.Error()), 2*rpclimit.MaxErrorBody, "error: %.200s…", err.Error())
}
