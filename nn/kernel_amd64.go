package nn

import "golang.org/x/sys/cpu"

//go:generate sh -c "cd asm && go run . -out ../kernel_amd64.s -stubs ../kernel_stub_amd64.go -pkg nn"

// kernel is the widest micro-kernel the CPU runs: AVX-512 (6 x 64 tile),
// AVX2 with FMA (6 x 16), or the portable one.
var kernel = portable

var (
	avx2Kernel   = microKernel{"avx2", 16, kernelAVX2Slices}
	avx512Kernel = microKernel{"avx512", 64, kernelAVX512Slices}
)

func init() {
	switch {
	case cpu.X86.HasAVX512F:
		kernel = avx512Kernel
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		kernel = avx2Kernel
	}
}

func kernelAVX2Slices(k int, a, b, tile []float32) {
	if k <= 0 {
		clear(tile)
		return
	}
	_, _, _ = a[k*mr-1], b[k*16-1], tile[mr*16-1] // the assembly reads and writes this far
	kernelAVX2(k, &a[0], &b[0], &tile[0])
}

func kernelAVX512Slices(k int, a, b, tile []float32) {
	if k <= 0 {
		clear(tile)
		return
	}
	_, _, _ = a[k*mr-1], b[k*64-1], tile[mr*64-1]
	kernelAVX512(k, &a[0], &b[0], &tile[0])
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
