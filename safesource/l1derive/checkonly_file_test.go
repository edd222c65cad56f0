package l1derive_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/safesource/l1derive"
)

// TestConfirmedPath: the file of Config.ConfirmedPath is written at
// construction (genesis on a first run), read back by the next source, and
// refused, naming ErrConfirmedFile, when it does not parse, is another
// chain's, or cannot be written; it is only for a CheckOnly source.
func TestConfirmedPath(t *testing.T) {
	rollupCfg := fakechain.NewTree().RollupConfig()
	newSource := func(cfg l1derive.Config) (*l1derive.Source, error) {
		// New reads no chain: clients that are never called will do
		return l1derive.New(cfg, rollupCfg, (*sources.L1Client)(nil), nil, (*sources.EngineClient)(nil), nil, nil)
	}
	dir := t.TempDir()
	genesis := rollupCfg.Genesis.L2

	path := filepath.Join(dir, "sub", "confirmed.json")
	s, err := newSource(l1derive.Config{CheckOnly: true, ConfirmedPath: path})
	require.NoError(t, err)
	require.Equal(t, genesis, s.Confirmed().ID(), "a first run starts from genesis")
	require.FileExists(t, path, "written at once, to find an unusable path at start")
	s, err = newSource(l1derive.Config{CheckOnly: true, ConfirmedPath: path})
	require.NoError(t, err)
	require.Equal(t, genesis, s.Confirmed().ID())

	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	other := `{"l2_chain_id": ` + rollupCfg.L2ChainID.String() + `, "l2_genesis": "` + common.Hash{0x01}.Hex() +
		`", "confirmed_finalized": {"hash": "` + common.Hash{0x02}.Hex() + `", "number": 7}}`
	for name, path := range map[string]string{
		"not JSON":         write("garbage.json", "confirmed: 7"),
		"another chain":    write("other.json", other),
		"unwritable place": filepath.Join(write("a-file", ""), "confirmed.json"),
	} {
		_, err := newSource(l1derive.Config{CheckOnly: true, ConfirmedPath: path})
		require.ErrorIs(t, err, l1derive.ErrConfirmedFile, name)
		require.Contains(t, err.Error(), filepath.Base(filepath.Dir(path)), name)
	}

	_, err = newSource(l1derive.Config{ConfirmedPath: path})
	require.ErrorContains(t, err, "CheckOnly")
}
