// Command asm generates nn's amd64 micro-kernel with avo. It is its own
// module so that avo is needed only to regenerate, never to build lvc:
//
//	cd nn/asm && go run . -out ../kernel_amd64.s -stubs ../kernel_stub_amd64.go -pkg nn
package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Both kernels compute a tile of mr=6 rows. AVX2 covers 16 columns with two
// 8-wide YMM accumulators per row (12 of 16 registers); AVX-512 covers 64
// columns with four 16-wide ZMM accumulators per row (24 of 32), which needs
// fewer loads and broadcasts per multiply-add.
const mr = 6

type vecKind struct {
	name  string
	width int // floats per register
	regs  int // registers per tile row
	alloc func() reg.VecVirtual
	zero  func(reg.VecVirtual)
	doc   string
}

// step accumulates one k step, u steps past a and offs. The B row of a k
// step starts offs[k] floats past b: consecutive rows of a packed panel, or
// rows of an input strip read in place.
func step(v vecKind, a, b, offs reg.Register, acc []reg.VecVirtual, u int) {
	row := GP64()
	MOVQ(Mem{Base: offs, Disp: 8 * u}, row)
	bs := make([]reg.VecVirtual, v.regs)
	for i := range bs {
		bs[i] = v.alloc()
		VMOVUPS(Mem{Base: b, Index: row, Scale: 4, Disp: 4 * v.width * i}, bs[i])
	}
	for r := 0; r < mr; r++ {
		t := v.alloc()
		VBROADCASTSS(Mem{Base: a, Disp: 4 * (mr*u + r)}, t)
		for i := range bs {
			VFMADD231PS(bs[i], t, acc[v.regs*r+i])
		}
	}
}

func main() {
	fixedBlock()
	fixedBlock512()
	gdnStore("gdnDivideAVX2", "x*s / sqrt(norm+beta)", VDIVPS)
	gdnStore("gdnMultiplyAVX2", "x*s * sqrt(norm+beta)", VMULPS)
	squareScaled()
	for _, relu := range []bool{false, true} {
		biasStore(relu)
		biasStorePairs(relu)
	}
	biasAdd()
	deinterleave()
	winogradIn()
	winogradOut()
	kernel(vecKind{"kernelAVX2", 8, 2, YMM, func(r reg.VecVirtual) { VXORPS(r, r, r) }, "AVX2 and FMA"})
	// VXORPS on ZMM needs AVX512DQ; VPXORD needs only AVX512F.
	kernel(vecKind{"kernelAVX512", 16, 4, ZMM, func(r reg.VecVirtual) { VPXORD(r, r, r) }, "AVX-512F"})
	Generate()
}

func kernel(v vecKind) {
	nr := v.width * v.regs
	TEXT(v.name, NOSPLIT, "func(k int, a, b *float32, offs *int, tile *float32)")
	Doc(v.name+" computes tile = A·B for an mr x k panel A and the k x nr matrix B whose row j starts offs[j]",
		"floats past b, with "+v.doc+".")
	k := Load(Param("k"), GP64())
	a := Load(Param("a"), GP64())
	b := Load(Param("b"), GP64())
	offs := Load(Param("offs"), GP64())
	acc := make([]reg.VecVirtual, v.regs*mr)
	for i := range acc {
		acc[i] = v.alloc()
		v.zero(acc[i])
	}
	// The main loop handles four k steps per iteration, the tail one.
	Label("loop4")
	CMPQ(k, Imm(4))
	JL(LabelRef("loop"))
	for u := 0; u < 4; u++ {
		step(v, a, b, offs, acc, u)
	}
	ADDQ(U32(4*4*mr), a)
	ADDQ(U32(4*8), offs)
	SUBQ(Imm(4), k)
	JMP(LabelRef("loop4"))
	Label("loop")
	TESTQ(k, k)
	JE(LabelRef("done"))
	step(v, a, b, offs, acc, 0)
	ADDQ(U32(4*mr), a)
	ADDQ(U32(8), offs)
	DECQ(k)
	JMP(LabelRef("loop"))
	Label("done")
	tile := Load(Param("tile"), GP64())
	for r := 0; r < mr; r++ {
		for i := 0; i < v.regs; i++ {
			VMOVUPS(acc[v.regs*r+i], Mem{Base: tile, Disp: 4 * (nr*r + v.width*i)})
		}
	}
	VZEROUPPER()
	RET()
}

