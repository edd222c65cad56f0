package fakerpc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/fake/fakerpc"
	"github.com/lightcl/lightcl/internal/testutil"
)

func TestStallTimesOutClientAndCloseIsPrompt(t *testing.T) {
	n := testutil.NewRollupNode(t, fakechain.NewTree(), fakerollup.RollupNodeConfig{})
	n.Faults().Stall(time.Minute)

	impatient := sources.NewRollupClient(testutil.DialNoAuth(t, n.URL(), 200*time.Millisecond))
	start := time.Now()
	_, err := impatient.SyncStatus(context.Background())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2*time.Second)
	require.Eventually(t, func() bool { return n.Faults().Stalled() == 0 },
		2*time.Second, 10*time.Millisecond, "the stall ends when the client gives up")
	require.Zero(t, n.CallCount("optimism_syncStatus"), "a stalled request that was never served is not recorded")

	patient := sources.NewRollupClient(testutil.DialNoAuth(t, n.URL(), time.Minute))
	done := make(chan error, 1)
	go func() {
		_, err := patient.SyncStatus(context.Background())
		done <- err
	}()
	require.Eventually(t, func() bool { return n.Faults().Stalled() == 1 }, 2*time.Second, 10*time.Millisecond)
	start = time.Now()
	n.Close()
	require.Less(t, time.Since(start), time.Second, "Close does not wait out the stall")
	select {
	case err := <-done:
		require.Error(t, err, "the stalled request is dropped")
	case <-time.After(2 * time.Second):
		t.Fatal("the stalled call did not return after Close")
	}
}

func TestStallDelaysAndClearReleases(t *testing.T) {
	n := testutil.NewRollupNode(t, fakechain.NewTree(), fakerollup.RollupNodeConfig{})
	rc := sources.NewRollupClient(testutil.DialNoAuth(t, n.URL(), 5*time.Second))
	ctx := context.Background()

	n.Faults().Stall(100 * time.Millisecond)
	start := time.Now()
	_, err := rc.SyncStatus(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)

	n.Faults().Stall(time.Minute)
	done := make(chan error, 1)
	go func() {
		_, err := rc.SyncStatus(ctx)
		done <- err
	}()
	require.Eventually(t, func() bool { return n.Faults().Stalled() == 1 }, 2*time.Second, 10*time.Millisecond)
	n.Faults().Clear()
	select {
	case err := <-done:
		require.NoError(t, err, "Clear lets the waiting request through")
	case <-time.After(2 * time.Second):
		t.Fatal("Clear did not release the stalled request")
	}
	require.Equal(t, 2, n.CallCount("optimism_syncStatus"))
}

func TestHTTPStatusFault(t *testing.T) {
	n := testutil.NewRollupNode(t, fakechain.NewTree(), fakerollup.RollupNodeConfig{})
	rc := sources.NewRollupClient(testutil.DialNoAuth(t, n.URL(), 5*time.Second))
	ctx := context.Background()

	n.Faults().HTTPStatus(http.StatusInternalServerError)
	_, err := rc.SyncStatus(ctx)
	require.ErrorContains(t, err, "500")
	var httpErr rpc.HTTPError
	require.ErrorAs(t, err, &httpErr)
	require.Equal(t, http.StatusInternalServerError, httpErr.StatusCode)
	require.Zero(t, n.CallCount("optimism_syncStatus"), "answered by the fault, not the node")

	n.Faults().HTTPStatus(0)
	_, err = rc.SyncStatus(ctx)
	require.NoError(t, err)
}

func TestGarbageFaultGivesDecodeError(t *testing.T) {
	n := testutil.NewRollupNode(t, fakechain.NewTree(), fakerollup.RollupNodeConfig{})
	c := testutil.DialNoAuth(t, n.URL(), 5*time.Second)
	ctx := context.Background()

	n.Faults().Garbage(true)
	_, err := sources.NewRollupClient(c).SyncStatus(ctx)
	var syntaxErr *json.SyntaxError
	require.ErrorAs(t, err, &syntaxErr)
	batch := []rpc.BatchElem{{Method: "optimism_syncStatus", Result: new(*eth.SyncStatus)}}
	require.ErrorAs(t, c.BatchCallContext(ctx, batch), &syntaxErr, "batches get garbage too")

	n.Faults().Clear()
	_, err = sources.NewRollupClient(c).SyncStatus(ctx)
	require.NoError(t, err)
}

func TestFaultsPrecedenceAndZeroValue(t *testing.T) {
	var f fakerpc.Faults // the zero value works
	served := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("served")) })
	h := f.Wrap(served)
	do := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
		return rec
	}
	require.Equal(t, "served", do().Body.String())
	f.Garbage(true)
	require.Equal(t, fakerpc.GarbageBody, do().Body.String())
	require.False(t, json.Valid([]byte(fakerpc.GarbageBody)))
	f.HTTPStatus(http.StatusTooManyRequests)
	require.Equal(t, http.StatusTooManyRequests, do().Code, "a status wins over garbage")
	f.Clear()
	require.Equal(t, "served", do().Body.String())

	require.Panics(t, func() { f.HTTPStatus(42) }, "not an HTTP status")
	require.Panics(t, func() { f.Stall(-time.Second) })

	f.Close()
	f.Close() // closing twice is fine
	require.PanicsWithValue(t, http.ErrAbortHandler, func() { do() }, "a closed server drops requests")
}
