package safesource

import "errors"

// ErrL1Mismatch is wrapped when a head's L1 origin (or the source's current
// L1 block) is not the canonical L1 block at its height: the source follows
// another L1 fork, or lies. The error names the head and both hashes.
var ErrL1Mismatch = errors.New("L1 origin not canonical")

// ErrAheadOfL1 is wrapped when a source claims more than L1 shows: a head's
// L1 origin above the L1 head, or a finalized head whose L1 origin is above
// L1's finalized block.
var ErrAheadOfL1 = errors.New("ahead of L1")
