package fakeel

import (
	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakerpc"
)

// record appends calls to the EL's log.
func (e *EL) record(calls []fakerpc.Call) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, calls...)
}

// Calls returns every JSON-RPC call received so far, in order of arrival.
func (e *EL) Calls() []fakerpc.Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]fakerpc.Call(nil), e.calls...)
}

// ForkchoiceUpdates returns the forkchoice state of every engine_forkchoiceUpdated
// call received so far (any version), in order.
func (e *EL) ForkchoiceUpdates() []eth.ForkchoiceState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]eth.ForkchoiceState(nil), e.fcus...)
}

// ForkchoiceTaken receives a value after each forkchoice update the EL took
// (its head and labels moved to the update's); a pending value stands for any
// number of them. A waiter that checks Labels, then waits on it, misses none.
func (e *EL) ForkchoiceTaken() <-chan struct{} { return e.fcuTaken }

// CallCount returns how many calls to method were received so far.
func (e *EL) CallCount(method string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fakerpc.CountCalls(e.calls, method)
}
