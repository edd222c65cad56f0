package sim_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/log"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakel1"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/fake/fakerpc"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/l1verify"
	"github.com/lightcl/lightcl/safesource/quorum"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

var (
	seedFlag      = flag.Uint64("seed", 1, "seed of the first schedule; schedule i runs with seed+i")
	schedulesFlag = flag.Int("schedules", defaultSchedules, "how many schedules to run")
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = log.NewLogger(log.DiscardHandler())

const (
	faultSteps   = 14 // ticks with faults
	convergeBy   = 20 // ticks after the faults stop by which the node must be on the honest heads
	maxReorgBack = 4  // how far below the honest safe head an honest reorg may start
)

// TestSimulation runs the schedules; a failing one names its seed.
func TestSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation: skipped with -short")
	}
	n := *schedulesFlag
	if n < 0 {
		t.Fatalf("-schedules %d: must not be negative", n)
	}
	start := time.Now()
	var (
		mu       sync.Mutex
		stats    = map[string]int{}
		failSeed uint64
		failErr  error
		g        errgroup.Group
	)
	g.SetLimit(runtime.GOMAXPROCS(0)) // schedules are independent; each replays alone
	for i := range n {
		seed := *seedFlag + uint64(i)
		g.Go(func() error {
			mine := map[string]int{}
			err := runSchedule(seed, mine)
			mu.Lock()
			defer mu.Unlock()
			for k, v := range mine {
				if strings.HasSuffix(k, "-max") {
					stats[k] = max(stats[k], v)
				} else {
					stats[k] += v
				}
			}
			if err != nil && (failErr == nil || seed < failSeed) {
				failSeed, failErr = seed, err
			}
			return nil
		})
	}
	_ = g.Wait()
	if failErr != nil {
		t.Fatalf("schedule with seed %d failed (replay: go test ./internal/sim -run TestSimulation -seed %d -schedules 1 -v):\n%v", failSeed, failSeed, failErr)
	}
	t.Logf("%d schedules (seeds %d..%d) in %s; faults applied: %v", n, *seedFlag, *seedFlag+uint64(n)-1, time.Since(start).Round(time.Millisecond), stats)
}

// member is one remote: its server, and what it is made to say.
type member struct {
	rn *fakerollup.RollupNode // a rollup node, or
	el *fakeel.EL             // an L2 EL's public RPC
	// mode: "honest", "lag", "liar", "down", "garbage", "stall", "regress"
	mode   string
	lagBy  int             // for lag: steps behind
	fork   *types.Block    // for liar: the head of its fork
	pinned [3]*types.Block // for regress: the labels it keeps answering
}

func (m *member) faults() *fakerpc.Faults {
	if m.rn != nil {
		return m.rn.Faults()
	}
	return m.el.Faults()
}

// world is one schedule's chain, servers and node.
type world struct {
	ctx  context.Context
	rng  *rand.Rand
	log  []string // what happened, for a failing schedule's report
	tree *fakechain.Tree
	l1   *fakel1.L1
	el   *fakeel.EL
	eng  *sources.EngineClient

	// the honest chain: its head and labels, and every block ever honest
	head, safe, fin *types.Block
	history         [][3]*types.Block // honest (head, safe, fin) per step
	honestEver      map[common.Hash]bool
	l1Reorged       bool
	l1At            uint64

	members  []*member
	tip      *simFeed    // nil: the schedule runs without a tip feed
	gossip   *gossipFeed // nil: the schedule runs without gossip (at most one of tip and gossip)
	m        int         // threshold
	verify   bool
	source   safesource.SafeHeadSource
	closers  []func()
	adapter  *engineadapter.Adapter
	secret   [32]byte
	fcusSeen int
	maxFin   uint64 // the engine's finalized label, highest seen
	// the adapter's finalized head at the last tick, and which adapter
	adapterFin  uint64
	lastAdapter *engineadapter.Adapter
	stats       map[string]int
}

func (w *world) logf(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf(format, args...))
}

