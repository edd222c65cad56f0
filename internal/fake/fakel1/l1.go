package fakel1

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakerpc"
)

// L1Config configures an in-memory L1.
type L1Config struct {
	// Head is the number of the first head block: the chain starts as blocks
	// 0..Head.
	Head uint64
	// Safe and Finalized are the first safe and finalized heights, with
	// Finalized <= Safe <= Head; both default to 0 (genesis).
	Safe, Finalized uint64
	// Linked builds a real post-merge chain, each block naming its
	// predecessor as parent (zero difficulty, base fee, empty uncle and
	// withdrawals hashes), instead of the Tree's synthetic L1. Its blocks are
	// then not the L1Ref blocks, so a Tree's L1 origins are not on it.
	Linked bool
	// ChainID is what eth_chainId answers; 0 means L1ChainID.
	ChainID uint64
}

// L1 is an in-memory L1 chain served over HTTP JSON-RPC without auth, behind
// switchable Faults: eth_chainId, eth_blockNumber, eth_getBlockByNumber
// (numbers and the latest/pending/safe/finalized/earliest labels),
// eth_getBlockByHash, eth_getBlockReceipts and eth_getTransactionReceipt,
// answered like geth does, so that op-service's sources.L1Client reads it
// with its hash and receipt checks on. The chain is scripted: SetHead,
// Advance, Reorg and SetLabels; a Linked L1 also carries the transactions
// queued with Include. It is safe for concurrent use.
//
// By default block n of the original chain is the Tree's synthetic L1 block
// (its ref is L1Ref(n)), so the L1 origins of every Tree block are canonical
// here until a Reorg replaces them. Those blocks are not linked (block n's
// parent hash is not block n-1's hash) and their uncle hash is zero, so read
// them with MustBePostMerge off, as sources.L1ClientSimpleConfig does. Blocks
// that a Reorg builds, and every block of a Linked L1, are linked post-merge
// blocks.
type L1 struct {
	fail   func(format string, args ...any) // reports setup mistakes
	cfg    L1Config
	faults *fakerpc.Faults
	rpc    *rpc.Server
	server *httptest.Server

	mu        sync.Mutex
	blocks    map[common.Hash]*types.Block   // every block built, canonical or not
	receipts  map[common.Hash]types.Receipts // by block hash; absent for blocks without transactions
	children  map[l1ChildKey]*types.Block    // blocks without transactions, built once
	pending   []*types.Transaction           // queued by Include for the next block on the head's fork
	canon     []l1Entry                      // canonical chain by number; the last one is the head
	safe      uint64
	finalized uint64
	calls     []fakerpc.Call
}

// l1Entry is one canonical block and the fork tag it was built with.
type l1Entry struct {
	block *types.Block
	tag   uint64
}

type l1ChildKey struct {
	parent common.Hash
	number uint64
	tag    uint64
}

// StartL1 starts an L1 on 127.0.0.1. Setup mistakes panic; the caller must
// call Close. (testutil.NewL1 wraps it for tests.)
func StartL1(cfg L1Config) (*L1, error) {
	return startL1(cfg, func(format string, args ...any) { panic(fmt.Sprintf(format, args...)) })
}

// StartL1Reporting is StartL1 with later setup mistakes (e.g. SetHead above
// the head) reported to fail, such as a test's Fatalf, instead of panicking.
func StartL1Reporting(cfg L1Config, fail func(format string, args ...any)) (*L1, error) {
	return startL1(cfg, fail)
}

