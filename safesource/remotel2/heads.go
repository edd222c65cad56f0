package remotel2

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/lightcl/lightcl/safesource"
)

// Heads returns the remote's safe, local-safe and finalized heads (and, for a
// CL, its current L1 block), checked with safesource.Heads.Check.
func (s *Source) Heads(ctx context.Context) (safesource.Heads, error) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var h safesource.Heads
	var err error
	if s.kind == KindCL {
		h, err = s.clHeads(cctx)
	} else {
		h, err = guard(func() (safesource.Heads, error) { return s.elHeads(cctx) })
	}
	if err == nil {
		err = h.Check()
	}
	s.record("heads", err)
	if err != nil {
		return safesource.Heads{}, fmt.Errorf("%s: %w", s.cfg.Name, err)
	}
	s.noteRegression(h)
	return h, nil
}

// elHeads reads which blocks are the remote's "safe" and "finalized" heads in
// one JSON-RPC batch of header-only answers, and takes each head's ref from
// the refs it read before, by hash. A head not read before is fetched whole by
// its hash (the misses in a second batch), its hash and transaction root
// verified before its L1 origin is read, and kept. The header-only answers'
// other fields are not needed: a hash names one block, and a cached ref was
// verified when it was fetched. A remote whose safe head stands still, or
// whose finalized head was its safe head before, costs one batch of two
// headers a poll instead of two whole blocks.
func (s *Source) elHeads(ctx context.Context) (safesource.Heads, error) {
	poll := s.polls.Add(1)
	labels := [2]string{"safe", "finalized"}
	var ids [2]*headID
	batch := make([]rpc.BatchElem, len(labels))
	for i, label := range labels {
		batch[i] = rpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{label, false}, Result: &ids[i]}
	}
	if err := s.rpc.BatchCallContext(uncompressed(ctx), batch); err != nil {
		return safesource.Heads{}, fmt.Errorf("safe/finalized batch: %w", err)
	}
	var refs [2]eth.L2BlockRef
	var misses []int                          // indexes into labels
	var safeEnv *eth.ExecutionPayloadEnvelope // the safe block, when fetched whole
	for i, label := range labels {
		if err := checkHeadID(label, ids[i], batch[i].Error); err != nil {
			return safesource.Heads{}, err
		}
		if ref, ok := s.refs.Get(ids[i].Hash); ok {
			refs[i] = ref
			continue
		}
		if i == 1 && len(misses) == 1 && ids[1].Hash == ids[0].Hash {
			continue // finalized is the safe block, fetched once
		}
		misses = append(misses, i)
	}
	if len(misses) > 0 {
		blocks := make([]*sources.RPCBlock, len(misses))
		batch := make([]rpc.BatchElem, len(misses))
		for j, i := range misses {
			batch[j] = rpc.BatchElem{Method: "eth_getBlockByHash", Args: []any{ids[i].Hash, true}, Result: &blocks[j]}
		}
		if err := s.rpc.BatchCallContext(ctx, batch); err != nil {
			return safesource.Heads{}, fmt.Errorf("safe/finalized blocks by hash: %w", err)
		}
		for j, i := range misses {
			ref, env, err := s.headBlockRef(labels[i], ids[i], blocks[j], batch[j].Error)
			if err != nil {
				return safesource.Heads{}, err
			}
			refs[i] = ref
			if i == 0 {
				safeEnv = env
			}
		}
	}
	if refs[1] == (eth.L2BlockRef{}) {
		refs[1] = refs[0] // the same block
	}
	for _, ref := range refs {
		s.refs.Add(ref.Hash, ref)
	}
	s.keepSafePayload(poll, refs[0], safeEnv)
	return safesource.Heads{Safe: refs[0], LocalSafe: refs[0], Finalized: refs[1]}, nil
}

// uncompressed asks the remote not to compress its answer to the heads poll:
// two headers or a sync status, a few kilobytes, cost more CPU to compress
// and decompress than they save in bytes. Whole blocks are still asked for
// compressed (the client's default).
func uncompressed(ctx context.Context) context.Context {
	return rpc.NewContextWithHeaders(ctx, http.Header{"Accept-Encoding": {"identity"}})
}

// refCacheSize bounds the refs an EL remote's heads are taken from: 128 heads
// a poll interval apart (a finalized head that trails safe by up to 128 polls
// is found without a fetch); about 25 KiB.
const refCacheSize = 128

// headID is what elHeads reads of a header-only eth_getBlockByNumber answer.
type headID struct {
	Hash   common.Hash    `json:"hash"`
	Number hexutil.Uint64 `json:"number"`
}

