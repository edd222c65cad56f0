package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum-optimism/optimism/op-node/node/safedb"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/log"

	"github.com/lightcl/lightcl/engineadapter"
	"github.com/lightcl/lightcl/reorg"
	"github.com/lightcl/lightcl/safesource/remotel2"
)

// safeHeads is the safe-head database (--safedb.path): op-node's own safedb
// on pebble, which answers optimism_safeHeadAtL1Block. Each safe head the
// adapter applies is recorded with the L1 block the source had derived up to
// when it named it: a rollup node's current_l1, or the L1 block derivation
// reached (--source l1). The records stay across restarts; a safe head that
// moves back or to another chain, or an L1 block derived up to that moves
// back, truncates them first, as op-node's reset does.
type safeHeads struct {
	db     *safedb.SafeDB
	log    log.Logger
	lastL1 eth.BlockID // the L1 block of the last record
}

// openSafeHeads opens the database at --safedb.path, if given. Only a source
// that says which L1 block its safe heads come from can feed it.
func (n *node) openSafeHeads() error {
	path := n.cfg.SafeDBPath
	if path == "" {
		return nil
	}
	switch {
	case n.quorum != nil:
		return badFlag(flagSafeDB, "a quorum's members do not agree on an L1 block their safe heads were derived up to: "+
			"only a rollup-node source (--%s %s) or --%s %s feed the safe-head database", flagSource, sourceL2, flagSource, sourceL1)
	case n.cfg.Source == sourceL2 && n.members[0].Kind() != remotel2.KindCL:
		return badFlag(flagSafeDB, "the source %s is an L2 EL, which does not say which L1 block its safe heads were derived up to: "+
			"only a rollup-node source or --%s %s feed the safe-head database", n.cfg.FollowURLs[0], flagSource, sourceL1)
	}
	db, err := safedb.NewSafeDB(quietLogger(n.log, log.LevelWarn), path) // it logs every record at info
	if err != nil {
		return badFlag(flagSafeDB, "%s: %v", path, err)
	}
	n.closers = append(n.closers, func() { _ = db.Close() })
	s := &safeHeads{db: db, log: n.log}
	if l1, _, err := db.LastEntry(context.Background()); err == nil {
		s.lastL1 = l1
	} else if !errors.Is(err, safedb.ErrNotFound) {
		return badFlag(flagSafeDB, "%s: reading its last record: %v", path, err)
	}
	n.safeHeads = s
	n.startLine = append(n.startLine, "safedb", path)
	return nil
}

// record is the adapter's event handler: it records a safe head that moved,
// with the L1 block of the source's answer that named it. It runs on the
// adapter's goroutine, between ticks.
func (s *safeHeads) record(e engineadapter.Event) {
	if e.Kind != engineadapter.SafeAdvanced && e.Kind != engineadapter.Built {
		return
	}
	safe, l1 := e.New.Safe, e.Heads.CurrentL1.ID()
	if safe == e.Old.Safe || safe.Hash != e.Heads.Safe.Hash || l1 == (eth.BlockID{}) {
		return // not the source's safe head, or the source did not say where it derived it from
	}
	if l1.Number < s.lastL1.Number {
		if err := s.truncateAbove(l1, safe); err != nil {
			s.log.Error("Safe-head database: could not drop the records above the L1 block derived up to", "l1", l1.Number, "err", err)
			return
		}
		s.log.Info("Safe-head database truncated: the L1 block derived up to moved back", "l1", l1.Number, "last_l1", s.lastL1.Number)
	}
	back := safe.Number <= e.Old.Safe.Number || e.Decision.Action == reorg.Reorg ||
		(l1.Number == s.lastL1.Number && l1.Hash != s.lastL1.Hash)
	if back {
		if err := s.db.SafeHeadReset(safe); err != nil {
			s.log.Error("Safe-head database: could not truncate it", "safe", safe.Number, "err", err)
			return
		}
		s.log.Info("Safe-head database truncated: the safe head or the L1 block derived up to moved back",
			"safe", safe.Number, "safe_hash", safe.Hash, "l1", l1.Number, "last_l1", s.lastL1.Number)
	}
	if err := s.db.SafeHeadUpdated(safe, l1); err != nil {
		s.log.Error("Safe-head database: could not record the safe head", "safe", safe.Number, "l1", l1.Number, "err", err)
		return
	}
	s.lastL1 = l1
}

// truncateAbove drops every record above the L1 block l1, which the source
// derived up to again after it had gone further (an L1 reorg, or a reset of
// its derivation). op-node's SafeHeadReset drops by L2 height from an L1
// height on: given block 0 at l1+1, it drops every record from the first one
// above l1, but keeps that record's key naming the block it was given (block
// 0), which is rewritten to name safe, the safe head at l1: still true there,
// so the answers stay monotonic until new records replace it.
func (s *safeHeads) truncateAbove(l1 eth.BlockID, safe eth.L2BlockRef) error {
	if err := s.db.SafeHeadReset(eth.L2BlockRef{L1Origin: eth.BlockID{Number: l1.Number + 1}}); err != nil {
		return err
	}
	kept, keptSafe, err := s.db.LastEntry(context.Background())
	switch {
	case errors.Is(err, safedb.ErrNotFound):
		return nil
	case err != nil:
		return err
	case kept.Number > l1.Number && keptSafe == (eth.BlockID{}):
		return s.db.SafeHeadUpdated(safe, kept)
	}
	return nil
}

// SafeHeadAtL1Block answers optimism_safeHeadAtL1Block as op-node does: the
// safe head recorded at the highest L1 block at or below number, with that
// L1 block. An L1 block below every record answers an error with the words
// "not found", which op-service's RollupClient turns into safedb.ErrNotFound;
// no other error here may contain them.
func (api *statusAPI) SafeHeadAtL1Block(ctx context.Context, number hexutil.Uint64) (*eth.SafeHeadResponse, error) {
	s := api.n.safeHeads
	if s == nil {
		return nil, fmt.Errorf("this node keeps no safe-head database: start it with --%s and a rollup-node source or --%s %s",
			flagSafeDB, flagSource, sourceL1)
	}
	l1, safe, err := s.db.SafeHeadAtL1(ctx, uint64(number))
	if errors.Is(err, safedb.ErrNotFound) {
		return nil, fmt.Errorf("no safe head recorded at or below L1 block %d: %w", number, err)
	}
	if err != nil {
		return nil, fmt.Errorf("safe head at L1 block %d: %w", number, err)
	}
	return &eth.SafeHeadResponse{L1Block: l1, SafeHead: safe}, nil
}
