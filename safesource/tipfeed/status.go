package tipfeed

import (
	"strings"

	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// Mode is how a feed learns of new heads now.
type Mode string

const (
	// ModeSubscription: a newHeads websocket subscription is live.
	ModeSubscription Mode = "subscription"
	// ModePolling: the feed polls the latest header, and the last poll answered.
	ModePolling Mode = "polling"
	// ModeDown: Run is not running, or the last poll failed.
	ModeDown Mode = "down"
)

var modes = []Mode{ModeSubscription, ModePolling, ModeDown}

// maxLastError is how many bytes of the last error Status keeps.
const maxLastError = 300

// Status is a snapshot of a feed, for status pages and tests.
type Status struct {
	// Mode is how the feed learns of new heads now.
	Mode Mode
	// Head is the last payload delivered; zero before the first.
	Head eth.BlockID
	// Delivered counts the payloads delivered.
	Delivered uint64
	// Errors counts the errors of every kind.
	Errors uint64
	// LastError is the last error's text, cut to 300 bytes; empty before the first.
	LastError string
}

// Status returns a snapshot of the feed's state.
func (r *Remote) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// setMode switches the feed to mode, logging the change with its reason.
func (r *Remote) setMode(mode Mode, reason string) {
	r.mu.Lock()
	old := r.status.Mode
	r.status.Mode = mode
	r.mu.Unlock()
	if old == mode {
		return
	}
	r.metrics.RecordMode(r.cfg.Name, mode)
	switch {
	case mode == ModeSubscription:
		r.log.Info("Tip feed subscribed to newHeads", "url", r.cfg.URL)
	case mode == ModePolling && !r.ws:
		r.log.Info("Tip feed polling", "url", r.cfg.URL, "interval", r.cfg.PollInterval, "reason", reason)
	case mode == ModePolling:
		r.log.Warn("Tip feed polling", "url", r.cfg.URL, "interval", r.cfg.PollInterval, "reason", reason)
	case reason == reasonStopped:
		r.log.Info("Tip feed stopped", "url", r.cfg.URL)
	default:
		r.log.Warn("Tip feed down", "url", r.cfg.URL, "reason", reason)
	}
}

// fail counts an error of kind. It logs at debug level: the errors show in
// the mode changes they cause, and deliver warns of bad payloads.
func (r *Remote) fail(kind string, err error) {
	msg := err.Error()
	if len(msg) > maxLastError {
		msg = strings.ToValidUTF8(msg[:maxLastError], "")
	}
	r.mu.Lock()
	r.status.Errors++
	r.status.LastError = msg
	r.mu.Unlock()
	r.metrics.RecordError(r.cfg.Name, kind)
	r.log.Debug("Tip feed error", "url", r.cfg.URL, "kind", kind, "err", err)
}

// delivered records a payload handed to the adapter.
func (r *Remote) delivered(id eth.BlockID) {
	r.mu.Lock()
	r.status.Delivered++
	r.status.Head = id
	r.mu.Unlock()
	r.metrics.RecordDelivered(r.cfg.Name)
	r.log.Debug("Tip feed delivered a payload", "number", id.Number, "hash", id.Hash)
}
