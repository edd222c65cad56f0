package testutil

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// NewJWTSecret returns a fresh random 32-byte Engine API JWT secret.
func NewJWTSecret() [32]byte {
	var s [32]byte
	_, _ = rand.Read(s[:]) // crypto/rand.Read never fails (Go 1.24+)
	return s
}

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