func startL1(cfg L1Config, fail func(format string, args ...any)) (*L1, error) {
	if cfg.Finalized > cfg.Safe || cfg.Safe > cfg.Head {
		return nil, fmt.Errorf("testutil: StartL1: want Finalized %d <= Safe %d <= Head %d", cfg.Finalized, cfg.Safe, cfg.Head)
	}
	if cfg.ChainID == 0 {
		cfg.ChainID = fakechain.L1ChainID
	}
	l := &L1{
		fail:      fail,
		cfg:       cfg,
		faults:    new(fakerpc.Faults),
		blocks:    map[common.Hash]*types.Block{},
		receipts:  map[common.Hash]types.Receipts{},
		children:  map[l1ChildKey]*types.Block{},
		safe:      cfg.Safe,
		finalized: cfg.Finalized,
	}
	l.extendLocked(cfg.Head+1, 0, nil)
	srv := rpc.NewServer()
	if err := srv.RegisterName("eth", &l1EthAPI{l}); err != nil {
		return nil, fmt.Errorf("testutil: registering L1 eth API: %w", err)
	}
	handler := node.NewHTTPHandlerStack(fakerpc.Recorder(l.record, srv), nil, []string{"*"}, nil)
	l.server = httptest.NewServer(l.faults.Wrap(handler)) // listens on 127.0.0.1 only
	l.rpc = srv
	return l, nil
}

// Close stops the L1's server, dropping requests held by a stall. It may be
// called more than once.
func (l *L1) Close() {
	l.faults.Close()
	l.server.Close()
	l.rpc.Stop()
}

// URL returns the L1's HTTP JSON-RPC endpoint.
func (l *L1) URL() string { return l.server.URL }

// Faults returns the L1's fault switches.
func (l *L1) Faults() *fakerpc.Faults { return l.faults }

// Head returns the canonical head ("latest").
func (l *L1) Head() eth.L1BlockRef {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l1BlockRef(l.canon[len(l.canon)-1].block)
}

// Safe returns the block the "safe" label points at.
func (l *L1) Safe() eth.L1BlockRef {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l1BlockRef(l.canon[l.safe].block)
}

// Finalized returns the block the "finalized" label points at.
func (l *L1) Finalized() eth.L1BlockRef {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l1BlockRef(l.canon[l.finalized].block)
}

// Ref returns the canonical block at height n. A height above the head is a
// setup mistake: it fails the test (or panics) and returns a zero ref.
func (l *L1) Ref(n uint64) eth.L1BlockRef {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n >= uint64(len(l.canon)) {
		l.fail("testutil: L1.Ref(%d): above the head %d", n, len(l.canon)-1)
		return eth.L1BlockRef{}
	}
	return l1BlockRef(l.canon[n].block)
}

