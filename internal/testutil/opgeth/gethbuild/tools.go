//go:build tools

// Package gethbuild pins op-geth's geth command in this module's go.mod; the
// harness builds it with `go build github.com/ethereum/go-ethereum/cmd/geth`.
package gethbuild

import _ "github.com/ethereum/go-ethereum/cmd/geth"