// checkHeadID refuses a header-only answer for label that names no block.
func checkHeadID(label string, id *headID, callErr error) error {
	if callErr != nil {
		if errors.Is(eth.MaybeAsNotFoundErr(callErr), ethereum.NotFound) {
			// an EL answers "safe block not found" before it has one
			return fmt.Errorf("%s block: %w (%w)", label, callErr, safesource.ErrNoHeads)
		}
		return fmt.Errorf("%s block: %w", label, callErr)
	}
	if id == nil {
		return fmt.Errorf("remote has no %s block: %w", label, safesource.ErrNoHeads)
	}
	if id.Hash == (common.Hash{}) {
		return fmt.Errorf("%s block %d: answer has no hash", label, uint64(id.Number))
	}
	return nil
}

// headBlockRef reads the ref and payload of the block fetched by the hash the
// header-only answer id gave for label: the same block, or an error.
func (s *Source) headBlockRef(label string, id *headID, b *sources.RPCBlock, callErr error) (eth.L2BlockRef, *eth.ExecutionPayloadEnvelope, error) {
	if (callErr == nil && b == nil) || errors.Is(eth.MaybeAsNotFoundErr(callErr), ethereum.NotFound) {
		// the remote named the block, then did not have it: a reorg between
		// the two reads; the next poll reads the new head
		return eth.L2BlockRef{}, nil, fmt.Errorf("%s block %d (%s): gone between the header and the block read", label, uint64(id.Number), id.Hash)
	}
	if callErr != nil {
		return eth.L2BlockRef{}, nil, fmt.Errorf("%s block %d (%s): %w", label, uint64(id.Number), id.Hash, callErr)
	}
	ref, env, err := s.blockRef(label, b)
	if err != nil {
		return eth.L2BlockRef{}, nil, err
	}
	if ref.Hash != id.Hash || ref.Number != uint64(id.Number) {
		return eth.L2BlockRef{}, nil, fmt.Errorf("%s block: asked for %d (%s) by hash, got %d (%s)", label, uint64(id.Number), id.Hash, ref.Number, ref.Hash)
	}
	return ref, env, nil
}

// keepSafePayload keeps env, the safe block poll fetched whole, for
// PayloadByNumber; without one, a kept payload stays only while it is still
// the safe head. Of polls that overlap, the last to start decides.
func (s *Source) keepSafePayload(poll uint64, safe eth.L2BlockRef, env *eth.ExecutionPayloadEnvelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if poll < s.keptPoll {
		return
	}
	s.keptPoll = poll
	switch {
	case env != nil:
		s.safePayload = env
	case s.safePayload != nil && s.safePayload.ExecutionPayload.BlockHash != safe.Hash:
		s.safePayload = nil
	}
}

// blockRef verifies a block the remote sent for label and reads its ref; the
// block's payload comes with it.
func (s *Source) blockRef(label string, b *sources.RPCBlock) (eth.L2BlockRef, *eth.ExecutionPayloadEnvelope, error) {
	if err := checkBlockShape(b); err != nil {
		return eth.L2BlockRef{}, nil, fmt.Errorf("%s block %d: %w", label, uint64(b.Number), err)
	}
	env, err := b.ExecutionPayloadEnvelope(false)
	if err != nil {
		return eth.L2BlockRef{}, nil, fmt.Errorf("%s block %d: %w", label, uint64(b.Number), err)
	}
	ref, err := derive.PayloadToBlockRef(s.cfg.RollupConfig, env.ExecutionPayload)
	if err != nil {
		return eth.L2BlockRef{}, nil, fmt.Errorf("%s block %d: %w", label, uint64(b.Number), err)
	}
	return ref, env, nil
}

// clHeads reads optimism_syncStatus. A rollup node that does not tell local-safe
// from safe leaves local_safe_l2 zero; it is then taken as safe.
func (s *Source) clHeads(ctx context.Context) (safesource.Heads, error) {
	st, err := s.rollup.SyncStatus(uncompressed(ctx))
	if err != nil {
		return safesource.Heads{}, fmt.Errorf("optimism_syncStatus: %w", err)
	}
	if st == nil {
		return safesource.Heads{}, fmt.Errorf("optimism_syncStatus: empty answer: %w", safesource.ErrNoHeads)
	}
	h := safesource.Heads{Safe: st.SafeL2, LocalSafe: st.LocalSafeL2, Finalized: st.FinalizedL2, CurrentL1: st.CurrentL1}
	if h.LocalSafe == (eth.L2BlockRef{}) {
		h.LocalSafe = h.Safe
	}
	return h, nil
}

