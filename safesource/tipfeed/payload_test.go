package tipfeed

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/log"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
)

func TestCheckPayload(t *testing.T) {
	tree := fakechain.NewTree()
	b := tree.Extend(tree.Genesis().Hash(), 1, 1)[0]
	good := func() *eth.ExecutionPayloadEnvelope {
		env, err := eth.BlockAsPayloadEnv(b, tree.RollupConfig())
		require.NoError(t, err)
		return env
	}
	require.NoError(t, checkPayload(good(), b.Hash()))

	for name, tc := range map[string]struct {
		env  func() *eth.ExecutionPayloadEnvelope
		hash common.Hash
	}{
		"no answer":               {func() *eth.ExecutionPayloadEnvelope { return nil }, b.Hash()},
		"an envelope, no payload": {func() *eth.ExecutionPayloadEnvelope { return &eth.ExecutionPayloadEnvelope{} }, b.Hash()},
		"another block":           {good, tree.Genesis().Hash()},
		"a field changed under the same hash": {func() *eth.ExecutionPayloadEnvelope {
			env := good()
			env.ExecutionPayload.GasUsed++
			return env
		}, b.Hash()},
		"a transaction dropped under the same hash": {func() *eth.ExecutionPayloadEnvelope {
			env := good()
			env.ExecutionPayload.Transactions = nil
			return env
		}, b.Hash()},
	} {
		require.ErrorIs(t, checkPayload(tc.env(), tc.hash), ErrBadPayload, name)
	}
}

func TestNewestSkipsToTheLastPendingHead(t *testing.T) {
	heads := make(chan headNote, 4)
	require.Equal(t, headNote{Number: 1}, newest(heads, headNote{Number: 1}), "nothing pending")
	for n := range 3 {
		heads <- headNote{Number: hexutil.Uint64(2 + n)}
	}
	require.Equal(t, headNote{Number: 4}, newest(heads, headNote{Number: 1}))
	require.Empty(t, heads, "the skipped heads are taken out")
}

func TestLastErrorIsCutTo300BytesOfValidUTF8(t *testing.T) {
	r := &Remote{cfg: Config{Name: "x"}, log: log.NewLogger(log.DiscardHandler()), metrics: NoopMetrics{}}
	r.fail(kindHead, errors.New(strings.Repeat("é", 400)))
	r.fail(kindHead, errors.New("a"+strings.Repeat("é", 400))) // 300 bytes end inside an "é"
	s := r.Status()
	require.EqualValues(t, 2, s.Errors)
	require.LessOrEqual(t, len(s.LastError), maxLastError)
	require.GreaterOrEqual(t, len(s.LastError), maxLastError-1)
	require.True(t, utf8.ValidString(s.LastError))
}
