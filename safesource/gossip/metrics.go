package gossip

import "github.com/prometheus/client_golang/prometheus"

// Metrics records what the gossip feed does. The one label value is a
// rejection reason from the closed set Reasons().
type Metrics interface {
	// RecordReceived counts a block message from a peer, whatever became of it.
	RecordReceived()
	// RecordAccepted counts a block the validator accepted.
	RecordAccepted()
	// RecordRejected counts a block rejected or ignored, with the reason.
	RecordRejected(reason string)
	// RecordDuplicate counts a message dropped as already seen.
	RecordDuplicate()
	// RecordDropped counts an accepted block that never reached Run: Run's
	// consumer, or op-node's subscriber, was too slow.
	RecordDropped()
	// RecordPeers records the number of connected peers.
	RecordPeers(n int)
}

// NoopMetrics discards everything.
type NoopMetrics struct{}

// RecordReceived does nothing.
func (NoopMetrics) RecordReceived() {}

// RecordAccepted does nothing.
func (NoopMetrics) RecordAccepted() {}

// RecordRejected does nothing.
func (NoopMetrics) RecordRejected(string) {}

// RecordDuplicate does nothing.
func (NoopMetrics) RecordDuplicate() {}

// RecordDropped does nothing.
func (NoopMetrics) RecordDropped() {}

// RecordPeers does nothing.
func (NoopMetrics) RecordPeers(int) {}

// PrometheusMetrics is the Prometheus implementation of Metrics.
type PrometheusMetrics struct {
	received, accepted, duplicates, dropped prometheus.Counter
	rejected                                *prometheus.CounterVec
	peers                                   prometheus.Gauge
}

var _ Metrics = (*PrometheusMetrics)(nil)

// NewPrometheusMetrics registers the metrics under namespace on reg:
// <namespace>_gossip_blocks_received_total, _blocks_accepted_total,
// _blocks_rejected_total{reason}, _blocks_duplicate_total,
// _blocks_dropped_total and _gossip_peers.
func NewPrometheusMetrics(reg prometheus.Registerer, namespace string) (*PrometheusMetrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "gossip", Name: name, Help: help})
	}
	m := &PrometheusMetrics{
		received:   counter("blocks_received_total", "Block messages received from peers, whatever became of them."),
		accepted:   counter("blocks_accepted_total", "Blocks accepted by op-node's validator."),
		duplicates: counter("blocks_duplicate_total", "Block messages dropped as already seen."),
		dropped:    counter("blocks_dropped_total", "Accepted blocks dropped because the tip path, or op-node's subscriber, took them too slowly."),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "gossip", Name: "blocks_rejected_total",
			Help: "Blocks rejected or ignored, by reason (op-node's validator log message, or pubsub's reason).",
		}, []string{"reason"}),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "gossip", Name: "peers",
			Help: "Connected peers.",
		}),
	}
	for _, c := range []prometheus.Collector{m.received, m.accepted, m.duplicates, m.dropped, m.rejected, m.peers} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// RecordReceived counts a received message.
func (m *PrometheusMetrics) RecordReceived() { m.received.Inc() }

// RecordAccepted counts an accepted block.
func (m *PrometheusMetrics) RecordAccepted() { m.accepted.Inc() }

// RecordRejected counts a rejection; a reason outside Reasons() counts as
// ReasonUnknown.
func (m *PrometheusMetrics) RecordRejected(reason string) {
	if !knownReason[reason] {
		reason = ReasonUnknown
	}
	m.rejected.WithLabelValues(reason).Inc()
}

// RecordDuplicate counts a duplicate.
func (m *PrometheusMetrics) RecordDuplicate() { m.duplicates.Inc() }

// RecordDropped counts a dropped block.
func (m *PrometheusMetrics) RecordDropped() { m.dropped.Inc() }

// RecordPeers sets the peers gauge.
func (m *PrometheusMetrics) RecordPeers(n int) { m.peers.Set(float64(n)) }