// TestScheduleReplays runs schedules twice: the same seed gives the same
// faults and the same outcome.
func TestScheduleReplays(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		var logs [2][]string
		for i := range logs {
			w, err := schedule(seed, map[string]int{})
			require.NoError(t, err)
			logs[i] = w.log
		}
		require.Equal(t, logs[0], logs[1], "seed %d", seed)
	}
}

func runSchedule(seed uint64, stats map[string]int) error {
	_, err := schedule(seed, stats)
	return err
}

// schedule runs one schedule and returns its world (closed) and error.
func schedule(seed uint64, stats map[string]int) (w *world, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w = &world{ctx: ctx, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), honestEver: map[common.Hash]bool{}, stats: stats}
	defer func() {
		for i := len(w.closers) - 1; i >= 0; i-- {
			w.closers[i]()
		}
		if err != nil {
			err = fmt.Errorf("%w\nschedule:\n  %s", err, strings.Join(w.log, "\n  "))
		}
	}()
	if err := w.setup(); err != nil {
		return w, err
	}
	for step := range faultSteps {
		w.logf("step %d", step)
		w.advanceHonest()
		w.applyFaults()
		w.applyTipFault(step)
		w.applyGossipFault(step)
		if err := w.tick(); err != nil {
			return w, err
		}
		if err := w.deliverTips(step); err != nil {
			return w, err
		}
		if err := w.deliverGossip(step); err != nil {
			return w, err
		}
	}
	w.logf("faults stop")
	w.heal()
	for i := range convergeBy {
		if w.gossip != nil && i > 0 {
			// gossip sends each block once: the sequencer goes on making
			// them, so that one reaches the node once it can take it
			w.makeBlock()
		}
		if err := w.tick(); err != nil {
			return w, err
		}
		if err := w.deliverTips(faultSteps + i); err != nil {
			return w, err
		}
		if err := w.deliverGossip(faultSteps + i); err != nil {
			return w, err
		}
		st := w.adapter.Status()
		// with a tip feed or gossip the head must be the honest head too
		tipDone := !w.hasTipFeed() || st.Unsafe.Hash == w.head.Hash()
		if st.Safe.Hash == w.safe.Hash() && st.Finalized.Hash == w.fin.Hash() && tipDone {
			w.stats["converged-in-ticks-max"] = max(w.stats["converged-in-ticks-max"], i+1)
			w.logf("converged in %d ticks: safe %d (%s), finalized %d", i+1, st.Safe.Number, st.Safe.Hash, st.Finalized.Number)
			return w, nil
		}
	}
	st := w.adapter.Status()
	return w, fmt.Errorf("not converged %d ticks after the faults stopped: node unsafe %d safe %d (%s) finalized %d, honest head %d safe %d (%s) finalized %d; last %s: %s (err %v); last tip %s: %s (err %v)",
		convergeBy, st.Unsafe.Number, st.Safe.Number, st.Safe.Hash, st.Finalized.Number, w.head.NumberU64(), w.safe.NumberU64(), w.safe.Hash(), w.fin.NumberU64(),
		st.LastAction, st.LastReason, st.LastError, st.Tip.LastAction, st.Tip.LastReason, st.Tip.LastError)
}