// fixedBlock generates the fixed-point micro-kernel: a block of 8
// positions by 4 output channels, acc[j*8+p] += Σ_t src[offs[t]+p]·w[4t+j],
// its 32 sums held in 8 registers over all taps. The int32 inputs are
// sign-extended to 64-bit lanes, VPMULDQ multiplies the low signed 32 bits
// of each lane exactly, and the weights are within int32, so the result
// equals the scalar loop.
func fixedBlock() {
	taps, src, offs, w, acc := fixedBlockParams("fixedBlockAVX2", "AVX2")
	sums := make([]reg.VecVirtual, 8)
	for i := range sums {
		sums[i] = YMM()
		VMOVDQU(Mem{Base: acc, Disp: 32 * i}, sums[i])
	}
	Label("tap")
	off := GP64()
	MOVQ(Mem{Base: offs}, off)
	x0, x1 := YMM(), YMM()
	VPMOVSXDQ(Mem{Base: src, Index: off, Scale: 4}, x0)
	VPMOVSXDQ(Mem{Base: src, Index: off, Scale: 4, Disp: 16}, x1)
	for j := range 4 {
		wj, p0, p1 := YMM(), YMM(), YMM()
		VPBROADCASTQ(Mem{Base: w, Disp: 8 * j}, wj)
		VPMULDQ(wj, x0, p0)
		VPMULDQ(wj, x1, p1)
		VPADDQ(p0, sums[2*j], sums[2*j])
		VPADDQ(p1, sums[2*j+1], sums[2*j+1])
	}
	ADDQ(Imm(8), offs)
	ADDQ(Imm(32), w)
	DECQ(taps)
	JNZ(LabelRef("tap"))
	for i := range sums {
		VMOVDQU(sums[i], Mem{Base: acc, Disp: 32 * i})
	}
	VZEROUPPER()
	RET()
}

// fixedBlockParams declares a fixed-point micro-kernel and loads its
// arguments: taps, src, offs, w, acc.
func fixedBlockParams(name, isa string) (taps, src, offs, w, acc reg.Register) {
	TEXT(name, NOSPLIT, "func(taps int, src *int32, offs *int, w *int64, acc *[32]int64)")
	Doc(name + " adds Σ_t src[offs[t]+p]·w[4t+j] to acc[8j+p], taps > 0, with " + isa + ".")
	return Load(Param("taps"), GP64()), Load(Param("src"), GP64()), Load(Param("offs"), GP64()),
		Load(Param("w"), GP64()), Load(Param("acc"), GP64())
}

// fixedBlock512 generates fixedBlock's micro-kernel with AVX-512: the 8
// positions' 64-bit lanes fill one ZMM register, so each output channel's
// sums are one register, and VPMULDQ takes its weight as an embedded
// broadcast: 9 instructions a tap where the AVX2 kernel takes 17.
func fixedBlock512() {
	taps, src, offs, w, acc := fixedBlockParams("fixedBlockAVX512", "AVX-512F")
	sums := make([]reg.VecVirtual, 4)
	for i := range sums {
		sums[i] = ZMM()
		VMOVDQU64(Mem{Base: acc, Disp: 64 * i}, sums[i])
	}
	Label("tap512")
	off := GP64()
	MOVQ(Mem{Base: offs}, off)
	x := ZMM()
	VPMOVSXDQ(Mem{Base: src, Index: off, Scale: 4}, x)
	for j := range 4 {
		p := ZMM()
		VPMULDQ_BCST(Mem{Base: w, Disp: 8 * j}, x, p)
		VPADDQ(p, sums[j], sums[j])
	}
	ADDQ(Imm(8), offs)
	ADDQ(Imm(32), w)
	DECQ(taps)
	JNZ(LabelRef("tap512"))
	for i := range sums {
		VMOVDQU64(sums[i], Mem{Base: acc, Disp: 64 * i})
	}
	VZEROUPPER()
	RET()
}

