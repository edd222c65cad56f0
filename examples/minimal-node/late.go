package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

// A quorum member's state, as lightcl_status shows it.
const (
	// memberChecked: it passed the chain checks and takes part in the rounds.
	memberChecked = "checked"
	// memberUnreachable: it has not been reached yet; it is dialed again with
	// backoff.
	memberUnreachable = "unreachable"
	// memberAwaitConfig: it is an L2 EL, and reading its blocks needs the
	// rollup config, which no rollup-node member has given yet.
	memberAwaitConfig = "waiting for the rollup config"
	// memberWrongChain: it serves another chain, or another rollup config,
	// than the quorum's; it is not dialed again.
	memberWrongChain = "wrong chain"
	// memberFailed: it answered its checks with an error that proves a
	// misconfiguration other than a chain (a refused JWT, a wrong path, a
	// malformed answer); it is not dialed again.
	memberFailed = "failed"
)

// lateMember is a quorum member that may not be checked yet. Until it is, its
// calls fail at once, naming it and its state, so the quorum counts it as
// missing; once checked it passes every call to its remote. Safe for
// concurrent use.
type lateMember struct {
	name string

	mu      sync.Mutex
	src     *remotel2.Source // nil until checked
	state   string
	lastErr error // why it is not checked
}

var _ safesource.SafeHeadSource = (*lateMember)(nil)

func newLateMember(name string) *lateMember {
	return &lateMember{name: name, state: memberUnreachable}
}

// checkedMember is a member checked already.
func checkedMember(src *remotel2.Source) *lateMember {
	return &lateMember{name: src.Name(), src: src, state: memberChecked}
}

// Name returns the member's name (memberNames).
func (m *lateMember) Name() string { return m.name }

// Heads asks the remote, once it is checked.
func (m *lateMember) Heads(ctx context.Context) (safesource.Heads, error) {
	src, err := m.source()
	if err != nil {
		return safesource.Heads{}, err
	}
	return src.Heads(ctx)
}

// L2BlockRefByNumber asks the remote, once it is checked.
func (m *lateMember) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	src, err := m.source()
	if err != nil {
		return eth.L2BlockRef{}, err
	}
	return src.L2BlockRefByNumber(ctx, n)
}

// Kind is the remote's kind once it is checked; remotel2.KindAuto (not known
// yet) before.
func (m *lateMember) Kind() remotel2.Kind {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.src == nil {
		return remotel2.KindAuto
	}
	return m.src.Kind()
}

// kindName is the kind for the start-up line and lightcl_status: "el", "cl",
// or "unknown" before the member is checked.
func (m *lateMember) kindName() string {
	if k := m.Kind(); k != remotel2.KindAuto {
		return k.String()
	}
	return "unknown"
}

// State returns the member's state (memberChecked, …).
func (m *lateMember) State() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

func (m *lateMember) source() (*remotel2.Source, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.src != nil {
		return m.src, nil
	}
	sentinel := safesource.ErrUnreachable
	if m.state == memberWrongChain {
		sentinel = safesource.ErrWrongChain
	}
	switch {
	case m.lastErr == nil:
		return nil, fmt.Errorf("%s: not checked yet: %s: %w", m.name, m.state, sentinel)
	case errors.Is(m.lastErr, sentinel):
		return nil, fmt.Errorf("%s: not checked yet: %s: %w", m.name, m.state, m.lastErr)
	}
	return nil, fmt.Errorf("%s: not checked yet: %s: %w: %w", m.name, m.state, m.lastErr, sentinel)
}

func (m *lateMember) set(state string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state, m.lastErr = state, err
}

func (m *lateMember) connect(src *remotel2.Source) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.src, m.state, m.lastErr = src, memberChecked, nil
}

// close closes the remote's connections; the member answers as unreachable
// after.
func (m *lateMember) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.src != nil {
		m.src.Close()
		m.src = nil
		m.state, m.lastErr = memberUnreachable, errors.New("closed")
	}
}

