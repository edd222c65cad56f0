package remotel2

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	oplog "github.com/ethereum-optimism/optimism/op-service/log"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/lru"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/rpclimit"
)

// Source is a SafeHeadSource backed by one remote L2 node. Safe for concurrent
// use.
type Source struct {
	cfg     Config
	kind    Kind
	log     log.Logger
	metrics Metrics

	rpc     client.RPC            // the remote itself
	l2      *sources.L2Client     // EL kind: the remote; CL kind: the paired EL, if any
	rollup  *sources.RollupClient // CL kind
	pairRPC client.RPC

	refs  *lru.Cache[common.Hash, eth.L2BlockRef] // EL kind: the heads read before, by hash
	polls atomic.Uint64                           // EL kind: heads reads started

	mu          sync.Mutex
	last        safesource.Heads
	seen        bool
	safePayload *eth.ExecutionPayloadEnvelope // EL kind: the safe head's block, while it is (PayloadByNumber)
	keptPoll    uint64                        // the poll safePayload was last decided by
}

var _ safesource.SafeHeadSource = (*Source)(nil)

// New dials the remote, detects its kind when the config says auto, and checks
// that it serves the configured chain. logger and metrics may be nil.
func New(ctx context.Context, cfg Config, logger log.Logger, metrics Metrics) (*Source, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = log.NewLogger(log.DiscardHandler())
	}
	if metrics == nil {
		metrics = NoopMetrics{}
	}
	s := &Source{cfg: cfg, kind: cfg.Kind, log: logger.New("source", cfg.Name), metrics: metrics,
		refs: lru.NewCache[common.Hash, eth.L2BlockRef](refCacheSize)}
	var err error
	s.rpc, err = dial(ctx, logger, cfg.URL, cfg.Timeout, cfg.MaxResponseBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// dial connects with op-service's RPC client; every call and batch is bounded by
// timeout, every answer by maxResponse bytes (0: rpclimit's default).
func dial(ctx context.Context, logger log.Logger, url string, timeout time.Duration, maxResponse int64) (client.RPC, error) {
	// op-service's client warns before failing to dial; the error says it all
	quiet := log.NewLogger(oplog.NewDynamicLogHandler(log.LevelError, logger.Handler()))
	c, err := client.NewRPC(ctx, quiet, url,
		client.WithConnectTimeout(timeout), client.WithCallTimeout(timeout), client.WithBatchCallTimeout(timeout),
		client.WithGethRPCOptions(rpclimit.Options(maxResponse)...))
	if err != nil {
		// op-service's error names the URL; it checks that something listens
		// before it dials, and says nothing else than "address unavailable"
		return nil, fmt.Errorf("dial: %w: %w", safesource.ErrUnreachable, err)
	}
	return c, nil
}

func (s *Source) init(ctx context.Context) error {
	if s.kind == KindAuto {
		k, err := s.detect(ctx)
		if err != nil {
			return err
		}
		s.kind = k
	}
	var err error
	switch s.kind {
	case KindEL:
		if s.cfg.RollupConfig == nil {
			return fmt.Errorf("%s: %s is an EL: %w", s.cfg.Name, s.cfg.URL, ErrNeedsRollupConfig)
		}
		if s.l2, err = newL2Client(s.rpc, s.log, s.cfg.RollupConfig); err != nil {
			return fmt.Errorf("%s: %w", s.cfg.Name, err)
		}
		if err := s.checkChainID(ctx, s.rpc, s.cfg.URL); err != nil {
			return err
		}
		return s.checkGenesis(ctx)
	case KindCL:
		s.rollup = sources.NewRollupClient(s.rpc)
		if s.cfg.RollupConfig != nil {
			if err := s.checkRollupConfig(ctx); err != nil {
				return err
			}
		}
		if s.cfg.PairedELURL != "" {
			if s.pairRPC, err = dial(ctx, s.log, s.cfg.PairedELURL, s.cfg.Timeout, s.cfg.MaxResponseBytes); err != nil {
				return fmt.Errorf("%s: paired EL: %w", s.cfg.Name, err)
			}
			if s.l2, err = newL2Client(s.pairRPC, s.log, s.cfg.RollupConfig); err != nil {
				return fmt.Errorf("%s: paired EL: %w", s.cfg.Name, err)
			}
			return s.checkChainID(ctx, s.pairRPC, s.cfg.PairedELURL)
		}
		return nil
	}
	return fmt.Errorf("%s: kind %s is unknown", s.cfg.Name, s.kind)
}

func newL2Client(c client.RPC, logger log.Logger, cfg *rollup.Config) (*sources.L2Client, error) {
	lc := sources.L2ClientDefaultConfig(cfg, false) // untrusted: every block hash is recomputed
	return sources.NewL2Client(c, logger, nil, lc)
}

// detect asks for optimism_syncStatus: a rollup node answers it, an EL answers
// "method not found".
func (s *Source) detect(ctx context.Context) (Kind, error) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	_, err := sources.NewRollupClient(s.rpc).SyncStatus(cctx)
	switch {
	case err == nil:
		s.record("detect", nil)
		s.log.Debug("Remote is a rollup node", "url", s.cfg.URL)
		return KindCL, nil
	case isMethodNotFound(err):
		s.record("detect", nil)
		s.log.Debug("Remote is an execution client", "url", s.cfg.URL)
		return KindEL, nil
	}
	s.record("detect", err)
	return 0, fmt.Errorf("%s: detecting the kind of %s with optimism_syncStatus (set the kind to skip detection): %w", s.cfg.Name, s.cfg.URL, err)
}