// setup starts the servers and the node on a short honest chain.
func (w *world) setup() error {
	w.tree = fakechain.NewTree()
	g := w.tree.Genesis()
	chain := w.tree.Extend(g.Hash(), 12, 0)
	w.head, w.safe, w.fin = chain[11], chain[7], chain[3]
	w.markHonest(w.head)

	l1, err := fakel1.StartL1(fakel1.L1Config{Head: 400})
	if err != nil {
		return err
	}
	w.closers = append(w.closers, l1.Close)
	w.l1 = l1
	w.syncL1Finality()

	w.secret = fakeel.NewJWTSecret()
	fresh := w.rng.IntN(2) == 0
	el, err := fakeel.StartEL(w.tree, fakeel.ELConfig{JWTSecret: w.secret, Peer: w.tree, FreshLabels: fresh})
	if err != nil {
		return err
	}
	w.closers = append(w.closers, el.Close)
	w.el = el
	rpcClient, err := client.NewRPC(w.ctx, quiet, el.URL(), client.WithGethRPCOptions(rpc.WithHTTPAuth(gethnode.NewJWTAuth(w.secret))))
	if err != nil {
		return err
	}
	w.closers = append(w.closers, rpcClient.Close)
	if w.eng, err = sources.NewEngineClient(rpcClient, quiet, nil, sources.EngineClientDefaultConfig(w.tree.RollupConfig())); err != nil {
		return err
	}

	n := []int{1, 3, 3, 5}[w.rng.IntN(4)]
	w.m = n/2 + 1
	w.verify = w.rng.IntN(2) == 0
	switch w.rng.IntN(3) {
	case 0:
		w.tip = &simFeed{w: w, mode: "honest"}
	case 1:
		w.gossip = newGossipFeed(w.tree, func(h common.Hash) bool { return w.honestEver[h] }, w.stats)
		for _, b := range w.tree.Chain(w.head.Hash()) {
			w.gossip.faults.published[b.Hash()] = true // gossiped before the node started
		}
		w.stats["gossip-schedules"]++
	}
	w.logf("N=%d M=%d l1verify=%v fresh-engine=%v tip-feed=%v gossip=%v", n, w.m, w.verify, fresh, w.tip != nil, w.gossip != nil)
	members := make([]safesource.SafeHeadSource, n)
	for i := range n {
		m := &member{mode: "honest"}
		cfg := remotel2.Config{Name: fmt.Sprintf("m%d", i), Timeout: 2 * time.Second, RollupConfig: w.tree.RollupConfig()}
		if w.rng.IntN(2) == 0 {
			rn, err := fakerollup.StartRollupNode(w.tree, fakerollup.RollupNodeConfig{})
			if err != nil {
				return err
			}
			w.closers = append(w.closers, rn.Close)
			m.rn, cfg.URL, cfg.Kind = rn, rn.URL(), remotel2.KindCL
		} else {
			el, err := fakeel.StartEL(w.tree, fakeel.ELConfig{NoAuth: true})
			if err != nil {
				return err
			}
			w.closers = append(w.closers, el.Close)
			m.el, cfg.URL, cfg.Kind = el, el.URL(), remotel2.KindEL
		}
		w.members = append(w.members, m)
		w.show(m)
		src, err := remotel2.New(w.ctx, cfg, nil, nil)
		if err != nil {
			return fmt.Errorf("member %d: %w", i, err)
		}
		w.closers = append(w.closers, src.Close)
		members[i] = src
	}
	if w.verify {
		l1c, closeL1, err := fakel1.OpenL1Client(w.l1.URL())
		if err != nil {
			return err
		}
		w.closers = append(w.closers, closeL1)
		v, err := l1verify.New(l1c, l1verify.Config{}, nil, nil)
		if err != nil {
			return err
		}
		for i := range members {
			if members[i], err = v.Wrap(members[i]); err != nil {
				return err
			}
		}
	}
	if n == 1 {
		w.source = members[0]
	} else {
		// every member answers at once (a stall is an immediate 504), so a round
		// that waits for all of them decides the same way in every replay
		q, err := quorum.New(quorum.Config{Threshold: w.m, MemberTimeout: 10 * time.Second, StragglerWait: 10 * time.Second}, members, nil, nil)
		if err != nil {
			return err
		}
		w.source = q
	}
	return w.startAdapter()
}

func (w *world) startAdapter() error {
	cfg := engineadapter.Config{SourceTimeout: 10 * time.Second}
	if w.tip != nil {
		cfg.Tip = w.tip
	}
	if w.gossip != nil {
		cfg.Tip = w.gossip
	}
	a, err := engineadapter.New(cfg, w.eng, w.source, nil, nil)
	if err != nil {
		return err
	}
	w.adapter = a
	return nil
}

// markHonest records every block up to head as honest.
func (w *world) markHonest(head *types.Block) {
	for _, b := range w.tree.Chain(head.Hash()) {
		w.honestEver[b.Hash()] = true
	}
	w.honestEver[w.tree.Genesis().Hash()] = true
}

