package engineadapter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource"
)

// forgedSource is a chainSource whose lookups are forged at some heights, as
// a rollup node's (whose refs carry any parent hash it likes) can be.
type forgedSource struct {
	*chainSource
	forged map[uint64]eth.L2BlockRef
}

// Heads answers the forged block for a label at a forged height.
func (s *forgedSource) Heads(ctx context.Context) (safesource.Heads, error) {
	h, err := s.chainSource.Heads(ctx)
	if ref, ok := s.forged[h.Finalized.Number]; ok {
		h.Finalized = ref
	}
	return h, err
}

func (s *forgedSource) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	if ref, ok := s.forged[n]; ok {
		return ref, nil
	}
	return s.chainSource.L2BlockRefByNumber(ctx, n)
}

// TestRefusedStatePutsTheHeadBack: a source on a chain that forks below the
// local finalized head forges two lookups so that the ancestor search agrees
// at finalized. The engine (like op-geth) makes the fork's head canonical and
// then refuses the state (-38002: finalized is not on its chain). The adapter
// halts and puts the engine's head back on the local finalized chain, at the
// local safe head; later ticks leave it there.
func TestRefusedStatePutsTheHeadBack(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 30, tagA)
	c := append(append([]*types.Block{}, a[:3]...), tree.Extend(a[2].Hash(), 27, 3)...) // forks after 3
	r := newRig(t, tree, fakeel.ELConfig{Peer: tree})
	r.elHas(a[19], tree.Genesis(), tree.Genesis())
	r.src.follow(a[29], 10, 5)
	require.NoError(t, r.step())

	// the lie: block 5 is a's, and c's block 6 names it as parent
	six := r.ref(c[5])
	six.ParentHash = a[4].Hash()
	src := &forgedSource{chainSource: newChainSource(tree), forged: map[uint64]eth.L2BlockRef{5: r.ref(a[4]), 6: six}}
	src.follow(c[19], 15, 5)
	ad, err := engineadapter.New(engineadapter.DefaultConfig(), r.engine, src, nil, nil)
	require.NoError(t, err)

	var halted error
	for range 4 { // the engine syncs to the fork's head first (SYNCING), then refuses it
		if _, err := ad.Step(context.Background()); errors.Is(err, engineadapter.ErrHalted) {
			halted = err
			break
		}
	}
	require.ErrorIs(t, halted, engineadapter.ErrHalted)
	require.ErrorContains(t, halted, "refused")
	head, safe, fin := r.labels()
	require.Equal(t, r.ref(a[9]), head, "the engine's head is back on the local chain, at local safe")
	require.Equal(t, r.ref(a[9]), safe)
	require.Equal(t, r.ref(a[4]), fin)
	require.True(t, ad.Status().Halted)

	for range 3 {
		_, _ = ad.Step(context.Background())
	}
	head, _, _ = r.labels()
	require.Equal(t, r.ref(a[9]), head, "later ticks leave the head on the local chain")
}

// stallingSource answers nothing until the caller gives up.
type stallingSource struct {
	*chainSource
	entered chan struct{}
}

func (s stallingSource) Heads(ctx context.Context) (safesource.Heads, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return safesource.Heads{}, ctx.Err()
}

// TestStopWhileATickWaitsLogsNoWarning: stopping Run while a tick waits on
// the source cuts that tick short; that is no skipped tick worth a warning
// (minimal-node's demo logged "Skipped tick … context canceled" at each
// clean exit).
func TestStopWhileATickWaitsLogsNoWarning(t *testing.T) {
	tree := fakechain.NewTree()
	a := tree.Extend(tree.Genesis().Hash(), 10, tagA)
	r := newRig(t, tree, fakeel.ELConfig{})
	r.elHas(a[9], a[4], a[1])
	src := stallingSource{chainSource: r.src, entered: make(chan struct{}, 1)}
	var logs testutil.LogBuffer
	ad, err := engineadapter.New(engineadapter.DefaultConfig(), r.engine, src,
		log.NewLogger(log.NewTerminalHandlerWithLevel(&logs, log.LevelWarn, false)), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ad.Run(ctx) }()
	select {
	case <-src.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first tick never asked the source")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	require.NotContains(t, logs.String(), "Skipped tick")
}