// quorumDialer dials a quorum's members, one goroutine each (run), and keeps
// what start-up waits for. The goroutines are the node's: close cancels them
// and waits for them.
type quorumDialer struct {
	n         *node
	metrics   remotel2.Metrics
	members   []*lateMember
	threshold int
	fixed     *rollup.Config // --rollup.config's; nil: it is read from the rollup-node members

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	changed chan struct{} // closed, and replaced, whenever a field below changes
	rollup  *rollup.Config
	ref     int                    // the member the rollup config was read from; -1: none yet, or --rollup.config
	offers  map[int]*rollup.Config // configs read while none is settled
	from    []int                  // the members whose config was read and matched
	tried   []bool                 // the member's first try is over
	decided []bool                 // start-up need not wait for it: checked, unreachable or failed
	fatal   error                  // a member failed its checks before start-up ended
	started bool                   // start-up has gone on
}

// run dials member i until it is checked, fails its checks, or close.
func (d *quorumDialer) run(i int) {
	defer d.wg.Done()
	kind, cfg := d.n.cfg.FollowKind, d.fixed
	for {
		src, remote, err := d.dial(i, kind, cfg)
		switch {
		case err == nil:
			if remote != nil {
				if err := d.offer(i, remote); err != nil {
					src.Close()
					if d.ctx.Err() == nil {
						d.fail(i, err, memberWrongChain)
					}
					return
				}
			}
			d.checked(i, src)
			return
		case d.ctx.Err() != nil:
			return
		case cfg == nil && errors.Is(err, remotel2.ErrNeedsRollupConfig):
			kind = remotel2.KindEL
			if cfg, err = d.awaitConfig(i); err != nil {
				return // closed
			}
		case errors.Is(err, safesource.ErrWrongChain):
			d.fail(i, err, memberWrongChain)
			return
		default:
			d.fail(i, err, memberFailed)
			return
		}
	}
}

// dial makes member i's remote and checks it with cfg, waiting with backoff
// while it cannot be reached. A rollup node dialed without a config also has
// its config read, for offer.
func (d *quorumDialer) dial(i int, kind remotel2.Kind, cfg *rollup.Config) (*remotel2.Source, *rollup.Config, error) {
	url := d.n.cfg.FollowURLs[i]
	var src *remotel2.Source
	var remote *rollup.Config
	err := d.n.await(d.ctx, flagFollowSource, url, func(ctx context.Context) error {
		var err error
		src, remote, err = d.try(ctx, i, kind, cfg)
		if err != nil && unreachable(err) {
			d.unreachable(i, err)
		}
		return err
	})
	return src, remote, err
}

// try is one attempt of dial; on failure nothing is left open.
func (d *quorumDialer) try(ctx context.Context, i int, kind remotel2.Kind, cfg *rollup.Config) (*remotel2.Source, *rollup.Config, error) {
	c := d.n.cfg
	src, err := remotel2.New(ctx, remotel2.Config{
		URL: c.FollowURLs[i], Name: d.members[i].Name(), Kind: kind, Timeout: c.FollowTimeout, RollupConfig: cfg,
		MaxResponseBytes: c.MaxResponse,
	}, d.n.log, d.metrics)
	if err != nil || cfg != nil || src.Kind() != remotel2.KindCL {
		return src, nil, err
	}
	remote, err := src.RemoteRollupConfig(ctx)
	if err != nil {
		src.Close()
		return nil, nil, fmt.Errorf("reading the rollup config (or pass --%s): %w", flagRollupConfig, err)
	}
	return src, remote, nil
}

// unreachable notes that member i could not be reached this time.
func (d *quorumDialer) unreachable(i int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.members[i].set(memberUnreachable, err)
	d.tried[i], d.decided[i] = true, true
	d.settleLocked()
	d.notifyLocked()
}

// awaitConfig notes that member i is an EL that needs the rollup config, and
// waits until it is settled.
func (d *quorumDialer) awaitConfig(i int) (*rollup.Config, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.members[i].set(memberAwaitConfig, nil)
	d.tried[i] = true
	d.settleLocked()
	d.notifyLocked()
	if err := d.waitLocked(d.ctx, func() bool { return d.rollup != nil }); err != nil {
		return nil, err
	}
	return d.rollup, nil
}

