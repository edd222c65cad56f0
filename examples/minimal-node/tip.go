package main

import (
	"context"
	"strings"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/safesource/remotel2"
	"github.com/lightcl/lightcl/safesource/tipfeed"
)

// tipFeed sets up what keeps the engine at the chain's tip: a feed of unsafe
// blocks from each --l2.unsafe.source, or from the --l2.follow.source remote
// when it is one L2 EL. It returns nil, and says why in n.tipDesc, when tip
// following is off. A feed that cannot be reached yet is waited for.
func (n *node) tipFeed(ctx context.Context, reg prometheus.Registerer) (engineadapter.TipFeed, error) {
	g, err := n.gossipFeed(ctx, reg)
	if err != nil {
		return nil, err
	}
	urls := n.cfg.UnsafeURLs
	switch {
	case n.cfg.UnsafeDisable:
		n.tipDesc = "off (--" + flagUnsafeDisable + ")"
		return nil, nil
	case len(urls) > 0:
	case g != nil && len(n.cfg.P2P.Static) > 0: // gossip replaces the default remote feed; --l2.unsafe.source adds one
		n.tipDesc = "gossip"
		return g, nil
	case n.cfg.Source == sourceL2 && n.members[0].Kind() == remotel2.KindEL:
		urls = n.cfg.FollowURLs
	case g != nil: // no static peers: only peers that dial in bring blocks
		n.tipDesc = "gossip"
		return g, nil
	default:
		n.tipDesc = "off: the source serves no payloads; give --" + flagUnsafeSource + " an L2 EL's URL, or --" + flagP2PStatic +
			" gossip peers, to follow the tip"
		n.tipOffWarning = true // logged after the start-up line: a failed start is one line
		return nil, nil
	}
	metrics, err := tipfeed.NewPrometheusMetrics(reg, "lightcl")
	if err != nil {
		return nil, err
	}
	for _, url := range urls {
		cfg := tipfeed.DefaultConfig()
		cfg.URL, cfg.RollupConfig, cfg.Timeout = url, n.rollup, n.cfg.FollowTimeout
		cfg.PollInterval = n.cfg.PollInterval // over HTTP, and while a subscription is down
		cfg.MaxResponseBytes = n.cfg.MaxResponse
		if len(urls) > 1 || g != nil {
			cfg.Name = "tip:" + url
		}
		var feed *tipfeed.Remote
		err := n.await(ctx, flagUnsafeSource, url, func(ctx context.Context) error {
			var err error
			feed, err = tipfeed.New(ctx, cfg, n.log, metrics)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			return nil, &flagError{flag: flagUnsafeSource, err: err}
		}
		n.closers = append(n.closers, feed.Close)
		n.tipFeeds = append(n.tipFeeds, feed)
	}
	n.tipDesc = strings.Join(urls, ",")
	if len(n.tipFeeds) == 1 && g == nil {
		return n.tipFeeds[0], nil
	}
	feeds := make([]tipfeed.Feed, 0, len(n.tipFeeds)+1)
	if g != nil {
		feeds = append(feeds, g) // gossip first: it usually has a block before a remote EL is asked
		n.tipDesc = "gossip," + n.tipDesc
	}
	for _, f := range n.tipFeeds {
		feeds = append(feeds, f)
	}
	return tipfeed.Merge("tip", feeds...), nil
}

// tipStatus is lightcl_status's tip part: what the tip path did, and how
// each feed learns of new heads.
type tipStatus struct {
	// Head is the last tip block the engine took as its head.
	Head eth.BlockID `json:"head"`
	// Inserted counts tip blocks inserted; Ignored those dropped (below safe,
	// not descending from it, held already, far ahead in backfill mode, failing).
	Inserted uint64 `json:"inserted"`
	Ignored  uint64 `json:"ignored"`
	// Failing is set when the engine called a tip block INVALID or a feed
	// handed out a wrong block, until a tip block goes through again.
	Failing    bool         `json:"failing"`
	LastAction string       `json:"last_action"`
	LastReason string       `json:"last_reason"`
	LastError  string       `json:"last_error"`
	Feeds      []feedStatus `json:"feeds"`
}

// feedStatus is one tip feed's state (tipfeed.Status).
type feedStatus struct {
	URL string `json:"url"`
	// Mode is subscription (new heads pushed), polling, or down; "gossip" for
	// the p2p feed, whose Delivered counts the blocks it accepted.
	Mode      string      `json:"mode"`
	Head      eth.BlockID `json:"head"`
	Delivered uint64      `json:"delivered"`
	Errors    uint64      `json:"errors"`
	LastError string      `json:"last_error"`
}

// tipStatus is nil when tip following is off.
func (n *node) tipStatus() *tipStatus {
	if len(n.tipFeeds) == 0 && n.gossip == nil {
		return nil
	}
	st := n.adapter.Status().Tip
	out := &tipStatus{Head: st.Head.ID(), Inserted: st.Inserted, Ignored: st.Ignored, Failing: st.Failing,
		LastAction: st.LastAction, LastReason: st.LastReason, LastError: errString(st.LastError), Feeds: []feedStatus{}}
	if n.gossip != nil { // its own counts are in lightcl_status's gossip object
		g := n.gossip.Status()
		out.Feeds = append(out.Feeds, feedStatus{URL: "gossip", Mode: "gossip", Head: g.Head, Delivered: g.Accepted})
	}
	for i, f := range n.tipFeeds {
		fs := f.Status()
		out.Feeds = append(out.Feeds, feedStatus{URL: n.tipURL(i), Mode: string(fs.Mode), Head: fs.Head,
			Delivered: fs.Delivered, Errors: fs.Errors, LastError: fs.LastError})
	}
	return out
}

func (n *node) tipURL(i int) string {
	if len(n.cfg.UnsafeURLs) > 0 {
		return n.cfg.UnsafeURLs[i]
	}
	return n.cfg.FollowURLs[i]
}

// cut shortens an error text for the status RPC: a remote's error may carry
// a whole response body.
func cut(s string) string {
	const most = 300
	if len(s) <= most {
		return s
	}
	return s[:most] + "…"
}
