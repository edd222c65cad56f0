package fakeel

import (
	"fmt"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakerpc"
)

// ELConfig configures an in-memory EL.
type ELConfig struct {
	// JWTSecret is the Engine API secret; every request must carry a JWT signed with it.
	JWTSecret [32]byte
	// NoAuth serves without the JWT check, like a public L2 RPC; JWTSecret
	// is then ignored.
	NoAuth bool
	// ChainID is what eth_chainId answers, for "wrong chain" tests; 0 means
	// the Tree's chain id (fakechain.ChainID). Blocks and refs are unaffected.
	ChainID uint64
	// FreshLabels starts the EL without safe and finalized heads, as a fresh
	// op-geth: eth_getBlockByNumber("safe"/"finalized") answers "safe block not
	// found" until a forkchoice update sets them.
	FreshLabels bool
	// Peer, if set, is where the EL "syncs" unknown heads from; nil: unknown
	// heads stay SYNCING forever.
	Peer *fakechain.Tree
	// SyncDelay is how long after an FCU to a head it lacks (but Peer has) the
	// EL has the whole chain to that head. It is checked lazily on later
	// requests; 0 means the chain is there at the next request.
	SyncDelay time.Duration
	// Now is the EL's clock, for tests that step time by hand; nil: time.Now.
	Now func() time.Time
	// Debug serves debug_setHead, as op-geth with --http.api debug does (on
	// this server, behind the JWT check unless NoAuth).
	Debug bool
}

// EL is an in-memory execution engine served over HTTP JSON-RPC with
// op-geth's JWT check (or without it, as a public L2 RPC, with
// ELConfig.NoAuth), behind switchable Faults. It executes nothing: it stores blocks, keeps a
// canonical chain and the safe and finalized labels, and answers the Engine
// API and eth_getBlockBy* like op-geth does; at WSURL it also serves
// websockets with eth_subscribe("newHeads"). It is safe for concurrent use.
type EL struct {
	fail   func(format string, args ...any) // reports setup mistakes
	rpc    *rpc.Server
	tree   *fakechain.Tree
	cfg    ELConfig
	rollup *rollup.Config
	faults *fakerpc.Faults
	server *httptest.Server
	ws     *wsState // websocket connections and newHeads subscribers

	mu           sync.Mutex
	blocks       map[common.Hash]*types.Block // every block the EL has; parents always present
	canon        []common.Hash                // canonical hash by number; the last one is the head
	safe         common.Hash
	finalized    common.Hash
	remote       map[common.Hash]*types.Block // payloads whose parent was unknown
	invalid      map[common.Hash]bool
	forceSyncing bool
	sync         *pendingSync
	calls        []fakerpc.Call
	fcus         []eth.ForkchoiceState
	fcuTaken     chan struct{} // a value after each forkchoice update the EL took (see ForkchoiceTaken)
}

// pendingSync is a lazy sync to target that completes at readyAt.
type pendingSync struct {
	target  common.Hash
	readyAt time.Time
}

// StartEL starts an EL on 127.0.0.1 that knows only tree's genesis, with all
// labels at genesis. Setup mistakes panic; the caller must call Close.
// (testutil.NewEL wraps it for tests.)
func StartEL(tree *fakechain.Tree, cfg ELConfig) (*EL, error) {
	return startEL(tree, cfg, func(format string, args ...any) { panic(fmt.Sprintf(format, args...)) })
}

// StartELReporting is StartEL with later setup mistakes (e.g. inserting a
// block whose parent the EL lacks) reported to fail, such as a test's
// Fatalf, instead of panicking.
func StartELReporting(tree *fakechain.Tree, cfg ELConfig, fail func(format string, args ...any)) (*EL, error) {
	return startEL(tree, cfg, fail)
}

