package e2e_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/stretchr/testify/require"
)

// TestTipFollowsTheSequencer runs minimal-node between a peerless follower
// op-geth (backfill mode: nothing reaches it but what the node inserts) and a
// sequencer op-geth that makes a block every 500 ms with safe 10 blocks behind
// its head. The node's tip feed subscribes to the sequencer's newHeads over its
// websocket, through a proxy that can freeze like a SIGSTOPped process:
//   - the follower's latest stays within 2 blocks of the sequencer's, with the
//     sequencer's hash;
//   - an unsafe reorg at the sequencer above safe is followed;
//   - with the tip source frozen, safe and finalized keep following the
//     sequencer; once it thaws, latest catches up again.
func TestTipFollowsTheSequencer(t *testing.T) {
	w := newWorld(t)
	refs := w.build(20, 0)
	w.label(refs[9], refs[0])
	follower := w.follower("follower", false)
	tipProxy := newFreezeProxy(t, w.seq.WS()[len("ws://"):])

	node := startNode(t, "--engine", follower.AuthRPC(), "--jwt-secret", follower.JWTPath(),
		"--l2.follow.source", w.seq.HTTP(), "--l2.follow.kind", "el", "--rollup.config", writeRollupJSON(t, w.genesis.RollupConfig()),
		"--l2.unsafe.source", "ws://"+tipProxy.addr(), "--sync.mode", "backfill", "--poll-interval", "2s",
		"--l2.follow.timeout", "2s", "--log.level", "debug")
	node.waitStarted(60 * time.Second)

	// the sequencer makes a block every 500 ms, safe 10 behind and finalized 20
	forkReq := make(chan struct{})
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-forkReq:
				// an unsafe reorg above safe: the last 3 blocks are replaced by 4
				head := w.builder.Head()
				at, err := w.seq.L2(w.t).L2BlockRefByNumber(ctx, head.Number-3)
				if err == nil {
					_, err = w.builder.Fork(ctx, at, 4, 7)
				}
				if err != nil && ctx.Err() == nil {
					w.t.Errorf("fork: %v", err)
				}
				forkReq <- struct{}{}
			case <-t.C:
			}
			if _, err := w.builder.Build(ctx, 1, nil); err != nil {
				if ctx.Err() == nil {
					w.t.Errorf("build: %v", err)
				}
				return
			}
			head := w.builder.Head()
			safe, err1 := w.seq.L2(w.t).L2BlockRefByNumber(ctx, head.Number-10)
			fin, err2 := w.seq.L2(w.t).L2BlockRefByNumber(ctx, head.Number-20)
			if err := errors.Join(err1, err2); err != nil {
				if ctx.Err() == nil {
					w.t.Errorf("labels: %v", err)
				}
				return
			}
			if err := w.builder.SetLabels(ctx, safe, fin); err != nil && ctx.Err() == nil {
				w.t.Errorf("labels: %v", err)
			}
		}
	}()

	l2, seq := follower.L2(t), w.seq.L2(t)
	// lag samples: the sequencer's head, then the follower's
	lagOf := func() (lag uint64, sameHash bool) {
		s, err := seq.L2BlockRefByLabel(w.ctx, eth.Unsafe)
		require.NoError(t, err)
		f, err := l2.L2BlockRefByLabel(w.ctx, eth.Unsafe)
		require.NoError(t, err)
		if f.Number > s.Number {
			return 0, false
		}
		at, err := seq.L2BlockRefByNumber(w.ctx, f.Number)
		return s.Number - f.Number, err == nil && at.Hash == f.Hash
	}
	// warm-up: the node backfills to safe and the tip feed takes it to the head
	require.Eventually(t, func() bool {
		node.requireRunning()
		lag, same := lagOf()
		return lag <= 2 && same
	}, 60*time.Second, 100*time.Millisecond, "follower reaches the sequencer's head; node log:\n%s", node.stderr.String())

	var lags []uint64
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		lag, same := lagOf()
		require.True(t, same, "the follower's head is on the sequencer's chain")
		lags = append(lags, lag)
	}
	worst := uint64(0)
	for _, l := range lags {
		worst = max(worst, l)
	}
	t.Logf("tip lag over %d samples at 100 ms, 500 ms blocks: worst %d blocks", len(lags), worst)
	require.LessOrEqual(t, worst, uint64(2), "latest within 2 blocks of the sequencer's; lags %v", lags)

	// an unsafe reorg above safe at the sequencer is followed
	forkReq <- struct{}{}
	<-forkReq
	require.Eventually(t, func() bool {
		lag, same := lagOf()
		return lag <= 2 && same
	}, 20*time.Second, 100*time.Millisecond, "follower follows the sequencer's unsafe reorg; node log:\n%s", node.stderr.String())
	require.Contains(t, node.stderr.String(), "Unsafe reorg to the tip feed's chain")

	// the tip source freezes: safe and finalized keep following
	tipProxy.freeze(true)
	frozenAt, err := l2.L2BlockRefByLabel(w.ctx, eth.Unsafe)
	require.NoError(t, err)
	time.Sleep(3 * time.Second) // 6 more blocks at the sequencer
	require.Eventually(t, func() bool {
		s, err1 := l2.L2BlockRefByLabel(w.ctx, eth.Safe)
		return err1 == nil && s.Number > frozenAt.Number
	}, 30*time.Second, 100*time.Millisecond, "safe moves past where the tip froze (%d); node log:\n%s", frozenAt.Number, node.stderr.String())
	lag, _ := lagOf()
	require.Greater(t, lag, uint64(2), "while frozen the tip feed moves nothing: the head is where the safe path puts it")
	tipProxy.freeze(false)
	require.Eventually(t, func() bool {
		lag, same := lagOf()
		return lag <= 2 && same
	}, 30*time.Second, 100*time.Millisecond, "latest catches up once the tip source thaws; node log:\n%s", node.stderr.String())

	cancel()
	<-done
	node.stop()
}

// freezeProxy forwards TCP to target and can freeze: while frozen it moves no
// byte either way and accepts no connection, as a SIGSTOPped process behind an
// open socket would.
type freezeProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &freezeProxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	var wg sync.WaitGroup
	var conns sync.Map
	t.Cleanup(func() {
		_ = ln.Close()
		p.freeze(false)
		conns.Range(func(c, _ any) bool { _ = c.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wait()
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			conns.Store(c, true)
			conns.Store(up, true)
			for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p.copy(pair[0], pair[1])
					_ = pair[0].Close()
					_ = pair[1].Close()
				}()
			}
		}
	}()
	return p
}

func (p *freezeProxy) addr() string { return p.ln.Addr().String() }

func (p *freezeProxy) freeze(on bool) {
	p.mu.Lock()
	p.frozen = on
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *freezeProxy) wait() {
	p.mu.Lock()
	for p.frozen {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

// copy moves bytes from src to dst, holding each read while frozen.
func (p *freezeProxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.wait()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, or the other side closed
		}
	}
}
