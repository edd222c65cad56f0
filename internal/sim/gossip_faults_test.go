package sim_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// gossipModes are the gossip faults, drawn like the tip feed's modes:
//   - "honest": each new honest block once, on time;
//   - "delay": each new block at even odds 1 to 3 steps late, after newer
//     ones; a step late stands for gossipStepSeconds on the way, so 3 steps
//     is past the validator's threshold ("payload is too old");
//   - "duplicate": each new block twice: the copy has the same bytes, the
//     same message compressed another way, or the same block re-signed;
//   - "gap": each new block at even odds never sent;
//   - "wrong-sig": the honest blocks, and a forged child of the honest head
//     signed by another key, which the validator must reject and the engine
//     never see.
var gossipModes = []string{"honest", "honest", "delay", "duplicate", "gap", "wrong-sig"}

// gossipStepSeconds is how long a message a step late was on the way.
const gossipStepSeconds = 25

// forgedTag marks the forger's blocks in the tree: no other tag reaches it.
const forgedTag = 1 << 40

// gossipFaults is what the gossip faults keep between steps.
type gossipFaults struct {
	mode string
	// rng makes the per-message draws; each fault step reseeds it from one
	// draw of the schedule's rng, so the schedule's draws per step are fixed.
	rng       *rand.Rand
	published map[common.Hash]bool // honest blocks the sequencer sent (or lost)
	pending   []gossipMsg          // late messages, in the order they were sent
	forged    map[common.Hash]bool // blocks only ever sent with a wrong signature
	callsSeen int                  // engine calls checked for forged blocks
}

func newGossipFaults() gossipFaults {
	return gossipFaults{mode: "honest", rng: rand.New(rand.NewPCG(0, 0)), published: map[common.Hash]bool{}, forged: map[common.Hash]bool{}}
}

// gossipMsg is one message on the wire.
type gossipMsg struct {
	block   *types.Block
	data    []byte
	kind    string // "block", a copy ("identical", "recompressed", "re-signed"), or "forged"
	due     int    // the step it arrives at
	transit uint64 // seconds on the way
}

// applyGossipFault changes the gossip mode (three draws per step, made
// whether or not the schedule gossips, so that a seed's other faults do not
// depend on it).
func (w *world) applyGossipFault(step int) {
	r, pick, salt := w.rng.IntN(3), w.rng.IntN(len(gossipModes)), w.rng.Uint64()
	if w.gossip == nil {
		return
	}
	fs := &w.gossip.faults
	fs.rng = rand.New(rand.NewPCG(salt, uint64(step)))
	if r != 0 {
		return
	}
	fs.mode = gossipModes[pick]
	w.stats["gossip-mode-"+fs.mode]++
	w.logf("gossip: %s (step %d)", fs.mode, step)
}

// sendGossip returns the messages that arrive this step: the sequencer's new
// honest blocks under the mode's fault, then the late ones that come due.
func (w *world) sendGossip(step int) ([]gossipMsg, error) {
	g := w.gossip
	fs := &g.faults
	var out []gossipMsg
	for _, b := range w.tree.Chain(w.head.Hash()) {
		if fs.published[b.Hash()] {
			continue
		}
		fs.published[b.Hash()] = true
		data, err := g.signBlock(b, sequencerKey)
		if err != nil {
			return nil, err
		}
		m := gossipMsg{block: b, data: data, kind: "block", due: step, transit: fs.rng.Uint64N(3)}
		switch fs.mode {
		case "gap":
			if fs.rng.IntN(2) == 0 {
				w.stats["gossip-gap-lost"]++
				continue
			}
		case "delay":
			if k := 1 + fs.rng.IntN(3); fs.rng.IntN(2) == 0 {
				m.due += k
				m.transit += uint64(k) * gossipStepSeconds
				fs.pending = append(fs.pending, m)
				w.stats["gossip-delayed"]++
				continue
			}
		case "duplicate":
			out = append(out, m)
			if m, err = duplicate(m, fs.rng.IntN(3)); err != nil {
				return nil, err
			}
			w.stats["gossip-copy-"+m.kind]++
		}
		out = append(out, m)
	}
	if fs.mode == "wrong-sig" {
		b := w.tree.Child(w.head.Hash(), forgedTag|fs.rng.Uint64N(1<<20))
		data, err := g.signBlock(b, forgerKey)
		if err != nil {
			return nil, err
		}
		fs.forged[b.Hash()] = true
		w.stats["gossip-wrong-sig-sent"]++
		out = append(out, gossipMsg{block: b, data: data, kind: "forged", due: step, transit: fs.rng.Uint64N(3)})
	}
	rest := fs.pending[:0]
	for _, m := range fs.pending {
		if m.due <= step {
			out = append(out, m)
		} else {
			rest = append(rest, m)
		}
	}
	fs.pending = rest
	return out, nil
}

