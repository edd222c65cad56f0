package sim_test

import (
	"crypto/ecdsa"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/safesource"
)

// TestGossipValidator runs messages, in order, through the simulation's
// gossip source and op-node's validator: what each fault sends is refused for
// the reason it is meant to hit, and nothing else is. A forged block is
// refused for its signature only: signed by the sequencer it is accepted.
func TestGossipValidator(t *testing.T) {
	tree := fakechain.NewTree()
	chain := tree.Extend(tree.Genesis().Hash(), 3, 0)
	b, old := chain[2], chain[0]
	forged := tree.Child(chain[1].Hash(), forgedTag) // b's sibling
	f := newGossipFeed(tree, func(common.Hash) bool { return false }, map[string]int{})

	sign := func(b *types.Block, key *ecdsa.PrivateKey) []byte {
		data, err := f.signBlock(b, key)
		require.NoError(t, err)
		return data
	}
	copyOf := func(data []byte, variant int) []byte {
		m, err := duplicate(gossipMsg{data: data}, variant)
		require.NoError(t, err)
		return m.data
	}
	atB, oldMsg := sign(b, sequencerKey), sign(old, sequencerKey)

	for _, step := range []struct {
		name    string
		block   *types.Block
		data    []byte
		transit uint64
		want    pubsub.ValidationResult
		reason  string
	}{
		{"forged block signed by another key", forged, sign(forged, forgerKey), 0, pubsub.ValidationReject, "invalid block signature"},
		{"the sequencer's block", b, atB, 2, pubsub.ValidationAccept, ""},
		{"the same bytes again", b, copyOf(atB, 0), 2, pubsub.ValidationIgnore, "seen-cache"},
		{"the same message compressed another way", b, copyOf(atB, 1), 2, pubsub.ValidationIgnore, "seen-cache"},
		{"the same block re-signed", b, copyOf(atB, 2), 2, pubsub.ValidationIgnore, "validated already seen message again"},
		{"a block 61 s on the way", old, oldMsg, 61, pubsub.ValidationReject, "payload is too old"},
		{"its copy, identical, later", old, copyOf(oldMsg, 0), 0, pubsub.ValidationIgnore, "seen-cache"},
		{"the block re-signed, 60 s on the way", old, copyOf(oldMsg, 2), 60, pubsub.ValidationAccept, ""},
		{"the forged block signed by the sequencer", forged, sign(forged, sequencerKey), 0, pubsub.ValidationAccept, ""},
	} {
		res, reason, env := f.receive(step.block, step.data, step.transit)
		require.Equal(t, resultName(step.want), resultName(res), step.name)
		require.Equal(t, step.reason, reason, step.name)
		if res != pubsub.ValidationAccept {
			require.Nil(t, env, step.name)
			continue
		}
		require.Equal(t, step.block.Hash(), env.ExecutionPayload.BlockHash, step.name)
		got, err := f.PayloadByHash(t.Context(), step.block.Hash())
		require.NoError(t, err, step.name)
		require.Same(t, env, got, step.name)
	}
	_, err := f.PayloadByHash(t.Context(), chain[1].Hash()) // never gossiped, and no honest remote here
	require.ErrorIs(t, err, safesource.ErrNotFound)
}
