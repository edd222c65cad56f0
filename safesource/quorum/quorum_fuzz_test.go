package quorum_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"

	"github.com/lightcl/lightcl/safesource"
	"github.com/lightcl/lightcl/safesource/quorum"
)

// fzReader hands out fuzzed bytes one at a time; past the end it reads zeros.
type fzReader []byte

func (r *fzReader) next() byte {
	if len(*r) == 0 {
		return 0
	}
	b := (*r)[0]
	*r = (*r)[1:]
	return b
}

// upTo returns a number in [0, n].
func (r *fzReader) upTo(n uint64) uint64 { return uint64(r.next()) % (n + 1) }

// fzChain is a chain whose hashes depend only on its tag, fork height and
// block height, so that an input always decodes to the same blocks.
func fzChain(base chain, at uint64, tag uint64, n int) chain {
	c := append(chain{}, base[:at+1]...)
	for range n {
		num := uint64(len(c))
		var h common.Hash
		binary.BigEndian.PutUint64(h[:8], tag)
		binary.BigEndian.PutUint64(h[8:16], at)
		binary.BigEndian.PutUint64(h[16:24], num)
		h[31] = 0xf0
		c = append(c, eth.L2BlockRef{Hash: h, Number: num, ParentHash: c[num-1].Hash, Time: num * 2, L1Origin: eth.BlockID{Number: num / 4}})
	}
	return c
}

// fzHonest is the honest chain, blocks 0..63.
var fzHonest = func() chain {
	g := eth.L2BlockRef{Hash: common.Hash{31: 0x01}}
	return fzChain(chain{g}, 0, 1, 63)
}()

// fzMember is a member whose claims the test sets per round: an honest one
// claims blocks of fzHonest up to its tip and looks up from the same; a liar
// claims anything (its fork, the honest chain, forged records) and looks up
// from its fork, its claims, the honest chain, or not at all.
type fzMember struct {
	name   string
	liar   bool
	claims [2]safesource.Heads // per round
	down   [2]bool
	lookup func(n uint64) (eth.L2BlockRef, error)
}

// fzCase is a decoded quorum setup.
type fzCase struct {
	m       int
	liars   int
	members []*fzMember
	lookAt  uint64 // a height for the quorum's own lookup
}

var errFzDown = errors.New("fuzzed member down")

