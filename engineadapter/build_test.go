package engineadapter_test

import (
	"context"
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource"
)

// buildEngine is an in-memory engine for the build path's logic: it keeps a
// canonical chain of refs, "builds" a block from any attributes, and answers
// as a test scripts it. (The build path against a real op-geth is tested in
// safesource/l1derive and internal/e2e.)
type buildEngine struct {
	canon []eth.L2BlockRef
	built map[common.Hash]eth.L2BlockRef

	fcuWithAttrs     func() (*eth.ForkchoiceUpdatedResult, error) // nil: VALID with a payload id
	newPayloadStatus eth.ExecutePayloadStatus                     // "": VALID
	wrongParent      bool                                         // getPayload answers a block on another parent
	calls            []string
	pending          eth.L2BlockRef
}

func newBuildEngine(n int) *buildEngine {
	e := &buildEngine{built: map[common.Hash]eth.L2BlockRef{}}
	for i := 0; i <= n; i++ {
		e.canon = append(e.canon, e.block(i, 0))
	}
	return e
}

func (e *buildEngine) block(n int, salt uint64) eth.L2BlockRef {
	ref := eth.L2BlockRef{Number: uint64(n), Time: uint64(2 * n), Hash: common.BigToHash(big.NewInt(int64(n)<<20 | int64(salt) + 1))}
	if n > 0 {
		ref.ParentHash = e.canon[n-1].Hash
	}
	return ref
}

func (e *buildEngine) ForkchoiceUpdate(_ context.Context, fc *eth.ForkchoiceState, attrs *eth.PayloadAttributes) (*eth.ForkchoiceUpdatedResult, error) {
	valid := &eth.ForkchoiceUpdatedResult{PayloadStatus: eth.PayloadStatusV1{Status: eth.ExecutionValid}}
	if attrs == nil {
		e.calls = append(e.calls, "fcu")
		if b, ok := e.built[fc.HeadBlockHash]; ok {
			e.canon = append(e.canon[:b.Number], b)
		}
		return valid, nil
	}
	e.calls = append(e.calls, "fcu+attrs")
	if e.fcuWithAttrs != nil {
		return e.fcuWithAttrs()
	}
	var parent eth.L2BlockRef
	for _, b := range e.canon {
		if b.Hash == fc.HeadBlockHash {
			parent = b
		}
	}
	e.pending = eth.L2BlockRef{Number: parent.Number + 1, ParentHash: parent.Hash, Time: uint64(attrs.Timestamp),
		Hash: common.BigToHash(big.NewInt(int64(parent.Number+1)<<20 | 0xb0b))}
	if e.wrongParent {
		e.pending.ParentHash = common.Hash{0xba, 0xd}
	}
	id := eth.PayloadID{1}
	valid.PayloadID = &id
	return valid, nil
}

func (e *buildEngine) GetPayload(context.Context, eth.PayloadInfo) (*eth.ExecutionPayloadEnvelope, error) {
	e.calls = append(e.calls, "getPayload")
	p := e.pending
	return &eth.ExecutionPayloadEnvelope{ExecutionPayload: &eth.ExecutionPayload{
		ParentHash: p.ParentHash, BlockNumber: eth.Uint64Quantity(p.Number), BlockHash: p.Hash, Timestamp: eth.Uint64Quantity(p.Time),
	}}, nil
}

func (e *buildEngine) NewPayload(_ context.Context, p *eth.ExecutionPayload, _ *common.Hash) (*eth.PayloadStatusV1, error) {
	e.calls = append(e.calls, "newPayload")
	if e.newPayloadStatus != "" {
		return &eth.PayloadStatusV1{Status: e.newPayloadStatus}, nil
	}
	e.built[p.BlockHash] = eth.L2BlockRef{Number: uint64(p.BlockNumber), Hash: p.BlockHash, ParentHash: p.ParentHash, Time: uint64(p.Timestamp)}
	return &eth.PayloadStatusV1{Status: eth.ExecutionValid}, nil
}

func (e *buildEngine) L2BlockRefByLabel(_ context.Context, label eth.BlockLabel) (eth.L2BlockRef, error) {
	switch label {
	case eth.Unsafe:
		return e.canon[len(e.canon)-1], nil
	default:
		return e.canon[0], nil
	}
}

func (e *buildEngine) L2BlockRefByNumber(_ context.Context, n uint64) (eth.L2BlockRef, error) {
	if n >= uint64(len(e.canon)) {
		return eth.L2BlockRef{}, fmt.Errorf("block %d: %w", n, ethereum.NotFound)
	}
	return e.canon[n], nil
}

// noBuildEngine is an engine without getPayload.
type noBuildEngine struct{ e *buildEngine }

func (n noBuildEngine) ForkchoiceUpdate(ctx context.Context, fc *eth.ForkchoiceState, a *eth.PayloadAttributes) (*eth.ForkchoiceUpdatedResult, error) {
	return n.e.ForkchoiceUpdate(ctx, fc, a)
}
func (n noBuildEngine) NewPayload(ctx context.Context, p *eth.ExecutionPayload, r *common.Hash) (*eth.PayloadStatusV1, error) {
	return n.e.NewPayload(ctx, p, r)
}
func (n noBuildEngine) L2BlockRefByLabel(ctx context.Context, l eth.BlockLabel) (eth.L2BlockRef, error) {
	return n.e.L2BlockRefByLabel(ctx, l)
}
func (n noBuildEngine) L2BlockRefByNumber(ctx context.Context, x uint64) (eth.L2BlockRef, error) {
	return n.e.L2BlockRefByNumber(ctx, x)
}

