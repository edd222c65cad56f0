package safesource

import (
	"github.com/ethereum-optimism/optimism/op-service/eth"
)

// BuildRequest is a block a source derived itself that the engine lacks, or
// holds another block in place of: the adapter builds it from Attributes on
// Parent (forkchoiceUpdated with the attributes, getPayload, newPayload,
// forkchoiceUpdated), and the source then finds it in the engine.
type BuildRequest struct {
	// Parent is the block to build on; the source found it in the engine.
	Parent eth.L2BlockRef
	// Attributes are the payload attributes of the block after Parent.
	Attributes *eth.PayloadAttributes
	// DerivedFrom is the L1 block the attributes were derived from; zero
	// when unknown.
	DerivedFrom eth.L1BlockRef
}

// Builder is implemented by sources that derive blocks rather than read
// them from a remote (L1 derivation). The adapter asks after each tick.
type Builder interface {
	// PendingBuild returns the block to build next, if any. It reflects the
	// source's last Heads call.
	PendingBuild() (BuildRequest, bool)
}