// Advance appends k blocks to the canonical chain, on the head's fork. The
// first of them carries the transactions queued with Include.
func (l *L1) Advance(k int) {
	if k < 0 {
		l.fail("testutil: L1.Advance(%d): negative", k)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.extendLocked(uint64(k), l.canon[len(l.canon)-1].tag, l.takePendingLocked(k))
}

// SetHead moves the head to height n: higher extends the chain on the head's
// fork (the first new block carries the transactions queued with Include),
// lower truncates it (as a node that rewinds). Truncating below the
// finalized label is a setup mistake; the safe label is lowered to n if above.
func (l *L1) SetHead(n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	head := uint64(len(l.canon) - 1)
	switch {
	case n > head:
		l.extendLocked(n-head, l.canon[head].tag, l.takePendingLocked(int(n-head)))
	case n < l.finalized:
		l.fail("testutil: L1.SetHead(%d): below the finalized block %d", n, l.finalized)
	default:
		l.canon = l.canon[:n+1]
		l.safe = min(l.safe, n)
	}
}

// SetLabels points the safe and finalized labels at heights on the canonical
// chain; they must satisfy finalized <= safe <= head. They may move backwards,
// to play an L1 node that lies or lost its state.
func (l *L1) SetLabels(safe, finalized uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if head := uint64(len(l.canon) - 1); finalized > safe || safe > head {
		l.fail("testutil: L1.SetLabels(safe %d, finalized %d): want finalized <= safe <= head %d", safe, finalized, head)
		return
	}
	l.safe, l.finalized = safe, finalized
}

// Reorg replaces every canonical block above height at with a block of fork
// tag, keeping the head's height: block at+1 and up are rebuilt on block at,
// without transactions (so reorging out the block that carries a batch drops
// the batch; transactions still queued with Include stay queued). Tag 0 is
// the original chain, so Reorg(at, 0) restores it where it had no included
// transactions (for the default L1, the Tree's L1 origins). The replaced
// blocks stay available by hash, as in geth. The safe label is lowered to at
// if above; reorging the finalized block, or a Reorg that changes nothing, is
// a setup mistake.
func (l *L1) Reorg(at uint64, tag uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	head := uint64(len(l.canon) - 1)
	switch {
	case at >= head:
		l.fail("testutil: L1.Reorg(%d): nothing above it (head %d)", at, head)
		return
	case at < l.finalized:
		l.fail("testutil: L1.Reorg(%d): below the finalized block %d", at, l.finalized)
		return
	}
	if l.childLocked(l.canon[at].block, at+1, tag, nil).Hash() == l.canon[at+1].block.Hash() {
		l.fail("testutil: L1.Reorg(%d, %d): block %d already has tag %d; nothing would change", at, tag, at+1, tag)
		return
	}
	l.canon = l.canon[:at+1]
	l.extendLocked(head-at, tag, nil)
	l.safe = min(l.safe, at)
}

// Calls returns every JSON-RPC call received so far, in order of arrival;
// each element of a batch is one call.
func (l *L1) Calls() []fakerpc.Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]fakerpc.Call(nil), l.calls...)
}

// CallCount returns how many calls to method were received so far; each
// element of a batch counts.
func (l *L1) CallCount(method string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fakerpc.CountCalls(l.calls, method)
}

// OpenL1Client returns op-service's real L1Client for url with its hash checks
// on (TrustRPC false, MustBePostMerge off, as sources.L1ClientSimpleConfig sets
// it) and a 5 s call timeout; the caller calls the returned close function.
// (testutil.DialL1 wraps it for tests.)
func OpenL1Client(url string) (*sources.L1Client, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lgr := log.NewLogger(log.DiscardHandler())
	rpcClient, err := client.NewRPC(ctx, lgr, url, client.WithCallTimeout(5*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("testutil: dialing L1 %s: %w", url, err)
	}
	c, err := sources.NewL1Client(rpcClient, lgr, nil, sources.L1ClientSimpleConfig(false, sources.RPCKindStandard, 100))
	if err != nil {
		rpcClient.Close()
		return nil, nil, fmt.Errorf("testutil: L1 client for %s: %w", url, err)
	}
	return c, rpcClient.Close, nil
}

// extendLocked appends k canonical blocks of fork tag, the first carrying
// txs. Callers hold l.mu (or own l alone).
func (l *L1) extendLocked(k uint64, tag uint64, txs []*types.Transaction) {
	for i := range k {
		var parent *types.Block
		n := uint64(len(l.canon))
		if n > 0 {
			parent = l.canon[n-1].block
		}
		var blockTxs []*types.Transaction
		if i == 0 {
			blockTxs = txs
		}
		l.canon = append(l.canon, l1Entry{block: l.childLocked(parent, n, tag, blockTxs), tag: tag})
	}
}

// childLocked returns block n of fork tag on parent (nil for genesis). A
// block without transactions is built on first use: the same (parent, n,
// tag) always gives the same block. A block with txs is built anew, with its
// receipts. Callers hold l.mu.
func (l *L1) childLocked(parent *types.Block, n uint64, tag uint64, txs []*types.Transaction) *types.Block {
	var parentHash common.Hash
	if parent != nil {
		parentHash = parent.Hash()
	}
	if len(txs) > 0 {
		b, receipts := linkedL1BlockWithTxs(parentHash, n, tag, txs, l.cfg.ChainID)
		l.blocks[b.Hash()] = b
		l.receipts[b.Hash()] = receipts
		return b
	}
	key := l1ChildKey{parent: parentHash, number: n, tag: tag}
	if b, ok := l.children[key]; ok {
		return b
	}
	var b *types.Block
	if !l.cfg.Linked && tag == 0 {
		// the Tree's synthetic L1 block: the L1 origin of Tree blocks
		b = types.NewBlockWithHeader(fakechain.L1Header(n))
	} else {
		b, _ = linkedL1BlockWithTxs(parentHash, n, tag, nil, l.cfg.ChainID)
	}
	l.children[key] = b
	l.blocks[b.Hash()] = b
	return b
}

// linkedL1Header returns the header of a post-merge L1 block at height n on
// parent, with the tag in its extra data; types.NewBlock fills in the roots.
func linkedL1Header(parent common.Hash, n uint64, tag uint64) *types.Header {
	extra := binary.BigEndian.AppendUint64(nil, tag)
	seed := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, n), tag)
	header := &types.Header{
		ParentHash: parent,
		Coinbase:   common.HexToAddress("0x1000000000000000000000000000000000000005"),
		Root:       crypto.Keccak256Hash([]byte("lightcl/testutil L1 state"), parent.Bytes(), seed),
		Difficulty: new(big.Int),
		Number:     new(big.Int).SetUint64(n),
		GasLimit:   fakechain.GasLimit,
		Time:       fakechain.GenesisTime + fakechain.L1BlockTime*n,
		Extra:      extra,
		MixDigest:  crypto.Keccak256Hash([]byte("lightcl/testutil randao"), seed),
		BaseFee:    big.NewInt(fakechain.L1BaseFee),
	}
	return header
}