func isMethodNotFound(err error) bool {
	var rpcErr rpc.Error
	return errors.As(err, &rpcErr) && rpcErr.ErrorCode() == -32601
}

func (s *Source) checkChainID(ctx context.Context, c client.RPC, url string) error {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	err := safesource.CheckChainID(cctx, c, url, s.cfg.RollupConfig.L2ChainID)
	s.record("chain_id", err)
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.Name, err)
	}
	return nil
}

// checkGenesis checks that the EL's block at the rollup config's L2 genesis
// height is the genesis block (op-service refuses any other there).
func (s *Source) checkGenesis(ctx context.Context) error {
	g := s.cfg.RollupConfig.Genesis.L2
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	ref, err := guard(func() (eth.L2BlockRef, error) { return s.l2.L2BlockRefByNumber(cctx, g.Number) })
	s.record("chain_id", err)
	switch {
	case err != nil && strings.Contains(err.Error(), "genesis"):
		return fmt.Errorf("%s: %s has another L2 genesis than the rollup config's %s: %v: %w", s.cfg.Name, s.cfg.URL, g.Hash, err, safesource.ErrWrongChain)
	case err != nil:
		return fmt.Errorf("%s: reading the L2 genesis block %d at %s: %w", s.cfg.Name, g.Number, s.cfg.URL, err)
	case ref.Hash != g.Hash:
		return fmt.Errorf("%s: %s has L2 genesis %s, the rollup config %s: %w", s.cfg.Name, s.cfg.URL, ref.Hash, g.Hash, safesource.ErrWrongChain)
	}
	return nil
}

func (s *Source) checkRollupConfig(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	remote, err := s.rollup.RollupConfig(cctx)
	s.record("chain_id", err)
	if err != nil {
		return fmt.Errorf("%s: optimism_rollupConfig at %s: %w", s.cfg.Name, s.cfg.URL, err)
	}
	return SameChain(s.cfg.Name, s.cfg.RollupConfig, remote)
}

// SameChain reports, as an error wrapping safesource.ErrWrongChain, whether two
// rollup configs describe different chains (L2 chain id or L2 genesis differ).
func SameChain(name string, want, got *rollup.Config) error {
	if got == nil {
		return fmt.Errorf("%s: empty rollup config: %w", name, safesource.ErrWrongChain)
	}
	if want.L2ChainID == nil || got.L2ChainID == nil || want.L2ChainID.Cmp(got.L2ChainID) != 0 {
		return fmt.Errorf("%s: serves L2 chain %s, want %s: %w", name, got.L2ChainID, want.L2ChainID, safesource.ErrWrongChain)
	}
	if want.Genesis.L2 != got.Genesis.L2 {
		return fmt.Errorf("%s: L2 genesis %s, want %s: %w", name, got.Genesis.L2, want.Genesis.L2, safesource.ErrWrongChain)
	}
	return nil
}

// Name returns the configured name.
func (s *Source) Name() string { return s.cfg.Name }

// Kind returns the remote's kind, detected or configured.
func (s *Source) Kind() Kind { return s.kind }

// Close closes the connections to the remote.
func (s *Source) Close() {
	if s.rpc != nil {
		s.rpc.Close()
	}
	if s.pairRPC != nil {
		s.pairRPC.Close()
	}
}

func (s *Source) record(method string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.metrics.RecordRequest(s.cfg.Name, method, result)
}

// RemoteRollupConfig returns the rollup config a CL remote serves with
// optimism_rollupConfig. An EL remote has none to give.
func (s *Source) RemoteRollupConfig(ctx context.Context) (*rollup.Config, error) {
	if s.kind != KindCL {
		return nil, fmt.Errorf("%s: an %s remote has no rollup config to give", s.cfg.Name, s.kind)
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	cfg, err := s.rollup.RollupConfig(cctx)
	s.record("rollup_config", err)
	if err != nil {
		return nil, fmt.Errorf("%s: optimism_rollupConfig: %w", s.cfg.Name, err)
	}
	if cfg == nil {
		return nil, fmt.Errorf("%s: optimism_rollupConfig: empty answer", s.cfg.Name)
	}
	return cfg, nil
}