func startEL(tree *fakechain.Tree, cfg ELConfig, fail func(format string, args ...any)) (*EL, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Peer != nil && cfg.Peer.Genesis().Hash() != tree.Genesis().Hash() {
		return nil, fmt.Errorf("testutil: ELConfig.Peer has genesis %s, want %s", cfg.Peer.Genesis().Hash(), tree.Genesis().Hash())
	}
	g := tree.Genesis()
	e := &EL{
		fail:      fail,
		tree:      tree,
		cfg:       cfg,
		rollup:    tree.RollupConfig(),
		blocks:    map[common.Hash]*types.Block{g.Hash(): g},
		canon:     []common.Hash{g.Hash()},
		safe:      g.Hash(),
		finalized: g.Hash(),
		remote:    map[common.Hash]*types.Block{},
		invalid:   map[common.Hash]bool{},
		faults:    new(fakerpc.Faults),
		ws:        newWSState(g.Hash()),
		fcuTaken:  make(chan struct{}, 1),
	}
	if cfg.FreshLabels {
		e.safe, e.finalized = common.Hash{}, common.Hash{}
	}
	srv := rpc.NewServer()
	if err := srv.RegisterName("engine", &engineAPI{e}); err != nil {
		return nil, fmt.Errorf("testutil: registering engine API: %w", err)
	}
	if err := srv.RegisterName("eth", &ethAPI{e}); err != nil {
		return nil, fmt.Errorf("testutil: registering eth API: %w", err)
	}
	if cfg.Debug {
		if err := srv.RegisterName("debug", &debugAPI{e}); err != nil {
			return nil, fmt.Errorf("testutil: registering debug API: %w", err)
		}
	}
	var jwtSecret []byte // nil: no JWT check
	if !cfg.NoAuth {
		jwtSecret = cfg.JWTSecret[:]
	}
	handler := node.NewHTTPHandlerStack(fakerpc.Recorder(e.record, srv), nil, []string{"*"}, jwtSecret)
	e.server = httptest.NewUnstartedServer(e.faults.Wrap(e.withWebsocket(srv, handler, jwtSecret))) // listens on 127.0.0.1 only
	e.server.Config.ConnState = e.trackConn
	e.server.Start()
	e.rpc = srv
	return e, nil
}

// Close stops the EL's server, dropping requests held by a stall and
// websocket connections.
func (e *EL) Close() {
	e.faults.Close()
	e.server.Close()
	e.rpc.Stop()
	e.closeWS()
}

// URL returns the EL's HTTP JSON-RPC endpoint.
func (e *EL) URL() string { return e.server.URL }

// Insert gives the EL blocks without making them canonical. Each block's
// parent must be known to the EL or come earlier in blocks.
func (e *EL) Insert(blocks ...*types.Block) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range blocks {
		if err := e.checkStorable(b); err != nil {
			e.fail("testutil: Insert: %v", err)
		}
		e.blocks[b.Hash()] = b
	}
}

// SetForkchoice makes head canonical and sets the labels, for test setup.
// head must be known; a zero safe or finalized means genesis; both must be
// canonical at or below head, finalized at or below safe.
func (e *EL) SetForkchoice(head, safe, finalized common.Hash) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.blocks[head]; !ok {
		e.fail("testutil: SetForkchoice: head %s is not known to the EL", head)
	}
	e.setCanonical(head)
	if safe == (common.Hash{}) {
		safe = e.canon[0]
	}
	if finalized == (common.Hash{}) {
		finalized = e.canon[0]
	}
	if err := e.checkLabels(safe, finalized); err != nil {
		e.fail("testutil: SetForkchoice: %v", err)
	}
	e.safe, e.finalized = safe, finalized
}

// Faults returns the EL's fault switches; they act before the JWT check.
func (e *EL) Faults() *fakerpc.Faults { return e.faults }