// offer hands in the rollup config that member i, a rollup node, serves, and
// waits until the quorum's config is settled: it is cfg when member i is the
// first rollup node (settleLocked); otherwise cfg must equal it.
func (d *quorumDialer) offer(i int, cfg *rollup.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tried[i] = true
	if d.rollup == nil {
		d.offers[i] = cfg
		d.settleLocked()
		d.notifyLocked()
	}
	if err := d.waitLocked(d.ctx, func() bool { return d.rollup != nil }); err != nil {
		return err
	}
	if i != d.ref {
		ref, name := d.members[d.ref].Name(), d.members[i].Name()
		if err := remotel2.SameChain(name, d.rollup, cfg); err != nil {
			return fmt.Errorf("the rollup nodes %s and %s serve rollup configs of different chains: %w", ref, name, err)
		}
		if field := firstDifference(d.rollup, cfg); field != "" {
			return fmt.Errorf("the rollup nodes %s and %s serve rollup configs that differ in %s: "+
				"a quorum needs one chain's config (pass --%s to choose it)", ref, name, field, flagRollupConfig)
		}
	}
	d.from = append(d.from, i)
	return nil
}

// settleLocked settles the rollup config once every member has been tried:
// it is the config offered by the first member in flag order. If none was and
// every member is an EL, start-up fails: no member can give one.
func (d *quorumDialer) settleLocked() {
	if d.rollup != nil || d.fatal != nil || slices.Contains(d.tried, false) {
		return
	}
	if len(d.offers) > 0 {
		d.ref = slices.Min(slices.Collect(maps.Keys(d.offers)))
		d.rollup = d.offers[d.ref]
		d.offers = nil
		return
	}
	for _, m := range d.members {
		if m.State() != memberAwaitConfig {
			return // one may still turn out to be a rollup node
		}
	}
	d.fatal = badFlag(flagRollupConfig, "required: none of the %d --%s remotes is a rollup node to read it from, "+
		"and reading an L2 EL's blocks needs the chain's rollup.json", len(d.members), flagFollowSource)
}

// checked adds member i's remote to the quorum.
func (d *quorumDialer) checked(i int, src *remotel2.Source) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.members[i]
	m.connect(src)
	d.tried[i], d.decided[i] = true, true
	d.notifyLocked()
	if d.started {
		d.n.log.Info("Quorum member checked", "member", m.Name(), "kind", src.Kind().String(), "url", d.n.cfg.FollowURLs[i])
	}
}

// fail leaves member i out for good: before start-up has gone on, that fails
// the start.
func (d *quorumDialer) fail(i int, err error, state string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.members[i]
	m.set(state, err)
	d.tried[i], d.decided[i] = true, true
	d.notifyLocked()
	if !d.started {
		if d.fatal == nil {
			d.fatal = &flagError{flag: flagFollowSource, err: err}
		}
		return
	}
	d.n.log.Error("Quorum member failed its checks; it is left out of the quorum", "member", m.Name(),
		"url", d.n.cfg.FollowURLs[i], "state", state, "err", err)
}

// awaitStart waits until start-up may go on, or a member fails its checks.
func (d *quorumDialer) awaitStart(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.waitLocked(ctx, func() bool { return d.fatal != nil || d.readyLocked() })
	switch {
	case err != nil:
		return err
	case d.fatal != nil:
		return d.fatal
	}
	d.started = true
	return nil
}

// readyLocked: the rollup config is settled, every member has been tried to
// the end of its first check, and M members are checked.
func (d *quorumDialer) readyLocked() bool {
	if d.rollup == nil || slices.Contains(d.decided, false) {
		return false
	}
	checked := 0
	for _, m := range d.members {
		if m.State() == memberChecked {
			checked++
		}
	}
	return checked >= d.threshold
}

// waitLocked waits, with d.mu held on entry and on return, until done holds
// or ctx ends.
func (d *quorumDialer) waitLocked(ctx context.Context, done func() bool) error {
	for !done() {
		ch := d.changed
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		d.mu.Lock()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (d *quorumDialer) notifyLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// close stops the dialing, waits for it, and closes the members' remotes.
func (d *quorumDialer) close() {
	d.cancel()
	d.wg.Wait()
	for _, m := range d.members {
		m.close()
	}
}
