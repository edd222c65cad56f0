package l1verify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/l1verify"
)

// dialRPC returns op-service's real RPC client for url; closed in t.Cleanup.
func dialRPC(t testing.TB, url string) client.RPC {
	t.Helper()
	c, err := client.NewRPC(context.Background(), log.NewLogger(log.DiscardHandler()), url, client.WithCallTimeout(5*time.Second))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// countingRPC counts HTTP requests: each CallContext is one, and so is each
// BatchCallContext, however many calls it carries.
type countingRPC struct {
	client.RPC
	calls, batches atomic.Int64
}

func (c *countingRPC) CallContext(ctx context.Context, result any, method string, args ...any) error {
	c.calls.Add(1)
	return c.RPC.CallContext(ctx, result, method, args...)
}

func (c *countingRPC) BatchCallContext(ctx context.Context, b []rpc.BatchElem) error {
	c.batches.Add(1)
	return c.RPC.BatchCallContext(ctx, b)
}

// requests returns how many requests were sent so far, and how many of them
// were batches.
func (c *countingRPC) requests() (total, batches int) {
	b := int(c.batches.Load())
	return int(c.calls.Load()) + b, b
}

// lyingRPC answers through a real L1 but passes each eth_getBlockByNumber
// answer (the block's JSON, or null) through edit before it is decoded, as a
// lying or broken L1 node would answer; arg is the block number or label
// asked for.
type lyingRPC struct {
	client.RPC
	edit func(arg string, answer json.RawMessage) json.RawMessage
}

func (l *lyingRPC) CallContext(ctx context.Context, result any, method string, args ...any) error {
	var raw json.RawMessage
	if err := l.RPC.CallContext(ctx, &raw, method, args...); err != nil {
		return err
	}
	return json.Unmarshal(l.edit(args[0].(string), raw), result)
}

func (l *lyingRPC) BatchCallContext(ctx context.Context, b []rpc.BatchElem) error {
	raws := make([]json.RawMessage, len(b))
	inner := slices.Clone(b)
	for i := range inner {
		inner[i].Result = &raws[i]
	}
	if err := l.RPC.BatchCallContext(ctx, inner); err != nil {
		return err
	}
	for i := range b {
		b[i].Error = inner[i].Error
		if b[i].Error == nil {
			b[i].Error = json.Unmarshal(l.edit(b[i].Args[0].(string), raws[i]), b[i].Result)
		}
	}
	return nil
}

func TestRPCSourceMatchesL1Client(t *testing.T) {
	tests := []struct {
		name  string
		cfg   fakel1.L1Config
		setup func(l1 *fakel1.L1)
	}{
		{"the Tree's synthetic L1", fakel1.L1Config{Head: 25, Safe: 18, Finalized: 12}, func(*fakel1.L1) {}},
		{"the synthetic L1 with a reorged tail", fakel1.L1Config{Head: 25, Safe: 18, Finalized: 12}, func(l1 *fakel1.L1) { l1.Reorg(20, 1) }},
		{"a linked post-merge L1", fakel1.L1Config{Head: 40, Safe: 30, Finalized: 20, Linked: true}, func(*fakel1.L1) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l1 := testutil.NewL1(t, tt.cfg)
			tt.setup(l1)
			ours := l1verify.NewRPCSource(dialRPC(t, l1.URL()))
			theirs := testutil.DialL1(t, l1.URL())

			head := l1.Head().Number
			for n := range head + 1 {
				want, err := theirs.L1BlockRefByNumber(ctx, n)
				require.NoError(t, err)
				got, err := ours.L1BlockRefByNumber(ctx, n)
				require.NoError(t, err)
				require.Equal(t, want, got, "block %d", n)
				require.Equal(t, l1.Ref(n), got, "block %d", n)
			}
			for _, label := range []eth.BlockLabel{eth.Unsafe, eth.Safe, eth.Finalized} {
				want, err := theirs.L1BlockRefByLabel(ctx, label)
				require.NoError(t, err)
				got, err := ours.L1BlockRefByLabel(ctx, label)
				require.NoError(t, err)
				require.Equal(t, want, got, label)
			}
			latest, safe, finalized, err := ours.L1Heads(ctx)
			require.NoError(t, err)
			require.Equal(t, l1.Head(), latest)
			require.Equal(t, l1.Safe(), safe)
			require.Equal(t, l1.Finalized(), finalized)

			_, err = theirs.L1BlockRefByNumber(ctx, head+1)
			require.ErrorIs(t, err, ethereum.NotFound)
			_, err = ours.L1BlockRefByNumber(ctx, head+1)
			require.ErrorIs(t, err, ethereum.NotFound, "a height the node lacks")
		})
	}
}

