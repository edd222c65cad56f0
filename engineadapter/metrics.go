package engineadapter

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records what the adapter does. Label values come from closed sets:
// reorg.Action names, engine payload statuses and EventKind names.
type Metrics interface {
	// RecordDecision counts a tick's decision by action name.
	RecordDecision(action string)
	// RecordForkchoice counts a forkchoice update by the engine's status, or "error".
	RecordForkchoice(status string)
	// RecordEvent counts an event by kind name.
	RecordEvent(kind string)
	// RecordHeads sets the current local heights.
	RecordHeads(unsafe, safe, finalized uint64)
	// RecordReorgDepth observes the depth of a reorg.
	RecordReorgDepth(depth uint64)
	// RecordHalted sets whether the adapter is halted.
	RecordHalted(halted bool)
}

// NoopMetrics discards everything.
type NoopMetrics struct{}

var _ Metrics = NoopMetrics{}

// RecordDecision does nothing.
func (NoopMetrics) RecordDecision(string) {}

// RecordForkchoice does nothing.
func (NoopMetrics) RecordForkchoice(string) {}

// RecordEvent does nothing.
func (NoopMetrics) RecordEvent(string) {}

// RecordHeads does nothing.
func (NoopMetrics) RecordHeads(uint64, uint64, uint64) {}

// RecordReorgDepth does nothing.
func (NoopMetrics) RecordReorgDepth(uint64) {}

// RecordHalted does nothing.
func (NoopMetrics) RecordHalted(bool) {}

// PrometheusMetrics is the Prometheus implementation of Metrics.
type PrometheusMetrics struct {
	decisions   *prometheus.CounterVec
	forkchoices *prometheus.CounterVec
	events      *prometheus.CounterVec
	heads       *prometheus.GaugeVec
	reorgDepth  prometheus.Histogram
	halted      prometheus.Gauge
}

var _ Metrics = (*PrometheusMetrics)(nil)

// NewPrometheusMetrics registers the adapter's metrics under namespace on reg.
func NewPrometheusMetrics(reg prometheus.Registerer, namespace string) (*PrometheusMetrics, error) {
	m := &PrometheusMetrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "adapter", Name: "decisions_total", Help: "Decisions taken, by action.",
		}, []string{"action"}),
		forkchoices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "adapter", Name: "forkchoice_updates_total", Help: "Forkchoice updates sent, by engine status.",
		}, []string{"status"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "adapter", Name: "events_total", Help: "Events, by kind.",
		}, []string{"kind"}),
		heads: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "adapter", Name: "head_number", Help: "Local head heights, by label.",
		}, []string{"label"}),
		reorgDepth: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "adapter", Name: "reorg_depth", Help: "Unsafe blocks abandoned per reorg.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		halted: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "adapter", Name: "halted",
			Help: "1 while the source contradicts the local finalized chain, else 0.",
		}),
	}
	for _, c := range []prometheus.Collector{m.decisions, m.forkchoices, m.events, m.heads, m.reorgDepth, m.halted} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// RecordDecision counts a decision.
func (m *PrometheusMetrics) RecordDecision(action string) { m.decisions.WithLabelValues(action).Inc() }

// RecordForkchoice counts a forkchoice update.
func (m *PrometheusMetrics) RecordForkchoice(status string) {
	m.forkchoices.WithLabelValues(status).Inc()
}

// RecordEvent counts an event.
func (m *PrometheusMetrics) RecordEvent(kind string) { m.events.WithLabelValues(kind).Inc() }

// RecordHeads sets the head heights.
func (m *PrometheusMetrics) RecordHeads(unsafe, safe, finalized uint64) {
	m.heads.WithLabelValues("unsafe").Set(float64(unsafe))
	m.heads.WithLabelValues("safe").Set(float64(safe))
	m.heads.WithLabelValues("finalized").Set(float64(finalized))
}

// RecordReorgDepth observes a reorg depth.
func (m *PrometheusMetrics) RecordReorgDepth(depth uint64) { m.reorgDepth.Observe(float64(depth)) }

// RecordHalted sets the halt gauge.
func (m *PrometheusMetrics) RecordHalted(halted bool) {
	v := 0.0
	if halted {
		v = 1
	}
	m.halted.Set(v)
}
