package quorum

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightcl/lightcl/safesource"
)

// MemberStatus is one member's health as the rounds saw it.
type MemberStatus struct {
	Name string
	// LastHeads is the member's last answer, at LastAnswerAt.
	LastHeads    safesource.Heads
	LastAnswerAt time.Time
	// LastError is the error of the last round the member failed (or did not
	// answer in time); nil once it answers again.
	LastError error
	// ConsecutiveErrors counts the rounds in a row it failed, or did not answer
	// within the straggler wait.
	ConsecutiveErrors int
	// Unanswered counts the rounds in a row that decided without its answer,
	// failed or merely slower than the agreement (a round that settles early does
	// not wait for the rest).
	Unanswered int
	// Lag is how many blocks its safe head was behind the agreed safe head in
	// the last round that agreed.
	Lag uint64
	// Disagreements counts rounds in which its chain held another block at the
	// agreed safe height.
	Disagreements int
}

// Status returns every member's health, in member order.
func (q *Quorum) Status() []MemberStatus {
	q.statusMu.Lock()
	defer q.statusMu.Unlock()
	return slices.Clone(q.status)
}

// LastRound returns the outcome of the last round.
func (q *Quorum) LastRound() Round {
	q.statusMu.Lock()
	defer q.statusMu.Unlock()
	return q.last
}

// record updates member status after a round. A member cut off because the
// round settled early, or because the caller gave up (cutOff), was not
// failing: its status is left as is.
func (q *Quorum) record(r Round, answers []answer, cutOff bool) {
	now := time.Now()
	q.statusMu.Lock()
	defer q.statusMu.Unlock()
	q.last = r
	for _, a := range answers {
		st := &q.status[a.member]
		if a.err != nil {
			st.Unanswered++
		} else {
			st.Unanswered = 0
		}
		switch {
		case cutOff && (errors.Is(a.err, errNoAnswer) || errors.Is(a.err, context.Canceled) || errors.Is(a.err, context.DeadlineExceeded)):
		case a.err != nil:
			st.ConsecutiveErrors++
			st.LastError = a.err
			q.log.Warn("Quorum member failed", "member", st.Name, "consecutive", st.ConsecutiveErrors, "err", a.err)
		default:
			st.LastHeads, st.LastAnswerAt, st.LastError, st.ConsecutiveErrors = a.heads, now, nil, 0
			if r.Err == nil {
				st.Lag = 0
				if s := a.heads.Safe.Number; s < r.Heads.Safe.Number {
					st.Lag = r.Heads.Safe.Number - s
				}
			}
		}
		if slices.Contains(r.Disagreed, st.Name) {
			st.Disagreements++
			q.metrics.RecordDisagreement(st.Name)
			q.log.Warn("Quorum member disagrees with the agreed safe head", "member", st.Name,
				"member_safe", a.heads.Safe.Number, "member_safe_hash", a.heads.Safe.Hash,
				"agreed_safe", r.Heads.Safe.Number, "agreed_safe_hash", r.Heads.Safe.Hash)
		}
		q.metrics.RecordMember(st.Name, st.Lag, st.ConsecutiveErrors)
	}
	if len(r.TimedOut) > 0 {
		q.log.Warn("Quorum members timed out on a lookup; not asked again this round", "members", r.TimedOut)
	}
	result := "agreed"
	if r.Err != nil {
		result = "no-quorum"
		q.log.Warn("No quorum this round", "no_quorum", r.NoQuorum, "answered", r.Answered, "missing", r.Missing,
			"disagreed", r.Disagreed, "err", r.Err)
	} else if len(r.NoQuorum) > 0 {
		q.log.Info("Quorum on safe, not on every label", "no_quorum", r.NoQuorum, "safe", r.Heads.Safe.Number,
			"finalized", r.Heads.Finalized.Number)
	}
	q.metrics.RecordRound(result, r.Latency, r.Lookups)
}

// Metrics records rounds and member health. Label values: result "agreed" or
// "no-quorum"; member names as configured.
type Metrics interface {
	RecordRound(result string, latency time.Duration, lookups int)
	RecordMember(member string, lag uint64, consecutiveErrors int)
	RecordDisagreement(member string)
}

// NoopMetrics discards everything.
type NoopMetrics struct{}

// RecordRound does nothing.
func (NoopMetrics) RecordRound(string, time.Duration, int) {}

// RecordMember does nothing.
func (NoopMetrics) RecordMember(string, uint64, int) {}

// RecordDisagreement does nothing.
func (NoopMetrics) RecordDisagreement(string) {}

// PrometheusMetrics is the Prometheus implementation of Metrics.
type PrometheusMetrics struct {
	rounds        *prometheus.CounterVec
	roundSeconds  prometheus.Histogram
	lookups       prometheus.Counter
	lag           *prometheus.GaugeVec
	errorsInARow  *prometheus.GaugeVec
	disagreements *prometheus.CounterVec
}

var _ Metrics = (*PrometheusMetrics)(nil)

// NewPrometheusMetrics registers the metrics under namespace on reg.
func NewPrometheusMetrics(reg prometheus.Registerer, namespace string) (*PrometheusMetrics, error) {
	m := &PrometheusMetrics{
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "quorum", Name: "rounds_total", Help: "Quorum rounds, by result.",
		}, []string{"result"}),
		roundSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "quorum", Name: "round_seconds", Help: "Round latency.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		lookups: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "quorum", Name: "lookups_total", Help: "Block-by-number lookups made by rounds.",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "quorum", Name: "member_lag_blocks", Help: "Blocks a member's safe head is behind the agreed one.",
		}, []string{"member"}),
		errorsInARow: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "quorum", Name: "member_consecutive_errors", Help: "Rounds in a row a member failed.",
		}, []string{"member"}),
		disagreements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "quorum", Name: "member_disagreements_total", Help: "Rounds a member's chain disagreed with the agreed safe head.",
		}, []string{"member"}),
	}
	for _, c := range []prometheus.Collector{m.rounds, m.roundSeconds, m.lookups, m.lag, m.errorsInARow, m.disagreements} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// RecordRound counts a round.
func (m *PrometheusMetrics) RecordRound(result string, latency time.Duration, lookups int) {
	m.rounds.WithLabelValues(result).Inc()
	m.roundSeconds.Observe(latency.Seconds())
	m.lookups.Add(float64(lookups))
}

// RecordMember sets a member's gauges.
func (m *PrometheusMetrics) RecordMember(member string, lag uint64, consecutiveErrors int) {
	m.lag.WithLabelValues(member).Set(float64(lag))
	m.errorsInARow.WithLabelValues(member).Set(float64(consecutiveErrors))
}

// RecordDisagreement counts a disagreement.
func (m *PrometheusMetrics) RecordDisagreement(member string) {
	m.disagreements.WithLabelValues(member).Inc()
}