func TestRPCSourceRefusesBadAnswers(t *testing.T) {
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 40, Safe: 30, Finalized: 20, Linked: true})
	honest := dialRPC(t, l1.URL())
	var block3 json.RawMessage
	require.NoError(t, honest.CallContext(ctx, &block3, "eth_getBlockByNumber", hexutil.EncodeUint64(3), false))
	setField := func(raw json.RawMessage, field string, value any) json.RawMessage {
		var m map[string]any
		require.NoError(t, json.Unmarshal(raw, &m))
		m[field] = value
		out, err := json.Marshal(m)
		require.NoError(t, err)
		return out
	}
	const otherRoot = "0x00000000000000000000000000000000000000000000000000000000000000ff"

	tests := []struct {
		name     string
		answer   func(raw json.RawMessage) json.RawMessage
		notFound bool   // the error wraps ethereum.NotFound
		contains string // in every error
	}{
		{"a field changed, the hash kept", func(raw json.RawMessage) json.RawMessage { return setField(raw, "stateRoot", otherRoot) }, false, "failed to verify block hash"},
		{"a hash that is not the header's", func(raw json.RawMessage) json.RawMessage { return setField(raw, "hash", otherRoot) }, false, "failed to verify block hash"},
		{"null", func(json.RawMessage) json.RawMessage { return json.RawMessage("null") }, true, ""},
		{"an empty object", func(json.RawMessage) json.RawMessage { return json.RawMessage("{}") }, false, "failed to verify block hash"},
		{"an array", func(json.RawMessage) json.RawMessage { return json.RawMessage("[1,2]") }, false, ""},
		{"a string", func(json.RawMessage) json.RawMessage { return json.RawMessage(`"0x1"`) }, false, ""},
		{"a bad number", func(raw json.RawMessage) json.RawMessage { return setField(raw, "number", "zz") }, false, ""},
		{"a number too long", func(raw json.RawMessage) json.RawMessage { return setField(raw, "number", "0x1ffffffffffffffff") }, false, ""},
		{"a negative difficulty", func(raw json.RawMessage) json.RawMessage { return setField(raw, "difficulty", "-0x1") }, false, ""},
		{"fields missing", func(json.RawMessage) json.RawMessage { return json.RawMessage(`{"hash":"` + otherRoot + `"}`) }, false, "failed to verify block hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := l1verify.NewRPCSource(&lyingRPC{RPC: honest, edit: func(_ string, raw json.RawMessage) json.RawMessage { return tt.answer(raw) }})
			check := func(what string, err error) {
				t.Helper()
				require.Error(t, err, what)
				if tt.notFound {
					require.ErrorIs(t, err, ethereum.NotFound, what)
				} else {
					require.NotErrorIs(t, err, ethereum.NotFound, what)
				}
				require.ErrorContains(t, err, tt.contains, what)
			}
			_, err := s.L1BlockRefByNumber(ctx, 5)
			check("by number", err)
			_, err = s.L1BlockRefByLabel(ctx, eth.Unsafe)
			check("by label", err)
			_, _, _, err = s.L1Heads(ctx)
			check("L1Heads", err)
		})
	}

	t.Run("another block's header for a number", func(t *testing.T) {
		s := l1verify.NewRPCSource(&lyingRPC{RPC: honest, edit: func(string, json.RawMessage) json.RawMessage { return block3 }})
		_, err := s.L1BlockRefByNumber(ctx, 5)
		require.ErrorContains(t, err, "reading L1 block 5: the node answered block 3")
	})

	t.Run("no finalized block yet", func(t *testing.T) {
		s := l1verify.NewRPCSource(&lyingRPC{RPC: honest, edit: func(arg string, raw json.RawMessage) json.RawMessage {
			if arg == string(eth.Finalized) {
				return json.RawMessage("null")
			}
			return raw
		}})
		latest, safe, finalized, err := s.L1Heads(ctx)
		require.NoError(t, err)
		require.Equal(t, l1.Head(), latest)
		require.Equal(t, l1.Safe(), safe)
		require.Zero(t, finalized, "zero, not an error")
		_, err = s.L1BlockRefByLabel(ctx, eth.Finalized)
		require.ErrorIs(t, err, ethereum.NotFound)
	})

	t.Run("no safe block yet", func(t *testing.T) {
		s := l1verify.NewRPCSource(&lyingRPC{RPC: honest, edit: func(arg string, raw json.RawMessage) json.RawMessage {
			if arg == string(eth.Safe) {
				return json.RawMessage("null")
			}
			return raw
		}})
		latest, safe, finalized, err := s.L1Heads(ctx)
		require.NoError(t, err)
		require.Equal(t, l1.Head(), latest)
		require.Zero(t, safe, "zero, not an error")
		require.Equal(t, l1.Finalized(), finalized)
		_, err = s.L1BlockRefByLabel(ctx, eth.Safe)
		require.ErrorIs(t, err, ethereum.NotFound)
	})

	tamper := func(label eth.BlockLabel) *l1verify.RPCSource {
		return l1verify.NewRPCSource(&lyingRPC{RPC: honest, edit: func(arg string, raw json.RawMessage) json.RawMessage {
			if arg == string(label) {
				return setField(raw, "stateRoot", otherRoot)
			}
			return raw
		}})
	}
	t.Run("a tampered finalized block", func(t *testing.T) {
		_, _, _, err := tamper(eth.Finalized).L1Heads(ctx)
		require.ErrorContains(t, err, "reading L1 finalized: failed to verify block hash")
	})
	t.Run("a tampered safe block is left unknown", func(t *testing.T) {
		// safe serves the status only: it does not fail the read the
		// verification needs
		latest, safe, finalized, err := tamper(eth.Safe).L1Heads(ctx)
		require.NoError(t, err)
		require.Zero(t, safe)
		require.NotZero(t, latest)
		require.NotZero(t, finalized)
	})

	t.Run("malformed JSON-RPC", func(t *testing.T) {
		l1 := testutil.NewL1(t, fakel1.L1Config{Head: 10})
		s := l1verify.NewRPCSource(dialRPC(t, l1.URL()))
		l1.Faults().Garbage(true)
		_, err := s.L1BlockRefByNumber(ctx, 5)
		require.Error(t, err)
		_, err = s.L1BlockRefByLabel(ctx, eth.Finalized)
		require.Error(t, err)
		_, _, _, err = s.L1Heads(ctx)
		require.Error(t, err)
	})
}

