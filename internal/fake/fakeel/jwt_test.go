package fakeel_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/node"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
)

func TestELRequiresJWT(t *testing.T) {
	secret := fakeel.NewJWTSecret()
	el := testutil.NewEL(t, fakechain.NewTree(), fakeel.ELConfig{JWTSecret: secret})
	post := func(auth [32]byte, sign bool) int {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, el.URL(),
			strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if sign {
			require.NoError(t, node.NewJWTAuth(auth)(req.Header))
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, post(secret, false), "no JWT")
	require.Equal(t, http.StatusUnauthorized, post(fakeel.NewJWTSecret(), true), "JWT signed with another secret")
	require.Zero(t, el.CallCount("eth_chainId"), "rejected requests are not recorded")
	require.Equal(t, http.StatusOK, post(secret, true))
	require.Equal(t, 1, el.CallCount("eth_chainId"))
	http.DefaultClient.CloseIdleConnections()
}
