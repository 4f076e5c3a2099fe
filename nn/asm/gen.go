// Command asm generates nn's amd64 micro-kernel with avo. It is its own
// module so that avo is needed only to regenerate, never to build lvc:
//
//	cd nn/asm && go run . -out ../kernel_amd64.s -stubs ../kernel_amd64_stub.go -pkg nn
package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The tile is mr=6 rows by nr=16 columns: two 8-wide YMM accumulators per
// row, 12 in all, plus two B vectors and one broadcast A value, which fits
// the 16 YMM registers.
const mr, nr = 6, 16

func main() {
	TEXT("kernelAVX2", NOSPLIT, "func(k int, a, b *float32, tile *[96]float32)")
	Doc("kernelAVX2 computes tile = A·B for an mr x k panel A and a k x nr panel B, with AVX2 and FMA.")
	k := Load(Param("k"), GP64())
	a := Load(Param("a"), GP64())
	b := Load(Param("b"), GP64())
	acc := make([]reg.VecVirtual, 2*mr)
	for i := range acc {
		acc[i] = YMM()
		VXORPS(acc[i], acc[i], acc[i])
	}
	Label("loop")
	TESTQ(k, k)
	JE(LabelRef("done"))
	b0, b1 := YMM(), YMM()
	VMOVUPS(Mem{Base: b}, b0)
	VMOVUPS(Mem{Base: b, Disp: 32}, b1)
	for r := 0; r < mr; r++ {
		t := YMM()
		VBROADCASTSS(Mem{Base: a, Disp: 4 * r}, t)
		VFMADD231PS(b0, t, acc[2*r])
		VFMADD231PS(b1, t, acc[2*r+1])
	}
	ADDQ(Imm(4*mr), a)
	ADDQ(Imm(4*nr), b)
	DECQ(k)
	JMP(LabelRef("loop"))
	Label("done")
	tile := Load(Param("tile"), GP64())
	for r := 0; r < mr; r++ {
		VMOVUPS(acc[2*r], Mem{Base: tile, Disp: 4 * nr * r})
		VMOVUPS(acc[2*r+1], Mem{Base: tile, Disp: 4*nr*r + 32})
	}
	VZEROUPPER()
	RET()
	Generate()
}