// noteRegression logs a remote whose heads went backwards. The heads still pass:
// a rollup node resets its safe head after an L1 reorg, and the adapter never
// moves its own heads backwards on the same chain.
func (s *Source) noteRegression(h safesource.Heads) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen {
		if h.Safe.Number < s.last.Safe.Number {
			s.log.Warn("Remote safe head went backwards", "from", s.last.Safe.Number, "from_hash", s.last.Safe.Hash,
				"to", h.Safe.Number, "to_hash", h.Safe.Hash)
		}
		if h.Finalized.Number < s.last.Finalized.Number {
			s.log.Warn("Remote finalized head went backwards", "from", s.last.Finalized.Number,
				"from_hash", s.last.Finalized.Hash, "to", h.Finalized.Number, "to_hash", h.Finalized.Hash)
		}
	}
	s.last, s.seen = h, true
}

// L2BlockRefByNumber returns the remote's canonical block at height n: from
// the EL (or a CL's paired EL), verified against its hash, or from
// optimism_outputAtBlock. A height the remote does not have wraps
// safesource.ErrNotFound where the remote says so.
func (s *Source) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var ref eth.L2BlockRef
	var err error
	if s.l2 != nil {
		ref, err = guard(func() (eth.L2BlockRef, error) { return s.l2.L2BlockRefByNumber(cctx, n) })
	} else {
		var out *eth.OutputResponse
		out, err = s.rollup.OutputAtBlock(cctx, n)
		if err == nil && out == nil {
			err = fmt.Errorf("optimism_outputAtBlock: empty answer: %w", safesource.ErrNotFound)
		}
		if err == nil {
			ref = out.BlockRef
		}
	}
	if err == nil && (ref.Number != n || ref.Hash == (eth.L2BlockRef{}).Hash) {
		err = fmt.Errorf("asked for block %d, got %d (%s)", n, ref.Number, ref.Hash)
	}
	s.record("block_by_number", err)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("%s: block %d: %w", s.cfg.Name, n, err)
	}
	return ref, nil
}

// PayloadByNumber returns the remote's payload at height n, for backfilling
// from the remote the source follows (engineadapter.PayloadProvider). The
// safe block an EL remote's Heads last fetched whole is kept while it is the
// safe head, and served when its height is asked for: a follower catching up
// to the remote's safe head gets that block without fetching it again. Any
// other height is fetched by number from the remote's EL (a rollup node's
// paired EL), its hash verified; a height the remote does not have wraps
// ethereum.NotFound. The payload may be shared: callers must not modify it.
func (s *Source) PayloadByNumber(ctx context.Context, n uint64) (*eth.ExecutionPayloadEnvelope, error) {
	s.mu.Lock()
	kept := s.safePayload
	s.mu.Unlock()
	if kept != nil && uint64(kept.ExecutionPayload.BlockNumber) == n {
		return kept, nil
	}
	if s.l2 == nil {
		return nil, fmt.Errorf("%s: payload %d: a rollup node without a paired EL serves no payloads", s.cfg.Name, n)
	}
	env, err := guard(func() (*eth.ExecutionPayloadEnvelope, error) { return s.l2.PayloadByNumber(ctx, n) })
	if err == nil && (env == nil || env.ExecutionPayload == nil) {
		err = fmt.Errorf("empty answer: %w", ethereum.NotFound)
	}
	if err == nil && uint64(env.ExecutionPayload.BlockNumber) != n {
		err = fmt.Errorf("asked for block %d, got %d", n, uint64(env.ExecutionPayload.BlockNumber))
	}
	s.record("payload_by_number", err)
	if err != nil {
		return nil, fmt.Errorf("%s: payload %d: %w", s.cfg.Name, n, err)
	}
	return env, nil
}

// checkBlockShape refuses what op-service's block checks would dereference
// without looking: a withdrawals root with no withdrawals list.
func checkBlockShape(b *sources.RPCBlock) error {
	if b.WithdrawalsRoot != nil && b.Withdrawals == nil {
		return errors.New("block has a withdrawals root but no withdrawals list")
	}
	return nil
}

// guard runs a call into op-service's clients, turning a panic on a malformed
// remote answer into an error: nothing a remote sends may stop the process.
func guard[T any](call func() (T, error)) (out T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			out, err = zero, fmt.Errorf("malformed answer: %v", r)
		}
	}()
	return call()
}