// ForceLabels makes head canonical and sets the safe and finalized labels
// with no consistency checks, to play a lying remote: finalized above safe,
// labels above head or on another fork. All three blocks must be known to
// the EL (Insert them first); the zero hash is not a block here. A pending
// sync is abandoned, so that it cannot move the forced head later.
func (e *EL) ForceLabels(head, safe, finalized common.Hash) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range []struct {
		name string
		hash common.Hash
	}{{"head", head}, {"safe", safe}, {"finalized", finalized}} {
		if _, ok := e.blocks[l.hash]; !ok {
			e.fail("testutil: ForceLabels: %s %s is not known to the EL", l.name, l.hash)
			return
		}
	}
	e.sync = nil
	e.setCanonical(head)
	e.safe, e.finalized = safe, finalized
}

// Labels returns the EL's unsafe (head), safe and finalized blocks.
func (e *EL) Labels() (unsafe, safe, finalized eth.L2BlockRef) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceSync()
	return e.ref(e.head()), e.labelRef(e.safe), e.labelRef(e.finalized)
}

// labelRef is the ref of a label; the zero ref while it is unset
// (ELConfig.FreshLabels). Callers hold e.mu.
func (e *EL) labelRef(hash common.Hash) eth.L2BlockRef {
	if hash == (common.Hash{}) {
		return eth.L2BlockRef{}
	}
	return e.ref(hash)
}

// Has reports whether the EL has the block with the given hash (canonical or not).
func (e *EL) Has(hash common.Hash) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceSync()
	_, ok := e.blocks[hash]
	return ok
}

// MarkInvalid makes FCUs with this head hash, and newPayload of this block or
// its children, answer INVALID.
func (e *EL) MarkInvalid(hash common.Hash) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.invalid[hash] = true
}

// ForgetInvalid forgets every block MarkInvalid named, as a restarted engine
// forgets what it rejected.
func (e *EL) ForgetInvalid() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.invalid)
}

// SetForceSyncing makes every FCU answer SYNCING while on.
func (e *EL) SetForceSyncing(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.forceSyncing = on
}

// DropAbove simulates a restart that lost unflushed blocks: every block above
// number n is forgotten (canonical or not), labels above n clamp to the new
// head, and a pending sync is abandoned.
func (e *EL) DropAbove(n uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dropAboveLocked(n)
}

// dropAboveLocked is DropAbove for callers that hold e.mu.
func (e *EL) dropAboveLocked(n uint64) {
	for h, b := range e.blocks {
		if b.NumberU64() > n {
			delete(e.blocks, h)
		}
	}
	for h, b := range e.remote {
		if b.NumberU64() > n {
			delete(e.remote, h)
		}
	}
	if uint64(len(e.canon)) > n+1 {
		e.canon = e.canon[:n+1]
		e.notifyHeadLocked()
	}
	if _, ok := e.blocks[e.safe]; !ok && e.safe != (common.Hash{}) {
		e.safe = e.head()
	}
	if _, ok := e.blocks[e.finalized]; !ok && e.finalized != (common.Hash{}) {
		e.finalized = e.head()
	}
	e.sync = nil
}

// head returns the canonical head hash. Callers hold e.mu.
func (e *EL) head() common.Hash { return e.canon[len(e.canon)-1] }

// ref returns the L2BlockRef of a known block. Callers hold e.mu.
func (e *EL) ref(hash common.Hash) eth.L2BlockRef {
	ref, err := fakechain.BlockRef(e.rollup, e.blocks[hash])
	if err != nil { // checkStorable vetted every stored block
		e.fail("testutil: ref of stored block %s: %v", hash, err)
	}
	return ref
}

// checkStorable says why b cannot be stored: unknown parent, wrong number or
// no valid L1-info deposit. Callers hold e.mu.
func (e *EL) checkStorable(b *types.Block) error {
	parent, ok := e.blocks[b.ParentHash()]
	if !ok {
		return fmt.Errorf("block %d %s: parent %s is unknown", b.NumberU64(), b.Hash(), b.ParentHash())
	}
	if b.NumberU64() != parent.NumberU64()+1 {
		return fmt.Errorf("block %s has number %d, parent %s has %d", b.Hash(), b.NumberU64(), parent.Hash(), parent.NumberU64())
	}
	if _, err := fakechain.BlockRef(e.rollup, b); err != nil {
		return fmt.Errorf("block %d %s is not an L2 block of this chain: %w", b.NumberU64(), b.Hash(), err)
	}
	return nil
}

