package fakeel_test

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
)

// dialWS dials the EL's websocket endpoint with go-ethereum's client, closed
// in t.Cleanup.
func dialWS(t *testing.T, el *fakeel.EL, opts ...rpc.ClientOption) *rpc.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rpc.DialOptions(ctx, el.WSURL(), opts...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// subscribeHeads subscribes c to newHeads.
func subscribeHeads(t *testing.T, c *rpc.Client) (chan *types.Header, *rpc.ClientSubscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch := make(chan *types.Header, 16)
	sub, err := c.EthSubscribe(ctx, ch, "newHeads")
	require.NoError(t, err)
	t.Cleanup(sub.Unsubscribe)
	return ch, sub
}

// nextHead waits for the next header on ch.
func nextHead(t *testing.T, ch chan *types.Header) common.Hash {
	t.Helper()
	select {
	case h := <-ch:
		return h.Hash()
	case <-time.After(5 * time.Second):
		t.Fatal("no newHeads notification within 5s")
		return common.Hash{}
	}
}

func TestELNewHeadsFollowsTheCanonicalHead(t *testing.T) {
	tree := fakechain.NewTree()
	el := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true})
	c := dialWS(t, el)
	heads, _ := subscribeHeads(t, c)
	chain := tree.Extend(tree.Genesis().Hash(), 4, 0)
	el.Insert(chain...)

	el.SetForkchoice(chain[2].Hash(), common.Hash{}, common.Hash{})
	require.Equal(t, chain[2].Hash(), nextHead(t, heads), "SetForkchoice moves the head")

	fork := tree.Child(chain[0].Hash(), 7)
	el.Insert(fork)
	var res eth.ForkchoiceUpdatedResult
	require.NoError(t, c.Call(&res, "engine_forkchoiceUpdatedV3",
		eth.ForkchoiceState{HeadBlockHash: fork.Hash()}, nil))
	require.Equal(t, eth.ExecutionValid, res.PayloadStatus.Status)
	require.Equal(t, fork.Hash(), nextHead(t, heads), "a forkchoice update reorgs to a fork")

	el.SetForkchoice(fork.Hash(), common.Hash{}, common.Hash{}) // no change: no notification
	el.SetForkchoice(chain[3].Hash(), common.Hash{}, common.Hash{})
	require.Equal(t, chain[3].Hash(), nextHead(t, heads), "an unchanged head is not notified again")

	el.DropAbove(2)
	require.Equal(t, chain[1].Hash(), nextHead(t, heads), "a restart that lost blocks lowers the head")
}

func TestELNewHeadsIsNotOnHTTP(t *testing.T) {
	el := testutil.NewEL(t, fakechain.NewTree(), fakeel.ELConfig{NoAuth: true})
	c, err := rpc.Dial(el.URL())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.EthSubscribe(context.Background(), make(chan *types.Header), "newHeads")
	require.ErrorIs(t, err, rpc.ErrNotificationsUnsupported)
}

func TestELDropSubscriptionsEndsThemAndAllowsNewOnes(t *testing.T) {
	tree := fakechain.NewTree()
	el := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true})
	c := dialWS(t, el)
	_, sub := subscribeHeads(t, c)

	el.DropSubscriptions()
	select {
	case err := <-sub.Err():
		require.Error(t, err, "a dropped connection ends the subscription with an error")
	case <-time.After(5 * time.Second):
		t.Fatal("subscription still alive after DropSubscriptions")
	}

	heads, _ := subscribeHeads(t, c) // go-ethereum's client reconnects
	chain := tree.Extend(tree.Genesis().Hash(), 1, 0)
	el.Insert(chain...)
	el.SetForkchoice(chain[0].Hash(), common.Hash{}, common.Hash{})
	require.Equal(t, chain[0].Hash(), nextHead(t, heads))
}

func TestELWebsocketChecksJWT(t *testing.T) {
	secret := fakeel.NewJWTSecret()
	el := testutil.NewEL(t, fakechain.NewTree(), fakeel.ELConfig{JWTSecret: secret})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := rpc.DialContext(ctx, el.WSURL())
	require.Error(t, err, "a websocket without a JWT is refused at the handshake")

	c := dialWS(t, el, rpc.WithHTTPAuth(node.NewJWTAuth(secret)))
	id, err := ethclient.NewClient(c).ChainID(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(fakechain.ChainID), id.Int64())
}
