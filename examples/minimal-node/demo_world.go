package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
)

// demoWorld is the simulated outside. The remote is an OP Stack node seen from
// outside, as a light node sees one: a rollup node (the safe source, over
// HTTP) and its public L2 EL (the tip feed, over a websocket), on one chain
// that advances and reorgs its unsafe part once. The local engine is an
// in-memory EL with JWT that only the node writes to: it has no peers to sync
// from, so every block it holds came through the node's tip or safe path.
type demoWorld struct {
	dc       demoConfig
	tree     *fakechain.Tree
	main     []*types.Block // the remote's chain before the reorg; main[i] is block i+1
	fork     []*types.Block // after it; fork[0] is block forkAt
	forkAt   uint64
	blocks   int // how many blocks each chain has room for
	remote   *fakerollup.RollupNode
	remoteEL *fakeel.EL // the remote's L2 EL, public (no JWT), with newHeads over ws
	engine   *fakeel.EL
	jwtPath  string
	tmpDir   string

	mu                  sync.Mutex
	unsafe, safe, final uint64
	onFork              bool
	elTop               uint64 // the highest block of the remote's chain its EL holds
}

// steps is how many times the remote advances: it stops a second and a half
// before the end so that the node can settle.
func (w *demoWorld) steps() int {
	return int((w.dc.duration - 1500*time.Millisecond) / w.stepEvery())
}

func (w *demoWorld) stepEvery() time.Duration { return 2 * w.dc.poll }

// reorgStep is the step at which the remote's unsafe chain forks.
func (w *demoWorld) reorgStep() int { return w.steps()/2 + 1 }

func newDemoWorld(dc demoConfig) (*demoWorld, error) {
	w := &demoWorld{dc: dc, tree: fakechain.NewTree()}
	w.blocks = 2*w.steps() + 16
	w.main = w.tree.Extend(w.tree.Genesis().Hash(), w.blocks, 1)
	var err error
	if w.tmpDir, err = os.MkdirTemp("", "minimal-node-demo"); err != nil {
		return nil, err
	}
	secret := fakeel.NewJWTSecret()
	w.jwtPath = filepath.Join(w.tmpDir, "jwt.hex")
	if err := os.WriteFile(w.jwtPath, []byte(hexutil.Encode(secret[:])), 0o600); err != nil {
		w.close()
		return nil, err
	}
	if w.remote, err = fakerollup.StartRollupNode(w.tree, fakerollup.RollupNodeConfig{}); err != nil {
		w.close()
		return nil, err
	}
	if w.remoteEL, err = fakeel.StartEL(w.tree, fakeel.ELConfig{NoAuth: true}); err != nil {
		w.close()
		return nil, err
	}
	if w.engine, err = fakeel.StartEL(w.tree, fakeel.ELConfig{JWTSecret: secret}); err != nil {
		w.close()
		return nil, err
	}
	w.setRemote(4, 0, 0)
	return w, nil
}

func (w *demoWorld) close() {
	if w.engine != nil {
		w.engine.Close()
	}
	if w.remoteEL != nil {
		w.remoteEL.Close()
	}
	if w.remote != nil {
		w.remote.Close()
	}
	_ = os.RemoveAll(w.tmpDir)
}

// block is the remote's block at height n. Callers hold w.mu or own w.
func (w *demoWorld) block(n uint64) *types.Block {
	if n == 0 {
		return w.tree.Genesis()
	}
	if w.onFork && n >= w.forkAt {
		return w.fork[n-w.forkAt]
	}
	return w.main[n-1]
}

// setRemote moves the remote: its EL gets the new blocks and makes unsafe its
// head (which announces it to newHeads subscribers), then its rollup node
// reports the same heads, as op-node does after op-geth took them.
func (w *demoWorld) setRemote(unsafe, safe, final uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var add []*types.Block
	for n := w.elTop + 1; n <= unsafe; n++ {
		add = append(add, w.block(n))
	}
	w.remoteEL.Insert(add...)
	w.elTop = max(w.elTop, unsafe)
	w.unsafe, w.safe, w.final = unsafe, safe, final
	w.remoteEL.SetForkchoice(w.block(unsafe).Hash(), w.block(safe).Hash(), w.block(final).Hash())
	w.remote.Follow(w.block(unsafe), w.block(safe), w.block(safe), w.block(final), fakechain.L1Ref(safe/fakechain.BlocksPerEpoch))
}

// drive advances the remote two blocks per step, safe four behind unsafe and
// finalized ten behind safe. At reorgStep the remote's unsafe chain forks
// right above its new safe head: its two newest unsafe blocks, which the
// engine holds by then through the tip feed, are replaced.
func (w *demoWorld) drive(ctx context.Context, out io.Writer) error {
	t := time.NewTicker(w.stepEvery())
	defer t.Stop()
	for step := 1; step <= w.steps(); step++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		unsafe := uint64(2*step + 4)
		safe := unsafe - 4
		final := uint64(0)
		if safe > 10 {
			final = safe - 10
		}
		if step == w.reorgStep() {
			w.forkAfter(safe)
			fmt.Fprintf(out, "       | remote reorg: its unsafe chain now forks after its safe block %d; blocks %d-%d are replaced\n",
				safe, safe+1, unsafe-2)
		}
		w.setRemote(unsafe, safe, final)
	}
	return nil
}

// forkAfter switches the remote to a fork that leaves its chain after block
// n; its EL has none of the fork's blocks yet.
func (w *demoWorld) forkAfter(n uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.forkAt = n + 1
	w.fork = w.tree.Extend(w.main[n-1].Hash(), w.blocks, 2)
	w.onFork = true
	w.elTop = n
}

func (w *demoWorld) remoteHeads() (uint64, uint64, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.unsafe, w.safe, w.final
}

// remoteRefs are the remote's unsafe, safe and finalized blocks, as its EL
// labels them.
func (w *demoWorld) remoteRefs() (unsafe, safe, final eth.L2BlockRef) {
	return w.remoteEL.Labels()
}