// duplicate returns a second message of m's block.
func duplicate(m gossipMsg, variant int) (gossipMsg, error) {
	var err error
	switch variant {
	case 0:
		m.kind = "identical"
	case 1:
		m.kind = "recompressed"
		m.data, err = recompress(m.data)
	default:
		m.kind = "re-signed"
		m.data, err = resign(m.data)
	}
	return m, err
}

// deliverGossip passes this step's messages through the validator and hands
// the adapter what it accepted, checking the invariants after each block.
func (w *world) deliverGossip(step int) error {
	if w.gossip == nil {
		return nil
	}
	msgs, err := w.sendGossip(step)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		res, reason, env := w.gossip.receive(m.block, m.data, m.transit)
		w.logf("gossip %s %d (%s), %ds on the way: %s %s", m.kind, m.block.NumberU64(), m.block.Hash(), m.transit, resultName(res), reason)
		if m.kind == "forged" && (res != pubsub.ValidationReject || reason != "invalid block signature") {
			return fmt.Errorf("forged block %d (%s) signed by another key: validator said %s %q, want REJECT for its signature",
				m.block.NumberU64(), m.block.Hash(), resultName(res), reason)
		}
		if env == nil {
			continue
		}
		d, err := w.adapter.Tip(w.ctx, env)
		w.logf("tip %d (%s): %s: %s (err %v)", m.block.NumberU64(), m.block.Hash(), d.Action, d.Reason, err)
		w.stats["gossip-then-"+d.Action.String()]++
		if err := w.check(); err != nil {
			return err
		}
	}
	return nil
}

func resultName(r pubsub.ValidationResult) string {
	switch r {
	case pubsub.ValidationAccept:
		return "ACCEPT"
	case pubsub.ValidationIgnore:
		return "IGNORE"
	}
	return "REJECT"
}

// checkForged checks that the engine never received a forged block: not in
// a newPayload since the last check, and not as a forkchoice head.
func (w *world) checkForged() error {
	if w.gossip == nil {
		return nil
	}
	fs := &w.gossip.faults
	calls := w.el.Calls()
	for _, c := range calls[fs.callsSeen:] {
		if !strings.HasPrefix(c.Method, "engine_newPayload") {
			continue
		}
		var params []json.RawMessage
		var p struct {
			BlockHash common.Hash `json:"blockHash"`
		}
		if err := json.Unmarshal(c.Params, &params); err != nil || len(params) == 0 {
			return fmt.Errorf("%s: params %s: %v", c.Method, c.Params, err)
		}
		if err := json.Unmarshal(params[0], &p); err != nil {
			return fmt.Errorf("%s: payload %s: %w", c.Method, params[0], err)
		}
		w.stats["gossip-newpayload-checked"]++
		if fs.forged[p.BlockHash] {
			return fmt.Errorf("the engine received newPayload for block %s, which was only ever gossiped with a wrong signature", p.BlockHash)
		}
	}
	fs.callsSeen = len(calls)
	return nil
}
