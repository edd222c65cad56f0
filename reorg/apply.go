package reorg

import (
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
)

// Outcome is the local view after the engine answered a decision's forkchoice
// update.
type Outcome struct {
	Local Local
	// Syncing: the engine accepted the target but does not have it yet; the
	// labels stay where they were and the next tick sends the target again.
	Syncing bool
	// Rejected is the head the engine called INVALID; it must never be sent
	// again. Zero otherwise.
	Rejected common.Hash
	Reason   string
}

// Apply returns the local view after the engine answered d.Forkchoice with
// status. Rows: "FCU answers SYNCING" (keep the target, retry next tick) and
// "FCU/newPayload answers INVALID" (do not retry that target).
func Apply(prev Local, d Decision, status eth.ExecutePayloadStatus) Outcome {
	head := d.Forkchoice.HeadBlockHash
	switch status {
	case eth.ExecutionValid:
		return Outcome{Local: d.Next, Reason: fmt.Sprintf("engine accepted head %s", head)}
	case eth.ExecutionSyncing, eth.ExecutionAccepted:
		return Outcome{Local: prev, Syncing: true, Reason: fmt.Sprintf("engine syncing to head %s; retrying next tick", head)}
	case eth.ExecutionInvalid, eth.ExecutionInvalidBlockHash:
		return Outcome{Local: prev, Rejected: head, Reason: fmt.Sprintf("engine declared head %s %s; never sending it again", head, status)}
	default:
		return Outcome{Local: prev, Reason: fmt.Sprintf("engine answered unknown status %q for head %s; keeping state", status, head)}
	}
}