// loop8 generates the loop of an 8-wide elementwise function: body(i) for
// i = 0, 8, ... while i < n, then the return.
func loop8(name string, n reg.Register, body func(i reg.Register)) {
	i := GP64()
	XORQ(i, i)
	Label(name + "_loop")
	CMPQ(i, n)
	JGE(LabelRef(name + "_done"))
	body(i)
	ADDQ(Imm(8), i)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// gdnStore generates the store of a GDN tile row: for i < n (a multiple of
// 8), dst[i] = x[i]*s op sqrt(norm[i]+beta). Every step is a separately
// rounded IEEE operation (no FMA), and a float32 square root rounded once
// equals Go's float32(math.Sqrt(float64(v))), so the result is bit-identical
// to the scalar loop.
func gdnStore(name, what string, op func(...Op)) {
	TEXT(name, NOSPLIT, "func(n int, x, norm, dst *float32, s, beta float32)")
	Doc(name + " sets dst[i] = " + what + " for i < n, n a multiple of 8, with AVX2.")
	n := Load(Param("n"), GP64())
	x := Load(Param("x"), GP64())
	norm := Load(Param("norm"), GP64())
	dst := Load(Param("dst"), GP64())
	s, beta := YMM(), YMM()
	VBROADCASTSS(Load(Param("s"), XMM()), s)
	VBROADCASTSS(Load(Param("beta"), XMM()), beta)
	loop8(name, n, func(i reg.Register) {
		v, t := YMM(), YMM()
		VMULPS(Mem{Base: x, Index: i, Scale: 4}, s, v)
		VADDPS(Mem{Base: norm, Index: i, Scale: 4}, beta, t)
		VSQRTPS(t, t)
		op(t, v, v)
		VMOVUPS(v, Mem{Base: dst, Index: i, Scale: 4})
	})
}

// squareScaled generates the GDN's first pass over a tile: dst[i] = (x[i]*s)²
// for i < n (a multiple of 8), two separately rounded multiplies as in Go.
func squareScaled() {
	TEXT("squareScaledAVX2", NOSPLIT, "func(n int, x, dst *float32, s float32)")
	Doc("squareScaledAVX2 sets dst[i] = (x[i]*s)² for i < n, n a multiple of 8, with AVX2.")
	n := Load(Param("n"), GP64())
	x := Load(Param("x"), GP64())
	dst := Load(Param("dst"), GP64())
	s := YMM()
	VBROADCASTSS(Load(Param("s"), XMM()), s)
	loop8("square", n, func(i reg.Register) {
		v := YMM()
		VMULPS(Mem{Base: x, Index: i, Scale: 4}, s, v)
		VMULPS(v, v, v)
		VMOVUPS(v, Mem{Base: dst, Index: i, Scale: 4})
	})
}

// reluName names the Relu variant of a store.
func reluName(base string, relu bool) string {
	if relu {
		return base + "ReluAVX2"
	}
	return base + "AVX2"
}

// biasAct adds bias to v and, for relu, computes MAXPS(v, 0), which is
// "v > 0 ? v : 0", the Go stores' definition (NaN and -0 give +0).
func biasAct(v, bias, zero reg.VecVirtual, relu bool) {
	VADDPS(bias, v, v)
	if relu {
		VMAXPS(zero, v, v)
	}
}

// biasStore generates a conv's store of one tile row: dst[i] = act(src[i]+bias)
// for i < n (a multiple of 8).
func biasStore(relu bool) {
	name := reluName("biasStore", relu)
	TEXT(name, NOSPLIT, "func(n int, src, dst *float32, bias float32)")
	Doc(name + " sets dst[i] = src[i]+bias (then Relu, if named) for i < n, n a multiple of 8.")
	n := Load(Param("n"), GP64())
	src := Load(Param("src"), GP64())
	dst := Load(Param("dst"), GP64())
	bias, zero := YMM(), YMM()
	VBROADCASTSS(Load(Param("bias"), XMM()), bias)
	VXORPS(zero, zero, zero)
	loop8(name, n, func(i reg.Register) {
		v := YMM()
		VMOVUPS(Mem{Base: src, Index: i, Scale: 4}, v)
		biasAct(v, bias, zero, relu)
		VMOVUPS(v, Mem{Base: dst, Index: i, Scale: 4})
	})
}

// biasAdd generates the store of a conv with a fused residual add:
// dst[i] += src[i]+bias, the sum rounded before the add, as in Go.
func biasAdd() {
	TEXT("biasAddAVX2", NOSPLIT, "func(n int, src, dst *float32, bias float32)")
	Doc("biasAddAVX2 sets dst[i] += src[i]+bias for i < n, n a multiple of 8.")
	n := Load(Param("n"), GP64())
	src := Load(Param("src"), GP64())
	dst := Load(Param("dst"), GP64())
	bias := YMM()
	VBROADCASTSS(Load(Param("bias"), XMM()), bias)
	loop8("biasAdd", n, func(i reg.Register) {
		v := YMM()
		VADDPS(Mem{Base: src, Index: i, Scale: 4}, bias, v)
		VADDPS(Mem{Base: dst, Index: i, Scale: 4}, v, v)
		VMOVUPS(v, Mem{Base: dst, Index: i, Scale: 4})
	})
}

// biasStorePairs generates the store of two output channels that
// depth-to-space by 2 puts side by side: dst[2i] = act(even[i]+be),
// dst[2i+1] = act(odd[i]+bo) for i < n (a multiple of 8).
func biasStorePairs(relu bool) {
	name := reluName("biasStorePairs", relu)
	TEXT(name, NOSPLIT, "func(n int, even, odd, dst *float32, be, bo float32)")
	Doc(name + " interleaves even[i]+be and odd[i]+bo (then Relu, if named) into dst for i < n, n a multiple of 8.")
	n := Load(Param("n"), GP64())
	even := Load(Param("even"), GP64())
	odd := Load(Param("odd"), GP64())
	dst := Load(Param("dst"), GP64())
	be, bo, zero := YMM(), YMM(), YMM()
	VBROADCASTSS(Load(Param("be"), XMM()), be)
	VBROADCASTSS(Load(Param("bo"), XMM()), bo)
	VXORPS(zero, zero, zero)
	loop8(name, n, func(i reg.Register) {
		e, o := YMM(), YMM()
		VMOVUPS(Mem{Base: even, Index: i, Scale: 4}, e)
		VMOVUPS(Mem{Base: odd, Index: i, Scale: 4}, o)
		biasAct(e, be, zero, relu)
		biasAct(o, bo, zero, relu)
		interleave(e, o, Mem{Base: dst, Index: i, Scale: 8})
	})
}

// winogradIn generates V = B^T d B for 8 tiles per step, as winogradInGo
// computes it: s's 8 rows (even and odd columns of the 4 input rows) are
// read at columns j and j+1, and the 16 elements are stored stride floats
// apart. The rows are combined first, each from two rows: (row a op row b).
func winogradIn() {
	TEXT("winogradInAVX2", NOSPLIT, "func(n int, s *float32, halfW int, v *float32, stride int)")
	Doc("winogradInAVX2 is winogradInGo for n tiles, n a multiple of 8, with AVX2.")
	n := Load(Param("n"), GP64())
	src := Load(Param("s"), GP64())
	h := Load(Param("halfW"), GP64())
	dst := Load(Param("v"), GP64())
	st := Load(Param("stride"), GP64())
	SHLQ(Imm(2), h)
	SHLQ(Imm(2), st)
	h3, st3, src4 := GP64(), GP64(), GP64()
	LEAQ(Mem{Base: h, Index: h, Scale: 2}, h3)
	LEAQ(Mem{Base: st, Index: st, Scale: 2}, st3)
	LEAQ(Mem{Base: src, Index: h, Scale: 4}, src4)
	// Row k of s (e0 o0 e1 o1 e2 o2 e3 o3) at column j, plus disp floats.
	row := func(k, disp int) Mem {
		base := src
		if k >= 4 {
			base, k = src4, k-4
		}
		switch k {
		case 0:
			return Mem{Base: base, Disp: 4 * disp}
		case 3:
			return Mem{Base: base, Index: h3, Scale: 1, Disp: 4 * disp}
		default:
			return Mem{Base: base, Index: h, Scale: uint8(k), Disp: 4 * disp}
		}
	}
	Label("winogradIn_loop")
	CMPQ(n, Imm(0))
	JLE(LabelRef("winogradIn_done"))
	out := GP64()
	MOVQ(dst, out)
	// d_a op d_b for the four row combinations of B^T: d0-d2, d1+d2, d2-d1, d1-d3.
	for g, c := range []struct {
		a, b int
		add  bool
	}{{0, 2, false}, {1, 2, true}, {2, 1, false}, {1, 3, false}} {
		t := []reg.VecVirtual{YMM(), YMM(), YMM(), YMM()}
		for i, col := range []struct{ phase, disp int }{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
			VMOVUPS(row(2*c.a+col.phase, col.disp), t[i])
			if c.add {
				VADDPS(row(2*c.b+col.phase, col.disp), t[i], t[i])
			} else {
				VSUBPS(row(2*c.b+col.phase, col.disp), t[i], t[i])
			}
		}
		r := []reg.VecVirtual{YMM(), YMM(), YMM(), YMM()}
		VSUBPS(t[2], t[0], r[0]) // t0-t2
		VADDPS(t[2], t[1], r[1]) // t1+t2
		VSUBPS(t[1], t[2], r[2]) // t2-t1
		VSUBPS(t[3], t[1], r[3]) // t1-t3
		VMOVUPS(r[0], Mem{Base: out})
		VMOVUPS(r[1], Mem{Base: out, Index: st, Scale: 1})
		VMOVUPS(r[2], Mem{Base: out, Index: st, Scale: 2})
		VMOVUPS(r[3], Mem{Base: out, Index: st3, Scale: 1})
		if g < 3 {
			LEAQ(Mem{Base: out, Index: st, Scale: 4}, out)
		}
	}
	ADDQ(Imm(32), src)
	ADDQ(Imm(32), src4)
	ADDQ(Imm(32), dst)
	SUBQ(Imm(8), n)
	JMP(LabelRef("winogradIn_loop"))
	Label("winogradIn_done")
	VZEROUPPER()
	RET()
}

// winogradOut generates Y = A^T M A for 8 tiles per step, as winogradOutGo
// computes it, and interleaves each block's columns into the two output rows.
func winogradOut() {
	TEXT("winogradOutAVX2", NOSPLIT, "func(n int, m *float32, stride int, d0, d1 *float32)")
	Doc("winogradOutAVX2 is winogradOutGo for n tiles, n a multiple of 8, with AVX2.")
	n := Load(Param("n"), GP64())
	m := Load(Param("m"), GP64())
	st := Load(Param("stride"), GP64())
	d0 := Load(Param("d0"), GP64())
	d1 := Load(Param("d1"), GP64())
	SHLQ(Imm(2), st)
	st3 := GP64()
	LEAQ(Mem{Base: st, Index: st, Scale: 2}, st3)
	// Element 4a+k of M at column j: rows a of M start 4*stride apart.
	rowBase := []reg.Register{m, GP64(), GP64(), GP64()}
	for a := 1; a < 4; a++ {
		LEAQ(Mem{Base: rowBase[a-1], Index: st, Scale: 4}, rowBase[a])
	}
	elem := func(a, k int) Mem {
		switch k {
		case 0:
			return Mem{Base: rowBase[a]}
		case 3:
			return Mem{Base: rowBase[a], Index: st3, Scale: 1}
		default:
			return Mem{Base: rowBase[a], Index: st, Scale: uint8(k)}
		}
	}
	Label("winogradOut_loop")
	CMPQ(n, Imm(0))
	JLE(LabelRef("winogradOut_done"))
	s0 := []reg.VecVirtual{YMM(), YMM(), YMM(), YMM()}
	s1 := []reg.VecVirtual{YMM(), YMM(), YMM(), YMM()}
	for k := range 4 {
		x1, x2 := YMM(), YMM()
		VMOVUPS(elem(1, k), x1)
		VMOVUPS(elem(2, k), x2)
		// s0 = x0+x1+x2, s1 = x1-x2-x3, left to right as in Go.
		VMOVUPS(elem(0, k), s0[k])
		VADDPS(x1, s0[k], s0[k])
		VADDPS(x2, s0[k], s0[k])
		VSUBPS(x2, x1, s1[k])
		VSUBPS(elem(3, k), s1[k], s1[k])
	}
	for _, c := range []struct {
		s   []reg.VecVirtual
		dst reg.Register
	}{{s0, d0}, {s1, d1}} {
		lo, hi := YMM(), YMM()
		VADDPS(c.s[1], c.s[0], lo)
		VADDPS(c.s[2], lo, lo) // s0+s1+s2
		VSUBPS(c.s[2], c.s[1], hi)
		VSUBPS(c.s[3], hi, hi) // s1-s2-s3
		interleave(lo, hi, Mem{Base: c.dst})
	}
	for _, r := range rowBase {
		ADDQ(Imm(32), r)
	}
	ADDQ(Imm(64), d0)
	ADDQ(Imm(64), d1)
	SUBQ(Imm(8), n)
	JMP(LabelRef("winogradOut_loop"))
	Label("winogradOut_done")
	VZEROUPPER()
	RET()
}

// interleave stores e0 o0 e1 o1 ... e7 o7 at dst (64 bytes). Unpacking
// interleaves within 128-bit lanes: lo = e0 o0 e1 o1 | e4 o4 e5 o5, hi = e2
// o2 e3 o3 | e6 o6 e7 o7; the lane permutes put them in order.
func interleave(e, o reg.VecVirtual, dst Mem) {
	lo, hi := YMM(), YMM()
	VUNPCKLPS(o, e, lo)
	VUNPCKHPS(o, e, hi)
	VPERM2F128(Imm(0x20), hi, lo, e)
	VPERM2F128(Imm(0x31), hi, lo, o)
	VMOVUPS(e, dst)
	VMOVUPS(o, dst.Offset(32))
}

// deinterleave generates the split of 2n floats into even and odd columns.
// VSHUFPS picks within 128-bit lanes (a0 a2 b0 b2 | a4 a6 b4 b6); VPERMPD
// puts the 64-bit pairs in order.
func deinterleave() {
	TEXT("deinterleaveAVX2", NOSPLIT, "func(n int, src, even, odd *float32)")
	Doc("deinterleaveAVX2 sets even[i] = src[2i] and odd[i] = src[2i+1] for i < n, n a multiple of 8.")
	n := Load(Param("n"), GP64())
	src := Load(Param("src"), GP64())
	even := Load(Param("even"), GP64())
	odd := Load(Param("odd"), GP64())
	loop8("deinterleave", n, func(i reg.Register) {
		a, b, e, o := YMM(), YMM(), YMM(), YMM()
		VMOVUPS(Mem{Base: src, Index: i, Scale: 8}, a)
		VMOVUPS(Mem{Base: src, Index: i, Scale: 8, Disp: 32}, b)
		VSHUFPS(Imm(0x88), b, a, e)
		VSHUFPS(Imm(0xdd), b, a, o)
		VPERMPD(Imm(0xd8), e, e)
		VPERMPD(Imm(0xd8), o, o)
		VMOVUPS(e, Mem{Base: even, Index: i, Scale: 4})
		VMOVUPS(o, Mem{Base: odd, Index: i, Scale: 4})
	})
}
