package safesource

import "errors"

// ErrInconsistentHeads is wrapped by every error that reports heads which
// contradict themselves: finalized above safe, safe above local-safe, a zero hash,
// or two labels claiming different blocks at one height.
var ErrInconsistentHeads = errors.New("inconsistent heads")

// ErrNotFound is wrapped when a source holds no block at the requested height.
var ErrNotFound = errors.New("block not found")

// ErrNoHeads is wrapped when a source has no heads to offer yet.
var ErrNoHeads = errors.New("no heads yet")

// ErrWrongChain is wrapped when a remote serves another chain than the one
// configured (chain id or genesis differ).
var ErrWrongChain = errors.New("wrong chain")

// ErrUnreachable is wrapped when a remote could not be connected to at all
// (nothing listens, or the connection was refused): a remote that is not up
// yet, not one that answered something wrong.
var ErrUnreachable = errors.New("remote unreachable")
