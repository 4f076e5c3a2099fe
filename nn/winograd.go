package nn

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// A 3x3 convolution of stride 1 runs as Winograd's F(2x2, 3x3) (Lavin and
// Gray 2015): each 2x2 block of outputs comes from a 4x4 block d of input
// as A^T [ (G g G^T) ⊙ (B^T d B) ] A, which takes 16 multiplies per input
// channel and output channel instead of 36. The element-wise products,
// summed over input channels, are 16 matrix products U_ξ[cout x cin] times
// V_ξ[cin x tiles], one per element ξ of the 4x4 block, done by the
// micro-kernel. The transforms by B and A are additions only. Decoding
// spends most of its time in such convolutions (g_s), and F(2x2, 3x3) is
// the variant whose transforms keep float32 rounding at the level of a
// direct convolution.
const winogradElems = 16

// winogradWeights computes U = G g G^T for every filter g and packs the 16
// matrices U_ξ[cout][cin] one after another, each as packWeights lays it out
// (written in place: a model's weights are not copied twice at load).
func winogradWeights(w []float32, cout, cin int) []float32 {
	g := [4][3]float64{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}
	panelSize := (cout + mr - 1) / mr * mr * cin
	packed := make([]float32, winogradElems*panelSize)
	for o := range cout {
		for ci := range cin {
			f := w[(o*cin+ci)*9:][:9]
			var gf [4][3]float64 // G f
			for a := range 4 {
				for j := range 3 {
					gf[a][j] = g[a][0]*float64(f[j]) + g[a][1]*float64(f[3+j]) + g[a][2]*float64(f[6+j])
				}
			}
			at := (o/mr)*mr*cin + ci*mr + o%mr // as packWeights places W[o][ci]
			for a := range 4 {
				for b := range 4 {
					packed[(4*a+b)*panelSize+at] = float32(gf[a][0]*g[b][0] + gf[a][1]*g[b][1] + gf[a][2]*g[b][2])
				}
			}
		}
	}
	return packed
}

// winogradEligible says whether a convolution runs as F(2x2, 3x3). The
// transforms cost per input channel and per output channel, the saved
// multiplies per pair of them, so few channels on either side lose:
// BenchmarkConvSynthesis finds g_s's last conv (64 -> 12) slower this way,
// its 64 -> 64 and wider ones faster.
func (c *convOp) winogradEligible() bool {
	return c.groups == 1 && c.kh == 3 && c.kw == 3 && c.strideH == 1 && c.strideW == 1 && c.cin >= 16 && c.cout >= 32
}

