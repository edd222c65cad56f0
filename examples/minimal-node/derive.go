package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
		quiet := quietLogger(n.log, log.LevelError)
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
		if cfg.ConfirmedPath, err = n.crossCheckState(); err != nil {
			return err
		}
		n.startLine = append(n.startLine, "l1_crosscheck_state", cfg.ConfirmedPath)
	}
	src, err := l1derive.New(cfg, n.rollup, l1, blobs, n.engine, n.log, metrics)
	if errors.Is(err, l1derive.ErrConfirmedFile) {
		return &flagError{flag: flagL1CrossState, err: err}
	}
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

// crossCheckState returns the file that keeps the cross-check's confirmed
// finalized block: --l1.crosscheck.state, or one named after the chain in the
// user's cache directory. Losing it costs a re-derivation from genesis, never
// a check: a cache is the right place.
func (n *node) crossCheckState() (string, error) {
	if n.cfg.L1CrossState != "" {
		return n.cfg.L1CrossState, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", badFlag(flagL1CrossState, "no default without a user cache directory (%v): give a path", err)
	}
	name := fmt.Sprintf("l1crosscheck-%s-%s.json", n.rollup.L2ChainID, n.rollup.Genesis.L2.Hash.Hex()[2:10])
	return filepath.Join(dir, "lightcl", name), nil
}