// isCanonical reports whether hash is on the canonical chain. Callers hold e.mu.
func (e *EL) isCanonical(hash common.Hash) bool {
	b, ok := e.blocks[hash]
	return ok && b.NumberU64() < uint64(len(e.canon)) && e.canon[b.NumberU64()] == hash
}

// setCanonical makes the known block head and its ancestors canonical.
// Callers hold e.mu.
func (e *EL) setCanonical(head common.Hash) {
	var added []common.Hash
	b := e.blocks[head]
	for !e.isCanonical(b.Hash()) {
		added = append(added, b.Hash())
		b = e.blocks[b.ParentHash()] // stored blocks always have their parent
	}
	e.canon = e.canon[:b.NumberU64()+1]
	for i := len(added) - 1; i >= 0; i-- {
		e.canon = append(e.canon, added[i])
	}
	e.notifyHeadLocked()
}

// checkLabels says why safe and finalized cannot label the canonical chain.
// Callers hold e.mu.
func (e *EL) checkLabels(safe, finalized common.Hash) error {
	for _, l := range []struct {
		name string
		hash common.Hash
	}{{"finalized", finalized}, {"safe", safe}} {
		if l.hash == (common.Hash{}) {
			continue // still unset (ELConfig.FreshLabels)
		}
		if _, ok := e.blocks[l.hash]; !ok {
			return fmt.Errorf("%s block %s not available in database", l.name, l.hash)
		}
		if !e.isCanonical(l.hash) {
			return fmt.Errorf("%s block %s not in canonical chain", l.name, l.hash)
		}
	}
	if finalized == (common.Hash{}) || safe == (common.Hash{}) {
		return nil
	}
	if f, s := e.blocks[finalized].NumberU64(), e.blocks[safe].NumberU64(); f > s {
		return fmt.Errorf("finalized block %d is above safe block %d", f, s)
	}
	return nil
}

// lookup finds a block the EL lacks but can sync: a payload it was sent, or
// one of Peer's blocks. Callers hold e.mu.
func (e *EL) lookup(hash common.Hash) (*types.Block, bool) {
	if b, ok := e.remote[hash]; ok {
		return b, true
	}
	if e.cfg.Peer != nil {
		return e.cfg.Peer.Block(hash)
	}
	return nil, false
}

// startSync begins a lazy sync to target unless one to target is under way.
// Callers hold e.mu.
func (e *EL) startSync(target common.Hash) {
	if e.sync != nil && e.sync.target == target {
		return
	}
	e.sync = &pendingSync{target: target, readyAt: e.cfg.Now().Add(e.cfg.SyncDelay)}
}

// advanceSync completes a due sync: it stores the chain down to a known block
// and makes the target the canonical head, as op-geth's beacon sync does. A
// chain with a block nobody has stays pending. Callers hold e.mu.
func (e *EL) advanceSync() {
	if e.sync == nil || e.cfg.Now().Before(e.sync.readyAt) {
		return
	}
	var missing []*types.Block
	for h := e.sync.target; ; {
		if _, ok := e.blocks[h]; ok {
			break
		}
		b, ok := e.lookup(h)
		if !ok {
			return
		}
		missing = append(missing, b)
		h = b.ParentHash()
	}
	for i := len(missing) - 1; i >= 0; i-- {
		b := missing[i]
		if err := e.checkStorable(b); err != nil {
			e.sync = nil // a broken peer chain never syncs
			return
		}
		e.blocks[b.Hash()] = b
		delete(e.remote, b.Hash())
	}
	e.setCanonical(e.sync.target)
	e.sync = nil
}