// syncL1Finality keeps L1's safe and finalized labels at the honest
// finalized head's origin, so that honest finality is never ahead of L1's.
func (w *world) syncL1Finality() {
	n := w.tree.Ref(w.fin).L1Origin.Number
	if n > w.l1At || w.l1At == 0 {
		w.l1At = n
	}
	w.l1.SetLabels(w.l1At, w.l1At)
}

// advanceHonest moves the honest chain: a few new blocks, safe and finalized
// up, and sometimes a reorg of its unsafe and safe blocks above finalized.
func (w *world) advanceHonest() {
	w.history = append(w.history, [3]*types.Block{w.head, w.safe, w.fin})
	if w.rng.IntN(8) == 0 && w.safe.NumberU64() > w.fin.NumberU64() {
		// the honest chain itself reorgs: a new branch from below its safe head
		back := 1 + w.rng.Uint64N(min(maxReorgBack, w.safe.NumberU64()-w.fin.NumberU64()))
		at := w.blockAt(w.safe.NumberU64() - back)
		branch := w.tree.Extend(at.Hash(), int(back)+2+w.rng.IntN(3), 100+w.rng.Uint64N(1<<20))
		w.head = branch[len(branch)-1]
		w.safe = branch[int(back)-1]
		w.stats["honest-reorg"]++
		w.logf("honest chain reorgs from %d: head %d, safe %d", at.NumberU64(), w.head.NumberU64(), w.safe.NumberU64())
	} else if k := w.rng.IntN(4); k > 0 {
		ext := w.tree.Extend(w.head.Hash(), k, 0)
		w.head = ext[len(ext)-1]
	}
	if d := w.head.NumberU64() - w.safe.NumberU64(); d > 0 {
		w.safe = w.blockAt(w.safe.NumberU64() + w.rng.Uint64N(d+1))
	}
	if d := w.safe.NumberU64() - w.fin.NumberU64(); d > 0 && w.rng.IntN(3) == 0 {
		w.fin = w.blockAt(w.fin.NumberU64() + 1 + w.rng.Uint64N(d))
	}
	w.markHonest(w.head)
	if !w.l1Reorged {
		w.syncL1Finality()
	}
}

// blockAt is the honest chain's block at height n (at or below its head).
func (w *world) blockAt(n uint64) *types.Block {
	if n == 0 {
		return w.tree.Genesis()
	}
	return w.tree.Chain(w.head.Hash())[n-1]
}

// liars counts the members lying now.
func (w *world) liars() int {
	k := 0
	for _, m := range w.members {
		if m.mode == "liar" {
			k++
		}
	}
	return k
}

// applyFaults changes the members' modes, the L1, the engine, and may
// restart the adapter.
func (w *world) applyFaults() {
	modes := []string{"honest", "honest", "lag", "liar", "down", "garbage", "stall", "regress"}
	for i, m := range w.members {
		if w.rng.IntN(3) != 0 {
			w.show(m) // unchanged mode, current view
			continue
		}
		mode := modes[w.rng.IntN(len(modes))]
		if mode == "liar" && w.liars() >= len(w.members)-w.m {
			mode = "honest" // at most N-M liars
		}
		m.mode = mode
		switch mode {
		case "lag":
			m.lagBy = 1 + w.rng.IntN(3)
		case "liar":
			// a fork from anywhere on the honest chain, finalized blocks included
			at := w.blockAt(w.rng.Uint64N(w.head.NumberU64() + 1))
			fork := w.tree.Extend(at.Hash(), 1+w.rng.IntN(6), 200+w.rng.Uint64N(1<<20))
			m.fork = fork[len(fork)-1]
			if w.rng.IntN(2) == 0 {
				w.el.MarkInvalid(fork[0].Hash()) // the engine would refuse it
			}
		case "regress":
			m.pinned = [3]*types.Block{w.head, w.safe, w.fin}
		}
		w.stats[mode]++
		w.logf("member %d: %s", i, mode)
		w.show(m)
	}
	switch r := w.rng.IntN(12); {
	case r == 0 && !w.l1Reorged:
		// L1 reorgs away the origins above its finalized block
		head := w.l1.Head().Number
		if w.l1At+1 < head {
			w.l1.Reorg(w.l1At, 1)
			w.l1Reorged = true
			w.stats["l1-reorg"]++
			w.logf("L1 reorgs above %d", w.l1At)
		}
	case r == 1 && w.l1Reorged:
		w.l1.Reorg(w.l1At, 0)
		w.l1Reorged = false
		w.logf("L1 back on the original chain")
	case r == 2:
		w.el.SetForceSyncing(true)
		w.stats["engine-syncing"]++
		w.logf("engine answers SYNCING")
	case r == 3:
		w.el.SetForceSyncing(false)
	case r == 4:
		// a restart that loses unflushed blocks: never below the engine's
		// finalized label (the draw is made first, so that the schedule does
		// not depend on what the node did)
		x := w.rng.Uint64()
		head, _, fin := w.el.Labels()
		if head.Number > fin.Number {
			n := fin.Number + x%(head.Number-fin.Number)
			w.el.DropAbove(n)
			w.stats["engine-lost-blocks"]++
			w.logf("engine restarts, losing blocks above %d", n)
		}
	case r == 5:
		w.stats["adapter-restart"]++
		w.logf("adapter restarts")
		_ = w.startAdapter()
	}
}

