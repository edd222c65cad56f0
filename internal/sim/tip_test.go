package sim_test

import (
	"context"
	"errors"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/lightcl/lightcl/engineadapter"
)

// simFeed is the schedule's tip feed: it hands the adapter unsafe blocks
// (adapter.Tip, called by the schedule, so that nothing runs on its own) and
// serves their parents by hash. Its mode is a tip fault:
//   - "honest": the honest head;
//   - "stall": nothing, and parent requests fail (a timeout, answered at once);
//   - "lie": a block of a fork off the honest chain at any height, finalized
//     blocks included, sometimes one the engine calls INVALID;
//   - "gap": the honest head every other step only, so blocks go missing;
//   - "duplicate": the honest head, twice;
//   - "garbage": the honest head, but parent requests answer another block.
type simFeed struct {
	w    *world
	mode string
	fork *types.Block // for lie: the fork's head
}

var _ engineadapter.TipFeed = (*simFeed)(nil)

var errStalled = errors.New("tip feed: 504 gateway timeout")

func (f *simFeed) Name() string { return "sim-tip" }

// Run is never called: the schedule hands the blocks to the adapter itself.
func (f *simFeed) Run(ctx context.Context, out chan<- *eth.ExecutionPayloadEnvelope) error {
	return errors.New("sim: the schedule delivers tip blocks itself")
}

func (f *simFeed) PayloadByHash(ctx context.Context, hash common.Hash) (*eth.ExecutionPayloadEnvelope, error) {
	switch f.mode {
	case "stall":
		return nil, errStalled
	case "garbage":
		return f.w.envelope(f.w.head) // not the block asked for
	}
	b, ok := f.w.tree.Block(hash)
	if !ok {
		return nil, errors.New("tip feed: unknown block")
	}
	return f.w.envelope(b)
}

// tipModes are the tip feed's modes, drawn like the members' faults.
var tipModes = []string{"honest", "honest", "stall", "lie", "gap", "duplicate", "garbage"}

// applyTipFault changes the tip feed's mode (one draw per step, made whether
// or not the schedule has a tip feed, so that a seed's other faults do not
// depend on it).
func (w *world) applyTipFault(step int) {
	r, pick, at, n, salt, invalid := w.rng.IntN(3), w.rng.IntN(len(tipModes)), w.rng.Uint64(), 1+w.rng.IntN(6), w.rng.Uint64N(1<<20), w.rng.IntN(3) == 0
	if w.tip == nil || r != 0 {
		return
	}
	w.tip.mode = tipModes[pick]
	if w.tip.mode == "lie" {
		from := w.blockAt(at % (w.head.NumberU64() + 1))
		fork := w.tree.Extend(from.Hash(), n, 300+salt)
		w.tip.fork = fork[len(fork)-1]
		if invalid {
			w.el.MarkInvalid(fork[0].Hash())
		}
	}
	w.stats["tip-"+w.tip.mode]++
	w.logf("tip feed: %s (step %d)", w.tip.mode, step)
}

// deliverTips hands the adapter what the tip feed sends this step, and checks
// the invariants after each block.
func (w *world) deliverTips(step int) error {
	if w.tip == nil {
		return nil
	}
	var blocks []*types.Block
	switch w.tip.mode {
	case "honest", "garbage":
		blocks = []*types.Block{w.head}
	case "lie":
		blocks = []*types.Block{w.tip.fork}
	case "gap":
		if step%2 == 0 {
			blocks = []*types.Block{w.head}
		}
	case "duplicate":
		blocks = []*types.Block{w.head, w.head}
	}
	for _, b := range blocks {
		env, err := w.envelope(b)
		if err != nil {
			return err
		}
		d, err := w.adapter.Tip(w.ctx, env)
		w.logf("tip %d (%s): %s: %s (err %v)", b.NumberU64(), b.Hash(), d.Action, d.Reason, err)
		if err := w.check(); err != nil {
			return err
		}
	}
	return nil
}

func (w *world) envelope(b *types.Block) (*eth.ExecutionPayloadEnvelope, error) {
	return eth.BlockAsPayloadEnv(b, w.tree.RollupConfig())
}
