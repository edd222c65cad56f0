package remotel2

import (
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"
)

// A block with a withdrawals root and no withdrawals list makes op-service's
// checks dereference nil; the source refuses it first.
func TestBlockWithWithdrawalsRootButNoWithdrawals(t *testing.T) {
	root := common.Hash{1}
	b := &sources.RPCBlock{RPCHeader: sources.RPCHeader{Number: 7, WithdrawalsRoot: &root}}
	s := &Source{}
	_, _, err := s.blockRef("safe", b)
	require.ErrorContains(t, err, "withdrawals")
}

func TestGuardTurnsPanicsIntoErrors(t *testing.T) {
	_, err := guard(func() (eth.L2BlockRef, error) {
		var b *sources.RPCBlock
		return eth.L2BlockRef{Number: uint64(b.Number)}, nil // nil dereference
	})
	require.ErrorContains(t, err, "malformed answer")
}
