package safesource

import (
	"errors"
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
)

// fuzzRef builds a block ref from fuzzed fields. Hashes come from single bytes
// so that labels share hashes and name each other as parents often; byte 0 is
// the zero hash.
func fuzzRef(n uint64, hash, parent byte, l1 uint64, l1Hash byte) eth.L2BlockRef {
	h := func(b byte) common.Hash {
		if b == 0 {
			return common.Hash{}
		}
		return common.Hash{31: b}
	}
	return eth.L2BlockRef{Hash: h(hash), Number: n, ParentHash: h(parent), L1Origin: eth.BlockID{Hash: h(l1Hash), Number: l1}}
}

// consistent restates Check's documented rules independently: no zero hash;
// finalized ≤ safe ≤ local-safe by number; labels at one height are one
// block (one hash, one L1 origin) and a hash names one height; a label
// directly above another names it as its parent; L1 origins never decrease
// from finalized to safe to local-safe.
func consistent(h Heads) bool {
	refs := []eth.L2BlockRef{h.Finalized, h.Safe, h.LocalSafe}
	for _, r := range refs {
		if r.Hash == (common.Hash{}) {
			return false
		}
	}
	for i := range refs {
		for j := i + 1; j < len(refs); j++ {
			lo, hi := refs[i], refs[j]
			switch {
			case lo.Number > hi.Number:
				return false
			case lo.Number == hi.Number && (lo.Hash != hi.Hash || lo.L1Origin != hi.L1Origin):
				return false
			case lo.Number != hi.Number && lo.Hash == hi.Hash:
				return false
			case lo.Number+1 == hi.Number && hi.ParentHash != lo.Hash:
				return false
			case lo.L1Origin.Number > hi.L1Origin.Number:
				return false
			}
		}
	}
	return true
}

// FuzzHeadsCheck builds heads from fuzzed numbers, hashes, parent hashes and L1
// origins. It protects Check's contract in both directions: Check never panics;
// when it accepts heads, every documented property holds (so the decision core
// and quorum can rely on them); when it refuses them, the error wraps
// ErrInconsistentHeads and the heads do break a documented property (Check
// refuses nothing consistent).
func FuzzHeadsCheck(f *testing.F) {
	c := line(20, 1)
	other := line(20, 2)
	add := func(h Heads) {
		fin, s, ls := h.Finalized, h.Safe, h.LocalSafe
		f.Add(fin.Number, hashByte(fin.Hash), hashByte(fin.ParentHash), fin.L1Origin.Number, hashByte(fin.L1Origin.Hash),
			s.Number, hashByte(s.Hash), hashByte(s.ParentHash), s.L1Origin.Number, hashByte(s.L1Origin.Hash),
			ls.Number, hashByte(ls.Hash), hashByte(ls.ParentHash), ls.L1Origin.Number, hashByte(ls.L1Origin.Hash))
	}
	add(Heads{Finalized: c[5], Safe: c[10], LocalSafe: c[12]})
	add(Heads{Finalized: c[7], Safe: c[7], LocalSafe: c[7]})
	add(Heads{Finalized: c[6], Safe: c[7], LocalSafe: c[8]})
	add(Heads{Finalized: c[11], Safe: c[10], LocalSafe: c[12]})
	add(Heads{Finalized: c[10], Safe: other[10], LocalSafe: other[12]})
	add(Heads{Finalized: c[9], Safe: other[10], LocalSafe: other[10]})
	// finalized and local-safe adjacent across an equal safe: 3 → 4 links
	f.Add(uint64(3), byte(3), byte(2), uint64(1), byte(9), uint64(3), byte(3), byte(2), uint64(1), byte(9), uint64(4), byte(4), byte(3), uint64(1), byte(9))
	// L1 origin going backwards from safe to local-safe
	f.Add(uint64(3), byte(3), byte(2), uint64(1), byte(9), uint64(4), byte(4), byte(3), uint64(2), byte(9), uint64(9), byte(9), byte(8), uint64(1), byte(9))
	// the largest height: no overflow in the adjacency rule
	f.Add(uint64(1<<64-1), byte(1), byte(1), uint64(0), byte(0), uint64(1<<64-1), byte(1), byte(1), uint64(0), byte(0), uint64(1<<64-1), byte(1), byte(1), uint64(0), byte(0))

	f.Fuzz(func(t *testing.T,
		fn uint64, fh, fp byte, fl1 uint64, fl1h byte,
		sn uint64, sh, sp byte, sl1 uint64, sl1h byte,
		ln uint64, lh, lp byte, ll1 uint64, ll1h byte,
	) {
		h := Heads{
			Finalized: fuzzRef(fn, fh, fp, fl1, fl1h),
			Safe:      fuzzRef(sn, sh, sp, sl1, sl1h),
			LocalSafe: fuzzRef(ln, lh, lp, ll1, ll1h),
		}
		err := h.Check()
		want := consistent(h)
		switch {
		case err == nil && !want:
			t.Fatalf("Check accepted heads that break a documented property: %+v", h)
		case err != nil && want:
			t.Fatalf("Check refused consistent heads %+v: %v", h, err)
		case err != nil && !errors.Is(err, ErrInconsistentHeads):
			t.Fatalf("Check's error does not wrap ErrInconsistentHeads: %v", err)
		}
	})
}

// hashByte folds a test-chain hash into the one byte fuzzRef expands again:
// the height byte, tagged by the chain so that two chains differ.
func hashByte(h common.Hash) byte {
	if h == (common.Hash{}) {
		return 0
	}
	return h[0]*100 + h[2] + 1
}
