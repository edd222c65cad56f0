package gossip

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"

	"github.com/ethereum-optimism/optimism/op-node/node/runcfg"
	"github.com/ethereum-optimism/optimism/op-node/p2p"
	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// Signer tells the feed which key signs the chain's unsafe blocks; it is
// op-node's p2p.GossipRuntimeConfig. The validator asks it for every block, so
// a change takes effect at the next block.
type Signer interface {
	// P2PSequencerAddress is the address of the current signer; while it is
	// the zero address, every block is ignored.
	P2PSequencerAddress() common.Address
	// PreviousP2PSequencerAddress is the signer before the last change while
	// its grace period lasts, else the zero address.
	PreviousP2PSequencerAddress() common.Address
	// ConfirmCurrentSigner is called for each block the current signer
	// signed; it may end the previous signer's grace period.
	ConfirmCurrentSigner()
}

var (
	_ p2p.GossipRuntimeConfig = Signer(nil)
	_ Signer                  = (*runcfg.RuntimeConfig)(nil)
	_ Signer                  = (*L1Signer)(nil)
)

// FixedSigner returns a Signer that is always addr, with no previous signer.
func FixedSigner(addr common.Address) Signer { return fixedSigner(addr) }

type fixedSigner common.Address

func (s fixedSigner) P2PSequencerAddress() common.Address       { return common.Address(s) }
func (fixedSigner) PreviousP2PSequencerAddress() common.Address { return common.Address{} }
func (fixedSigner) ConfirmCurrentSigner()                       {}

// L1Source is what L1Signer reads from L1: the head, and the SystemConfig's
// storage at a block. *sources.L1Client has these methods.
type L1Source interface {
	runcfg.RuntimeCfgL1Source
	L1BlockRefByLabel(ctx context.Context, label eth.BlockLabel) (eth.L1BlockRef, error)
}

// L1Signer is the unsafe block signer as op-node reads it from L1: the
// SystemConfig's unsafeBlockSigner slot, through op-node's runcfg. After a
// change, the previous signer is still accepted until a block by the new one
// is, or for runcfg.DefaultSignerGracePeriod (3h) at most.
type L1Signer struct {
	rc  *runcfg.RuntimeConfig
	l1  L1Source
	log log.Logger
}

// NewL1Signer returns a signer read from l1 for the rollup config's
// SystemConfig. It is the zero address, so blocks are ignored, until the
// first Refresh or RefreshHead succeeds.
func NewL1Signer(logger log.Logger, l1 L1Source, rollupCfg *rollup.Config) *L1Signer {
	if logger == nil {
		logger = log.NewLogger(log.DiscardHandler())
	}
	return &L1Signer{rc: runcfg.NewRuntimeConfig(logger, l1, rollupCfg), l1: l1, log: logger}
}

// P2PSequencerAddress returns the current signer.
func (s *L1Signer) P2PSequencerAddress() common.Address { return s.rc.P2PSequencerAddress() }

// PreviousP2PSequencerAddress returns the previous signer during its grace period.
func (s *L1Signer) PreviousP2PSequencerAddress() common.Address {
	return s.rc.PreviousP2PSequencerAddress()
}

// ConfirmCurrentSigner ends the previous signer's grace period.
func (s *L1Signer) ConfirmCurrentSigner() { s.rc.ConfirmCurrentSigner() }

// Refresh reads the signer as of the L1 block l1Ref.
func (s *L1Signer) Refresh(ctx context.Context, l1Ref eth.L1BlockRef) error {
	if err := s.rc.Load(ctx, l1Ref); err != nil {
		return fmt.Errorf("gossip: signer at L1 block %d (%s): %w", l1Ref.Number, l1Ref.Hash, err)
	}
	return nil
}

// RefreshHead reads the signer as of the L1 head, as op-node does with its
// default of no confirmation depth.
func (s *L1Signer) RefreshHead(ctx context.Context) error {
	head, err := s.l1.L1BlockRefByLabel(ctx, eth.Unsafe)
	if err != nil {
		return fmt.Errorf("gossip: signer: reading the L1 head: %w", err)
	}
	return s.Refresh(ctx, head)
}

// readTimeout bounds each read of Run, as op-node does.
const readTimeout = 10 * time.Second

// Run reads the signer at the L1 head now and then every interval (op-node
// reloads every 10 minutes) until ctx ends; then it returns nil. A failed
// read is logged and tried again at the next tick.
func (s *L1Signer) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("gossip: signer reload interval %s is not positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, readTimeout)
		err := s.RefreshHead(cctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("Could not reload the unsafe block signer", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
