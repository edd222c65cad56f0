package tipfeed

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/lightcl/lightcl/safesource"
)

// ErrBadPayload is wrapped when the remote answers a block that does not match
// the hash it was asked for: another block, or one whose fields do not hash
// to its block hash.
var ErrBadPayload = errors.New("payload does not match its block hash")

// PayloadByHash returns the remote's block with the given hash as a payload,
// checked against the hash. It wraps safesource.ErrNotFound when the remote
// has no such block and ErrBadPayload when its answer does not match the hash.
func (r *Remote) PayloadByHash(ctx context.Context, hash common.Hash) (*eth.ExecutionPayloadEnvelope, error) {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	env, err := guard(func() (*eth.ExecutionPayloadEnvelope, error) { return r.l2.PayloadByHash(cctx, hash) })
	switch {
	case errors.Is(err, ethereum.NotFound):
		return nil, fmt.Errorf("%s: block %s: %w", r.cfg.Name, hash, safesource.ErrNotFound)
	case err != nil && isVerifyError(err):
		return nil, fmt.Errorf("%s: block %s: %w: %v", r.cfg.Name, hash, ErrBadPayload, err)
	case err != nil:
		return nil, fmt.Errorf("%s: block %s: %w", r.cfg.Name, hash, err)
	}
	if err := checkPayload(env, hash); err != nil {
		return nil, fmt.Errorf("%s: %w", r.cfg.Name, err)
	}
	return env, nil
}

// checkPayload checks that env is the block with the given hash, whatever
// op-service's client checked before.
func checkPayload(env *eth.ExecutionPayloadEnvelope, hash common.Hash) error {
	if env == nil || env.ExecutionPayload == nil {
		return fmt.Errorf("block %s: empty answer: %w", hash, ErrBadPayload)
	}
	if got := env.ExecutionPayload.BlockHash; got != hash {
		return fmt.Errorf("block %s: answered block %s: %w", hash, got, ErrBadPayload)
	}
	if computed, ok := env.CheckBlockHash(); !ok {
		return fmt.Errorf("block %s: its fields hash to %s: %w", hash, computed, ErrBadPayload)
	}
	return nil
}

// isVerifyError reports whether err is op-service's refusal of a block that
// does not match its hash ("failed to verify block hash", "... transactions
// list") or the hash asked for ("does not match requested ID"). A test pins
// these messages.
func isVerifyError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "failed to verify") || strings.Contains(msg, "does not match requested ID")
}

// guard runs a call into op-service's clients, turning a panic on a malformed
// remote answer into an error: nothing a remote sends may stop the process.
func guard[T any](call func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			var zero T
			v, err = zero, fmt.Errorf("malformed answer: %v", p)
		}
	}()
	return call()
}
