package reorg

import (
	"errors"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/safesource"
)

func TestDecideBuild(t *testing.T) {
	c := newChain(0, 20)
	other := c.fork(6, 1, 4)
	fc := func(head, safe, fin eth.L2BlockRef) eth.ForkchoiceState {
		return eth.ForkchoiceState{HeadBlockHash: head.Hash, SafeBlockHash: safe.Hash, FinalizedBlockHash: fin.Hash}
	}
	attrs := func(parent eth.L2BlockRef) *eth.PayloadAttributes {
		return &eth.PayloadAttributes{Timestamp: eth.Uint64Quantity(parent.Time + 2)}
	}
	req := func(parent eth.L2BlockRef) safesource.BuildRequest {
		return safesource.BuildRequest{Parent: parent, Attributes: attrs(parent)}
	}
	found := func(ref eth.L2BlockRef) Lookup { return Lookup{Ref: ref, Found: true} }
	local := func(unsafe, safe, fin uint64) Local { return local(c, fin, safe, unsafe) }
	errRead := errors.New("connection refused")

	for _, tt := range []struct {
		name      string
		in        BuildInput
		action    Action
		fc        eth.ForkchoiceState // checked for Build
		depth     uint64
		errIs     error
		sourceBad bool
	}{
		{name: "engine at the parent, nothing above: build on it",
			in:     BuildInput{Local: local(10, 10, 4), Request: req(c[10]), ELAtParent: found(c[10])},
			action: Build, fc: fc(c[10], c[10], c[4])},
		{name: "engine holds other blocks above the parent: abandon them and build",
			in:     BuildInput{Local: local(14, 10, 4), Request: req(c[10]), ELAtParent: found(c[10])},
			action: Build, fc: fc(c[10], c[10], c[4]), depth: 4},
		{name: "safe label above the parent follows it down",
			in:     BuildInput{Local: local(14, 12, 4), Request: req(c[8]), ELAtParent: found(c[8])},
			action: Build, fc: fc(c[8], c[8], c[4]), depth: 6},
		{name: "parent at local finalized: build",
			in:     BuildInput{Local: local(10, 8, 4), Request: req(c[4]), ELAtParent: found(c[4])},
			action: Build, fc: fc(c[4], c[4], c[4]), depth: 6},
		{name: "engine without a finalized head: build on genesis",
			in:     BuildInput{Local: Local{Unsafe: c[0], Safe: c[0]}, Request: req(c[0]), ELAtParent: found(c[0])},
			action: Build, fc: eth.ForkchoiceState{HeadBlockHash: c[0].Hash, SafeBlockHash: c[0].Hash}},
		{name: "parent below local finalized: halt",
			in:     BuildInput{Local: local(10, 8, 6), Request: req(c[5]), ELAtParent: found(c[5])},
			action: Halt},
		{name: "parent at the local finalized height but another block: halt",
			in:     BuildInput{Local: local(10, 8, 7), Request: req(other[7]), ELAtParent: found(other[7])},
			action: Halt},
		{name: "engine holds another block at the parent height: skip, not the source's fault",
			in:     BuildInput{Local: local(10, 8, 4), Request: req(other[7]), ELAtParent: found(c[7])},
			action: Skip},
		{name: "engine has no block at the parent height: skip",
			in:     BuildInput{Local: local(6, 6, 4), Request: req(c[7]), ELAtParent: Lookup{}},
			action: Skip},
		{name: "engine read failed: skip",
			in:     BuildInput{Local: local(10, 8, 4), Request: req(c[9]), ELAtParent: Lookup{Err: errRead}},
			action: Skip, errIs: errRead},
		{name: "no attributes: skip, the source's fault",
			in:     BuildInput{Local: local(10, 8, 4), Request: safesource.BuildRequest{Parent: c[9]}, ELAtParent: found(c[9])},
			action: Skip, errIs: safesource.ErrInconsistentHeads, sourceBad: true},
		{name: "attributes not after the parent in time: skip, the source's fault",
			in: BuildInput{Local: local(10, 8, 4), ELAtParent: found(c[9]),
				Request: safesource.BuildRequest{Parent: c[9], Attributes: &eth.PayloadAttributes{Timestamp: eth.Uint64Quantity(c[9].Time)}}},
			action: Skip, errIs: safesource.ErrInconsistentHeads, sourceBad: true},
		{name: "parent the engine called INVALID: skip",
			in: BuildInput{Local: local(10, 8, 4), Request: req(c[9]), ELAtParent: found(c[9]),
				Rejected: func(h common.Hash) bool { return h == c[9].Hash }},
			action: Skip, errIs: ErrRejected, sourceBad: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := DecideBuild(tt.in)
			require.Equal(t, tt.action, d.Action, d.Reason)
			require.NotEmpty(t, d.Reason)
			if tt.errIs != nil {
				require.ErrorIs(t, d.Err, tt.errIs)
			}
			if d.Action == Skip {
				require.Equal(t, tt.sourceBad, d.SourceFault)
			}
			if d.Action != Build {
				return
			}
			require.Equal(t, tt.fc, d.Forkchoice)
			require.Equal(t, tt.in.Request.Parent, d.BuildParent)
			require.Equal(t, tt.in.Request.Parent, d.Next.Unsafe)
			require.Equal(t, tt.depth, d.Depth)
			// the invariants: finalized ≤ safe ≤ head, finalized kept
			require.LessOrEqual(t, d.Next.Finalized.Number, d.Next.Safe.Number)
			require.LessOrEqual(t, d.Next.Safe.Number, d.Next.Unsafe.Number)
			require.Equal(t, tt.in.Local.Finalized, d.Next.Finalized)
		})
	}
}
