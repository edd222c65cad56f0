package testutil

import (
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/sources"

	"github.com/lightcl/lightcl/internal/fake/fakel1"
)

// NewL1 starts an L1 on 127.0.0.1 and stops it in t.Cleanup. Setup mistakes
// fail t.
func NewL1(t testing.TB, cfg fakel1.L1Config) *fakel1.L1 {
	t.Helper()
	l, err := fakel1.StartL1Reporting(cfg, t.Fatalf)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(l.Close)
	return l
}

// DialL1 returns op-service's real L1Client for url with its hash checks on
// (TrustRPC false, MustBePostMerge off, as sources.L1ClientSimpleConfig sets
// it) and a 5 s call timeout; it is closed in t.Cleanup.
func DialL1(t testing.TB, url string) *sources.L1Client {
	t.Helper()
	c, closeFn, err := fakel1.OpenL1Client(url)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(closeFn)
	return c
}
