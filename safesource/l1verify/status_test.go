package l1verify_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/l1verify"
)

// safeReads returns how many eth_getBlockByNumber "safe" calls the L1 node
// received.
func safeReads(t *testing.T, l1 *fakel1.L1) int {
	t.Helper()
	n := 0
	for _, c := range l1.Calls() {
		var params []any
		if c.Method == "eth_getBlockByNumber" && json.Unmarshal(c.Params, &params) == nil && len(params) > 0 && params[0] == string(eth.Safe) {
			n++
		}
	}
	return n
}

// TestStatusL1BlocksFromTheTicksReads follows one verifier over RPCSource,
// through an HTTP proxy that counts the requests the L1 node receives: after
// each tick, Status reports L1's head, safe and finalized blocks as last
// read, and the requests per tick are those made before L1's safe block was
// read at all (4, 1, 1, 1, 2, 2, measured on the code before it): safe rides
// in the batch that brings finalized with the head, and is not read on the
// ticks that read the head alone.
func TestStatusL1BlocksFromTheTicksReads(t *testing.T) {
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 40, Safe: 30, Finalized: 20, Linked: true})
	proxy := newL1Proxy(t, l1.URL())
	inner := safesource.NewStatic("pushed", nil)
	s := wrap(t, inner, l1verify.NewRPCSource(dialRPC(t, proxy.url)), l1verify.Config{})
	claim := func(finalized uint64) {
		require.NoError(t, inner.Set(synthHeads(l1.Ref(34), l1.Ref(35), l1.Ref(finalized), l1.Ref(40))))
	}

	steps := []struct {
		name                  string
		before                func()
		requests              int // HTTP requests the L1 node received
		safeRead              bool
		head, safe, finalized uint64 // the Status' L1 blocks after the tick
	}{
		{"cold: the head, safe and finalized in one batch, then the origins 34, 35 and 12",
			func() { claim(12) }, 1 + 3, true, 40, 30, 20},
		{"L1's safe block moved, the source's finality trails L1's: the head alone, safe as last read",
			func() { l1.SetLabels(32, 20) }, 1, false, 40, 30, 20},
		{"the source caught up with L1 finality as last read: the head alone",
			func() { claim(20) }, 1, false, 40, 30, 20},
		{"caught up: safe and finalized come with the head",
			func() {}, 1, true, 40, 32, 20},
		{"L1 two blocks on, its labels too: the batch, and block 40 read to link the new head",
			func() { l1.Advance(2); l1.SetLabels(36, 32); claim(32) }, 2, true, 42, 36, 32},
		{"finality claimed past L1's: the batch, then finalized read again on its own",
			func() { claim(34) }, 2, true, 42, 36, 32},
	}
	for _, st := range steps {
		st.before()
		requests0, safe0 := proxy.Requests(), safeReads(t, l1)
		_, err := s.Heads(ctx)
		require.NoError(t, err, st.name)
		require.Equal(t, st.requests, proxy.Requests()-requests0, "%s: HTTP requests", st.name)
		safeRead := safeReads(t, l1) - safe0
		if st.safeRead {
			require.Equal(t, 1, safeRead, "%s: safe read once, in the batch", st.name)
		} else {
			require.Zero(t, safeRead, "%s: safe not read", st.name)
		}
		got := s.Status().L1
		require.Equal(t, []eth.L1BlockRef{l1.Ref(st.head), l1.Ref(st.safe), l1.Ref(st.finalized)},
			[]eth.L1BlockRef{got.L1Head, got.L1Safe, got.L1Finalized}, "%s: L1 head, safe, finalized", st.name)
	}
	require.Equal(t, l1.Safe(), s.Status().L1.L1Safe)
}

