package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/reorg"
)

// adminAPI answers the part of op-node's admin_ namespace a light CL can
// serve, on the status RPC with --rpc.enable-admin.
type adminAPI struct{ n *node }

// PostUnsafePayload answers admin_postUnsafePayload: the payload, once its
// block hash matches its contents (op-node's first check), goes through the
// tip path as a block from a tip feed does (engineadapter.Adapter.Tip): it
// never moves safe or finalized, one at or below the safe head is ignored,
// and one the engine calls INVALID is never sent again. Unlike op-node, which
// queues it, the answer comes once the tip path is done with it: an error
// says why it was not taken.
func (api *adminAPI) PostUnsafePayload(ctx context.Context, env *eth.ExecutionPayloadEnvelope) error {
	if env == nil || env.ExecutionPayload == nil {
		return errors.New("no payload")
	}
	p := env.ExecutionPayload
	if actual, ok := env.CheckBlockHash(); !ok {
		return fmt.Errorf("payload has bad block hash: %s, actual block hash is: %s", p.BlockHash, actual)
	}
	d, err := api.n.adapter.Tip(ctx, env)
	if err != nil {
		return fmt.Errorf("payload %d (%s): %w", uint64(p.BlockNumber), p.BlockHash, err)
	}
	if d.Action == reorg.TipIgnore {
		return fmt.Errorf("payload %d (%s) not taken: %s", uint64(p.BlockNumber), p.BlockHash, d.Reason)
	}
	return nil
}
