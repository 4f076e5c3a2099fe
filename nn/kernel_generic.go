//go:build !amd64

package nn

// kernel is the portable micro-kernel on this architecture.
var kernel = portable

func availableKernels() []microKernel { return []microKernel{portable} }

var fixedBlock fixedBlockFunc = fixedBlockGo

func availableFixedBlocks() map[string]fixedBlockFunc {
	return map[string]fixedBlockFunc{"portable": fixedBlockGo}
}

var (
	gdnStore       = gdnStoreGo
	squareScaled   = squareScaledGo
	biasStore      = biasStoreGo
	biasStorePairs = biasStorePairsGo
	biasAdd        = biasAddGo
	winogradIn     = winogradInGo
	winogradOut    = winogradOutGo
	deinterleave   = deinterleaveGo
)
