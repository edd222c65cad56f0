package l1derive_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/testutil/opgeth"
	"github.com/lightcl/lightcl/internal/testutil/opstack"
	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/l1derive"
)

// TestCrossCheckCapsFinalized: the followed source's finalized claim is
// held at the block L1 derivation has confirmed (genesis before any), never
// passed on ahead of it; the safe head passes through. A claim below the
// confirmed block passes unchanged, and one at the confirmed height with
// another hash is a disagreement with L1.
func TestCrossCheckCapsFinalized(t *testing.T) {
	ctx := testContext(t)
	w := newWorld(t)
	blocks := w.build(ctx, t, 12) // blocks[i] is block i+1
	p1 := w.post(ctx, t, 6, opstack.Singular)
	p2 := w.post(ctx, t, 12, opstack.Singular)
	w.follow(ctx, t, 12) // the follower holds 1..12; L1 has finalized nothing
	genesis, err := w.engine.L2BlockRefByNumber(ctx, 0)
	require.NoError(t, err)

	primary := safesource.NewStatic("primary", w.engine.L2BlockRefByNumber)
	require.NoError(t, primary.Set(safesource.Heads{Safe: blocks[11], LocalSafe: blocks[11], Finalized: blocks[9]}))
	check := w.checker(t, "")
	cc, err := l1derive.NewCrossCheck(primary, check)
	require.NoError(t, err)

	h, err := cc.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, genesis.ID(), h.Finalized.ID(), "nothing confirmed yet: finalized held at genesis, not the claimed 10")
	require.Equal(t, blocks[11], h.Safe, "the safe head passes through")
	require.NoError(t, h.Check())

	w.stack.L1().SetLabels(p1.Number, p1.Number)
	h = crossCheckUntil(ctx, t, cc, func(h safesource.Heads) bool { return h.Finalized.Number == 6 })
	require.Equal(t, blocks[5], h.Finalized, "held at the confirmed block 6")
	require.Equal(t, blocks[11], h.Safe)
	require.NoError(t, h.Check())

	w.stack.L1().SetLabels(p2.Number, p2.Number)
	h = crossCheckUntil(ctx, t, cc, func(safesource.Heads) bool { return check.Confirmed().Number == 12 })
	require.Equal(t, blocks[11], check.Confirmed())
	require.Equal(t, blocks[9], h.Finalized, "the claim 10 is below the confirmed 12: passed on")

	other := blocks[11]
	other.Hash = common.Hash{0x01}
	require.NoError(t, primary.Set(safesource.Heads{Safe: other, LocalSafe: other, Finalized: other}))
	_, err = cc.Heads(ctx)
	require.ErrorIs(t, err, l1derive.ErrCrossCheck, "another block 12 claimed final where L1 derives blocks[11]")
}

// TestCrossCheckResumesFromConfirmed: a checker restarted with the file of
// Config.ConfirmedPath derives on from the confirmed block, and one without
// it re-derives from genesis rather than from the engine's labels.
func TestCrossCheckResumesFromConfirmed(t *testing.T) {
	ctx := testContext(t)
	w := newWorld(t)
	blocks := w.build(ctx, t, 12)
	p1 := w.post(ctx, t, 6, opstack.Singular)
	w.post(ctx, t, 12, opstack.Singular)
	w.stack.L1().SetLabels(p1.Number, p1.Number)
	w.follow(ctx, t, 12)
	w.followFinalized(ctx, t, 6) // the engine's labels: safe 12, finalized 6

	path := filepath.Join(t.TempDir(), "state", "confirmed.json")
	first := w.checker(t, path)
	checkUntil(ctx, t, first, func(l1derive.Status) bool { return first.Confirmed().Number == 6 })
	require.Equal(t, blocks[5], first.Confirmed())

	again := w.checker(t, path) // a restart
	require.Equal(t, blocks[5], again.Confirmed(), "read from the file before any derivation")
	st := checkUntil(ctx, t, again, func(st l1derive.Status) bool { return st.Heads.Safe.Number == 12 })
	require.Equal(t, uint64(6), st.Derived, "derived 7..12 only: resumed from the confirmed block 6")
	require.Equal(t, 1, st.Resets)

	fresh := w.checker(t, "")
	st = checkUntil(ctx, t, fresh, func(st l1derive.Status) bool { return st.Heads.Safe.Number == 12 })
	require.Equal(t, uint64(12), st.Derived, "no file: all 12 re-derived from genesis, not from the engine's safe 12 or finalized 6")
}

