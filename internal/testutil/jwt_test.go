package testutil_test

import (
	"os"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
)

func TestWriteJWTSecretWritesHex(t *testing.T) {
	secret := fakeel.NewJWTSecret()
	require.NotEqual(t, [32]byte{}, secret)
	require.NotEqual(t, secret, fakeel.NewJWTSecret())
	data, err := os.ReadFile(testutil.WriteJWTSecret(t, secret))
	require.NoError(t, err)
	require.Equal(t, hexutil.Encode(secret[:]), string(data))
}
