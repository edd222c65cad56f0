package l1derive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/safesource"
)

// ErrConfirmedFile is wrapped when Config.ConfirmedPath cannot be read or
// written, or names another chain's block.
var ErrConfirmedFile = errors.New("confirmed-finalized file unusable")

// confirmedFile is what Config.ConfirmedPath holds: the highest finalized
// block a checker has derived from L1 and found in the engine, and the chain
// it belongs to.
type confirmedFile struct {
	L2ChainID *big.Int       `json:"l2_chain_id"`
	Genesis   common.Hash    `json:"l2_genesis"`
	Finalized eth.L2BlockRef `json:"confirmed_finalized"`
}

// genesisRef returns the chain's L2 genesis block as the rollup config names
// it: final by definition.
func genesisRef(cfg *rollup.Config) eth.L2BlockRef {
	g := cfg.Genesis
	return eth.L2BlockRef{Hash: g.L2.Hash, Number: g.L2.Number, Time: g.L2Time, L1Origin: g.L1}
}

// readConfirmed reads the confirmed block from path; ok is false when there
// is no file yet. A file for another chain, or one that does not parse, is an
// error: the path is likely wrong.
func readConfirmed(path string, cfg *rollup.Config) (ref eth.L2BlockRef, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return eth.L2BlockRef{}, false, nil
	}
	if err != nil {
		return eth.L2BlockRef{}, false, fmt.Errorf("l1derive: %w: %w", ErrConfirmedFile, err)
	}
	var f confirmedFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return eth.L2BlockRef{}, false, fmt.Errorf("l1derive: %w: %s: not a confirmed-finalized file: %w", ErrConfirmedFile, path, err)
	}
	g := genesisRef(cfg)
	switch {
	case f.L2ChainID == nil || f.L2ChainID.Cmp(cfg.L2ChainID) != 0:
		return eth.L2BlockRef{}, false, fmt.Errorf("l1derive: %w: %s is for L2 chain %v, the rollup config's is %v",
			ErrConfirmedFile, path, f.L2ChainID, cfg.L2ChainID)
	case f.Genesis != g.Hash:
		return eth.L2BlockRef{}, false, fmt.Errorf("l1derive: %w: %s is for the chain with L2 genesis %s, the rollup config's is %s",
			ErrConfirmedFile, path, f.Genesis, g.Hash)
	case f.Finalized.Hash == (common.Hash{}) || f.Finalized.Number < g.Number:
		return eth.L2BlockRef{}, false, fmt.Errorf("l1derive: %w: %s names no block at or above genesis", ErrConfirmedFile, path)
	}
	return f.Finalized, true, nil
}