// TestStatusL1WithoutSafeBlock: an L1 that answers "safe block not found", as
// geth does before it has a safe block, leaves L1Safe zero (or as last read)
// and the heads still pass, at no extra request.
func TestStatusL1WithoutSafeBlock(t *testing.T) {
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 40, Safe: 30, Finalized: 20, Linked: true})
	proxy := newL1Proxy(t, l1.URL())
	proxy.noSafe.Store(true)
	_, err := l1verify.NewRPCSource(dialRPC(t, proxy.url)).L1BlockRefByLabel(ctx, eth.Safe)
	require.ErrorContains(t, err, "safe block not found", "the proxy answers as geth does")
	require.ErrorIs(t, err, ethereum.NotFound)
	inner := safesource.NewStatic("pushed", nil)
	require.NoError(t, inner.Set(synthHeads(l1.Ref(34), l1.Ref(35), l1.Ref(20), l1.Ref(40))))
	s := wrap(t, inner, l1verify.NewRPCSource(dialRPC(t, proxy.url)), l1verify.Config{})

	steps := []struct {
		name     string
		noSafe   bool
		requests int
		safe     eth.L1BlockRef
	}{
		{"cold, no safe block: the batch, then the origins 34 and 35 (20 came as finalized)", true, 1 + 2, eth.L1BlockRef{}},
		{"still none", true, 1, eth.L1BlockRef{}},
		{"L1 has a safe block", false, 1, l1.Ref(30)},
		{"L1 says none again: safe as last read", true, 1, l1.Ref(30)},
	}
	for _, st := range steps {
		proxy.noSafe.Store(st.noSafe)
		requests0, safe0 := proxy.Requests(), safeReads(t, l1)
		h, err := s.Heads(ctx)
		require.NoError(t, err, st.name)
		require.Equal(t, l1.Ref(20).ID(), h.Finalized.L1Origin, "%s: finalized passed on, not held", st.name)
		require.Equal(t, st.requests, proxy.Requests()-requests0, "%s: HTTP requests", st.name)
		require.Equal(t, 1, safeReads(t, l1)-safe0, "%s: safe asked, in the batch", st.name)
		got := s.Status()
		require.Equal(t, l1verify.ResultOK, got.LastResult, st.name)
		require.Equal(t, []eth.L1BlockRef{l1.Head(), st.safe, l1.Finalized()},
			[]eth.L1BlockRef{got.L1.L1Head, got.L1.L1Safe, got.L1.L1Finalized}, "%s: L1 head, safe, finalized", st.name)
	}
}

// TestStatusL1SafeWithoutBatch: without RPCSource's batch, nothing asks L1
// for its safe block, and L1Safe stays zero.
func TestStatusL1SafeWithoutBatch(t *testing.T) {
	tests := []struct {
		name string
		l1   func(t *testing.T, l1 *fakel1.L1) l1verify.L1Source
		cfg  l1verify.Config
	}{
		{"sources.L1Client, one block per request", func(t *testing.T, l1 *fakel1.L1) l1verify.L1Source {
			return testutil.DialL1(t, l1.URL())
		}, l1verify.Config{}},
		{"RPCSource with the finality check off", func(t *testing.T, l1 *fakel1.L1) l1verify.L1Source {
			return l1verify.NewRPCSource(dialRPC(t, l1.URL()))
		}, l1verify.Config{SkipFinalityCheck: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l1 := testutil.NewL1(t, fakel1.L1Config{Head: 40, Safe: 30, Finalized: 20, Linked: true})
			s := wrap(t, static(t, "pushed", synthHeads(l1.Ref(34), l1.Ref(35), l1.Ref(20), l1.Ref(40))), tt.l1(t, l1), tt.cfg)
			for range 3 {
				_, err := s.Heads(ctx)
				require.NoError(t, err)
			}
			got := s.Status().L1
			require.Equal(t, l1.Head(), got.L1Head)
			require.Zero(t, got.L1Safe, "never read: zero")
			require.Zero(t, safeReads(t, l1), "no request for safe")
			if !tt.cfg.SkipFinalityCheck {
				require.Equal(t, l1.Finalized(), got.L1Finalized)
			}
		})
	}
}
