package l1verify

import "github.com/prometheus/client_golang/prometheus"

// Check results, the closed set of RecordCheck's result label.
const (
	ResultOK            = "ok"             // heads verified and passed on
	ResultFinalizedHeld = "finalized_held" // passed on with finalized held at the last verified one: only the finalized claim was above L1 finality
	ResultL1Mismatch    = "l1_mismatch"    // an origin is not canonical on L1
	ResultAheadOfL1     = "ahead_of_l1"    // an origin above the L1 head, or finalized above L1 finality with nothing to hold at
	ResultL1Error       = "l1_error"       // L1 could not be read
	ResultSourceError   = "source_error"   // the inner source failed
)

// L1 call kinds, the closed set of RecordL1Call's kind label.
const (
	CallLatest          = "latest"           // the L1 head, once per call (shared by concurrent calls)
	CallLatestFinalized = "latest_finalized" // CallLatest with L1's safe and finalized blocks in the same batched request (RPCSource)
	CallFinalized       = "finalized"        // L1's finalized block, when a finalized claim passes the last one seen
	CallByNumber        = "by_number"        // a height not in the cache
)

// Metrics records checks and L1 calls. Label values: the wrapped source's
// name, a result (ResultOK, ...), an L1 call kind (CallLatest, ...) and a call
// result ("ok" or "error").
type Metrics interface {
	RecordCheck(source, result string)
	RecordL1Call(kind, result string)
	RecordL1Reorg()
}

// NoopMetrics discards everything.
type NoopMetrics struct{}

// RecordCheck does nothing.
func (NoopMetrics) RecordCheck(string, string) {}

// RecordL1Call does nothing.
func (NoopMetrics) RecordL1Call(string, string) {}

// RecordL1Reorg does nothing.
func (NoopMetrics) RecordL1Reorg() {}

// PrometheusMetrics is the Prometheus implementation of Metrics.
type PrometheusMetrics struct {
	checks  *prometheus.CounterVec
	l1Calls *prometheus.CounterVec
	reorgs  prometheus.Counter
}

var _ Metrics = (*PrometheusMetrics)(nil)

// NewPrometheusMetrics registers the metrics under namespace on reg.
func NewPrometheusMetrics(reg prometheus.Registerer, namespace string) (*PrometheusMetrics, error) {
	m := &PrometheusMetrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "l1verify", Name: "checks_total",
			Help: "Heads calls checked against L1, by source and result.",
		}, []string{"source", "result"}),
		l1Calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "l1verify", Name: "l1_calls_total",
			Help: "Calls to the L1 node, by kind and result.",
		}, []string{"kind", "result"}),
		reorgs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "l1verify", Name: "l1_reorgs_total",
			Help: "L1 reorgs seen, each of which emptied the cache of verified L1 blocks.",
		}),
	}
	for _, c := range []prometheus.Collector{m.checks, m.l1Calls, m.reorgs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// RecordCheck counts a checked Heads call.
func (m *PrometheusMetrics) RecordCheck(source, result string) {
	m.checks.WithLabelValues(source, result).Inc()
}

// RecordL1Call counts an L1 call.
func (m *PrometheusMetrics) RecordL1Call(kind, result string) {
	m.l1Calls.WithLabelValues(kind, result).Inc()
}

// RecordL1Reorg counts an L1 reorg.
func (m *PrometheusMetrics) RecordL1Reorg() { m.reorgs.Inc() }
