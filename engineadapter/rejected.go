package engineadapter

import (
	"github.com/ethereum/go-ethereum/common"
	lru "github.com/hashicorp/golang-lru/v2"
)

// rejectedSet remembers the last n hashes the engine called INVALID, oldest
// forgotten first. Adding a hash it holds changes nothing, and lookups do not
// refresh a hash, so the order is that of first insertion. With n <= 0 it
// remembers nothing. Owned by the adapter's tick.
type rejectedSet struct {
	cache *lru.Cache[common.Hash, struct{}] // nil when n <= 0
}

func newRejectedSet(n int) *rejectedSet {
	if n <= 0 {
		return &rejectedSet{}
	}
	c, err := lru.New[common.Hash, struct{}](n)
	if err != nil { // only for n <= 0, handled above
		panic(err)
	}
	return &rejectedSet{cache: c}
}

func (r *rejectedSet) add(h common.Hash) {
	if r.cache != nil {
		r.cache.ContainsOrAdd(h, struct{}{}) // no refresh of a hash already held
	}
}

// remove forgets h, and frees its slot so that a later eviction cannot drop
// it if it is added again.
func (r *rejectedSet) remove(h common.Hash) bool {
	return r.cache != nil && r.cache.Remove(h)
}

func (r *rejectedSet) has(h common.Hash) bool {
	return r.cache != nil && r.cache.Contains(h) // Contains does not refresh
}
