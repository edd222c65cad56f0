package l1derive

import (
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records what the source does.
type Metrics interface {
	// RecordDerived counts blocks derived and found in the engine.
	RecordDerived(n int)
	// RecordBuildRequest counts derived blocks the engine lacked or held
	// another block for, handed out to be built.
	RecordBuildRequest()
	// RecordReset counts pipeline restarts from the engine's heads.
	RecordReset()
	// RecordHeads sets the derived safe and finalized heights and the L1
	// block derived up to.
	RecordHeads(safe, finalized, l1 uint64)
}

// NoopMetrics discards everything.
type NoopMetrics struct{}

var _ Metrics = NoopMetrics{}

// RecordDerived does nothing.
func (NoopMetrics) RecordDerived(int) {}

// RecordBuildRequest does nothing.
func (NoopMetrics) RecordBuildRequest() {}

// RecordReset does nothing.
func (NoopMetrics) RecordReset() {}

// RecordHeads does nothing.
func (NoopMetrics) RecordHeads(uint64, uint64, uint64) {}

// PrometheusMetrics is the Prometheus implementation of Metrics.
type PrometheusMetrics struct {
	derived, builds, resets prometheus.Counter
	heads                   *prometheus.GaugeVec
}

var _ Metrics = (*PrometheusMetrics)(nil)

// NewPrometheusMetrics registers the source's metrics under namespace on reg:
// <ns>_l1derive_blocks_derived_total, <ns>_l1derive_build_requests_total,
// <ns>_l1derive_resets_total and <ns>_l1derive_head{label="safe"|"finalized"|"l1"}.
func NewPrometheusMetrics(reg prometheus.Registerer, namespace string) (*PrometheusMetrics, error) {
	m := &PrometheusMetrics{
		derived: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "l1derive", Name: "blocks_derived_total",
			Help: "L2 blocks derived from L1 and found in the engine."}),
		builds: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "l1derive", Name: "build_requests_total",
			Help: "Derived blocks the engine lacked or held another block for, handed out to be built."}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "l1derive", Name: "resets_total",
			Help: "Derivation pipeline restarts from the engine's heads (start, L1 reorg)."}),
		heads: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "l1derive", Name: "head",
			Help: "Derived safe and finalized L2 heights, and the L1 block derived up to."}, []string{"label"}),
	}
	for _, c := range []prometheus.Collector{m.derived, m.builds, m.resets, m.heads} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// RecordDerived adds n.
func (m *PrometheusMetrics) RecordDerived(n int) { m.derived.Add(float64(n)) }

// RecordBuildRequest adds one.
func (m *PrometheusMetrics) RecordBuildRequest() { m.builds.Inc() }

// RecordReset adds one.
func (m *PrometheusMetrics) RecordReset() { m.resets.Inc() }

// RecordHeads sets the three gauges.
func (m *PrometheusMetrics) RecordHeads(safe, finalized, l1 uint64) {
	m.heads.WithLabelValues("safe").Set(float64(safe))
	m.heads.WithLabelValues("finalized").Set(float64(finalized))
	m.heads.WithLabelValues("l1").Set(float64(l1))
}

// pipelineMetrics is the derivation pipeline's own metrics, discarded.
type pipelineMetrics struct{}

func (pipelineMetrics) RecordL1Ref(string, eth.L1BlockRef)    {}
func (pipelineMetrics) RecordL2Ref(string, eth.L2BlockRef)    {}
func (pipelineMetrics) RecordChannelInputBytes(int)           {}
func (pipelineMetrics) RecordHeadChannelOpened()              {}
func (pipelineMetrics) RecordChannelTimedOut()                {}
func (pipelineMetrics) RecordFrame()                          {}
func (pipelineMetrics) RecordDerivedBatches(batchType string) {}
func (pipelineMetrics) SetDerivationIdle(idle bool)           {}
func (pipelineMetrics) RecordPipelineReset()                  {}
