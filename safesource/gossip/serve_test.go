package gossip_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-node/p2p"
	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/safesource/gossip"
)

// chain serves one block by number.
type chain struct{ env *eth.ExecutionPayloadEnvelope }

func (c chain) PayloadByNumber(_ context.Context, n uint64) (*eth.ExecutionPayloadEnvelope, error) {
	if n != uint64(c.env.ExecutionPayload.BlockNumber) {
		return nil, fmt.Errorf("block %d: %w", n, ethereum.NotFound)
	}
	return c.env, nil
}

// TestServesPayloadsByNumber: with ServePayloads, a peer gets blocks over
// op-node's payload_by_number protocol (asked by hand here: op-node v1.19.6
// has no client).
func TestServesPayloadsByNumber(t *testing.T) {
	b := block(5, time.Now())
	w := newWorld(t, gossip.Config{Signer: gossip.FixedSigner(common.Address{1}), ServePayloads: chain{b}}, opts{})
	ask := func(n uint64) (code byte, env *eth.ExecutionPayloadEnvelope) {
		s, err := w.pub.node.Host().NewStream(t.Context(), w.feed.Status().ID, p2p.PayloadByNumberProtocolID(rollupConfig().L2ChainID))
		require.NoError(t, err)
		defer s.Close()
		require.NoError(t, binary.Write(s, binary.LittleEndian, n))
		require.NoError(t, s.CloseWrite())
		r := bufio.NewReader(s)
		var head [5]byte // result code, then the version on success
		if _, err := io.ReadFull(r, head[:1]); err != nil || head[0] != 0 {
			return head[0], nil
		}
		_, err = io.ReadFull(r, head[1:])
		require.NoError(t, err)
		require.Equal(t, uint32(1), binary.LittleEndian.Uint32(head[1:]), "an envelope, after Ecotone")
		data, err := io.ReadAll(snappy.NewReader(r))
		require.NoError(t, err)
		env = new(eth.ExecutionPayloadEnvelope)
		require.NoError(t, env.UnmarshalSSZ(eth.BlockV4, uint32(len(data)), bytes.NewReader(data)))
		return 0, env
	}

	code, got := ask(5)
	require.Equal(t, byte(0), code)
	require.Equal(t, b.ExecutionPayload.BlockHash, got.ExecutionPayload.BlockHash)
	code, _ = ask(6)
	require.Equal(t, byte(1), code, "not found")
}