// derivingSource says the engine's block at safe is safe and asks for the
// next one to be built.
type derivingSource struct {
	e    *buildEngine
	safe uint64
}

func (s *derivingSource) Name() string { return "deriving" }
func (s *derivingSource) Heads(context.Context) (safesource.Heads, error) {
	b := s.e.canon[s.safe]
	return safesource.Heads{Safe: b, LocalSafe: b, Finalized: s.e.canon[0]}, nil
}
func (s *derivingSource) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	return s.e.L2BlockRefByNumber(ctx, n)
}
func (s *derivingSource) PendingBuild() (safesource.BuildRequest, bool) {
	p := s.e.canon[s.safe]
	return safesource.BuildRequest{Parent: p, Attributes: &eth.PayloadAttributes{Timestamp: eth.Uint64Quantity(p.Time + 2)}}, true
}

func TestBuildPath(t *testing.T) {
	ctx := context.Background()
	invalidAttrs := &hexutilError{code: engine.InvalidPayloadAttributes.ErrorCode(), msg: "Invalid payload attributes"}
	for _, tt := range []struct {
		name    string
		setup   func(e *buildEngine)
		noBuild bool
		errIs   error
		wantErr bool
		calls   []string
		event   engineadapter.EventKind
		built   bool
	}{
		{name: "builds the derived block and makes it the head",
			calls: []string{"fcu+attrs", "getPayload", "newPayload", "fcu"}, event: engineadapter.Built, built: true},
		{name: "attributes refused: nothing more sent",
			setup: func(e *buildEngine) {
				e.fcuWithAttrs = func() (*eth.ForkchoiceUpdatedResult, error) { return nil, invalidAttrs }
			},
			wantErr: true, calls: []string{"fcu+attrs"}, event: engineadapter.EngineInvalid},
		{name: "engine syncing: no block, no error, the build waits",
			setup: func(e *buildEngine) {
				e.fcuWithAttrs = func() (*eth.ForkchoiceUpdatedResult, error) {
					return &eth.ForkchoiceUpdatedResult{PayloadStatus: eth.PayloadStatusV1{Status: eth.ExecutionSyncing}}, nil
				}
			},
			calls: []string{"fcu+attrs"}, event: engineadapter.EngineSyncing},
		{name: "built block INVALID: not made the head",
			setup:   func(e *buildEngine) { e.newPayloadStatus = eth.ExecutionInvalid },
			wantErr: true, calls: []string{"fcu+attrs", "getPayload", "newPayload"}, event: engineadapter.EngineInvalid},
		{name: "payload on another parent: refused before newPayload",
			setup:   func(e *buildEngine) { e.wrongParent = true },
			wantErr: true, calls: []string{"fcu+attrs", "getPayload"}},
		{name: "engine without getPayload",
			noBuild: true, errIs: engineadapter.ErrCannotBuild, calls: nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newBuildEngine(5)
			if tt.setup != nil {
				tt.setup(e)
			}
			var eng engineadapter.Engine = e
			if tt.noBuild {
				eng = noBuildEngine{e}
			}
			src := &derivingSource{e: e, safe: 5}
			a, err := engineadapter.New(engineadapter.DefaultConfig(), eng, src, nil, nil)
			require.NoError(t, err)
			var events []engineadapter.EventKind
			a.OnEvent(func(ev engineadapter.Event) { events = append(events, ev.Kind) })

			// the first tick consolidates safe 5, then builds 6 on it
			d, err := a.Step(ctx)
			switch {
			case tt.errIs != nil:
				require.ErrorIs(t, err, tt.errIs)
			case tt.wantErr:
				require.Error(t, err)
			default:
				require.NoError(t, err)
			}
			var buildCalls []string
			for _, c := range e.calls {
				if c != "fcu" || len(buildCalls) > 0 {
					buildCalls = append(buildCalls, c)
				}
			}
			require.Equal(t, tt.calls, buildCalls)
			if tt.event != 0 || tt.built {
				require.Contains(t, events, tt.event)
			}
			st := a.Status()
			if tt.built {
				require.Equal(t, reorg.Build, d.Action)
				require.Equal(t, uint64(6), st.Unsafe.Number)
				require.Equal(t, e.canon[6].Hash, st.Unsafe.Hash)
				require.Equal(t, uint64(5), st.Safe.Number, "safe stays until the source finds the block")
				return
			}
			require.Equal(t, uint64(5), st.Unsafe.Number, "no block built")
			if tt.setup != nil && e.newPayloadStatus == eth.ExecutionInvalid {
				// the next tick builds the same block again: it is not sent
				_, err := a.Step(ctx)
				require.Error(t, err)
				n := 0
				for _, c := range e.calls {
					if c == "newPayload" {
						n++
					}
				}
				require.Equal(t, 1, n, "the INVALID block is never sent again")
			}
		})
	}
}

// hexutilError is an rpc.Error with a code, as the Engine API answers.
type hexutilError struct {
	code int
	msg  string
}

func (e *hexutilError) Error() string  { return e.msg }
func (e *hexutilError) ErrorCode() int { return e.code }
