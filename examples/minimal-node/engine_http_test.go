package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEngineClientAsksNoCompression: the engine's HTTP client does not ask
// for gzip (op-geth's authrpc compresses when asked), and the default
// transport's does: on loopback compression costs CPU and saves nothing.
func TestEngineClientAsksNoCompression(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Accept-Encoding"))
	}))
	defer srv.Close()
	for _, c := range []*http.Client{engineHTTPClient(), http.DefaultClient} {
		resp, err := c.Get(srv.URL)
		require.NoError(t, err)
		resp.Body.Close()
	}
	require.Equal(t, []string{"", "gzip"}, got)
}
