// Package testutil holds what lightcl's tests need a testing.TB for: NewEL,
// NewL1 and NewRollupNode start the fakes of internal/fake (fakeel, fakel1,
// fakerollup) and stop them in t.Cleanup, with setup mistakes failing the
// test; DialEngine and DialL1 open op-service's real clients on them;
// WriteJWTSecret writes a secret file in t.TempDir(). It also has heap
// (PeakHeapGrowth) and child-process (LogBuffer, EnvWithout) helpers. Real
// op-geth processes are in the opgeth subpackage, and a mini OP Stack built
// on them (sequencer, batcher, L1) in opstack.
//
// It is for lightcl's own tests only and is not for production use; code
// without a testing.TB, such as the runnable examples, uses the fake
// packages directly, which import no testing package.
package testutil
