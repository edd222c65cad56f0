package fakerollup

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakerpc"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
)

// RollupNodeVersion is what a RollupNode answers to optimism_version.
const RollupNodeVersion = "testutil"

// RollupNodeConfig configures a fake rollup node.
type RollupNodeConfig struct {
	// RollupConfig answered by optimism_rollupConfig; nil = tree.RollupConfig().
	// It is served as is, never checked, so it may be wrong on purpose; do
	// not change it while the node runs.
	RollupConfig *rollup.Config
}

// RollupNode is a fake rollup (CL) node: it serves op-node's optimism_syncStatus,
// optimism_outputAtBlock, optimism_rollupConfig and optimism_version over
// HTTP JSON-RPC without auth, behind switchable Faults, and answers any other
// method with "method not found" (-32601). It derives nothing: it reports the
// chain and labels a test gives it with Follow, or the lie it gives with
// SetSyncStatus. It is safe for concurrent use.
type RollupNode struct {
	fail   func(format string, args ...any) // reports setup mistakes
	tree   *fakechain.Tree
	config *rollup.Config
	faults *fakerpc.Faults
	rpc    *rpc.Server
	server *httptest.Server

	mu       sync.Mutex
	chain    []*types.Block  // canonical blocks by number, genesis to unsafe
	status   eth.SyncStatus  // what Follow set
	override *eth.SyncStatus // what SetSyncStatus set; nil: status
	calls    []fakerpc.Call
}

// StartRollupNode starts a rollup node on 127.0.0.1 that follows only tree's
// genesis (every L2 label at genesis, current_l1 at fakechain.L1Ref(0)). Setup
// mistakes panic; the caller must call Close. (testutil.NewRollupNode wraps it
// for tests.)
func StartRollupNode(tree *fakechain.Tree, cfg RollupNodeConfig) (*RollupNode, error) {
	return startRollupNode(tree, cfg, func(format string, args ...any) { panic(fmt.Sprintf(format, args...)) })
}

// StartRollupNodeReporting is StartRollupNode with later setup mistakes (e.g.
// Follow with labels off the chain) reported to fail, such as a test's
// Fatalf, instead of panicking.
func StartRollupNodeReporting(tree *fakechain.Tree, cfg RollupNodeConfig, fail func(format string, args ...any)) (*RollupNode, error) {
	return startRollupNode(tree, cfg, fail)
}

func startRollupNode(tree *fakechain.Tree, cfg RollupNodeConfig, fail func(format string, args ...any)) (*RollupNode, error) {
	if tree == nil {
		return nil, errors.New("testutil: StartRollupNode: nil Tree")
	}
	if cfg.RollupConfig == nil {
		cfg.RollupConfig = tree.RollupConfig()
	}
	g := tree.Genesis()
	genesis := tree.Ref(g)
	n := &RollupNode{
		fail:   fail,
		tree:   tree,
		config: cfg.RollupConfig,
		faults: new(fakerpc.Faults),
		chain:  []*types.Block{g},
		status: eth.SyncStatus{
			CurrentL1:   fakechain.L1Ref(0),
			UnsafeL2:    genesis,
			SafeL2:      genesis,
			LocalSafeL2: genesis,
			FinalizedL2: genesis,
		},
	}
	srv := rpc.NewServer()
	if err := srv.RegisterName("optimism", &optimismAPI{n}); err != nil {
		return nil, fmt.Errorf("testutil: registering optimism API: %w", err)
	}
	handler := node.NewHTTPHandlerStack(fakerpc.Recorder(n.record, srv), nil, []string{"*"}, nil)
	n.server = httptest.NewServer(n.faults.Wrap(handler)) // listens on 127.0.0.1 only
	n.rpc = srv
	return n, nil
}

// Close stops the node's server, dropping requests held by a stall. It may
// be called more than once.
func (n *RollupNode) Close() {
	n.faults.Close()
	n.server.Close()
	n.rpc.Stop()
}

// URL returns the node's HTTP JSON-RPC endpoint.
func (n *RollupNode) URL() string { return n.server.URL }

// Faults returns the node's fault switches.
func (n *RollupNode) Faults() *fakerpc.Faults { return n.faults }

