package gossip_test

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/safesource/gossip"
)

// Example starts a gossip feed on 127.0.0.1 that accepts blocks signed by one
// key and runs it until its context ends. A real node gives its peers in
// StaticPeers and reads the signer from L1 with NewL1Signer, and hands the
// feed to the engine adapter (alone or merged with tipfeed.Merge).
func Example() {
	cfg := gossip.Config{
		RollupConfig: rollupConfig(),
		Signer:       gossip.FixedSigner(common.HexToAddress("0x57CB4E5Bd2e0A1aB1D5e8cD5B4b2f5F2Cb1b6b01")),
		ListenIP:     net.IPv4(127, 0, 0, 1),
		// StaticPeers: []string{"/ip4/10.0.0.1/tcp/9222/p2p/16Uiu2HAm..."},
	}
	feed, err := gossip.New(context.Background(), cfg, nil, nil)
	if err != nil {
		panic(err)
	}
	defer feed.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- feed.Run(ctx, make(chan *eth.ExecutionPayloadEnvelope)) }()

	st := feed.Status()
	fmt.Println("peers:", len(st.Peers))
	fmt.Println("dial me at:", strings.HasSuffix(st.ListenAddrs[0].String(), "/p2p/"+st.ID.String()))
	cancel()
	fmt.Println("run:", <-done)
	// Output:
	// peers: 0
	// dial me at: true
	// run: <nil>
}