// decodeFzCase reads N ≤ 7, M ≤ N, the number of liars, then per member its
// claims for two rounds and its lookups.
func decodeFzCase(data []byte) fzCase {
	r := fzReader(data)
	var fc fzCase
	n := 1 + int(r.next()%7)
	fc.m = 1 + int(r.next())%n
	fc.liars = int(r.next()) % (n + 1)
	fc.lookAt = r.upTo(80)
	for j := range n {
		mem := &fzMember{name: fmt.Sprintf("m%d", j), liar: j < fc.liars}
		if !mem.liar {
			tip := r.upTo(uint64(len(fzHonest) - 1))
			failing := r.next()%8 == 7 // lookups fail (the member is honest all the same)
			for round := range 2 {
				s := r.upTo(tip)
				f := r.upTo(s)
				ls := s + r.upTo(tip-s)
				mem.claims[round] = fzHonest.heads(f, s, ls)
				mem.down[round] = r.next()%8 == 7
			}
			mem.lookup = func(n uint64) (eth.L2BlockRef, error) {
				if failing {
					return eth.L2BlockRef{}, errFzDown
				}
				if n > tip {
					return eth.L2BlockRef{}, fmt.Errorf("%d: %w", n, safesource.ErrNotFound)
				}
				return fzHonest[n], nil
			}
			fc.members = append(fc.members, mem)
			continue
		}
		// a liar: a fork of the honest chain (liars sharing a tag and fork
		// height collude on one fork)
		fork := fzChain(fzHonest, r.upTo(uint64(len(fzHonest)-1)), 2+uint64(r.next()%3), 1+int(r.next()%20))
		claim := func() eth.L2BlockRef {
			c := fork
			switch r.next() % 4 {
			case 0:
				c = fzHonest
			case 1: // a forged record of a block that exists: same hash, another parent, time or L1 origin
				ref := fzHonest[r.upTo(uint64(len(fzHonest)-1))]
				switch r.next() % 3 {
				case 0:
					ref.ParentHash[0] ^= 0xff
				case 1:
					ref.Time++
				default:
					ref.L1Origin.Number++
				}
				return ref
			}
			return c[r.upTo(uint64(len(c)-1))]
		}
		var claimed []eth.L2BlockRef
		for round := range 2 {
			h := safesource.Heads{Finalized: claim(), Safe: claim(), LocalSafe: claim()}
			mem.claims[round] = h
			claimed = append(claimed, h.Finalized, h.Safe, h.LocalSafe)
			mem.down[round] = r.next()%8 == 7
		}
		switch r.next() % 4 {
		case 0: // its claims, else its fork: the strongest liar
			mem.lookup = func(n uint64) (eth.L2BlockRef, error) {
				for _, c := range claimed {
					if c.Number == n {
						return c, nil
					}
				}
				return fork.lookupN(n)
			}
		case 1:
			mem.lookup = func(n uint64) (eth.L2BlockRef, error) { return fzHonest.lookupN(n) }
		case 2:
			mem.lookup = func(n uint64) (eth.L2BlockRef, error) { return eth.L2BlockRef{}, errFzDown }
		default:
			mem.lookup = fork.lookupN
		}
		fc.members = append(fc.members, mem)
	}
	return fc
}

func (c chain) lookupN(n uint64) (eth.L2BlockRef, error) {
	if n >= uint64(len(c)) {
		return eth.L2BlockRef{}, fmt.Errorf("%d: %w", n, safesource.ErrNotFound)
	}
	return c[n], nil
}

// supporters counts the members that back ref in a round: by their own
// (valid) claim for one of the given labels, or by their lookup at its
// height answering the same record. A quorum decision can count no more.
func (fc fzCase) supporters(round int, ref eth.L2BlockRef, labels func(safesource.Heads) []eth.L2BlockRef) (n int) {
	for _, mem := range fc.members {
		h := mem.claims[round]
		if mem.down[round] || h.Check() != nil {
			continue
		}
		backs := false
		for _, c := range labels(h) {
			backs = backs || c == ref
		}
		if got, err := mem.lookup(ref.Number); err == nil && got == ref {
			backs = true
		}
		if backs {
			n++
		}
	}
	return n
}

func finalizedOnly(h safesource.Heads) []eth.L2BlockRef { return []eth.L2BlockRef{h.Finalized} }
func upToSafe(h safesource.Heads) []eth.L2BlockRef      { return []eth.L2BlockRef{h.Finalized, h.Safe} }
func allLabels(h safesource.Heads) []eth.L2BlockRef {
	return []eth.L2BlockRef{h.Finalized, h.Safe, h.LocalSafe}
}

// fzSeed lays out a fuzz input for decodeFzCase: N, M, the number of liars
// (the first members), the lookup height, then each member's bytes.
func fzSeed(n, m, liars, lookAt byte, members ...[]byte) []byte {
	out := []byte{n - 1, m - 1, liars, lookAt}
	for _, mem := range members {
		out = append(out, mem...)
	}
	return out
}

// fzHonestSeed is an honest member's bytes: its tip, and per round its
// finalized, safe and local-safe heights (up, lookups working).
func fzHonestSeed(tip byte, r1, r2 [3]byte) []byte {
	out := []byte{tip, 0}
	for _, r := range [][3]byte{r1, r2} {
		out = append(out, r[1], r[0], r[2]-r[1], 0)
	}
	return out
}

