package tipfeed_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/internal/fake/fakechain"
	"github.com/lightcl/lightcl/internal/fake/fakeel"
	"github.com/lightcl/lightcl/internal/testutil"
	"github.com/lightcl/lightcl/safesource/tipfeed"
)

func TestPrometheusMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := tipfeed.NewPrometheusMetrics(reg, "lightcl")
	require.NoError(t, err)
	_, err = tipfeed.NewPrometheusMetrics(reg, "lightcl")
	require.Error(t, err, "registering twice fails")

	tree := fakechain.NewTree()
	el := testutil.NewEL(t, tree, fakeel.ELConfig{NoAuth: true})
	f, err := tipfeed.New(context.Background(), tipfeed.Config{URL: el.WSURL(), Name: "a", RollupConfig: tree.RollupConfig()}, nil, m)
	require.NoError(t, err)
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *eth.ExecutionPayloadEnvelope)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, out) }()
	<-out // the head at start
	got := series(t, reg)
	require.Equal(t, 1.0, got[`lightcl_tipfeed_mode{feed="a",mode="subscription"}`])
	require.Equal(t, 0.0, got[`lightcl_tipfeed_mode{feed="a",mode="down"}`])
	cancel()
	require.NoError(t, <-done)

	m.RecordError("a", "head")
	m.RecordError("a", "not a kind") // counted under a kind of the closed set
	require.Equal(t, map[string]float64{
		`lightcl_tipfeed_errors_total{feed="a",kind="head"}`:    1,
		`lightcl_tipfeed_errors_total{feed="a",kind="payload"}`: 1,
		`lightcl_tipfeed_mode{feed="a",mode="down"}`:            1,
		`lightcl_tipfeed_mode{feed="a",mode="polling"}`:         0,
		`lightcl_tipfeed_mode{feed="a",mode="subscription"}`:    0,
		`lightcl_tipfeed_payloads_delivered_total{feed="a"}`:    1,
	}, series(t, reg))
}

// series returns every series in reg as name{label="value",...} -> value.
func series(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetCounter().GetValue()
			if m.GetGauge() != nil {
				v = m.GetGauge().GetValue()
			}
			out[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}
