package testutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// WriteJWTSecret writes secret as 0x-prefixed hex, the file format op-node and
// op-geth read, to a file in t.TempDir() and returns its path.
func WriteJWTSecret(t testing.TB, secret [32]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwt.hex")
	if err := os.WriteFile(path, []byte(hexutil.Encode(secret[:])), 0o600); err != nil {
		t.Fatalf("testutil: writing JWT secret: %v", err)
	}
	return path
}
