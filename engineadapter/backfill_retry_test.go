package engineadapter

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/retry"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"
)

// scriptedProvider answers PayloadByNumber with answer(call), counting calls
// from 1.
type scriptedProvider struct {
	calls  atomic.Int32
	answer func(call int, n uint64) (*eth.ExecutionPayloadEnvelope, error)
}

func (p *scriptedProvider) PayloadByNumber(_ context.Context, n uint64) (*eth.ExecutionPayloadEnvelope, error) {
	return p.answer(int(p.calls.Add(1)), n)
}

func payloadAt(n uint64) *eth.ExecutionPayloadEnvelope {
	return &eth.ExecutionPayloadEnvelope{ExecutionPayload: &eth.ExecutionPayload{BlockNumber: eth.Uint64Quantity(n)}}
}

func fetchAdapter(p PayloadProvider) *Adapter {
	return &Adapter{cfg: Config{Payloads: p, EngineTimeout: time.Second}, log: log.NewLogger(log.DiscardHandler())}
}

func TestFetchBackoff(t *testing.T) {
	var total time.Duration
	var waits []time.Duration
	for i := range fetchAttempts - 1 { // a wait between each two tries
		d := fetchBackoff{}.Duration(i)
		waits = append(waits, d)
		total += d
	}
	ms := time.Millisecond
	require.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms}, waits)
	require.Equal(t, 11300*ms, total, "about 11 s before a missing payload fails the backfill")
	require.Equal(t, 5*time.Second, fetchBackoff{}.Duration(1000), "capped, no overflow")
}

func TestFetchRetries(t *testing.T) {
	boom := errors.New("boom")
	t.Run("missing, then served", func(t *testing.T) {
		t.Parallel()
		p := &scriptedProvider{answer: func(call int, n uint64) (*eth.ExecutionPayloadEnvelope, error) {
			switch call {
			case 1:
				return nil, ethereum.NotFound
			case 2:
				return nil, nil // an empty answer is retried like a missing one
			}
			return payloadAt(n), nil
		}}
		env, err := fetchAdapter(p).fetch(context.Background(), 7)
		require.NoError(t, err)
		require.EqualValues(t, 7, env.ExecutionPayload.BlockNumber)
		require.EqualValues(t, 3, p.calls.Load())
	})
	t.Run("other error fails at once", func(t *testing.T) {
		t.Parallel()
		p := &scriptedProvider{answer: func(int, uint64) (*eth.ExecutionPayloadEnvelope, error) { return nil, boom }}
		_, err := fetchAdapter(p).fetch(context.Background(), 7)
		require.ErrorIs(t, err, boom)
		require.ErrorContains(t, err, "backfill: payload 7: boom")
		require.EqualValues(t, 1, p.calls.Load())
	})
	t.Run("wrong block fails at once", func(t *testing.T) {
		t.Parallel()
		p := &scriptedProvider{answer: func(int, uint64) (*eth.ExecutionPayloadEnvelope, error) { return payloadAt(8), nil }}
		_, err := fetchAdapter(p).fetch(context.Background(), 7)
		require.EqualError(t, err, "backfill: asked the provider for block 7, got 8")
		require.EqualValues(t, 1, p.calls.Load())
	})
	t.Run("cancel stops the retries", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := &scriptedProvider{answer: func(call int, _ uint64) (*eth.ExecutionPayloadEnvelope, error) {
			if call == 2 {
				cancel() // during the second try: the 200 ms wait after it is cut short
			}
			return nil, ethereum.NotFound
		}}
		_, err := fetchAdapter(p).fetch(ctx, 7)
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "backfill: payload 7:")
		require.EqualValues(t, 2, p.calls.Load())
	})
	t.Run("missing after every attempt", func(t *testing.T) {
		t.Parallel()
		p := &scriptedProvider{answer: func(int, uint64) (*eth.ExecutionPayloadEnvelope, error) { return nil, ethereum.NotFound }}
		a := fetchAdapter(p)
		a.fetchWait = retry.Fixed(time.Millisecond) // the waits themselves are TestFetchBackoff's
		_, err := a.fetch(context.Background(), 7)
		require.ErrorIs(t, err, ethereum.NotFound)
		require.EqualError(t, err, "backfill: payload 7 not at the provider after 8 attempts: not found")
		require.EqualValues(t, fetchAttempts, p.calls.Load())
	})
}
