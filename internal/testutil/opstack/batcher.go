package opstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/ethereum-optimism/optimism/op-batcher/compressor"
	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	derivparams "github.com/ethereum-optimism/optimism/op-node/rollup/derive/params"
	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// BatchKind is how the test batcher encodes blocks into a channel.
type BatchKind int

const (
	// Singular encodes one batch per L2 block (derive.SingularChannelOut,
	// with op-batcher's shadow compressor).
	Singular BatchKind = iota
	// Span encodes the channel's blocks as one span batch
	// (derive.SpanChannelOut); Delta is active from genesis.
	Span
)

// String returns "singular" or "span".
func (k BatchKind) String() string {
	switch k {
	case Singular:
		return "singular"
	case Span:
		return "span"
	default:
		return fmt.Sprintf("BatchKind(%d)", int(k))
	}
}

// channelSizes says how the batcher cuts data.
type channelSizes struct {
	// target is the compressed size at which a channel is full and the
	// next one starts.
	target uint64
	// maxFrame bounds one frame (its 23 bytes of overhead included); each
	// frame goes in its own transaction, behind the version byte.
	maxFrame uint64
}

// defaultSizes fit a test's blocks in one channel of one frame.
var defaultSizes = channelSizes{target: 100_000, maxFrame: 120_000}

var (
	batcherTip    = big.NewInt(params.Wei)
	batcherFeeCap = big.NewInt(params.GWei) // far above the L1's base fee
)

// BatchData encodes the sequencer's blocks after the last posted one (see
// PostBatches), up to upTo, into channels of kind, and returns the calldata
// of their frames in order: one frame per item, behind the derivation
// version byte 0x00. It neither posts them nor counts them as posted: a test
// corrupts a copy and posts it with PostData to show that derivation ignores
// it.
func (s *Stack) BatchData(ctx context.Context, upTo uint64, kind BatchKind) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, _, err := s.batchData(ctx, upTo, kind)
	return data, err
}

// PostData sends each item as the calldata of one transaction from the
// batcher to the batch inbox (dynamic fee, signed for the L1 chain), all in
// one new L1 block on the head, in order, and returns that block. The data is
// posted as given, valid or not; PostData does not count any L2 block as
// posted.
func (s *Stack) PostData(data ...[]byte) (eth.L1BlockRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.postData(data)
}

// PostBatches posts the sequencer's blocks after the last posted one, up to
// upTo, as channels of kind (BatchData) in one new L1 block (PostData), and
// returns that block. A block counts as posted while the L1 block carrying
// its batch is canonical: after an L1 reorg dropped that block, PostBatches
// posts the L2 block again. upTo must be above the last posted block and at
// most the sequencer's head.
func (s *Stack) PostBatches(ctx context.Context, upTo uint64, kind BatchKind) (eth.L1BlockRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, last, err := s.batchData(ctx, upTo, kind)
	if err != nil {
		return eth.L1BlockRef{}, err
	}
	l1Block, err := s.postData(data)
	if err != nil {
		return eth.L1BlockRef{}, err
	}
	s.posts = append(s.posts, post{l1: l1Block.ID(), last: last})
	return l1Block, nil
}

// batchData is BatchData, also returning the last block encoded; the caller
// holds s.mu.
func (s *Stack) batchData(ctx context.Context, upTo uint64, kind BatchKind) ([][]byte, eth.BlockID, error) {
	posted, err := s.posted(ctx)
	if err != nil {
		return nil, eth.BlockID{}, err
	}
	head := s.seq.Head()
	switch {
	case upTo <= posted.Number:
		return nil, eth.BlockID{}, fmt.Errorf("opstack: nothing to post up to %d: blocks up to %d are posted", upTo, posted.Number)
	case upTo > head.Number:
		return nil, eth.BlockID{}, fmt.Errorf("opstack: cannot post up to %d: the sequencer's head is %s", upTo, head)
	}
	payloads := make([]*eth.ExecutionPayload, 0, upTo-posted.Number)
	parent := posted
	for n := posted.Number + 1; n <= upTo; n++ {
		env, err := s.engine.PayloadByNumber(ctx, n)
		if err != nil {
			return nil, eth.BlockID{}, fmt.Errorf("opstack: reading L2 block %d from the sequencer: %w", n, err)
		}
		p := env.ExecutionPayload
		if p.ParentHash != parent.Hash {
			return nil, eth.BlockID{}, fmt.Errorf("opstack: L2 block %s does not build on %s", p.ID(), parent)
		}
		payloads = append(payloads, p)
		parent = p.ID()
	}
	data, err := encodeChannels(s.rollupCfg, kind, s.sizes, payloads)
	if err != nil {
		return nil, eth.BlockID{}, fmt.Errorf("opstack: encoding blocks %d..%d as %s batches: %w", posted.Number+1, upTo, kind, err)
	}
	return data, parent, nil
}