// TestCrossCheckRestartFindsALieBelowTheEngineLabels: an engine that a lying
// source brought onto another chain from block 5 on, and whose safe and
// finalized labels it set at 8, is checked again after a restart: from the
// confirmed block 4 saved by an earlier run, or from genesis without the
// file. Both find the mismatch at block 5, below the engine's labels.
func TestCrossCheckRestartFindsALieBelowTheEngineLabels(t *testing.T) {
	ctx := testContext(t)
	w := newWorld(t)
	seqBlocks := w.build(ctx, t, 8)
	p1 := w.post(ctx, t, 4, opstack.Singular)
	w.stack.L1().SetLabels(p1.Number, p1.Number)
	w.follow(ctx, t, 4) // the follower holds the sequencer's 1..4

	// an earlier run confirmed block 4
	path := filepath.Join(t.TempDir(), "confirmed.json")
	earlier := w.checker(t, path)
	checkUntil(ctx, t, earlier, func(l1derive.Status) bool { return earlier.Confirmed().Number == 4 })

	// then followed a lying source onto other blocks 5..8, labelled final
	other := w.buildOtherBlocksOnHead(ctx, t, seqBlocks[4:8], 4)
	w.post(ctx, t, 8, opstack.Singular)
	require.NoError(t, opgeth.NewSequencer(t, w.follower).SetLabels(ctx, other[3], other[3]))
	lying := safesource.NewStatic("lying", w.engine.L2BlockRefByNumber)
	require.NoError(t, lying.Set(safesource.Heads{Safe: other[3], LocalSafe: other[3], Finalized: other[3]}))

	for _, tc := range []struct {
		name    string
		path    string
		derived uint64 // blocks matched before the mismatch
	}{
		{"restart with the confirmed file", path, 0},
		{"restart without it", "", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := w.checker(t, tc.path)
			cc, err := l1derive.NewCrossCheck(lying, check)
			require.NoError(t, err)
			for range 20 {
				var h safesource.Heads
				if h, err = cc.Heads(ctx); err != nil {
					break
				}
				require.LessOrEqual(t, h.Finalized.Number, uint64(4), "the lying finalized 8 is never passed on")
			}
			require.ErrorIs(t, err, l1derive.ErrCrossCheck)
			require.ErrorIs(t, err, l1derive.ErrMismatch)
			require.Contains(t, err.Error(), "block 5 ")
			require.Equal(t, tc.derived, check.Status().Derived)
		})
	}
}

// checker returns a CheckOnly source over the follower, keeping its
// confirmed block at path (none if empty).
func (w *world) checker(t *testing.T, path string) *l1derive.Source {
	t.Helper()
	cfg := l1derive.Config{Name: "check", CheckOnly: true, ConfirmedPath: path}
	s, err := l1derive.New(cfg, w.stack.RollupConfig(), w.l1, nil, w.engine, testLogger(t), nil)
	require.NoError(t, err)
	return s
}

// checkUntil calls s.Heads until done holds, at most 20 times.
func checkUntil(ctx context.Context, t *testing.T, s *l1derive.Source, done func(l1derive.Status) bool) l1derive.Status {
	t.Helper()
	for range 20 {
		_, err := s.Heads(ctx)
		require.NoError(t, err)
		if st := s.Status(); done(st) {
			return st
		}
	}
	t.Fatalf("checker not there after 20 calls: %+v", s.Status())
	return l1derive.Status{}
}

// crossCheckUntil calls c.Heads until done holds, at most 20 times.
func crossCheckUntil(ctx context.Context, t *testing.T, c *l1derive.CrossCheck, done func(safesource.Heads) bool) safesource.Heads {
	t.Helper()
	var h safesource.Heads
	for range 20 {
		var err error
		h, err = c.Heads(ctx)
		require.NoError(t, err)
		if done(h) {
			return h
		}
	}
	t.Fatalf("cross-check not there after 20 calls: last heads %+v, checker %+v", h, c.Checker().Status())
	return h
}