// Follow makes the chain ending at unsafe canonical and sets the labels
// (blocks of the Tree; nil means genesis). Each label must be on that chain
// at or below unsafe, with finalized <= safe <= localSafe <= unsafe.
// CurrentL1 is reported as given. Follow clears a SetSyncStatus override.
func (n *RollupNode) Follow(unsafe, localSafe, safe, finalized *types.Block, currentL1 eth.L1BlockRef) {
	g := n.tree.Genesis()
	orGenesis := func(b *types.Block) *types.Block {
		if b == nil {
			return g
		}
		return b
	}
	unsafe, localSafe, safe, finalized = orGenesis(unsafe), orGenesis(localSafe), orGenesis(safe), orGenesis(finalized)
	if _, ok := n.tree.Block(unsafe.Hash()); !ok {
		n.fail("testutil: Follow: unsafe block %d %s is not in the Tree", unsafe.NumberU64(), unsafe.Hash())
		return
	}
	chain := append([]*types.Block{g}, n.tree.Chain(unsafe.Hash())...)
	labels := []struct {
		name string
		b    *types.Block
	}{{"finalized", finalized}, {"safe", safe}, {"local-safe", localSafe}, {"unsafe", unsafe}}
	for i, l := range labels {
		num := l.b.NumberU64()
		if num >= uint64(len(chain)) || chain[num].Hash() != l.b.Hash() {
			n.fail("testutil: Follow: %s block %d %s is not on the chain to unsafe %d %s",
				l.name, num, l.b.Hash(), unsafe.NumberU64(), unsafe.Hash())
			return
		}
		if i > 0 && labels[i-1].b.NumberU64() > num {
			n.fail("testutil: Follow: %s block %d is above %s block %d", labels[i-1].name, labels[i-1].b.NumberU64(), l.name, num)
			return
		}
	}
	status := eth.SyncStatus{
		CurrentL1:   currentL1,
		UnsafeL2:    n.tree.Ref(unsafe),
		SafeL2:      n.tree.Ref(safe),
		LocalSafeL2: n.tree.Ref(localSafe),
		FinalizedL2: n.tree.Ref(finalized),
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.chain, n.status, n.override = chain, status, nil
}

// SetSyncStatus overrides the whole optimism_syncStatus answer, unchecked,
// to play a lying node: finalized above safe, labels on other forks or not
// in the Tree, zero hashes. optimism_outputAtBlock still answers from the
// chain of the last Follow, with s as its sync status. Follow clears the
// override.
func (n *RollupNode) SetSyncStatus(s eth.SyncStatus) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.override = &s
}

// Calls returns every JSON-RPC call received so far, in order of arrival.
func (n *RollupNode) Calls() []fakerpc.Call {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]fakerpc.Call(nil), n.calls...)
}

// CallCount returns how many calls to method were received so far.
func (n *RollupNode) CallCount(method string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fakerpc.CountCalls(n.calls, method)
}

// OutputRoot returns the output root a RollupNode reports for b: the v0
// output root of b's state root, a zero message-passer storage root and b's
// hash.
func OutputRoot(b *types.Block) eth.Bytes32 {
	return eth.OutputRoot(outputV0(b))
}

func outputV0(b *types.Block) *eth.OutputV0 {
	return &eth.OutputV0{StateRoot: eth.Bytes32(b.Root()), BlockHash: b.Hash()}
}

// record appends calls to the node's log.
func (n *RollupNode) record(calls []fakerpc.Call) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, calls...)
}

// syncStatus returns the answer to optimism_syncStatus. Callers hold n.mu.
func (n *RollupNode) syncStatus() *eth.SyncStatus {
	s := n.status
	if n.override != nil {
		s = *n.override
	}
	return &s
}

// optimismAPI serves the optimism_ namespace. Every exported method is an
// RPC method.
type optimismAPI struct{ n *RollupNode }

// SyncStatus serves optimism_syncStatus.
func (a *optimismAPI) SyncStatus() *eth.SyncStatus {
	a.n.mu.Lock()
	defer a.n.mu.Unlock()
	return a.n.syncStatus()
}

// OutputAtBlock serves optimism_outputAtBlock for a height on the followed
// chain; above unsafe it fails like op-node does for a block it lacks.
func (a *optimismAPI) OutputAtBlock(number hexutil.Uint64) (*eth.OutputResponse, error) {
	n := a.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if uint64(number) >= uint64(len(n.chain)) {
		return nil, fmt.Errorf("failed to get L2 block ref with sync status: failed to determine L2BlockRef of height %d, could not get payload: %w",
			uint64(number), ethereum.NotFound)
	}
	b := n.chain[number]
	out := outputV0(b)
	return &eth.OutputResponse{
		Version:               out.Version(),
		OutputRoot:            eth.OutputRoot(out),
		BlockRef:              n.tree.Ref(b),
		WithdrawalStorageRoot: common.Hash(out.MessagePasserStorageRoot),
		StateRoot:             b.Root(),
		Status:                n.syncStatus(),
	}, nil
}

// RollupConfig serves optimism_rollupConfig.
func (a *optimismAPI) RollupConfig() *rollup.Config { return a.n.config }

// Version serves optimism_version.
func (a *optimismAPI) Version() string { return RollupNodeVersion }
