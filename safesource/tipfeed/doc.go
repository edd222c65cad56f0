// Package tipfeed is a tip feed from a remote L2 execution client: it hands the
// engine adapter the remote's newest unsafe blocks as execution payloads, so
// that a light node's engine can follow the chain's tip between safe heads.
//
// Over a ws:// or wss:// URL it subscribes to eth_subscribe("newHeads") and
// fetches the payload of the newest announced head; over http(s), or while a
// subscription is down, it polls the "latest" block header and fetches the
// payload when the head changes, trying to subscribe again with a backoff.
// Every payload is checked against its block hash before it is handed on, and
// PayloadByHash lets the adapter walk from a tip to its chain through parent
// hashes. Merge makes one feed of several remotes: the first to deliver a
// block wins, and any of them can answer for a block by hash.
//
// It is not a source of safety: nothing it delivers is trusted beyond its
// hash. Whether a tip extends the local safe chain, and whether it is valid,
// is for the engine adapter and the engine to decide. It neither retries a
// delivery the adapter did not take nor keeps a history of heads: a feed that
// falls behind skips to the newest head, and the adapter fills gaps through
// PayloadByHash.
package tipfeed
