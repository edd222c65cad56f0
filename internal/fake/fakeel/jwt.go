package fakeel

import "crypto/rand"

// NewJWTSecret returns a fresh random 32-byte Engine API JWT secret.
func NewJWTSecret() [32]byte {
	var s [32]byte
	_, _ = rand.Read(s[:]) // crypto/rand.Read never fails (Go 1.24+)
	return s
}
