package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/l1verify"
	"github.com/lightcl/lightcl/safesource/quorum"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

// quorumName names the quorum source in logs, metrics and the status RPC.
const quorumName = "quorum"

// buildSource dials every --l2.follow.source remote and makes the node's
// source of them: the one remote for --source l2, a quorum over all of them for
// --source quorum. Without --rollup.config it also settles the rollup config
// from the rollup-node remotes. Errors name the flag to fix.
func (n *node) buildSource(ctx context.Context, reg prometheus.Registerer) error {
	metrics, err := remotel2.NewPrometheusMetrics(reg, "lightcl")
	if err != nil {
		return err
	}
	if err := n.dialMembers(ctx, metrics); err != nil {
		return err
	}
	members := make([]safesource.SafeHeadSource, len(n.members))
	for i, m := range n.members {
		members[i] = m
	}
	if err := n.verifyAgainstL1(ctx, reg, members); err != nil {
		return err
	}
	if n.cfg.Source != sourceQuorum {
		n.source = members[0]
		return nil
	}
	qMetrics, err := quorum.NewPrometheusMetrics(reg, "lightcl")
	if err != nil {
		return err
	}
	n.quorum, err = quorum.New(quorum.Config{
		Name: quorumName, Threshold: n.cfg.Quorum, MemberTimeout: n.cfg.FollowTimeout,
	}, members, n.log, qMetrics)
	if err != nil {
		return &flagError{flag: flagFollowQuorum, err: err} // checkFollow has ruled this out
	}
	n.source = n.quorum
	return nil
}

// verifyAgainstL1 wraps every member (each quorum member on its own) in an L1
// verifier when --l1 is given: heads whose L1 origins are not canonical on L1,
// or that claim finality ahead of L1's, are dropped. The members share one
// verifier, so one L1 read per tick serves them all.
func (n *node) verifyAgainstL1(ctx context.Context, reg prometheus.Registerer, members []safesource.SafeHeadSource) error {
	switch {
	case n.cfg.L1URL == "":
		n.l1Verify = "off (no --l1)"
		return nil
	case !n.cfg.L1Verify:
		n.l1Verify = "off (--l1.verify=false)"
		n.log.Warn("L1 verification is off: the source's heads are trusted blindly", "l1", n.cfg.L1URL)
		return nil
	}
	rpcClient, err := n.dialChain(ctx, flagL1, n.cfg.L1URL, n.rollup.L1ChainID)
	if err != nil {
		return err
	}
	// one batched request per tick reads L1's head, and its finalized block
	// when a finalized claim may need it
	l1 := l1verify.NewRPCSource(rpcClient)
	vMetrics, err := l1verify.NewPrometheusMetrics(reg, "lightcl")
	if err != nil {
		return err
	}
	cfg := l1verify.DefaultConfig()
	cfg.Timeout = n.cfg.FollowTimeout
	g := n.rollup.Genesis // final by definition: finalized is held there while L1's finality lags
	cfg.Genesis = eth.L2BlockRef{Hash: g.L2.Hash, Number: g.L2.Number, Time: g.L2Time, L1Origin: g.L1}
	v, err := l1verify.New(l1, cfg, n.log, vMetrics)
	if err != nil {
		return &flagError{flag: flagL1, err: err}
	}
	for i, m := range members {
		if members[i], err = v.Wrap(m); err != nil {
			return &flagError{flag: flagL1, err: err}
		}
	}
	n.l1Verify = n.cfg.L1URL
	return nil
}

// dialMembers makes one remotel2 source per URL, in flag order. With a rollup
// config every member is checked against it. Without one, the rollup nodes are
// dialed first, their configs read and compared, and the ELs then dialed with
// that config.
func (n *node) dialMembers(ctx context.Context, metrics remotel2.Metrics) error {
	urls := n.cfg.FollowURLs
	names := memberNames(urls)
	n.members = make([]*remotel2.Source, len(urls))
	var waiting []int // ELs that wait for the rollup nodes' config
	for i := range urls {
		err := n.dialMember(ctx, i, names[i], n.cfg.FollowKind, metrics)
		if n.rollup == nil && errors.Is(err, remotel2.ErrNeedsRollupConfig) {
			waiting = append(waiting, i)
			continue
		}
		if err != nil {
			return err
		}
	}
	if n.rollup == nil {
		if err := n.rollupConfigFromMembers(ctx, waiting); err != nil {
			return err
		}
		for _, i := range waiting {
			if err := n.dialMember(ctx, i, names[i], remotel2.KindEL, metrics); err != nil {
				return err
			}
		}
	}
	return nil
}

