// Package fanout runs calls in parallel, each under a timeout of its own, on
// an errgroup, and hands every call's result back keyed by what it was for,
// in the order the calls finish.
//
// It is for the parallel calls a library makes to its remotes (quorum
// members' heads and blocks, tip feeds' payloads), where the caller decides
// from the answers as they come and stops waiting once it has decided: Stop
// cancels the calls still running and returns once every call has returned,
// so no goroutine outlives its owner. One call failing does not cancel the
// others unless Config.CancelOnError asks for it.
//
// It is not a worker pool, a retry loop or a rate limiter, and it does not
// decide anything from the answers: that stays with the caller.
package fanout