// fzClaim is one label a liar claims: pick 0 the honest chain, 1 a forged
// record of the honest block (forge: 0 parent, 1 time, 2 L1 origin), 2 its
// fork; at height.
type fzClaim struct{ pick, height, forge byte }

// fzLiarSeed is a liar's bytes: its fork (height, tag, length), its claims
// (finalized, safe, local-safe) per round and its lookup mode (0 claims then
// fork, 1 honest chain, 2 failing, 3 fork).
func fzLiarSeed(at, tag, length byte, r1, r2 [3]fzClaim, mode byte) []byte {
	out := []byte{at, tag, length - 1}
	for _, r := range [][3]fzClaim{r1, r2} {
		for _, c := range r {
			out = append(out, c.pick, c.height)
			if c.pick == 1 {
				out = append(out, c.forge)
			}
		}
		out = append(out, 0)
	}
	return append(out, mode)
}

// FuzzQuorumRound runs two rounds of a real Quorum over in-memory members
// (safesource.Func) built from fuzzed claims: N ≤ 7, M ≤ N, honest members
// lagging at random heights of one chain (some down, some with failing
// lookups), liars claiming blocks of forks (colluding when they share one),
// of the honest chain, or forged records of honest hashes, and answering
// lookups from their claims, their fork, the honest chain or not at all.
// Invariants of every agreed round: the heads pass Check; the safe head has
// at least M supporters among the members' claims and lookups; so has
// local-safe unless it is the safe head, and finalized unless it is the
// previous round's agreed finalized head; while fewer than M members lie,
// every agreed head (and the quorum's own lookup by number) is a block of the
// honest chain, record for record, so no head only liars claim is adopted.
// A round without agreement fails with ErrNoQuorum or ErrInconsistentHeads.
func FuzzQuorumRound(f *testing.F) {
	h := func(f, s, ls byte) [3]byte { return [3]byte{f, s, ls} }
	fork := func(height byte) fzClaim { return fzClaim{pick: 2, height: height} }
	fork3 := [3]fzClaim{fork(45), fork(50), fork(52)}
	for _, s := range [][]byte{
		// three honest members at different heights, M = 2
		fzSeed(3, 2, 0, 30, fzHonestSeed(60, h(40, 50, 55), h(45, 55, 60)),
			fzHonestSeed(60, h(40, 50, 50), h(40, 52, 52)), fzHonestSeed(45, h(30, 40, 45), h(30, 45, 45))),
		// one liar of three on a fork after 40, M = 2
		fzSeed(3, 2, 1, 45, fzLiarSeed(40, 0, 19, fork3, fork3, 0),
			fzHonestSeed(60, h(40, 50, 55), h(40, 50, 55)), fzHonestSeed(60, h(40, 50, 55), h(40, 50, 55))),
		// two colluding liars of three, M = 2: their fork may win
		fzSeed(3, 2, 2, 45, fzLiarSeed(40, 0, 19, fork3, fork3, 0), fzLiarSeed(40, 0, 19, fork3, fork3, 0),
			fzHonestSeed(60, h(40, 50, 55), h(40, 50, 55))),
		// a liar forging the honest record at 50 (another time), its lookups agreeing with it
		fzSeed(3, 2, 1, 50, fzLiarSeed(40, 0, 19,
			[3]fzClaim{{pick: 0, height: 40}, {pick: 1, height: 50, forge: 1}, {pick: 1, height: 50, forge: 1}},
			[3]fzClaim{{pick: 0, height: 40}, {pick: 1, height: 50, forge: 1}, {pick: 1, height: 50, forge: 1}}, 0),
			fzHonestSeed(60, h(40, 50, 55), h(40, 50, 55)), fzHonestSeed(60, h(40, 55, 55), h(40, 55, 55))),
		// five members, M = 3, one liar answering lookups from the honest chain, lagging members
		fzSeed(5, 3, 1, 10, fzLiarSeed(40, 1, 19, fork3, fork3, 1),
			fzHonestSeed(63, h(50, 60, 60), h(60, 63, 63)), fzHonestSeed(40, h(30, 35, 39), h(30, 40, 40)),
			fzHonestSeed(55, h(40, 50, 55), h(40, 55, 55)), fzHonestSeed(63, h(40, 61, 63), h(40, 62, 63))),
	} {
		f.Add(s)
	}
	f.Fuzz(checkQuorumRound)
}

