// Package fakechain builds a scripted tree of real OP Stack L2 blocks (Tree): each
// block has an L1-info deposit on a synthetic L1 origin (L1Ref), and forks are
// made by tagging children. Every Tree shares one genesis and rollup config,
// so the fakes built on different Trees can sync from each other. The fakes
// of internal/fake serve its blocks; tests and the runnable examples script
// them.
//
// It is not for production use: nothing is executed and state roots are
// made up, so the blocks are only valid to a client that does not execute.
package fakechain