func TestRPCSourceSteadyStateCostsOneRequestPerTick(t *testing.T) {
	for _, tt := range []struct {
		name            string
		finalityAdvance bool
	}{
		{"L1 finality still", false},
		{"L1 finality advancing every 32 L1 blocks", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l1 := testutil.NewL1(t, fakel1.L1Config{Head: 20, Linked: true})
			proxy := newL1Proxy(t, l1.URL())
			rpcs := &countingRPC{RPC: dialRPC(t, proxy.url)}
			var requests0, batches0, server0, http0 int
			advances := steadyState(t, l1, l1verify.NewRPCSource(rpcs), tt.finalityAdvance, func() {
				requests0, batches0 = rpcs.requests()
				server0 = serverCalls(l1)
				http0 = proxy.Requests()
			})
			requests, batches := rpcs.requests()
			perTick := float64(requests-requests0) / steadyTicks
			t.Logf("steady state over %d ticks through RPCSource: %.3f L1 requests per tick (%d batched; %.3f eth_getBlockByNumber calls per tick; L1 finality advanced %d times)",
				steadyTicks, perTick, batches-batches0, float64(serverCalls(l1)-server0)/steadyTicks, advances)
			require.Equal(t, requests-requests0, proxy.Requests()-http0, "the L1 node's HTTP server saw the same requests")
			require.LessOrEqual(t, perTick, 1.0, "at most one L1 request per tick on average")
			if tt.finalityAdvance {
				require.Positive(t, advances)
			}
		})
	}
}

