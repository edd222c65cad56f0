package gossip

import (
	"bytes"
	"log/slog"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/stretchr/testify/require"
)

// TestReasonHandlerSharesOneCounter: the handlers WithAttrs and WithGroup
// derive count into the same map, and a warning below the caller's level is
// counted but not passed on.
func TestReasonHandlerSharesOneCounter(t *testing.T) {
	var buf bytes.Buffer
	c := newCounter(NoopMetrics{})
	root := &reasonHandler{inner: slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}), c: c}
	for _, l := range []*slog.Logger{
		slog.New(root),
		slog.New(root.WithAttrs([]slog.Attr{slog.String("topic", "blocksV4")})),
		slog.New(root.WithGroup("g").WithAttrs([]slog.Attr{slog.String("topic", "blocksV1")})),
	} {
		l.Warn("invalid block signature")
		l.Warn("some other warning")
	}
	require.Equal(t, map[string]uint64{"invalid block signature": 3}, c.rejected)
	require.Empty(t, buf.String(), "the caller logs errors only")
}

// TestRejectionWithoutReasonIsUnknown: a rejection pubsub traced that the
// validator logged no known reason for counts as unknown, once.
func TestRejectionWithoutReasonIsUnknown(t *testing.T) {
	c := newCounter(NoopMetrics{})
	tr := tracer{c}
	c.reject("payload is too new", true) // the validator logs before pubsub traces
	tr.RejectMessage(nil, pubsub.RejectValidationFailed)
	tr.RejectMessage(nil, pubsub.RejectValidationFailed) // no log: a reason op-node's newer version added?
	tr.RejectMessage(nil, pubsub.RejectValidationThrottled)
	tr.RejectMessage(nil, "a reason pubsub added later")
	tr.DuplicateMessage(nil)
	require.Equal(t, map[string]uint64{
		"payload is too new":             1,
		ReasonUnknown:                    2,
		pubsub.RejectValidationThrottled: 1,
	}, c.rejected)
	require.Equal(t, uint64(5), c.received)
	require.Equal(t, uint64(1), c.duplicates)
}
