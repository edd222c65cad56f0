package main

import (
	"context"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// statusAPI answers the parts of op-node's optimism_ namespace that monitoring
// tools read.
type statusAPI struct{ n *node }

// SyncStatus answers optimism_syncStatus in op-node's JSON shape: unsafe_l2,
// safe_l2 and finalized_l2 are the local engine's heads as the adapter set
// them (unsafe_l2 moves with the tip path); local_safe_l2 and
// pending_safe_l2 are the safe head (this node derives nothing of its own);
// current_l1 is the source's, where it tells (a quorum does not: its members'
// L1 views are not agreed on). head_l1, safe_l1 and finalized_l1 are the L1
// blocks the L1 verifier (--l1) last read in its own requests, no request is
// made for them; without --l1 verification they stay zero, never a guess. An
// unsafe_l2 the tip path set is read from the engine for its L1 origin.
func (api *statusAPI) SyncStatus(ctx context.Context) (*eth.SyncStatus, error) {
	st := api.n.adapter.Status()
	out := &eth.SyncStatus{
		UnsafeL2:      st.Unsafe,
		SafeL2:        st.Safe,
		LocalSafeL2:   st.Safe,
		PendingSafeL2: st.Safe,
		FinalizedL2:   st.Finalized,
		CurrentL1:     st.SourceHeads.CurrentL1,
	}
	if v := api.n.verifier; v != nil {
		l1 := v.Status()
		out.HeadL1, out.SafeL1, out.FinalizedL1 = l1.L1Head, l1.L1Safe, l1.L1Finalized
		out.CurrentL1Finalized = l1.L1Finalized // deprecated in op-node, which sets it so
	}
	if u := out.UnsafeL2; u.Number > 0 && u.L1Origin == (eth.BlockID{}) {
		// the tip path knows its head by the payload, which does not say its
		// L1 origin or sequence number: read the block from the engine. If it
		// cannot say (restarted, or the head moved on), the answer keeps the
		// zero origin rather than failing: the tools that poll this call
		// loop on it
		if ref, err := api.n.engine.L2BlockRefByHash(ctx, u.Hash); err == nil {
			out.UnsafeL2 = ref
		} else {
			api.n.log.Debug("unsafe_l2's L1 origin could not be read from the engine", "number", u.Number, "hash", u.Hash, "err", err)
		}
	}
	if out.SafeL1.Number < out.FinalizedL1.Number {
		out.SafeL1 = out.FinalizedL1 // finalized was read since: a finalized block is safe too
	}
	return out, nil
}

// RollupConfig answers optimism_rollupConfig with the config in use.
func (api *statusAPI) RollupConfig(ctx context.Context) (*rollup.Config, error) {
	return api.n.rollup, nil
}

// Version answers optimism_version.
func (api *statusAPI) Version(ctx context.Context) (string, error) {
	return version, nil
}

// lightclAPI answers the lightcl_ namespace: what optimism_syncStatus has no
// field for.
type lightclAPI struct{ n *node }

// Status answers lightcl_status: the adapter's state and, for a quorum, each
// member's health.
func (api *lightclAPI) Status(ctx context.Context) (*nodeStatus, error) {
	return api.n.status(), nil
}

// nodeStatus is lightcl_status's answer.
type nodeStatus struct {
	// Source is the source's name, Kind "el", "cl", "quorum" or "l1".
	Source string `json:"source"`
	Kind   string `json:"kind"`
	// Unsafe, Safe and Finalized are the engine's heads as the adapter set them.
	Unsafe    eth.BlockID `json:"unsafe"`
	Safe      eth.BlockID `json:"safe"`
	Finalized eth.BlockID `json:"finalized"`
	// LastAction and LastReason describe the adapter's last decision.
	LastAction string `json:"last_action"`
	LastReason string `json:"last_reason"`
	// Halted is set while the source contradicts the local finalized chain;
	// Syncing while the engine answers SYNCING.
	Halted  bool `json:"halted"`
	Syncing bool `json:"syncing"`
	// LastError is the last tick's error; empty after a clean tick.
	LastError string `json:"last_error"`
	Ticks     uint64 `json:"ticks"`
	// Quorum is set for --source quorum only.
	Quorum *quorumStatus `json:"quorum,omitempty"`
	// L1Derivation is set for --source l1 and --l1.crosscheck.
	L1Derivation *derivationStatus `json:"l1_derivation,omitempty"`
	// Tip is set while tip following is on.
	Tip *tipStatus `json:"tip,omitempty"`
	// Gossip is set while gossip is on: the host, its peers, and what became
	// of the blocks received (rejected by the validator's reason).
	Gossip *gossipStatus `json:"gossip,omitempty"`
}

// derivationStatus is what the L1 derivation (or the cross-check) has done.
type derivationStatus struct {
	// Safe and Finalized are the derived heads, CurrentL1 the L1 block
	// derived up to.
	Safe      eth.BlockID `json:"safe"`
	Finalized eth.BlockID `json:"finalized"`
	CurrentL1 eth.BlockID `json:"current_l1"`
	// Building is the derived block handed to the adapter to build; 0: none.
	Building uint64 `json:"building"`
	// Derived counts blocks derived and found in the engine; Resets counts
	// derivation starts (start-up and L1 reorgs).
	Derived uint64 `json:"derived"`
	Resets  int    `json:"resets"`
}

// quorumStatus is a quorum's threshold, last round and members.
type quorumStatus struct {
	Threshold int            `json:"threshold"`
	LastRound roundStatus    `json:"last_round"`
	Members   []memberStatus `json:"members"`
}

// roundStatus is the outcome of the quorum's last round.
type roundStatus struct {
	// Supporters held the agreed safe head; Disagreed held another block at
	// its height; Missing failed or had not answered when the round decided.
	Supporters []string `json:"supporters"`
	Disagreed  []string `json:"disagreed"`
	Missing    []string `json:"missing"`
	// NoQuorum names the labels (safe, finalized, local-safe) no head had M
	// supporters for.
	NoQuorum []string `json:"no_quorum"`
	Error    string   `json:"error"`
}

// memberStatus is one quorum member's health (quorum.MemberStatus).
type memberStatus struct {
	Name string `json:"name"`
	// Kind is "el", "cl", or "unknown" until the member is checked.
	Kind string `json:"kind"`
	// State is "checked" (it takes part in the rounds), "unreachable" (it is
	// dialed again with backoff), "waiting for the rollup config" (an L2 EL
	// while no rollup node has given it), "wrong chain" or "failed" (it failed
	// its checks and is left out; last_error says why).
	State string `json:"state"`
	// LastSafe is the safe head of its last answer, at LastAnswerAt (null
	// before the first).
	LastSafe     eth.BlockID `json:"last_safe"`
	LastAnswerAt *time.Time  `json:"last_answer_at"`
	// LastError is the error of the last round it failed; empty once it
	// answers again.
	LastError         string `json:"last_error"`
	ConsecutiveErrors int    `json:"consecutive_errors"`
	// Unanswered counts the rounds in a row that decided without its answer.
	Unanswered int `json:"unanswered"`
	// Lag is how many blocks its safe head was behind the agreed one.
	Lag uint64 `json:"lag"`
	// Disagreements counts the rounds its chain held another block at the
	// agreed safe height.
	Disagreements int `json:"disagreements"`
}

func (n *node) status() *nodeStatus {
	st := n.adapter.Status()
	out := &nodeStatus{
		Source: st.Source, Kind: sourceQuorum,
		Unsafe: st.Unsafe.ID(), Safe: st.Safe.ID(), Finalized: st.Finalized.ID(),
		LastAction: st.LastAction, LastReason: st.LastReason, Halted: st.Halted, Syncing: st.Syncing,
		LastError: errString(st.LastError), Ticks: st.Ticks, Tip: n.tipStatus(), Gossip: n.gossipStatus(),
	}
	if n.deriver != nil {
		d := n.deriver.Status()
		out.L1Derivation = &derivationStatus{
			Safe: d.Heads.Safe.ID(), Finalized: d.Heads.Finalized.ID(), CurrentL1: d.Heads.CurrentL1.ID(),
			Building: d.Building, Derived: d.Derived, Resets: d.Resets,
		}
	}
	switch {
	case n.cfg.Source == sourceL1:
		out.Kind = sourceL1
		return out
	case n.quorum == nil:
		out.Kind = n.members[0].Kind().String()
		return out
	}
	r := n.quorum.LastRound()
	q := &quorumStatus{
		Threshold: n.quorum.Threshold(),
		LastRound: roundStatus{
			Supporters: nonNil(r.Supporters), Disagreed: nonNil(r.Disagreed), Missing: nonNil(r.Missing),
			NoQuorum: nonNil(r.NoQuorum), Error: errString(r.Err),
		},
	}
	for i, m := range n.quorum.Status() {
		ms := memberStatus{
			Name: m.Name, Kind: n.members[i].kindName(), State: n.members[i].State(), LastSafe: m.LastHeads.Safe.ID(),
			LastError: errString(m.LastError), ConsecutiveErrors: m.ConsecutiveErrors, Unanswered: m.Unanswered,
			Lag: m.Lag, Disagreements: m.Disagreements,
		}
		if !m.LastAnswerAt.IsZero() {
			at := m.LastAnswerAt.UTC()
			ms.LastAnswerAt = &at
		}
		q.Members = append(q.Members, ms)
	}
	out.Quorum = q
	return out
}

// errString is err's text for the status RPC, cut to 300 bytes: a remote's
// error may carry what it answered.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return cut(err.Error())
}

// nonNil makes an empty list [] in JSON rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
