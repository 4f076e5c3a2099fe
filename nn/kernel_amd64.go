package nn

import "golang.org/x/sys/cpu"

//go:generate sh -c "cd asm && go run . -out ../kernel_amd64.s -stubs ../kernel_amd64_stub.go -pkg nn"

// kernel is the AVX2+FMA micro-kernel where the CPU has it, the portable one
// otherwise.
var kernel = kernelGo

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		kernel = kernelAVX2Slices
	}
}

func kernelAVX2Slices(k int, a, b []float32, tile *[mr * nr]float32) {
	if k <= 0 {
		clear(tile[:])
		return
	}
	_, _ = a[k*mr-1], b[k*nr-1] // the assembly reads this far
	kernelAVX2(k, &a[0], &b[0], tile)
}
