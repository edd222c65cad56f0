package tipfeed

import "github.com/prometheus/client_golang/prometheus"

// Error kinds, the closed set of the errors counter's "kind" label.
const (
	kindSubscribe = "subscribe" // eth_subscribe failed
	kindDropped   = "dropped"   // a live subscription ended with an error
	kindHead      = "head"      // reading the latest header failed
	kindPayload   = "payload"   // fetching or verifying a payload failed
)

var errorKinds = []string{kindSubscribe, kindDropped, kindHead, kindPayload}

// Metrics records what a tip feed does. Label values: the feed's name, a Mode
// ("subscription", "polling" or "down"), and an error kind from a closed set
// ("subscribe", "dropped", "head", "payload").
type Metrics interface {
	// RecordMode records that the feed is now in mode.
	RecordMode(feed string, mode Mode)
	// RecordDelivered counts a payload handed to the adapter.
	RecordDelivered(feed string)
	// RecordError counts an error of the given kind.
	RecordError(feed, kind string)
}

// NoopMetrics discards everything.
type NoopMetrics struct{}

// RecordMode does nothing.
func (NoopMetrics) RecordMode(string, Mode) {}

// RecordDelivered does nothing.
func (NoopMetrics) RecordDelivered(string) {}

// RecordError does nothing.
func (NoopMetrics) RecordError(string, string) {}

// PrometheusMetrics is the Prometheus implementation of Metrics.
type PrometheusMetrics struct {
	mode      *prometheus.GaugeVec
	delivered *prometheus.CounterVec
	errors    *prometheus.CounterVec
}

var _ Metrics = (*PrometheusMetrics)(nil)

// NewPrometheusMetrics registers the metrics under namespace on reg:
// <namespace>_tipfeed_mode, _payloads_delivered_total and _errors_total.
func NewPrometheusMetrics(reg prometheus.Registerer, namespace string) (*PrometheusMetrics, error) {
	m := &PrometheusMetrics{
		mode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "tipfeed", Name: "mode",
			Help: "1 for the mode each tip feed is in (subscription, polling, down), 0 for the others.",
		}, []string{"feed", "mode"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "tipfeed", Name: "payloads_delivered_total",
			Help: "Tip payloads handed to the engine adapter, by feed.",
		}, []string{"feed"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "tipfeed", Name: "errors_total",
			Help: "Tip feed errors, by feed and kind (subscribe, dropped, head, payload).",
		}, []string{"feed", "kind"}),
	}
	for _, c := range []prometheus.Collector{m.mode, m.delivered, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// RecordMode sets the gauge of mode to 1 and of the other modes to 0.
func (m *PrometheusMetrics) RecordMode(feed string, mode Mode) {
	for _, x := range modes {
		v := 0.0
		if x == mode {
			v = 1
		}
		m.mode.WithLabelValues(feed, string(x)).Set(v)
	}
}

// RecordDelivered counts a delivered payload.
func (m *PrometheusMetrics) RecordDelivered(feed string) {
	m.delivered.WithLabelValues(feed).Inc()
}

// RecordError counts an error; a kind outside the closed set counts as "payload".
func (m *PrometheusMetrics) RecordError(feed, kind string) {
	known := false
	for _, k := range errorKinds {
		known = known || k == kind
	}
	if !known {
		kind = kindPayload
	}
	m.errors.WithLabelValues(feed, kind).Inc()
}
