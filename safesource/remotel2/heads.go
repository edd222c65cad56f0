package remotel2

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum"
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
		h, err = guardHeads(func() (safesource.Heads, error) { return s.elHeads(cctx) })
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

// elHeads fetches the "safe" and "finalized" blocks in one JSON-RPC batch and
// verifies each block's hash and transaction root before reading its L1 origin.
func (s *Source) elHeads(ctx context.Context) (safesource.Heads, error) {
	var safe, fin *sources.RPCBlock
	batch := []rpc.BatchElem{
		{Method: "eth_getBlockByNumber", Args: []any{"safe", true}, Result: &safe},
		{Method: "eth_getBlockByNumber", Args: []any{"finalized", true}, Result: &fin},
	}
	if err := s.rpc.BatchCallContext(ctx, batch); err != nil {
		return safesource.Heads{}, fmt.Errorf("safe/finalized batch: %w", err)
	}
	safeRef, err := s.blockRef("safe", safe, batch[0].Error)
	if err != nil {
		return safesource.Heads{}, err
	}
	finRef, err := s.blockRef("finalized", fin, batch[1].Error)
	if err != nil {
		return safesource.Heads{}, err
	}
	return safesource.Heads{Safe: safeRef, LocalSafe: safeRef, Finalized: finRef}, nil
}

func (s *Source) blockRef(label string, b *sources.RPCBlock, callErr error) (eth.L2BlockRef, error) {
	if callErr != nil {
		if errors.Is(eth.MaybeAsNotFoundErr(callErr), ethereum.NotFound) {
			// an EL answers "safe block not found" before it has one
			return eth.L2BlockRef{}, fmt.Errorf("%s block: %w (%w)", label, callErr, safesource.ErrNoHeads)
		}
		return eth.L2BlockRef{}, fmt.Errorf("%s block: %w", label, callErr)
	}
	if b == nil {
		return eth.L2BlockRef{}, fmt.Errorf("remote has no %s block: %w", label, safesource.ErrNoHeads)
	}
	if err := checkBlockShape(b); err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("%s block %d: %w", label, uint64(b.Number), err)
	}
	env, err := b.ExecutionPayloadEnvelope(false)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("%s block %d: %w", label, uint64(b.Number), err)
	}
	ref, err := derive.PayloadToBlockRef(s.cfg.RollupConfig, env.ExecutionPayload)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("%s block %d: %w", label, uint64(b.Number), err)
	}
	return ref, nil
}

// clHeads reads optimism_syncStatus. A rollup node that does not tell local-safe
// from safe leaves local_safe_l2 zero; it is then taken as safe.
func (s *Source) clHeads(ctx context.Context) (safesource.Heads, error) {
	st, err := s.rollup.SyncStatus(ctx)
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

// checkBlockShape refuses what op-service's block checks would dereference
// without looking: a withdrawals root with no withdrawals list.
func checkBlockShape(b *sources.RPCBlock) error {
	if b.WithdrawalsRoot != nil && b.Withdrawals == nil {
		return errors.New("block has a withdrawals root but no withdrawals list")
	}
	return nil
}

// guardHeads is guard for a call that returns heads.
func guardHeads(call func() (safesource.Heads, error)) (h safesource.Heads, err error) {
	defer func() {
		if r := recover(); r != nil {
			h, err = safesource.Heads{}, fmt.Errorf("malformed answer: %v", r)
		}
	}()
	return call()
}

// guard runs a call into op-service's clients, turning a panic on a malformed
// remote answer into an error: nothing a remote sends may stop the process.
func guard(call func() (eth.L2BlockRef, error)) (ref eth.L2BlockRef, err error) {
	defer func() {
		if r := recover(); r != nil {
			ref, err = eth.L2BlockRef{}, fmt.Errorf("malformed answer: %v", r)
		}
	}()
	return call()
}
