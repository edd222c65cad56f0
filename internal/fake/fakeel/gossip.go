package fakeel

import (
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
)

// Gossip plays p2p unsafe-block gossip into the EL: it inserts the chain to
// head from tree (the blocks the EL lacks) and makes head canonical, as a
// consensus client does with gossiped payloads. The safe and finalized labels
// are left as they are, so it refuses a head whose chain does not hold them:
// moving those is the adapter's job.
func (e *EL) Gossip(tree *fakechain.Tree, head common.Hash) error {
	chain := tree.Chain(head)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceSync()
	for _, b := range chain {
		if _, ok := e.blocks[b.Hash()]; ok {
			continue
		}
		if err := e.checkStorable(b); err != nil {
			return fmt.Errorf("testutil: Gossip: %w", err)
		}
		e.blocks[b.Hash()] = b
	}
	onChain := func(h common.Hash) bool {
		if h == (common.Hash{}) {
			return true // unset (ELConfig.FreshLabels)
		}
		b, ok := e.blocks[h]
		if !ok {
			return false
		}
		n := b.NumberU64()
		return n == 0 || (n <= uint64(len(chain)) && chain[n-1].Hash() == h)
	}
	if !onChain(e.safe) || !onChain(e.finalized) {
		return fmt.Errorf("testutil: Gossip: head %s does not descend from safe %s and finalized %s", head, e.safe, e.finalized)
	}
	e.setCanonical(head)
	return nil
}