// writeConfirmed writes ref to path atomically: a temporary file in the same
// folder, synced, then renamed over path. The folder is made if missing.
func writeConfirmed(path string, cfg *rollup.Config, ref eth.L2BlockRef) error {
	data, err := json.MarshalIndent(confirmedFile{L2ChainID: cfg.L2ChainID, Genesis: cfg.Genesis.L2.Hash, Finalized: ref}, "", "  ")
	if err != nil {
		return fmt.Errorf("l1derive: %w: %w", ErrConfirmedFile, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("l1derive: %w: %w", ErrConfirmedFile, err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("l1derive: %w: %w", ErrConfirmedFile, err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("l1derive: %w: %w", ErrConfirmedFile, err)
	}
	return nil
}

// Confirmed returns the highest finalized block the source has confirmed:
// derived from L1 data at or below L1's finalized block and found in the
// engine, in this run or (read from Config.ConfirmedPath) in an earlier one;
// the L2 genesis block before any. It never moves back, and does not wait
// for a Heads call in flight.
func (s *Source) Confirmed() eth.L2BlockRef {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	return s.confirmed
}

// confirm raises the confirmed block to the derived finalized head and
// writes it to Config.ConfirmedPath. A failed write is logged: a restart
// then resumes from an older confirmed block, which is safe. Callers hold
// s.mu.
func (s *Source) confirm() {
	fin := s.fin.finalized
	s.snapMu.Lock()
	up := fin.Number > s.confirmed.Number
	if up {
		s.confirmed = fin
	}
	s.snapMu.Unlock()
	if !up || s.cfg.ConfirmedPath == "" {
		return
	}
	if err := writeConfirmed(s.cfg.ConfirmedPath, s.rollup, fin); err != nil {
		s.log.Warn("Confirmed finalized block not saved; a restart re-derives from an older one", "number", fin.Number,
			"hash", fin.Hash, "path", s.cfg.ConfirmedPath, "err", err)
	}
}

// checkStart returns the block a CheckOnly source derives from at start and
// after a reset: the confirmed block if the engine holds it, else the L2
// genesis block. Never the engine's own labels: they were set by the source
// being checked, so the blocks below them are not known to match L1.
func (s *Source) checkStart(ctx context.Context) (eth.L2BlockRef, error) {
	conf, g := s.Confirmed(), genesisRef(s.rollup)
	if conf.Number > g.Number {
		at, err := s.l2.L2BlockRefByNumber(ctx, conf.Number)
		switch {
		case err == nil && at.Hash == conf.Hash:
			return at, nil
		case errors.Is(err, ethereum.NotFound):
			s.log.Warn("The engine lacks the confirmed finalized block; re-deriving from the L2 genesis", "number", conf.Number, "hash", conf.Hash)
		case err != nil:
			return eth.L2BlockRef{}, fmt.Errorf("%s: engine block %d: %w", s.cfg.Name, conf.Number, err)
		default:
			s.log.Error("The engine holds another block at the confirmed finalized height; re-deriving from the L2 genesis",
				"number", conf.Number, "confirmed", conf.Hash, "engine", at.Hash)
		}
	}
	at, err := s.l2.L2BlockRefByNumber(ctx, g.Number)
	switch {
	case err != nil:
		return eth.L2BlockRef{}, fmt.Errorf("%s: engine genesis block %d: %w", s.cfg.Name, g.Number, err)
	case at.Hash != g.Hash:
		return eth.L2BlockRef{}, fmt.Errorf("%s: the engine's block %d is %s, the rollup config's genesis %s: %w",
			s.cfg.Name, g.Number, at.Hash, g.Hash, safesource.ErrWrongChain)
	}
	return at, nil
}

// loadConfirmed reads Config.ConfirmedPath, if set, and writes it back at
// once, so that a path that cannot be written is refused at construction
// rather than found out at the first finalized block.
func (s *Source) loadConfirmed() error {
	path := s.cfg.ConfirmedPath
	if path == "" {
		if s.cfg.CheckOnly {
			s.log.Info("No file keeps the confirmed finalized block (Config.ConfirmedPath): every start re-derives from the L2 genesis")
		}
		return nil
	}
	ref, ok, err := readConfirmed(path, s.rollup)
	if err != nil {
		return err
	}
	if ok {
		s.confirmed = ref
		s.log.Info("Read the confirmed finalized block", "number", ref.Number, "hash", ref.Hash, "path", path)
	} else {
		s.log.Info("No confirmed finalized block saved yet: a first run, re-deriving from the L2 genesis", "path", path)
	}
	return writeConfirmed(path, s.rollup, s.confirmed)
}

// resetCheck restarts a CheckOnly source's pipeline from the confirmed block
// the engine holds, or from genesis.
func (s *Source) resetCheck(ctx context.Context, why string) error {
	start, err := s.checkStart(ctx)
	if err != nil {
		return err
	}
	s.restartPipeline(start)
	s.fin.restart(start)
	s.log.Info("Checking the engine from a block derivation confirmed", "why", why, "from", start.Number, "hash", start.Hash,
		"confirmed", s.Confirmed().Number)
	return nil
}

// checkEngine restarts a CheckOnly source from its confirmed block when the
// engine no longer holds the last block it matched: the followed source has
// moved the engine onto another chain below it, and the blocks it matched
// there are not the engine's any more.
func (s *Source) checkEngine(ctx context.Context) error {
	if !s.cfg.CheckOnly {
		return nil
	}
	at, err := s.l2.L2BlockRefByNumber(ctx, s.pending.Number)
	switch {
	case err == nil && at.Hash == s.pending.Hash:
		return nil
	case err != nil && !errors.Is(err, ethereum.NotFound):
		return fmt.Errorf("%s: engine block %d: %w", s.cfg.Name, s.pending.Number, err)
	}
	s.log.Warn("The engine's chain changed under the checked blocks; checking again from the confirmed block",
		"number", s.pending.Number, "checked", s.pending.Hash, "engine", at.Hash)
	return s.reset(ctx, "engine reorg")
}
