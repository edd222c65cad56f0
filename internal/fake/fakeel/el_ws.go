package fakeel

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"
)

// headSubBuffer is how many head notifications a slow websocket subscriber
// may fall behind before the oldest are dropped; only the newest head matters
// to a tip follower.
const headSubBuffer = 16

// wsState is the EL's websocket side: the open connections (for
// DropSubscriptions), the newHeads subscribers and the head they last heard of.
type wsState struct {
	connMu sync.Mutex
	conns  map[net.Conn]bool // hijacked (websocket) connections still open

	// subs and notified are guarded by the EL's mu, like the chain.
	subs     map[chan *types.Header]bool
	notified common.Hash

	wg     sync.WaitGroup // websocket handlers and subscription senders
	closed chan struct{}  // closed by EL.Close
}

func newWSState(head common.Hash) *wsState {
	return &wsState{
		conns:    map[net.Conn]bool{},
		subs:     map[chan *types.Header]bool{},
		notified: head,
		closed:   make(chan struct{}),
	}
}

// WSURL returns the EL's websocket JSON-RPC endpoint; it serves the same
// methods as URL, plus eth_subscribe("newHeads"), behind the same Faults and
// JWT check. Calls over a websocket are not recorded in Calls.
func (e *EL) WSURL() string { return "ws" + strings.TrimPrefix(e.server.URL, "http") }

// DropSubscriptions closes every open websocket connection, as a restarting
// or overloaded node does: their subscriptions end with an error on the
// client's side. Clients may connect and subscribe again right away.
func (e *EL) DropSubscriptions() {
	e.ws.connMu.Lock()
	conns := e.ws.conns
	e.ws.conns = map[net.Conn]bool{}
	e.ws.connMu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// withWebsocket serves websocket upgrades on srv, with the JWT check when
// jwtSecret is set, and hands every other request to plain.
func (e *EL) withWebsocket(srv *rpc.Server, plain http.Handler, jwtSecret []byte) http.Handler {
	ws := node.NewWSHandlerStack(srv.WebsocketHandler([]string{"*"}), jwtSecret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isWebsocket(r) {
			plain.ServeHTTP(w, r)
			return
		}
		select {
		case <-e.ws.closed:
			http.Error(w, "testutil: EL closed", http.StatusServiceUnavailable)
			return
		default:
		}
		e.ws.wg.Add(1)
		defer e.ws.wg.Done()
		ws.ServeHTTP(w, r) // returns when the connection ends
	})
}

// isWebsocket reports whether r asks for a websocket upgrade (as go-ethereum's
// node package decides).
func isWebsocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// trackConn is the server's ConnState hook: it remembers hijacked
// (websocket) connections for DropSubscriptions.
func (e *EL) trackConn(c net.Conn, state http.ConnState) {
	if state != http.StateHijacked {
		return
	}
	e.ws.connMu.Lock()
	defer e.ws.connMu.Unlock()
	e.ws.conns[c] = true
}

// closeWS ends the subscription senders and waits for every websocket
// handler; the RPC server must be stopped first (it closes their codecs).
func (e *EL) closeWS() {
	select {
	case <-e.ws.closed:
	default:
		close(e.ws.closed)
	}
	e.DropSubscriptions()
	e.ws.wg.Wait()
}

// notifyHeadLocked tells every newHeads subscriber about the canonical head
// if it changed since the last notification. A subscriber that has fallen
// headSubBuffer heads behind loses its oldest one. Callers hold e.mu.
func (e *EL) notifyHeadLocked() {
	head := e.head()
	if head == e.ws.notified {
		return
	}
	e.ws.notified = head
	hdr := e.blocks[head].Header()
	for ch := range e.ws.subs {
		select {
		case ch <- hdr:
			continue
		default:
		}
		select { // full: drop the oldest, then there is room (only we send)
		case <-ch:
		default:
		}
		ch <- hdr
	}
}

// NewHeads serves eth_subscribe("newHeads") over a websocket: the header of
// each new canonical head, whenever Insert+SetForkchoice, a forkchoice update,
// a completed sync, ForceLabels or DropAbove moves it.
func (a *ethAPI) NewHeads(ctx context.Context) (*rpc.Subscription, error) {
	notifier, ok := rpc.NotifierFromContext(ctx)
	if !ok {
		return nil, rpc.ErrNotificationsUnsupported
	}
	e := a.el
	sub := notifier.CreateSubscription()
	ch := make(chan *types.Header, headSubBuffer)
	e.mu.Lock()
	e.ws.subs[ch] = true
	e.mu.Unlock()
	e.ws.wg.Add(1) // inside a websocket handler, so the count is above zero
	go func() {
		defer e.ws.wg.Done()
		defer func() {
			e.mu.Lock()
			delete(e.ws.subs, ch)
			e.mu.Unlock()
		}()
		for {
			select {
			case hdr := <-ch:
				_ = notifier.Notify(sub.ID, hdr) // fails only once the connection is gone
			case <-sub.Err():
				return
			case <-e.ws.closed:
				return
			}
		}
	}()
	return sub, nil
}
