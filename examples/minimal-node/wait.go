package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/retry"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/lightcl/lightcl/safesource"
)

// startBackoff spaces the attempts to reach a remote that is not up yet: 1 s,
// 2 s, 4 s, 8 s, then every 10 s, each with up to 250 ms of jitter.
var startBackoff retry.Strategy = &retry.ExponentialStrategy{Max: 10 * time.Second, MaxJitter: 250 * time.Millisecond}

// await runs check, each attempt bounded by startTimeout, until it succeeds,
// fails with an answer that proves a misconfiguration (returned as is), or ctx
// ends (ctx's error). A remote that cannot be reached yet (refused, reset, timed
// out, a gateway's 5xx) is waited for with backoff and a log line per attempt:
// an engine or remote started beside the node is often slower than it.
func (n *node) await(ctx context.Context, flag, url string, check func(context.Context) error) error {
	var final error
	attempts := 0
	err := retry.Do0(ctx, math.MaxInt, startBackoff, func() error {
		attempts++
		actx, cancel := context.WithTimeout(ctx, startTimeout)
		err := check(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !unreachable(err) {
			final = err
			return nil
		}
		n.log.Warn("Waiting for a remote that cannot be reached yet", "flag", "--"+flag, "url", url,
			"attempt", attempts, "err", err)
		return err
	})
	if err != nil {
		return err // ctx ended while waiting
	}
	if final == nil && attempts > 1 {
		n.log.Info("Remote reached", "flag", "--"+flag, "url", url, "attempts", attempts)
	}
	return final
}

// unreachable reports whether err says that a remote could not be reached or
// did not answer, rather than that it answered something wrong. A JSON-RPC
// error, an HTTP 4xx other than 408 and 429 (a refused JWT, a wrong path), a
// wrong chain or a malformed answer prove a misconfiguration and are not.
func unreachable(err error) bool {
	var httpErr rpc.HTTPError
	if errors.As(err, &httpErr) {
		code := httpErr.StatusCode
		return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
	}
	var rpcErr rpc.Error
	if errors.As(err, &rpcErr) {
		return false // the remote answered
	}
	if errors.Is(err, safesource.ErrUnreachable) {
		return true
	}
	var netErr net.Error // dial errors, DNS failures, timeouts
	return errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// dialRPC dials url with op-service's client. Its only failure for a URL that
// passed the flag checks is that nothing listens there yet, so the error wraps
// safesource.ErrUnreachable.
func dialRPC(ctx context.Context, logger log.Logger, url string, opts ...client.RPCOption) (client.RPC, error) {
	quiet := quietLogger(logger, log.LevelError)
	c, err := client.NewRPC(ctx, quiet, url, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", safesource.ErrUnreachable, err)
	}
	return c, nil
}