// posted returns the last L2 block whose batch is on the canonical L1 (the
// L2 genesis if none), forgetting posts an L1 reorg dropped; the caller holds
// s.mu.
func (s *Stack) posted(ctx context.Context) (eth.BlockID, error) {
	keep := 0
	for _, p := range s.posts {
		ref, err := s.l1Client.L1BlockRefByNumber(ctx, p.l1.Number)
		if errors.Is(err, ethereum.NotFound) || err == nil && ref.Hash != p.l1.Hash {
			break
		}
		if err != nil {
			return eth.BlockID{}, fmt.Errorf("opstack: checking the batch in L1 block %s: %w", p.l1, err)
		}
		keep++
	}
	s.posts = s.posts[:keep]
	if keep == 0 {
		return s.rollupCfg.Genesis.L2, nil
	}
	return s.posts[keep-1].last, nil
}

// postData is PostData; the caller holds s.mu.
func (s *Stack) postData(data [][]byte) (eth.L1BlockRef, error) {
	if len(data) == 0 {
		return eth.L1BlockRef{}, errors.New("opstack: PostData: no data")
	}
	chainID := s.rollupCfg.L1ChainID
	signer := types.LatestSignerForChainID(chainID)
	txs := make([]*types.Transaction, 0, len(data))
	for i, d := range data {
		gas, err := core.IntrinsicGas(d, nil, nil, false, true, true, true)
		if err != nil {
			return eth.L1BlockRef{}, fmt.Errorf("opstack: gas of batcher transaction %d: %w", i, err)
		}
		inbox := s.rollupCfg.BatchInboxAddress
		tx, err := types.SignNewTx(s.batcherKey, signer, &types.DynamicFeeTx{
			ChainID:   chainID,
			Nonce:     s.batcherNonce,
			GasTipCap: batcherTip,
			GasFeeCap: batcherFeeCap,
			Gas:       gas,
			To:        &inbox,
			Data:      bytes.Clone(d),
		})
		if err != nil {
			return eth.L1BlockRef{}, fmt.Errorf("opstack: signing batcher transaction %d: %w", i, err)
		}
		s.batcherNonce++
		txs = append(txs, tx)
	}
	s.l1.Include(txs...)
	s.l1.Advance(1)
	return s.l1.Head(), nil
}

// encodeChannels encodes payloads, in order, into as many channels of kind
// as they need, and returns every frame behind the version byte.
func encodeChannels(cfg *rollup.Config, kind BatchKind, sizes channelSizes, payloads []*eth.ExecutionPayload) ([][]byte, error) {
	var out [][]byte
	co, err := newChannelOut(cfg, kind, sizes.target)
	if err != nil {
		return nil, err
	}
	fresh := true // co holds no block yet
	for i := 0; i < len(payloads); {
		_, err := co.AddBlock(cfg, payloads[i])
		switch {
		case err == nil:
			i, fresh = i+1, false
			continue
		case fresh || !errors.Is(err, derive.ErrCompressorFull) && !errors.Is(err, derive.ErrTooManyRLPBytes):
			return nil, fmt.Errorf("adding block %s: %w", payloads[i].ID(), err)
		}
		// the channel is full without this block: close it, start another
		frames, err := drainChannel(co, sizes.maxFrame)
		if err != nil {
			return nil, err
		}
		out = append(out, frames...)
		if co, err = newChannelOut(cfg, kind, sizes.target); err != nil {
			return nil, err
		}
		fresh = true
	}
	frames, err := drainChannel(co, sizes.maxFrame)
	if err != nil {
		return nil, err
	}
	return append(out, frames...), nil
}

func newChannelOut(cfg *rollup.Config, kind BatchKind, target uint64) (derive.ChannelOut, error) {
	spec := rollup.NewChainSpec(cfg)
	switch kind {
	case Singular:
		comp, err := compressor.NewShadowCompressor(compressor.Config{TargetOutputSize: target, CompressionAlgo: derive.Zlib})
		if err != nil {
			return nil, fmt.Errorf("compressor: %w", err)
		}
		return derive.NewSingularChannelOut(comp, spec)
	case Span:
		return derive.NewSpanChannelOut(target, derive.Zlib, spec)
	default:
		return nil, fmt.Errorf("unknown batch kind %v", kind)
	}
}

// drainChannel closes co and returns its frames behind the version byte.
func drainChannel(co derive.ChannelOut, maxFrame uint64) ([][]byte, error) {
	if err := co.Close(); err != nil {
		return nil, fmt.Errorf("closing channel %s: %w", co.ID(), err)
	}
	var frames [][]byte
	for {
		var buf bytes.Buffer
		buf.WriteByte(derivparams.DerivationVersion0)
		_, err := co.OutputFrame(&buf, maxFrame)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("frame %d of channel %s: %w", len(frames), co.ID(), err)
		}
		frames = append(frames, buf.Bytes())
		if err != nil { // io.EOF comes with the last frame
			return frames, nil
		}
	}
}