// runWinograd computes the convolution one task at a time: nr tiles of 2x2
// outputs, in raster order, so that narrow images fill the kernel's width
// too. For each stretch of the task's tiles within one pair of output rows,
// the 4 input rows it reads are copied, zero-padded, into a strip, each row
// split into its even and odd columns so that every input of the transform
// is a plain stretch, and transformed. Then, per panel of mr output
// channels, the 16 products run over all the task's tiles, and their
// results are transformed into pairs of output rows, which the conv's usual
// stores finish (bias, activation, depth-to-space).
func (c *convOp) runWinograd(x []float32, h, w int, out []float32, oh, ow int, p *bufferPool) {
	kern := kernel
	nr := kern.nr
	tilesX, tilesY := (ow+1)/2, (oh+1)/2
	tasks := (tilesX*tilesY + nr - 1) / nr
	workers := min(runtime.GOMAXPROCS(0), tasks)
	halfW := nr + 1 // even (or odd) columns of a strip row
	rows := packedRows(c.cin, nr)
	panelSize := (c.cout + mr - 1) / mr * mr * c.cin
	type stretch struct{ i, ty, tx, n int } // n tiles from the task's i-th, at tile (ty, tx)
	var next atomic.Int64
	var wg sync.WaitGroup
	scratch := make([]*Tensor, 0, 4*workers)
	for range workers {
		stripT := p.get(c.cin * 4 * 2 * halfW)
		vT := p.get(winogradElems * c.cin * nr)
		tilesT := p.get(winogradElems * mr * nr)
		outT := p.get(2 * mr * 2 * nr)
		scratch = append(scratch, stripT, vT, tilesT, outT)
		wg.Add(1)
		go func() {
			defer wg.Done()
			strip, v, tiles := stripT.Data, vT.Data, tilesT.Data
			row0, row1 := outT.Data[:mr*2*nr], outT.Data[mr*2*nr:]
			stretches := make([]stretch, 0, nr)
			for {
				t := int(next.Add(1)) - 1
				if t >= tasks {
					return
				}
				t0 := t * nr
				n := min(nr, tilesX*tilesY-t0)
				stretches = stretches[:0]
				for i := 0; i < n; {
					ty, tx := (t0+i)/tilesX, (t0+i)%tilesX
					s := stretch{i, ty, tx, min(n-i, tilesX-tx)}
					stretches = append(stretches, s)
					c.winogradGather(x, h, w, 2*ty-c.padT, 2*tx-c.padL, s.n+1, strip, halfW)
					winogradInput(strip, v[i:], c.cin, nr, halfW, s.n)
					i += s.n
				}
				for o0 := 0; o0 < c.cout; o0 += mr {
					for e := range winogradElems {
						a := c.wino[e*panelSize+o0*c.cin : e*panelSize+(o0+mr)*c.cin]
						kern.run(c.cin, a, v[e*c.cin*nr:], rows, tiles[e*mr*nr:(e+1)*mr*nr])
					}
					winogradOutput(tiles, row0, row1, min(mr, c.cout-o0), nr)
					for _, s := range stretches {
						y, x0 := 2*s.ty, 2*s.tx
						np := min(2*s.n, ow-x0)
						c.storeRow(row0[2*s.i:], 2*nr, out, oh, ow, o0, y*ow+x0, np)
						if y+1 < oh {
							c.storeRow(row1[2*s.i:], 2*nr, out, oh, ow, o0, (y+1)*ow+x0, np)
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, t := range scratch {
		p.put(t)
	}
}

// storeRow stores a tile of outputs (rows stride floats apart) for positions
// p0..p0+np-1, which may span output rows.
func (c *convOp) storeRow(tile []float32, stride int, out []float32, oh, ow, o0, p0, np int) {
	if c.d2s > 0 {
		c.storeDepthToSpace(tile, stride, out, oh, ow, o0, p0, np)
	} else {
		c.store(tile, stride, out, oh*ow, o0, p0, np)
	}
}

// winogradGather copies input rows iy0..iy0+3, columns ix0..ix0+2*pairs-1,
// into strip, zero outside the input: for channel ci and row r, the even
// columns at strip[((ci*4+r)*2)*halfW:] and the odd ones halfW further.
func (c *convOp) winogradGather(x []float32, h, w, iy0, ix0, pairs int, strip []float32, halfW int) {
	for ci := range c.cin {
		plane := x[ci*h*w : (ci+1)*h*w]
		for r := range 4 {
			even := strip[(ci*4+r)*2*halfW:][:pairs]
			odd := strip[((ci*4+r)*2+1)*halfW:][:pairs]
			iy := iy0 + r
			if iy < 0 || iy >= h {
				clear(even)
				clear(odd)
				continue
			}
			src := plane[iy*w : (iy+1)*w]
			// Pairs lo..hi-1 lie inside the row; the rest touch the padding.
			lo := 0
			if ix0 < 0 {
				lo = min((-ix0+1)/2, pairs)
			}
			hi := max(lo, min(pairs, (w-ix0)/2))
			if hi > lo {
				deinterleave(src[ix0+2*lo:ix0+2*hi], even[lo:hi], odd[lo:hi])
			}
			for _, edge := range [2][2]int{{0, lo}, {hi, pairs}} {
				for j := edge[0]; j < edge[1]; j++ {
					even[j], odd[j] = 0, 0
					if ix := ix0 + 2*j; ix >= 0 && ix < w {
						even[j] = src[ix]
					}
					if ix := ix0 + 2*j + 1; ix >= 0 && ix < w {
						odd[j] = src[ix]
					}
				}
			}
		}
	}
}

// winogradInput computes V = B^T d B for the first n tiles of a strip and
// every input channel, into v[ξ][ci][tile], nr tiles per row of V.
func winogradInput(strip, v []float32, cin, nr, halfW, n int) {
	for ci := range cin {
		winogradIn(strip[ci*8*halfW:(ci+1)*8*halfW], halfW, v[ci*nr:], cin*nr, n)
	}
}

// winogradInGo computes V = B^T d B for n tiles of one input channel: s holds
// the 4 input rows as even and odd columns, halfW floats each, and V's
// element ξ of tile j goes to v[ξ*stride+j]. With d's columns 2j..2j+3
// being even[j], odd[j], even[j+1], odd[j+1], B^T applied to a row (t0, t1,
// t2, t3) gives (t0-t2, t1+t2, t2-t1, t1-t3); the rows are combined first.
func winogradInGo(s []float32, halfW int, v []float32, stride, n int) {
	row := func(k int) []float32 { return s[k*halfW : k*halfW+n+1] }
	e0, o0, e1, o1 := row(0), row(1), row(2), row(3)
	e2, o2, e3, o3 := row(4), row(5), row(6), row(7)
	for j := range n {
		put := func(row int, t0, t1, t2, t3 float32) {
			v[(4*row)*stride+j], v[(4*row+1)*stride+j] = t0-t2, t1+t2
			v[(4*row+2)*stride+j], v[(4*row+3)*stride+j] = t2-t1, t1-t3
		}
		put(0, e0[j]-e2[j], o0[j]-o2[j], e0[j+1]-e2[j+1], o0[j+1]-o2[j+1])
		put(1, e1[j]+e2[j], o1[j]+o2[j], e1[j+1]+e2[j+1], o1[j+1]+o2[j+1])
		put(2, e2[j]-e1[j], o2[j]-o1[j], e2[j+1]-e1[j+1], o2[j+1]-o1[j+1])
		put(3, e1[j]-e3[j], o1[j]-o3[j], e1[j+1]-e3[j+1], o1[j+1]-o3[j+1])
	}
}

// winogradOutput computes Y = A^T M A for the nr tiles of rows output
// channels, from the 16 product tiles (mr x nr each), into the two output
// rows (mr x 2nr each).
func winogradOutput(tiles, row0, row1 []float32, rows, nr int) {
	for r := range rows {
		winogradOut(tiles[r*nr:], mr*nr, row0[r*2*nr:(r+1)*2*nr], row1[r*2*nr:(r+1)*2*nr], nr)
	}
}

// winogradOutGo computes Y = A^T M A for n tiles, M's element ξ of tile j
// being m[ξ*stride+j], and interleaves each 2x2 block into two output rows:
// d0[2j], d0[2j+1] and d1[2j], d1[2j+1]. A^T applied to (m0, m1, m2, m3)
// gives (m0+m1+m2, m1-m2-m3); the columns are combined first.
func winogradOutGo(m []float32, stride int, d0, d1 []float32, n int) {
	d0, d1 = d0[:2*n], d1[:2*n]
	for j := range n {
		var s0, s1 [4]float32
		for k := range 4 {
			x0, x1, x2, x3 := m[k*stride+j], m[(4+k)*stride+j], m[(8+k)*stride+j], m[(12+k)*stride+j]
			s0[k], s1[k] = x0+x1+x2, x1-x2-x3
		}
		d0[2*j], d0[2*j+1] = s0[0]+s0[1]+s0[2], s0[1]-s0[2]-s0[3]
		d1[2*j], d1[2*j+1] = s1[0]+s1[1]+s1[2], s1[1]-s1[2]-s1[3]
	}
}

// deinterleaveGo sets even[j], odd[j] = src[2j], src[2j+1].
func deinterleaveGo(src, even, odd []float32) {
	odd = odd[:len(even)]
	src = src[:2*len(even)]
	for j := range even {
		even[j], odd[j] = src[2*j], src[2*j+1]
	}
}
