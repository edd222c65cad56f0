package engineadapter

import "github.com/ethereum/go-ethereum/common"

// rejectedSet remembers the last n hashes the engine called INVALID. Owned by
// the adapter's tick; not safe for concurrent use.
type rejectedSet struct {
	set   map[common.Hash]struct{}
	order []common.Hash
	next  int
}

func newRejectedSet(n int) *rejectedSet {
	return &rejectedSet{set: make(map[common.Hash]struct{}, n), order: make([]common.Hash, n)}
}

func (r *rejectedSet) add(h common.Hash) {
	if _, ok := r.set[h]; ok || len(r.order) == 0 {
		return
	}
	if old := r.order[r.next]; old != (common.Hash{}) {
		delete(r.set, old)
	}
	r.order[r.next] = h
	r.next = (r.next + 1) % len(r.order)
	r.set[h] = struct{}{}
}

// remove forgets h, and frees its slot so that a later eviction cannot drop
// it if it is added again.
func (r *rejectedSet) remove(h common.Hash) bool {
	if _, ok := r.set[h]; !ok {
		return false
	}
	delete(r.set, h)
	for i, x := range r.order {
		if x == h {
			r.order[i] = common.Hash{}
		}
	}
	return true
}

func (r *rejectedSet) has(h common.Hash) bool {
	_, ok := r.set[h]
	return ok
}