// TestRPCSourceFinalizedReadWithTheHead follows one verifier through RPCSource
// tick by tick: L1's finalized block is read in the head's request while the
// finalized claims keep up with it, on its own only when a claim passes it.
// L1's safe block rides in the same batch (three calls, one request).
func TestRPCSourceFinalizedReadWithTheHead(t *testing.T) {
	ctx := context.Background()
	l1 := testutil.NewL1(t, fakel1.L1Config{Head: 40, Safe: 30, Finalized: 20, Linked: true})
	rpcs := &countingRPC{RPC: dialRPC(t, l1.URL())}
	inner := safesource.NewStatic("pushed", nil)
	s := wrap(t, inner, l1verify.NewRPCSource(rpcs), l1verify.Config{})
	claim := func(finalized uint64) func() {
		return func() {
			require.NoError(t, inner.Set(synthHeads(l1.Ref(34), l1.Ref(35), l1.Ref(finalized), l1.Ref(40))))
		}
	}

	steps := []struct {
		name     string
		before   func()
		requests int   // HTTP requests
		batches  int   // of which batches
		calls    int   // eth_getBlockByNumber calls the L1 node served
		err      error // wrapped by the error, if any
	}{
		{"cold, the source's finality trailing L1's: the head, safe and finalized, then the origins 34, 35 and 12",
			claim(12), 1 + 3, 1, 3 + 3, nil},
		{"trailing: the head alone", func() {}, 1, 0, 1, nil},
		{"caught up with L1 finality as last read: the head alone", claim(20), 1, 0, 1, nil},
		{"caught up: safe and finalized come with the head", func() {}, 1, 1, 3, nil},
		{"L1 finality moved, the source too: still one request", func() { l1.SetLabels(32, 32); claim(32)() }, 1, 1, 3, nil},
		// Before finalized was held this step dropped the heads; now they pass
		// with finalized held at 32, and L1's finalized block is still read
		// again on its own, to see it catch up.
		{"finality claimed past L1's (the source's L1 node is ahead): finalized read again on its own, finalized held", claim(34), 2, 1, 4, nil},
		{"L1 down", func() { l1.Faults().HTTPStatus(500) }, 1, 1, 0, l1verify.ErrL1Unavailable},
		{"L1 back, its finality caught up", func() { l1.Faults().Clear(); l1.SetLabels(34, 34) }, 1, 1, 3, nil},
	}
	for _, st := range steps {
		st.before()
		requests0, batches0 := rpcs.requests()
		calls0 := serverCalls(l1)
		_, err := s.Heads(ctx)
		if st.err != nil {
			require.ErrorIs(t, err, st.err, st.name)
		} else {
			require.NoError(t, err, st.name)
		}
		requests, batches := rpcs.requests()
		require.Equal(t, []int{st.requests, st.batches, st.calls}, []int{requests - requests0, batches - batches0, serverCalls(l1) - calls0},
			"%s: requests, batches, calls", st.name)
	}
	require.Equal(t, l1.Ref(34), s.Status().L1.L1Finalized)
	require.Equal(t, l1.Ref(34), s.Status().L1.L1Safe)
}

// ExampleRPCSource reads the L1 head, safe and finalized blocks in one
// request, as a Verifier over it does on each tick that may need L1 finality.
// In a node, rpcClient is the user's L1 RPC (and l1 is passed to
// l1verify.Wrap or New).
func ExampleRPCSource() {
	ctx := context.Background()
	l1Node, err := fakel1.StartL1(fakel1.L1Config{Head: 12, Safe: 10, Finalized: 6})
	if err != nil {
		panic(err)
	}
	defer l1Node.Close()
	rpcClient, err := client.NewRPC(ctx, log.NewLogger(log.DiscardHandler()), l1Node.URL())
	if err != nil {
		panic(err)
	}
	defer rpcClient.Close()

	l1 := l1verify.NewRPCSource(rpcClient)
	latest, safe, finalized, err := l1.L1Heads(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("latest:", latest.Number, "safe:", safe.Number, "finalized:", finalized.Number)
	// Output:
	// latest: 12 safe: 10 finalized: 6
}