// show makes a member's server answer what its mode says.
func (w *world) show(m *member) {
	f := m.faults()
	f.Clear()
	head, safe, fin := w.head, w.safe, w.fin
	switch m.mode {
	case "lag":
		if k := len(w.history) - m.lagBy; k >= 0 {
			head, safe, fin = w.history[k][0], w.history[k][1], w.history[k][2]
		}
	case "liar":
		head, safe, fin = m.fork, m.fork, m.fork
		if w.rng.IntN(2) == 0 {
			fin = w.fin // keeps the honest finalized head, lies above it
			if !w.onChain(m.fork, fin) {
				fin = m.fork
			}
		}
	case "regress":
		head, safe, fin = m.pinned[0], m.pinned[1], m.pinned[2]
		if !w.onChain(w.head, head) { // the honest chain reorged since: answer like a lagging node
			head, safe, fin = w.head, w.safe, w.fin
		}
	case "down":
		f.HTTPStatus(http.StatusInternalServerError)
	case "garbage":
		f.Garbage(true)
	case "stall":
		f.HTTPStatus(http.StatusGatewayTimeout) // a timeout, answered at once
	}
	if m.rn != nil {
		m.rn.Follow(head, safe, safe, fin, fakechain.L1Ref(w.tree.Ref(head).L1Origin.Number))
		return
	}
	m.el.Insert(w.tree.Chain(head.Hash())...)
	m.el.ForceLabels(head.Hash(), safe.Hash(), fin.Hash())
}

// onChain reports whether b is on the chain ending at head.
func (w *world) onChain(head, b *types.Block) bool {
	if b.NumberU64() == 0 {
		return true
	}
	chain := w.tree.Chain(head.Hash())
	return b.NumberU64() <= uint64(len(chain)) && chain[b.NumberU64()-1].Hash() == b.Hash()
}

// heal stops every fault: members honest, L1 back, engine answering.
func (w *world) heal() {
	for _, m := range w.members {
		m.mode = "honest"
		w.show(m)
	}
	if w.l1Reorged {
		w.l1.Reorg(w.l1At, 0)
		w.l1Reorged = false
	}
	w.syncL1Finality()
	w.el.SetForceSyncing(false)
	if w.gossip != nil {
		w.gossip.faults.mode = "honest"
	}
	if w.hasTipFeed() {
		// the honest chain makes one more block, so that the tip feed has a
		// head above safe to bring the node to, whatever a lie left above it
		if w.tip != nil {
			w.tip.mode = "honest"
		}
		w.makeBlock()
	}
}

// makeBlock makes one more block on the honest head, and the honest members
// serve it.
func (w *world) makeBlock() {
	next := w.tree.Extend(w.head.Hash(), 1, 0)[0]
	w.head = next
	w.markHonest(next)
	for _, m := range w.members {
		w.show(m)
	}
	w.logf("honest chain makes block %d", next.NumberU64())
}