func l1BlockRef(b *types.Block) eth.L1BlockRef {
	return eth.InfoToL1BlockRef(eth.HeaderBlockInfo(b.Header()))
}

// record appends calls to the L1's log.
func (l *L1) record(calls []fakerpc.Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, calls...)
}

// l1EthAPI serves the L1's eth_ namespace. Every exported method is an RPC
// method.
type l1EthAPI struct{ l *L1 }

// ChainId serves eth_chainId.
func (a *l1EthAPI) ChainId() *hexutil.Big {
	return (*hexutil.Big)(new(big.Int).SetUint64(a.l.cfg.ChainID))
}

// BlockNumber serves eth_blockNumber: the head's number.
func (a *l1EthAPI) BlockNumber() hexutil.Uint64 {
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	return hexutil.Uint64(len(a.l.canon) - 1)
}

// GetBlockByNumber serves eth_getBlockByNumber for a label (latest, pending,
// safe, finalized, earliest) or a 0x number on the canonical chain; null above
// the head.
func (a *l1EthAPI) GetBlockByNumber(numberOrLabel string, fullTx bool) (json.RawMessage, error) {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	var n uint64
	switch numberOrLabel {
	case "latest", "pending":
		n = uint64(len(l.canon) - 1)
	case "safe":
		n = l.safe
	case "finalized":
		n = l.finalized
	case "earliest":
		n = 0
	default:
		var err error
		n, err = hexutil.DecodeUint64(numberOrLabel)
		if err != nil {
			return nil, &fakerpc.Error{Code: -32602, Msg: fmt.Sprintf("invalid block number or label %q: %v", numberOrLabel, err)}
		}
		if n >= uint64(len(l.canon)) {
			return nil, nil
		}
	}
	return l.marshalBlockLocked(l.canon[n].block, fullTx)
}

// GetBlockByHash serves eth_getBlockByHash for any block the L1 built,
// canonical or not; null when absent.
func (a *l1EthAPI) GetBlockByHash(hash common.Hash, fullTx bool) (json.RawMessage, error) {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.blocks[hash]
	if !ok {
		return nil, nil
	}
	return l.marshalBlockLocked(b, fullTx)
}
