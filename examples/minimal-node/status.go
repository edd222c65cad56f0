package main

import (
	"context"
	"net/http"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/rpc"
)

// statusAPI answers the parts of op-node's optimism_ namespace that monitoring
// tools read.
type statusAPI struct{ n *node }

// SyncStatus answers optimism_syncStatus in op-node's JSON shape: unsafe_l2,
// safe_l2 and finalized_l2 are the local engine's heads as the adapter set
// them; local_safe_l2 is the local safe head (this node derives nothing of its
// own); current_l1 is the source's, where it tells.
func (api *statusAPI) SyncStatus(ctx context.Context) (*eth.SyncStatus, error) {
	st := api.n.adapter.Status()
	return &eth.SyncStatus{
		UnsafeL2:    st.Unsafe,
		SafeL2:      st.Safe,
		LocalSafeL2: st.Safe,
		FinalizedL2: st.Finalized,
		CurrentL1:   st.SourceHeads.CurrentL1,
	}, nil
}

// RollupConfig answers optimism_rollupConfig with the config in use.
func (api *statusAPI) RollupConfig(ctx context.Context) (*rollup.Config, error) {
	return api.n.rollup, nil
}

// Version answers optimism_version.
func (api *statusAPI) Version(ctx context.Context) (string, error) {
	return "lightcl-minimal-node", nil
}

func newStatusHandler(n *node) http.Handler {
	srv := rpc.NewServer()
	if err := srv.RegisterName("optimism", &statusAPI{n: n}); err != nil {
		panic(err) // a programming error: statusAPI's method set is fixed
	}
	return srv
}
