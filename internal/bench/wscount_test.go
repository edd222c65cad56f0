package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
)

// wsMaxFrame bounds a frame the relay reads from a client: requests are a
// few hundred bytes.
const wsMaxFrame = 1 << 20

// wsCounter is a relay on 127.0.0.1 in front of an EL's websocket endpoint
// that counts the JSON-RPC calls clients send through it, by method (each
// element of a batch is one call). The in-memory EL records calls over HTTP
// only (EL.Calls); a tip feed on a ws:// URL makes every call, the payload
// fetches included, over its websocket. The relay passes bytes on unchanged,
// as it reads them, in both directions: it only parses the client's frames
// (RFC 6455: masked, possibly fragmented; control frames are skipped).
type wsCounter struct {
	ln     net.Listener
	target string // the EL's host:port
	path   string // the websocket URL's path

	mu     sync.Mutex
	calls  map[string]int
	total  int
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

// newWSCounter starts a relay to wsURL and closes it in tb.Cleanup.
func newWSCounter(tb testing.TB, wsURL string) *wsCounter {
	tb.Helper()
	c, err := startWSCounter(wsURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// startWSCounter starts a relay to wsURL; the caller must Close it.
func startWSCounter(wsURL string) (*wsCounter, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("wsCounter: %s: want a ws:// URL", wsURL)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &wsCounter{ln: ln, target: u.Host, path: u.Path, calls: map[string]int{}, conns: map[net.Conn]bool{}}
	c.wg.Add(1)
	go c.accept()
	return c, nil
}

// URL is the relay's ws:// URL.
func (c *wsCounter) URL() string { return "ws://" + c.ln.Addr().String() + c.path }

// Calls returns the calls counted so far by method, and their total.
func (c *wsCounter) Calls() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		m[k] = v
	}
	return m, c.total
}

// Close stops the relay, closes its connections and waits for its goroutines.
func (c *wsCounter) Close() {
	c.mu.Lock()
	c.closed = true
	for conn := range c.conns {
		_ = conn.Close()
	}
	c.mu.Unlock()
	_ = c.ln.Close()
	c.wg.Wait()
}

func (c *wsCounter) accept() {
	defer c.wg.Done()
	for {
		client, err := c.ln.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.Dial("tcp", c.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		if !c.track(client, server) {
			return
		}
		c.wg.Add(2)
		go func() { // the server's answers and notifications, as they come
			defer c.wg.Done()
			_, _ = io.Copy(client, server)
			_ = client.Close()
			_ = server.Close()
		}()
		go func() { // the client's requests: passed on as read, and parsed
			defer c.wg.Done()
			c.relay(bufio.NewReader(io.TeeReader(client, server)))
			_ = client.Close()
			_ = server.Close()
		}()
	}
}

// track remembers a pair of connections for Close; false once closed.
func (c *wsCounter) track(conns ...net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		for _, conn := range conns {
			_ = conn.Close()
		}
		return false
	}
	for _, conn := range conns {
		c.conns[conn] = true
	}
	return true
}

// relay reads the client's side through r (which writes on to the server
// whatever it reads): the HTTP upgrade request, then websocket frames.
func (c *wsCounter) relay(r *bufio.Reader) {
	req, err := http.ReadRequest(r)
	if err != nil {
		return
	}
	if req.Header.Get("Upgrade") == "" {
		_, _ = io.Copy(io.Discard, r) // not a websocket: pass it on uncounted
		return
	}
	var msg []byte
	for {
		op, fin, payload, err := readFrame(r)
		if err != nil {
			return
		}
		switch op {
		case 1, 2: // text, binary: a new message
			msg = payload
		case 0: // continuation
			msg = append(msg, payload...)
		default: // close, ping, pong
			continue
		}
		if fin {
			c.record(msg)
			msg = nil
		}
	}
}

// readFrame reads one websocket frame and unmasks its payload.
func readFrame(r io.Reader) (op byte, fin bool, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, false, nil, err
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return 0, false, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return 0, false, nil, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, false, nil, err
		}
	}
	if n > wsMaxFrame {
		return 0, false, nil, errors.New("frame too large")
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, false, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return op, fin, payload, nil
}

// record counts the calls of one JSON-RPC message, single or batch.
func (c *wsCounter) record(msg []byte) {
	var calls []struct {
		Method string `json:"method"`
	}
	msg = bytes.TrimSpace(msg)
	if len(msg) > 0 && msg[0] != '[' {
		msg = append(append([]byte{'['}, msg...), ']')
	}
	if json.Unmarshal(msg, &calls) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, call := range calls {
		c.calls[call.Method]++
		c.total++
	}
}
