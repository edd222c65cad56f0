package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/testutil/opgeth"
)

// TestMinimalNodeFollowsTwoChains: one minimal-node process with a --chains
// file follows two op-geth chains with different chain ids, each follower
// op-geth kept on its own sequencer's safe and finalized heads (backfilled,
// no peers) and at its tip, and answers each chain's optimism_syncStatus at
// /<chain id>.
func TestMinimalNodeFollowsTwoChains(t *testing.T) {
	type chainRun struct {
		w        *world
		follower *opgeth.Node
		refs     []eth.L2BlockRef
	}
	var chains []*chainRun
	var file strings.Builder
	for _, id := range []uint64{901, 902} {
		w := newWorldOfChain(t, opgeth.NewGenesisOfChain(id))
		c := &chainRun{w: w, refs: w.build(20+int(id-900)*10, 1)}
		c.follower = w.follower(fmt.Sprintf("follower-%d", id), false)
		chains = append(chains, c)
		fmt.Fprintf(&file, "[chain.%d]\nengine = %q\njwt-secret = %q\n\"l2.follow.source\" = %q\n\"rollup.config\" = %q\n"+
			"\"sync.mode\" = \"backfill\"\n\"poll-interval\" = \"200ms\"\n",
			id, c.follower.AuthRPC(), c.follower.JWTPath(), w.seq.HTTP(), writeRollupJSON(t, w.genesis.RollupConfig()))
	}
	path := filepath.Join(t.TempDir(), "chains.toml")
	require.NoError(t, os.WriteFile(path, []byte(file.String()), 0o600))
	// chain 901: 30 blocks, safe 20, finalized 10; chain 902: 40 blocks, safe 30, finalized 15
	for _, c := range chains {
		n := len(c.refs)
		c.w.label(c.refs[n-11], c.refs[n/2-6])
	}
	p := startNodeWith(t, "--chains", path, "--rpc.port", "0")
	for _, c := range chains {
		n := len(c.refs)
		requireLabels(c.w.ctx, t, c.follower.L2(t), c.refs[n-11], c.refs[n/2-6], p.stderr)
	}

	var root string
	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`status_rpc=(\S+)`).FindStringSubmatch(p.stderr.String())
		if m != nil {
			root = "http://" + m[1]
		}
		return m != nil
	}, 10*time.Second, 50*time.Millisecond)

	// both chains move on; the tip feed (the sequencer) brings each
	// follower's head to its sequencer's
	for _, c := range chains {
		c.refs = append(c.refs, c.w.build(5, 1)...)
		n := len(c.refs)
		c.w.label(c.refs[n-3], c.refs[n-10])
	}
	for _, c := range chains {
		n := len(c.refs)
		l2 := c.follower.L2(t)
		requireLabels(c.w.ctx, t, l2, c.refs[n-3], c.refs[n-10], p.stderr)
		require.Eventually(t, func() bool {
			head, err := l2.L2BlockRefByLabel(c.w.ctx, eth.Unsafe)
			return err == nil && head == c.refs[n-1]
		}, 60*time.Second, 50*time.Millisecond, "chain %d: the follower at its sequencer's tip; stderr:\n%s", c.w.genesis.ChainID(), p.stderr)

		rc, err := rpc.DialContext(c.w.ctx, fmt.Sprintf("%s/%d", root, c.w.genesis.ChainID()))
		require.NoError(t, err)
		st, err := sources.NewRollupClient(client.NewBaseRPCClient(rc)).SyncStatus(c.w.ctx)
		rc.Close()
		require.NoError(t, err)
		require.Equal(t, c.refs[n-3], st.SafeL2, "chain %d: safe_l2 at /%d", c.w.genesis.ChainID(), c.w.genesis.ChainID())
		require.Equal(t, c.refs[n-10], st.FinalizedL2)
		require.Equal(t, c.refs[n-1].ID(), st.UnsafeL2.ID())
	}
	p.stop()
}
