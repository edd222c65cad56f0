package gossip

import (
	"context"
	"log/slog"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// ReasonUnknown counts validator rejections that logged no known reason (a
// newer op-node's new check, a validation timeout) and pubsub drops of a
// kind this package does not know.
const ReasonUnknown = "unknown"

// validatorReasons are the warnings (and one error) that op-node v1.19.6's
// blocks validator (p2p.BuildBlocksValidator and guardGossipValidator) logs
// when it rejects or ignores a block, one per message. They name the reason.
var validatorReasons = []string{
	"invalid snappy compression length data",
	"possible snappy zip bomb, decoded length is too large",
	"rejecting undersized gossip payload",
	"invalid snappy compression",
	"no configured p2p sequencer address, ignoring gossiped block",
	"invalid block signature",
	"invalid envelope payload",
	"invalid execution payload",
	"payload is too old",
	"payload is too new",
	"payload has bad block hash",
	"payload is on v1 topic, but has withdrawals",
	"payload is on v2/v3 topic, but does not have withdrawals",
	"payload is on v2/v3 topic, but has non-empty withdrawals",
	"payload is on v1/v2 topic, but has blob gas used",
	"payload is on v1/v2 topic, but has excess blob gas",
	"payload is on v3 topic, but has nil blob gas used",
	"payload is on v3 topic, but has non-zero blob gas used",
	"payload is on v3 topic, but has non-zero excess blob gas",
	"payload is on v3 topic, but has nil parent beacon block root",
	"payload is on v4 topic, but has nil withdrawals root",
	"seen too many different blocks at same height",
	"validated already seen message again",
	"gossip validation panic",
}

// pubsubReasons are pubsub's own reasons to drop a message before or around
// the validator (pubsub.Reject*); "validation failed" and "validation
// ignored" are not among them, the validator's log tells why.
var pubsubReasons = []string{
	pubsub.RejectBlacklstedPeer, pubsub.RejectBlacklistedSource, pubsub.RejectMissingSignature,
	pubsub.RejectUnexpectedSignature, pubsub.RejectUnexpectedAuthInfo, pubsub.RejectInvalidSignature,
	pubsub.RejectValidationQueueFull, pubsub.RejectValidationThrottled, pubsub.RejectSelfOrigin,
}

// Reasons is the closed set of rejection reasons: Status().Rejected's keys
// and the rejected counter's reason label.
func Reasons() []string {
	out := append(append([]string(nil), validatorReasons...), pubsubReasons...)
	return append(out, ReasonUnknown)
}

var knownReason = func() map[string]bool {
	m := map[string]bool{}
	for _, r := range Reasons() {
		m[r] = true
	}
	return m
}()

// counter counts what becomes of the gossiped blocks, for Status and Metrics.
type counter struct {
	metrics Metrics

	mu                                      sync.Mutex
	received, accepted, duplicates, dropped uint64
	rejected                                map[string]uint64
	head                                    eth.BlockID
	// logged counts the validator's rejections named by their log message
	// (plus those counted as unknown); failed counts them as pubsub traced
	// them. The log comes first, so failed > logged means a reason is missing.
	logged, failed uint64
}

func newCounter(m Metrics) *counter { return &counter{metrics: m, rejected: map[string]uint64{}} }

// reject counts a rejection for reason; logged marks the validator's own.
func (c *counter) reject(reason string, logged bool) {
	c.mu.Lock()
	c.rejected[reason]++
	if logged {
		c.logged++
	}
	c.mu.Unlock()
	c.metrics.RecordRejected(reason)
}

// validatorRejected counts a message pubsub traced as failed or ignored by
// the validator; one without a logged reason counts as unknown.
func (c *counter) validatorRejected() {
	c.mu.Lock()
	c.received++
	c.failed++
	missing := c.failed > c.logged
	if missing {
		c.logged++
		c.rejected[ReasonUnknown]++
	}
	c.mu.Unlock()
	c.metrics.RecordReceived()
	if missing {
		c.metrics.RecordRejected(ReasonUnknown)
	}
}

func (c *counter) receive(duplicate bool) {
	c.mu.Lock()
	c.received++
	if duplicate {
		c.duplicates++
	}
	c.mu.Unlock()
	c.metrics.RecordReceived()
	if duplicate {
		c.metrics.RecordDuplicate()
	}
}

func (c *counter) accept(id eth.BlockID) {
	c.mu.Lock()
	c.accepted++
	c.head = id
	c.mu.Unlock()
	c.metrics.RecordAccepted()
}

func (c *counter) drop() {
	c.mu.Lock()
	c.dropped++
	c.mu.Unlock()
	c.metrics.RecordDropped()
}

// reasonHandler passes every record on to the caller's handler unchanged and
// counts the validator's rejection messages; the handlers made by WithAttrs
// and WithGroup share its counter.
type reasonHandler struct {
	inner slog.Handler
	c     *counter
}

func (h *reasonHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.inner.Enabled(ctx, l)
}

func (h *reasonHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && knownReason[r.Message] {
		h.c.reject(r.Message, true)
	}
	if !h.inner.Enabled(ctx, r.Level) {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

func (h *reasonHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &reasonHandler{inner: h.inner.WithAttrs(attrs), c: h.c}
}

func (h *reasonHandler) WithGroup(name string) slog.Handler {
	return &reasonHandler{inner: h.inner.WithGroup(name), c: h.c}
}

// tracer counts each gossiped message once, by how pubsub ends it:
// delivered, rejected (or ignored), or dropped as a duplicate. A delivered
// block that pubsub could not hand to op-node's subscriber counts as dropped.
type tracer struct{ c *counter }

var _ pubsub.RawTracer = tracer{}

func (t tracer) DeliverMessage(*pubsub.Message)       { t.c.receive(false) }
func (t tracer) DuplicateMessage(*pubsub.Message)     { t.c.receive(true) }
func (t tracer) UndeliverableMessage(*pubsub.Message) { t.c.drop() }

func (t tracer) RejectMessage(_ *pubsub.Message, reason string) {
	switch {
	case reason == pubsub.RejectValidationFailed || reason == pubsub.RejectValidationIgnored:
		t.c.validatorRejected()
		return
	case !knownReason[reason]:
		reason = ReasonUnknown
	}
	t.c.receive(false)
	t.c.reject(reason, false)
}

func (tracer) Join(string)                              {}
func (tracer) Leave(string)                             {}
func (tracer) Graft(peer.ID, string)                    {}
func (tracer) Prune(peer.ID, string)                    {}
func (tracer) ValidateMessage(*pubsub.Message)          {}
func (tracer) ThrottlePeer(peer.ID)                     {}
func (tracer) RecvRPC(*pubsub.RPC)                      {}
func (tracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (tracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (tracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (tracer) OnClosedOutboundStream(peer.ID)           {}
