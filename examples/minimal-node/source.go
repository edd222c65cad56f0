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

// buildSource dials the --l2.follow.source remotes and makes the node's source
// of them: the one remote for --source l2, a quorum over all of them for
// --source quorum (which starts once M members are checked, see dialQuorum).
// Without --rollup.config it also settles the rollup config from the
// rollup-node remotes. Errors name the flag to fix.
func (n *node) buildSource(ctx context.Context, reg prometheus.Registerer) error {
	metrics, err := remotel2.NewPrometheusMetrics(reg, "lightcl")
	if err != nil {
		return err
	}
	var members []safesource.SafeHeadSource
	if n.cfg.Source == sourceQuorum {
		members, err = n.dialQuorum(ctx, metrics)
	} else {
		members, err = n.dialRemote(ctx, metrics)
	}
	if err != nil {
		return err
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
	if err := n.checkRollup(); err != nil { // the L1's chain id comes from it
		return err
	}
	g := n.rollup.Genesis // final by definition: finalized is held there while L1's finality lags
	genesis := eth.L2BlockRef{Hash: g.L2.Hash, Number: g.L2.Number, Time: g.L2Time, L1Origin: g.L1}
	if n.hosted != nil {
		// the chains on this L1 share one verifier: one L1 read serves them
		// all; each chain's checks are logged and counted as its own
		v, err := n.hosted.host.verifier(ctx, n)
		if err != nil {
			return err
		}
		checks, err := l1verify.NewPrometheusMetrics(reg, "lightcl")
		if err != nil {
			return err
		}
		for i, m := range members {
			if members[i], err = v.WrapChain(m, l1verify.Chain{Genesis: genesis, Log: n.log, Metrics: checks}); err != nil {
				return &flagError{flag: flagL1, err: err}
			}
		}
		n.l1Verify = n.cfg.L1URL + " (shared)"
		n.verifier = v
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
	cfg.Genesis = genesis
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
	n.verifier = v
	return nil
}

// dialRemote makes the one --source l2 remote, waiting while it cannot be
// reached. Without a rollup config it must be a rollup node, and its config is
// read from it.
func (n *node) dialRemote(ctx context.Context, metrics remotel2.Metrics) ([]safesource.SafeHeadSource, error) {
	url := n.cfg.FollowURLs[0]
	src, err := n.dialMember(ctx, url, memberNames(n.cfg.FollowURLs)[0], metrics)
	if n.rollup == nil && errors.Is(err, remotel2.ErrNeedsRollupConfig) {
		return nil, badFlag(flagRollupConfig, "required: the remote %s is an L2 EL, and reading its blocks needs the chain's rollup.json", url)
	}
	if err != nil {
		return nil, err
	}
	n.members = []*lateMember{checkedMember(src)}
	if n.rollup == nil {
		err := n.await(ctx, flagFollowSource, url, func(ctx context.Context) error {
			var err error
			n.rollup, err = src.RemoteRollupConfig(ctx)
			return err
		})
		if ctx.Err() != nil {
			return nil, err
		}
		if err != nil {
			return nil, &flagError{flag: flagFollowSource, err: fmt.Errorf("reading the rollup config (or pass --%s): %w", flagRollupConfig, err)}
		}
		n.configFrom = "optimism_rollupConfig of " + url
	}
	return []safesource.SafeHeadSource{src}, nil
}

// dialQuorum dials every quorum member at once, each in a goroutine of its own
// that retries with backoff while the member cannot be reached (n.await), and
// returns the members, in flag order, once start-up may go on: every member
// has been tried (and checked, found unreachable, or failed), M of them are
// checked, and the rollup config is settled. Members not checked by then go on
// being dialed, and join the quorum when they pass their checks; the node's
// close stops them. A member that fails its checks before that is a start-up
// error naming --l2.follow.source; after, it is left out, with an error log.
//
// Without --rollup.config, the config is the one of the first rollup-node
// member in flag order that answered the first try (or of the first to answer
// later, if none did), and every other rollup-node member's must equal it field
// for field; the ELs are checked with it once it is settled.
func (n *node) dialQuorum(ctx context.Context, metrics remotel2.Metrics) ([]safesource.SafeHeadSource, error) {
	urls := n.cfg.FollowURLs
	threshold := n.cfg.Quorum
	if threshold == 0 {
		threshold = len(urls)/2 + 1 // quorum.Config's default, a strict majority
	}
	d := &quorumDialer{n: n, metrics: metrics, threshold: threshold, fixed: n.rollup, rollup: n.rollup,
		ref: -1, offers: map[int]*rollup.Config{}, tried: make([]bool, len(urls)), decided: make([]bool, len(urls)),
		changed: make(chan struct{})}
	d.ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, name := range memberNames(urls) {
		d.members = append(d.members, newLateMember(name))
	}
	n.closers = append(n.closers, d.close)
	for i := range d.members {
		d.wg.Add(1)
		go d.run(i)
	}
	if err := d.awaitStart(ctx); err != nil {
		return nil, err
	}
	n.members = d.members
	members := make([]safesource.SafeHeadSource, len(d.members))
	for i, m := range d.members {
		members[i] = m
	}
	if d.fixed != nil {
		return members, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n.rollup = d.rollup
	from := slices.Sorted(slices.Values(d.from))
	read := make([]string, len(from))
	for i, m := range from {
		read[i] = urls[m]
	}
	n.configFrom = "optimism_rollupConfig of " + strings.Join(read, ", ")
	return members, nil
}

// dialMember makes a remotel2 source of url, checked against n.rollup when
// set, and closes it with the node.
func (n *node) dialMember(ctx context.Context, url, name string, metrics remotel2.Metrics) (*remotel2.Source, error) {
	var src *remotel2.Source
	err := n.await(ctx, flagFollowSource, url, func(ctx context.Context) error {
		var err error
		src, err = remotel2.New(ctx, remotel2.Config{
			URL: url, Name: name, Kind: n.cfg.FollowKind, Timeout: n.cfg.FollowTimeout, RollupConfig: n.rollup,
			MaxResponseBytes: n.cfg.MaxResponse,
		}, n.log, metrics)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		if errors.Is(err, remotel2.ErrNeedsRollupConfig) {
			return nil, err // the caller knows whether a rollup node can supply it
		}
		return nil, &flagError{flag: flagFollowSource, err: err}
	}
	n.closers = append(n.closers, src.Close)
	return src, nil
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
		members[i] = m.Name() + "=" + m.kindName()
	}
	return []any{"source", n.quorum.Name(), "kind", sourceQuorum, "threshold", n.quorum.Threshold(),
		"members", strings.Join(members, ","), "l1_verify", n.l1Verify}
}
