package fakeel

import (
	"errors"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// debugAPI serves the debug_ namespace (ELConfig.Debug). Every exported
// method is an RPC method.
type debugAPI struct{ el *EL }

// SetHead serves debug_setHead: the EL forgets every block above number
// (EL.DropAbove). Like op-geth, it refuses when it holds no block above
// number ("not allowed to rewind to a future block").
func (a *debugAPI) SetHead(number hexutil.Uint64) error {
	e := a.el
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceSync()
	for _, b := range e.blocks {
		if b.NumberU64() > uint64(number) {
			e.dropAboveLocked(uint64(number))
			return nil
		}
	}
	return errors.New("not allowed to rewind to a future block")
}