// hasTipFeed reports whether the adapter has a tip feed: the sim's or gossip.
func (w *world) hasTipFeed() bool { return w.tip != nil || w.gossip != nil }

// tick steps the adapter once and checks the invariants on every forkchoice
// update the engine received since the last tick.
func (w *world) tick() error {
	_, _ = w.adapter.Step(w.ctx)
	return w.check()
}

// check checks the invariants on the adapter's state and on every forkchoice
// update the engine received since the last check.
func (w *world) check() error {
	st := w.adapter.Status()
	if st.Finalized.Number > st.Safe.Number {
		return fmt.Errorf("adapter finalized %d above safe %d", st.Finalized.Number, st.Safe.Number)
	}
	// finalized as applied: the engine's label never goes down (it is not
	// lost: engine restarts here lose only blocks above it), nor the
	// adapter's, except when a restarted adapter reads it from the engine
	_, _, elFin := w.el.Labels()
	if elFin.Number < w.maxFin {
		return fmt.Errorf("the engine's finalized label went down from %d to %d", w.maxFin, elFin.Number)
	}
	w.maxFin = elFin.Number
	if st.Finalized.Number < w.adapterFin && w.adapter == w.lastAdapter {
		return fmt.Errorf("the adapter's finalized head went down from %d to %d", w.adapterFin, st.Finalized.Number)
	}
	w.adapterFin, w.lastAdapter = st.Finalized.Number, w.adapter
	if err := w.checkForged(); err != nil {
		return err
	}
	fcus := w.el.ForkchoiceUpdates()
	for _, fc := range fcus[w.fcusSeen:] {
		if err := w.checkForkchoice(fc); err != nil {
			return err
		}
	}
	w.fcusSeen = len(fcus)
	return nil
}

func (w *world) checkForkchoice(fc eth.ForkchoiceState) error {
	if w.gossip != nil && w.gossip.faults.forged[fc.HeadBlockHash] {
		return fmt.Errorf("forkchoice head %s was only ever gossiped with a wrong signature", fc.HeadBlockHash)
	}
	head, ok := w.tree.Block(fc.HeadBlockHash)
	if !ok {
		if fc.HeadBlockHash == w.tree.Genesis().Hash() {
			head = w.tree.Genesis()
		} else {
			return fmt.Errorf("forkchoice head %s is no block of the chain", fc.HeadBlockHash)
		}
	}
	var safe, fin *types.Block
	for _, l := range []struct {
		name string
		hash common.Hash
		out  **types.Block
	}{{"safe", fc.SafeBlockHash, &safe}, {"finalized", fc.FinalizedBlockHash, &fin}} {
		if l.hash == (common.Hash{}) {
			*l.out = w.tree.Genesis()
			continue
		}
		b, ok := w.tree.Block(l.hash)
		if !ok && l.hash == w.tree.Genesis().Hash() {
			b, ok = w.tree.Genesis(), true
		}
		if !ok {
			return fmt.Errorf("forkchoice %s %s is no block of the chain", l.name, l.hash)
		}
		if !w.onChain(head, b) {
			return fmt.Errorf("forkchoice %s %d (%s) is not an ancestor of its head %d (%s)", l.name, b.NumberU64(), b.Hash(), head.NumberU64(), head.Hash())
		}
		*l.out = b
	}
	if !w.onChain(safe, fin) {
		return fmt.Errorf("forkchoice finalized %d is not an ancestor of its safe %d", fin.NumberU64(), safe.NumberU64())
	}
	// at most N-M liars: safe and finalized only ever on the honest chain
	if !w.honestEver[safe.Hash()] || !w.honestEver[fin.Hash()] {
		return fmt.Errorf("forkchoice safe %d (%s) or finalized %d (%s) is not on the honest chain", safe.NumberU64(), safe.Hash(), fin.NumberU64(), fin.Hash())
	}
	if fin.NumberU64() > 0 && !w.onChain(w.head, fin) {
		return fmt.Errorf("forkchoice finalized %d (%s) left the honest chain", fin.NumberU64(), fin.Hash())
	}
	return nil
}