// checkQuorumRound is FuzzQuorumRound's check of one input.
func checkQuorumRound(t *testing.T, data []byte) {
	fc := decodeFzCase(data)
	round := 0
	var sources []safesource.SafeHeadSource
	for _, mem := range fc.members {
		sources = append(sources, &safesource.Func{
			SourceName: mem.name,
			HeadsFn: func(context.Context) (safesource.Heads, error) {
				if mem.down[round] {
					return safesource.Heads{}, errFzDown
				}
				return mem.claims[round], nil
			},
			BlockRefFn: func(_ context.Context, n uint64) (eth.L2BlockRef, error) { return mem.lookup(n) },
		})
	}
	// no member stalls, so the waits only bound a round on a slow machine
	q, err := quorum.New(quorum.Config{Threshold: fc.m, MemberTimeout: 10 * time.Second, StragglerWait: time.Second}, sources, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lastFin eth.L2BlockRef
	for round = 0; round < 2; round++ {
		h, err := q.Heads(context.Background())
		if err != nil {
			if !errors.Is(err, quorum.ErrNoQuorum) && !errors.Is(err, safesource.ErrInconsistentHeads) {
				t.Fatalf("round %d: %v", round, err)
			}
			continue
		}
		if err := h.Check(); err != nil {
			t.Fatalf("round %d: agreed heads fail Check: %v", round, err)
		}
		if n := fc.supporters(round, h.Safe, upToSafe); n < fc.m {
			t.Fatalf("round %d: safe %d (%s) agreed with %d supporters, want %d", round, h.Safe.Number, h.Safe.Hash, n, fc.m)
		}
		if n := fc.supporters(round, h.LocalSafe, allLabels); h.LocalSafe != h.Safe && n < fc.m {
			t.Fatalf("round %d: local-safe %d agreed with %d supporters, want %d", round, h.LocalSafe.Number, n, fc.m)
		}
		if n := fc.supporters(round, h.Finalized, finalizedOnly); h.Finalized != lastFin && n < fc.m {
			t.Fatalf("round %d: finalized %d agreed with %d supporters, want %d", round, h.Finalized.Number, n, fc.m)
		}
		if fc.liars < fc.m {
			for _, ref := range []eth.L2BlockRef{h.Finalized, h.Safe, h.LocalSafe} {
				if !onChain(fzHonest, ref) {
					t.Fatalf("round %d: %d of %d members lie (M = %d) and block %d (%s) off the honest chain was agreed",
						round, fc.liars, len(fc.members), fc.m, ref.Number, ref.Hash)
				}
			}
		}
		lastFin = h.Finalized
	}
	// the quorum's own lookup asks every member, whatever its heads
	ref, err := q.L2BlockRefByNumber(context.Background(), fc.lookAt)
	if err != nil {
		return
	}
	votes := 0
	for _, mem := range fc.members {
		if got, err := mem.lookup(ref.Number); err == nil && got == ref {
			votes++
		}
	}
	if ref.Number != fc.lookAt || votes < fc.m {
		t.Fatalf("lookup at %d answered block %d (%s), held by %d members, want %d", fc.lookAt, ref.Number, ref.Hash, votes, fc.m)
	}
	if fc.liars < fc.m && !onChain(fzHonest, ref) {
		t.Fatalf("lookup at %d answered %s, off the honest chain, with %d liars (M = %d)", fc.lookAt, ref.Hash, fc.liars, fc.m)
	}
}
