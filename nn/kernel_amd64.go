package nn

import "golang.org/x/sys/cpu"

//go:generate sh -c "cd asm && go run . -out ../kernel_amd64.s -stubs ../kernel_stub_amd64.go -pkg nn"

// kernel is the widest micro-kernel the CPU runs: AVX-512 (6 x 64 tile),
// AVX2 with FMA (6 x 16), or the portable one.
var kernel = portable

var (
	avx2Kernel   = microKernel{"avx2", 16, sliceKernel(16, kernelAVX2)}
	avx512Kernel = microKernel{"avx512", 64, sliceKernel(64, kernelAVX512)}
)

// fixedBlock is the widest fixed-point micro-kernel the CPU runs (AVX-512,
// AVX2 or portable); every version is exact, so the choice never changes a
// result.
var (
	fixedBlock  fixedBlockFunc = fixedBlockGo
	fixedAVX2                  = sliceFixedBlock(fixedBlockAVX2)
	fixedAVX512                = sliceFixedBlock(fixedBlockAVX512)
)

// gdnStore and squareScaled are the GDN's passes over a tile row,
// biasStore, biasStorePairs and biasAdd a conv's, deinterleave, winogradIn and
// winogradOut the Winograd gather and transforms; every version rounds each
// step alike, so the choice never changes a result.
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

func init() {
	if cpu.X86.HasAVX2 {
		fixedBlock = fixedAVX2
		gdnStore = gdnStoreWide
		squareScaled = squareScaledWide
		biasStore = biasStoreWide
		biasStorePairs = biasStorePairsWide
		biasAdd = biasAddWide
		winogradIn = winogradInWide
		winogradOut = winogradOutWide
		deinterleave = deinterleaveWide
	}
	if cpu.X86.HasAVX512F {
		fixedBlock = fixedAVX512
	}
	switch {
	case cpu.X86.HasAVX512F:
		kernel = avx512Kernel
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		kernel = avx2Kernel
	}
}

// sliceKernel wraps an assembly micro-kernel of width nr for slices,
// checking bounds once for everything the assembly reads and writes.
func sliceKernel(nr int, asm func(k int, a, b *float32, offs *int, tile *float32)) func(int, []float32, []float32, panelRows, []float32) {
	return func(k int, a, b []float32, rows panelRows, tile []float32) {
		if k <= 0 {
			clear(tile)
			return
		}
		_, _, _, _ = a[k*mr-1], rows.offs[k-1], b[rows.maxOff+nr-1], tile[mr*nr-1]
		asm(k, &a[0], &b[0], &rows.offs[0], &tile[0])
	}
}

// availableKernels lists the kernels this CPU can run, widest last.
func availableKernels() []microKernel {
	ks := []microKernel{portable}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel)
	}
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernel)
	}
	return ks
}

// sliceFixedBlock wraps an assembly fixed-point micro-kernel for slices,
// checking bounds once for everything it reads.
func sliceFixedBlock(asm func(taps int, src *int32, offs *int, w *int64, acc *[32]int64)) fixedBlockFunc {
	return func(rows panelRows, src []int32, w []int64, acc *[fixedGroup * fixedBlockWidth]int64) {
		taps := len(rows.offs)
		if taps == 0 {
			return
		}
		_, _ = w[fixedGroup*taps-1], src[rows.maxOff+fixedBlockWidth-1]
		asm(taps, &src[0], &rows.offs[0], &w[0], acc)
	}
}

// availableFixedBlocks lists the fixed-point micro-kernels this CPU runs.
func availableFixedBlocks() map[string]fixedBlockFunc {
	blocks := map[string]fixedBlockFunc{"portable": fixedBlockGo}
	if cpu.X86.HasAVX2 {
		blocks["avx2"] = fixedAVX2
	}
	if cpu.X86.HasAVX512F {
		blocks["avx512"] = fixedAVX512
	}
	return blocks
}

func gdnStoreWide(inverse bool, x, norm, dst []float32, s, beta float32) {
	n := len(x) &^ 7
	if n > 0 {
		_, _ = norm[n-1], dst[n-1]
		if inverse {
			gdnMultiplyAVX2(n, &x[0], &norm[0], &dst[0], s, beta)
		} else {
			gdnDivideAVX2(n, &x[0], &norm[0], &dst[0], s, beta)
		}
	}
	gdnStoreGo(inverse, x[n:], norm[n:], dst[n:], s, beta)
}

func squareScaledWide(x, dst []float32, s float32) {
	n := len(x) &^ 7
	if n > 0 {
		_ = dst[n-1]
		squareScaledAVX2(n, &x[0], &dst[0], s)
	}
	squareScaledGo(x[n:], dst[n:], s)
}

func biasStoreWide(src, dst []float32, bias float32, withRelu bool) {
	n := len(src) &^ 7
	if n > 0 {
		_ = dst[n-1]
		if withRelu {
			biasStoreReluAVX2(n, &src[0], &dst[0], bias)
		} else {
			biasStoreAVX2(n, &src[0], &dst[0], bias)
		}
	}
	biasStoreGo(src[n:], dst[n:], bias, withRelu)
}

func biasStorePairsWide(even, odd, dst []float32, be, bo float32, withRelu bool) {
	n := len(even) &^ 7
	if n > 0 {
		_, _ = odd[n-1], dst[2*n-1]
		if withRelu {
			biasStorePairsReluAVX2(n, &even[0], &odd[0], &dst[0], be, bo)
		} else {
			biasStorePairsAVX2(n, &even[0], &odd[0], &dst[0], be, bo)
		}
	}
	biasStorePairsGo(even[n:], odd[n:], dst[2*n:], be, bo, withRelu)
}

func winogradInWide(s []float32, halfW int, v []float32, stride, n int) {
	n8 := n &^ 7
	if n8 > 0 {
		// The assembly reads row 7 up to column n8 and writes element 15 up to n8-1.
		_, _ = s[7*halfW+n8], v[15*stride+n8-1]
		winogradInAVX2(n8, &s[0], halfW, &v[0], stride)
	}
	if n > n8 {
		winogradInGo(s[n8:], halfW, v[n8:], stride, n-n8)
	}
}

func winogradOutWide(m []float32, stride int, d0, d1 []float32, n int) {
	n8 := n &^ 7
	if n8 > 0 {
		// The assembly reads element 15 up to column n8-1 and writes 2*n8 floats per row.
		_, _, _ = m[15*stride+n8-1], d0[2*n8-1], d1[2*n8-1]
		winogradOutAVX2(n8, &m[0], stride, &d0[0], &d1[0])
	}
	if n > n8 {
		winogradOutGo(m[n8:], stride, d0[2*n8:], d1[2*n8:], n-n8)
	}
}

func deinterleaveWide(src, even, odd []float32) {
	n8 := len(even) &^ 7
	if n8 > 0 {
		_, _ = src[2*n8-1], odd[n8-1]
		deinterleaveAVX2(n8, &src[0], &even[0], &odd[0])
	}
	deinterleaveGo(src[2*n8:], even[n8:], odd[n8:])
}

func biasAddWide(src, dst []float32, bias float32) {
	n := len(src) &^ 7
	if n > 0 {
		_ = dst[n-1]
		biasAddAVX2(n, &src[0], &dst[0], bias)
	}
	biasAddGo(src[n:], dst[n:], bias)
}
