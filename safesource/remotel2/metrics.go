package remotel2

import "github.com/prometheus/client_golang/prometheus"

// Metrics records requests to remotes. Label values: the source's name, a
// method from a closed set ("heads", "block_by_number", "detect", "chain_id", "rollup_config"),
// and a result ("ok" or "error").
type Metrics interface {
	RecordRequest(source, method, result string)
}

// NoopMetrics discards everything.
type NoopMetrics struct{}

// RecordRequest does nothing.
func (NoopMetrics) RecordRequest(string, string, string) {}

// PrometheusMetrics is the Prometheus implementation of Metrics.
type PrometheusMetrics struct {
	requests *prometheus.CounterVec
}

var _ Metrics = (*PrometheusMetrics)(nil)

// NewPrometheusMetrics registers the metrics under namespace on reg.
func NewPrometheusMetrics(reg prometheus.Registerer, namespace string) (*PrometheusMetrics, error) {
	m := &PrometheusMetrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "source", Name: "requests_total",
		Help: "Requests to remote sources, by source, method and result.",
	}, []string{"source", "method", "result"})}
	if err := reg.Register(m.requests); err != nil {
		return nil, err
	}
	return m, nil
}

// RecordRequest counts a request.
func (m *PrometheusMetrics) RecordRequest(source, method, result string) {
	m.requests.WithLabelValues(source, method, result).Inc()
}
