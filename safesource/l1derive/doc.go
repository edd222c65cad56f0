// Package l1derive is a SafeHeadSource that trusts nobody but L1: it runs
// op-node's own derivation pipeline (op-node/rollup/derive) over the user's
// L1 node and checks every derived block against the local execution engine,
// as op-node's consolidation does.
//
// Each Heads call steps the pipeline from the last derived safe head. For
// each derived block it reads the engine's block at that height and compares
// it with the derived attributes (attributes.AttributesMatchBlock). A match
// advances the safe head. A missing or different block stops derivation
// there: Heads reports the last matching block as safe, and PendingBuild
// hands out the derived attributes, so that the adapter builds the block
// itself (engineadapter does, through the safesource.Builder interface) and
// the next Heads call finds it.
//
// Finalized is the highest safe block derived entirely from L1 blocks at or
// below L1's finalized block (op-node's finalizer rule), and never moves
// backwards. At start and after an L1 reorg the pipeline restarts from the
// engine's own heads (op-node's sync.FindL2Heads), so a restart resumes near
// where it stopped rather than from genesis, and finalized is never reorged.
//
// CrossCheck follows another source and checks it with a CheckOnly Source,
// which never takes the engine's labels as checked, since the followed source
// set them: it derives from the highest finalized block it has confirmed
// (kept in Config.ConfirmedPath across restarts) or from the L2 genesis
// block, and the followed source's finalized head is capped at that block.
//
// It is not a sequencer: it never builds a block the L1 data does not
// derive. Alt-DA chains and chains with the Lagoon feature set are not
// supported. Blob batches need an L1 beacon endpoint (L1BlobsFetcher).
package l1derive
