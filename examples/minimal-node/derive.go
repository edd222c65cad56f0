package main

import (
	"context"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightcl/lightcl/safesource/l1derive"
	"github.com/lightcl/lightcl/safesource/rpclimit"
)

// deriveFromL1 makes the node's source derive from L1 (--source l1), or
// cross-checks the followed source against L1 (--l1.crosscheck). Both check
// the derived blocks against the engine, so the engine is dialed first.
func (n *node) deriveFromL1(ctx context.Context, reg prometheus.Registerer) error {
	if n.cfg.Source != sourceL1 && !n.cfg.L1CrossCheck {
		return nil
	}
	rpcClient, err := n.dialChain(ctx, flagL1, n.cfg.L1URL, n.rollup.L1ChainID)
	if err != nil {
		return err
	}
	l1, err := sources.NewL1Client(rpcClient, n.log, nil, sources.L1ClientDefaultConfig(n.rollup, false, sources.RPCKindStandard))
	if err != nil {
		return &flagError{flag: flagL1, err: err}
	}
	var blobs l1derive.L1BlobsFetcher
	if n.cfg.L1BeaconURL != "" {
		quiet := log.NewLogger(minLevel{n.log.Handler(), log.LevelError})
		blobs = sources.NewL1BeaconClient(sources.NewBeaconHTTPClient(client.NewBasicHTTPClient(n.cfg.L1BeaconURL, quiet,
			client.WithTransport(rpclimit.Transport(nil, n.cfg.MaxResponse)))),
			sources.L1BeaconClientConfig{})
	}
	metrics, err := l1derive.NewPrometheusMetrics(reg, "lightcl")
	if err != nil {
		return err
	}
	cfg := l1derive.DefaultConfig()
	cfg.StepBudget = n.cfg.FollowTimeout / 2
	cfg.Name = sourceL1
	if n.cfg.L1CrossCheck {
		cfg.Name, cfg.CheckOnly = "l1crosscheck", true
	}
	src, err := l1derive.New(cfg, n.rollup, l1, blobs, n.engine, n.log, metrics)
	if err != nil {
		return &flagError{flag: flagRollupConfig, err: err}
	}
	n.deriver = src
	if !n.cfg.L1CrossCheck {
		n.source = src
		return nil
	}
	n.source, err = l1derive.NewCrossCheck(n.source, src)
	if err != nil {
		return &flagError{flag: flagL1CrossCheck, err: err}
	}
	return nil
}
