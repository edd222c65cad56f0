package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/fake/fakerollup"
	"github.com/lightcl/lightcl/internal/testutil"
)

// TestEveryFlagRefusesAWrongValue gives each flag and config file of
// minimal-node a wrong value: the binary exits 2 with one line naming the
// flag, and the engine receives no forkchoice update and no payload.
func TestEveryFlagRefusesAWrongValue(t *testing.T) {
	tree := fakechain.NewTree()
	secret := fakeel.NewJWTSecret()
	el := testutil.NewEL(t, tree, fakeel.ELConfig{JWTSecret: secret})
	engine := el.URL()
	otherEngine := testutil.NewEL(t, tree, fakeel.ELConfig{JWTSecret: secret, ChainID: 999})
	jwt := testutil.WriteJWTSecret(t, secret)
	remoteEL := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true}).URL()
	cl := testutil.NewRollupNode(t, tree, fakerollup.RollupNodeConfig{}).URL()
	rollupJSON := writeRollupConfig(t, tree)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	badHex := write("bad.hex", "0x"+strings.Repeat("zz", 32))
	malformedJSON := write("malformed.json", `{"genesis": {`)
	badCfg := *tree.RollupConfig()
	badCfg.BlockTime = 0
	data, err := json.Marshal(&badCfg)
	require.NoError(t, err)
	failsCheck := write("blocktime0.json", string(data))

	base := []string{"--engine", engine, "--jwt-secret", jwt, "--rpc.port", "-1"}
	with := func(args ...string) []string { return append(append([]string{}, base...), args...) }
	for _, tc := range []struct {
		name   string
		args   []string
		flag   string
		reason string
	}{
		{"engine URL without a scheme", []string{"--engine", "127.0.0.1:8551", "--jwt-secret", jwt, "--l2.follow.source", cl}, "engine", "not a URL"},
		{"engine on another chain", []string{"--engine", otherEngine.URL(), "--jwt-secret", jwt, "--rpc.port", "-1",
			"--l2.follow.source", remoteEL, "--rollup.config", rollupJSON}, "engine", "999"},
		{"JWT secret not hex", with("--l2.follow.source", cl), "jwt-secret", ""},
		{"rollup config file missing", with("--l2.follow.source", cl, "--rollup.config", filepath.Join(dir, "none.json")), "rollup.config", "no such file"},
		{"rollup config not JSON", with("--l2.follow.source", cl, "--rollup.config", malformedJSON), "rollup.config", "malformed.json"},
		{"rollup config failing its check", with("--l2.follow.source", remoteEL, "--rollup.config", failsCheck), "rollup.config", "block time"},
		{"unknown source kind", with("--l2.follow.source", cl, "--source", "l3"), "source", "l3"},
		{"follow source not a URL", with("--l2.follow.source", "ftp://remote"), "l2.follow.source", "scheme"},
		{"engine debug RPC not a URL", with("--l2.follow.source", cl, "--engine.debug-rpc", "127.0.0.1:8545"), "engine.debug-rpc", "not a URL"},
		{"quorum M above N", with("--source", "quorum", "--l2.follow.source", cl, "--l2.follow.source", remoteEL, "--l2.follow.quorum", "3"), "l2.follow.quorum", "out of range"},
		{"quorum M negative", with("--source", "quorum", "--l2.follow.source", cl, "--l2.follow.source", remoteEL, "--l2.follow.quorum", "-1"), "l2.follow.quorum", "out of range"},
		{"negative follow timeout", with("--l2.follow.source", cl, "--l2.follow.timeout", "-1s"), "l2.follow.timeout", "positive"},
		{"zero poll interval", with("--l2.follow.source", cl, "--poll-interval", "0s"), "poll-interval", "positive"},
		{"zero response limit", with("--l2.follow.source", cl, "--remote.max-response-mib", "0"), "remote.max-response-mib", "1..4096"},
		{"response limit not a number", with("--l2.follow.source", cl, "--remote.max-response-mib", "lots"), "remote.max-response-mib", "lots"},
		{"backfill source not a URL", with("--l2.follow.source", cl, "--sync.mode", "backfill", "--l2.backfill.source", "remote:8545"), "l2.backfill.source", "scheme"},
		{"L1 not a URL", with("--l2.follow.source", cl, "--l1", "l1-node"), "l1", "scheme"},
		{"l1.verify not a bool", with("--l2.follow.source", cl, "--l1.verify=maybe"), "l1.verify", "maybe"},
		{"l1.crosscheck not a bool", with("--l2.follow.source", cl, "--l1.crosscheck=maybe"), "l1.crosscheck", "maybe"},
		{"rpc address not an address", with("--l2.follow.source", cl, "--rpc.port", "0", "--rpc.addr", "256.0.0.1"), "rpc.addr", "256.0.0.1"},
		{"rpc port out of range", with("--l2.follow.source", cl, "--rpc.port", "70000"), "rpc.port", "70000"},
		{"metrics.enabled not a bool", with("--l2.follow.source", cl, "--metrics.enabled=maybe"), "metrics.enabled", "maybe"},
		{"metrics address not an address", with("--l2.follow.source", cl, "--metrics.enabled", "--metrics.port", "0", "--metrics.addr", "256.0.0.1"), "metrics.addr", "256.0.0.1"},
		{"metrics port negative", with("--l2.follow.source", cl, "--metrics.port", "-5"), "metrics.port", "-5"},
		{"unknown log level", with("--l2.follow.source", cl, "--log.level", "loud"), "log.level", "loud"},
		{"unknown log format", with("--l2.follow.source", cl, "--log.format", "xml"), "log.format", "xml"},
		{"p2p listen address not an IP", with("--l2.follow.source", cl, "--p2p.listen.ip", "300.1.1.1"), "p2p.listen.ip", "300.1.1.1"},
		{"p2p port out of range", with("--l2.follow.source", cl, "--p2p.listen.tcp", "70000"), "p2p.listen.tcp", "70000"},
		{"unknown p2p scoring", with("--l2.follow.source", cl, "--p2p.scoring", "heavy"), "p2p.scoring", "heavy"},
		{"zero gossip timestamp threshold", with("--l2.follow.source", cl, "--p2p.gossip.timestamp.threshold", "0s"), "p2p.gossip.timestamp.threshold", "positive"},
		{"unsafe block signer not an address", with("--l2.follow.source", cl, "--p2p.unsafe-block-signer", "0x12"), "p2p.unsafe-block-signer", "not an address"},
		{"unsafe block signer with --l1", with("--l2.follow.source", cl, "--l1", "http://127.0.0.1:1", "--p2p.unsafe-block-signer", "0x00000000000000000000000000000000000000aa"), "p2p.unsafe-block-signer", "drop one"},
		{"safe-head database for a quorum", with("--source", "quorum", "--l2.follow.source", cl, "--l2.follow.source", remoteEL, "--safedb.path", dir), "safedb.path", "quorum"},
		{"gossip with tip following off", with("--l2.follow.source", cl, "--p2p.listen.tcp", "0", "--l2.unsafe.disable"), "l2.unsafe.disable", "gossip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.name == "JWT secret not hex" {
				args = []string{"--engine", engine, "--jwt-secret", badHex, "--rpc.port", "-1", "--l2.follow.source", cl}
			}
			requireStartError(t, args, tc.flag, tc.reason)
			for _, c := range el.Calls() {
				require.False(t, strings.HasPrefix(c.Method, "engine_forkchoiceUpdated") || strings.HasPrefix(c.Method, "engine_newPayload"),
					"the engine received %s", c.Method)
			}
		})
	}
}