func (n *node) dialMember(ctx context.Context, i int, name string, kind remotel2.Kind, metrics remotel2.Metrics) error {
	var src *remotel2.Source
	err := n.await(ctx, flagFollowSource, n.cfg.FollowURLs[i], func(ctx context.Context) error {
		var err error
		src, err = remotel2.New(ctx, remotel2.Config{
			URL: n.cfg.FollowURLs[i], Name: name, Kind: kind, Timeout: n.cfg.FollowTimeout, RollupConfig: n.rollup,
			MaxResponseBytes: n.cfg.MaxResponse,
		}, n.log, metrics)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		if errors.Is(err, remotel2.ErrNeedsRollupConfig) {
			return err // the caller knows whether a rollup node can supply it
		}
		return &flagError{flag: flagFollowSource, err: err}
	}
	n.members[i] = src
	n.closers = append(n.closers, src.Close)
	return nil
}

// rollupConfigFromMembers reads optimism_rollupConfig from every member dialed
// so far (the rollup nodes; waiting lists the ELs not dialed yet) and requires
// them all to describe one chain.
func (n *node) rollupConfigFromMembers(ctx context.Context, waiting []int) error {
	if len(waiting) == len(n.members) {
		if len(n.members) == 1 {
			return badFlag(flagRollupConfig, "required: the remote %s is an L2 EL, and reading its blocks needs the chain's rollup.json",
				n.cfg.FollowURLs[0])
		}
		return badFlag(flagRollupConfig, "required: none of the %d --%s remotes is a rollup node to read it from, "+
			"and reading an L2 EL's blocks needs the chain's rollup.json", len(n.members), flagFollowSource)
	}
	var first *remotel2.Source
	var from []string
	for i, m := range n.members {
		if m == nil {
			continue
		}
		var cfg *rollup.Config
		err := n.await(ctx, flagFollowSource, n.cfg.FollowURLs[i], func(ctx context.Context) error {
			var err error
			cfg, err = m.RemoteRollupConfig(ctx)
			return err
		})
		if ctx.Err() != nil {
			return err
		}
		if err != nil {
			return &flagError{flag: flagFollowSource, err: fmt.Errorf("reading the rollup config (or pass --%s): %w", flagRollupConfig, err)}
		}
		from = append(from, n.cfg.FollowURLs[i])
		if first == nil {
			first, n.rollup = m, cfg
			continue
		}
		if err := remotel2.SameChain(m.Name(), n.rollup, cfg); err != nil {
			return badFlag(flagFollowSource, "the rollup nodes %s and %s serve rollup configs of different chains: %v",
				first.Name(), m.Name(), err)
		}
		if field := firstDifference(n.rollup, cfg); field != "" {
			return badFlag(flagFollowSource, "the rollup nodes %s and %s serve rollup configs that differ in %s: "+
				"a quorum needs one chain's config (pass --%s to choose it)", first.Name(), m.Name(), field, flagRollupConfig)
		}
	}
	n.configFrom = "optimism_rollupConfig of " + strings.Join(from, ", ")
	return nil
}

// firstDifference names the first top-level field of op-node's rollup.json in
// which a and b differ ("" when they agree), e.g. "granite_time".
func firstDifference(a, b *rollup.Config) string {
	var x, y map[string]json.RawMessage
	xj, errX := json.Marshal(a)
	yj, errY := json.Marshal(b)
	if errX != nil || errY != nil || json.Unmarshal(xj, &x) != nil || json.Unmarshal(yj, &y) != nil {
		return "their JSON (one does not encode)"
	}
	keys := slices.Sorted(maps.Keys(x))
	for k := range y {
		if _, ok := x[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if !bytes.Equal(x[k], y[k]) {
			return k
		}
	}
	return ""
}

// memberNames names each remote by its URL's host, as remotel2 does by
// default; remotes that share a host get their 1-based position in the flag
// list appended ("host#2"), so that every name, and so every metric label and
// status entry, is one remote's.
func memberNames(urls []string) []string {
	hosts := make([]string, len(urls))
	count := map[string]int{}
	for i, s := range urls {
		hosts[i] = s
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			hosts[i] = u.Host
		}
		count[hosts[i]]++
	}
	names := make([]string, len(urls))
	for i, h := range hosts {
		names[i] = h
		if count[h] > 1 {
			names[i] = fmt.Sprintf("%s#%d", h, i+1)
		}
	}
	return names
}

// sourceDescription is the source part of the start-up line.
func (n *node) sourceDescription() []any {
	if n.cfg.Source == sourceL1 {
		return []any{"source", n.source.Name(), "kind", sourceL1, "l1", n.cfg.L1URL, "l1_beacon", n.cfg.L1BeaconURL}
	}
	desc := n.followDescription()
	if n.cfg.L1CrossCheck {
		desc = append(desc, "l1_crosscheck", n.cfg.L1URL)
	}
	return desc
}

// followDescription describes the remote or the quorum followed.
func (n *node) followDescription() []any {
	if n.quorum == nil {
		return []any{"source", n.source.Name(), "kind", n.members[0].Kind(), "l1_verify", n.l1Verify}
	}
	members := make([]string, len(n.members))
	for i, m := range n.members {
		members[i] = m.Name() + "=" + m.Kind().String()
	}
	return []any{"source", n.quorum.Name(), "kind", sourceQuorum, "threshold", n.quorum.Threshold(),
		"members", strings.Join(members, ","), "l1_verify", n.l1Verify}
}
