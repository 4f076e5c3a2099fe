package nn

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Convolution is computed as a matrix product, out[Cout x P] = W[Cout x K] *
// cols[K x P], with K = Cin*kh*kw and P the output positions. Weights are
// packed once at load into panels of mr rows. The micro-kernel reads row j
// of cols through a table of offsets, so cols need not be a matrix of its
// own: a convolution copies the input rows it needs into a zero-padded
// strip and reads every shifted window there in place (runStrips); only
// one whose strip would be huge gathers its columns (im2col) per tile of
// the kernel's nr positions. 3x3 convolutions of stride 1 with enough
// channels run as Winograd's F(2x2, 3x3) instead (winograd.go), through the
// same micro-kernel. Work is shared among goroutines.
const mr = 6 // output channels per micro-kernel call

// A microKernel computes tile[r][j] = sum_k a[k][r] * b[rows.offs[k]+j] for
// an mr x nr tile, with a packed mr-wide.
type microKernel struct {
	name string
	nr   int
	run  func(k int, a, b []float32, rows panelRows, tile []float32)
}

// panelRows says where the rows of a micro-kernel's B operand start in its
// buffer. maxOff is the largest offset, checked once against the buffer by
// each call, so that the assembly kernels need no check of their own.
type panelRows struct {
	offs   []int
	maxOff int
}

func newPanelRows(offs []int) panelRows {
	return panelRows{offs, slices.Max(offs)}
}

// packedRows are the rows of a packed k x nr panel.
func packedRows(k, nr int) panelRows {
	offs := make([]int, max(k, 1))
	for j := range offs {
		offs[j] = j * nr
	}
	return newPanelRows(offs)
}

var portable = microKernel{"portable", 16, kernelGo}

type activation uint8

const (
	actNone activation = iota
	actRelu
	actLeaky
)

type convOp struct {
	cout, cin, kh, kw int
	strideH, strideW  int
	padT, padL        int
	padB, padR        int
	groups            int // 1, or cin for depthwise
	packed            []float32
	wino              []float32 // F(2x2, 3x3) weights, instead of packed
	weights           []float32 // [cout][cin/groups][kh][kw], as loaded
	bias              []float32
	act               activation
	alpha             float32 // LeakyRelu slope
	d2s               int     // fused depth-to-space block size, 0 if none
	d2sCRD            bool
	residual          bool // input 3 is added to the output (fused Add)
	inPlace           bool // the residual dies here: the output overwrites it
}

func newConv(n onnxNode, in []*Tensor) (*convOp, error) {
	if len(in) < 2 || in[1] == nil {
		return nil, errors.New("needs a weight input")
	}
	w := in[1]
	if w.Data == nil || len(w.Shape) != 4 {
		return nil, errors.New("weights must be a constant 4-D tensor")
	}
	c := &convOp{cout: w.Shape[0], cin: w.Shape[1], kh: w.Shape[2], kw: w.Shape[3], strideH: 1, strideW: 1, groups: 1}
	if a, ok := n.attrs["group"]; ok {
		c.groups = int(a.i)
	}
	if c.groups != 1 {
		if c.cin != 1 || int64(c.groups) != int64(c.cout) {
			return nil, fmt.Errorf("group %d: only 1 and depthwise are supported", c.groups)
		}
		c.cin = c.groups
	}
	if a, ok := n.attrs["strides"]; ok {
		if len(a.ints) != 2 || a.ints[0] < 1 || a.ints[1] < 1 || a.ints[0] > 16 || a.ints[1] > 16 {
			return nil, fmt.Errorf("strides %v not supported", a.ints)
		}
		c.strideH, c.strideW = int(a.ints[0]), int(a.ints[1])
	}
	if a, ok := n.attrs["pads"]; ok {
		if len(a.ints) != 4 {
			return nil, fmt.Errorf("pads %v not supported", a.ints)
		}
		for _, p := range a.ints {
			if p < 0 || p > 64 {
				return nil, fmt.Errorf("pads %v out of range", a.ints)
			}
		}
		c.padT, c.padL, c.padB, c.padR = int(a.ints[0]), int(a.ints[1]), int(a.ints[2]), int(a.ints[3])
	}
	if a, ok := n.attrs["auto_pad"]; ok && string(a.s) != "NOTSET" && string(a.s) != "" {
		return nil, fmt.Errorf("auto_pad %q not supported", a.s)
	}
	if a, ok := n.attrs["dilations"]; ok {
		for _, d := range a.ints {
			if d != 1 {
				return nil, fmt.Errorf("dilations %v not supported", a.ints)
			}
		}
	}
	if a, ok := n.attrs["lvc.act"]; ok { // set by fuse
		c.act, c.alpha = activation(a.i), a.f
	}
	if _, ok := n.attrs["lvc.residual"]; ok { // set by fuse
		if len(in) != 4 || c.act != actNone || n.attrs["lvc.d2s"].i != 0 {
			return nil, errors.New("a residual add needs input 3 and a conv without activation or depth-to-space")
		}
		c.residual = true
	}
	if a, ok := n.attrs["lvc.d2s"]; ok { // set by fuse
		b := int(a.i)
		if b < 1 || b > 16 || c.cout%(b*b) != 0 {
			return nil, fmt.Errorf("depth-to-space block %d for %d channels", b, c.cout)
		}
		mode := string(a.s)
		if mode != "" && mode != "DCR" && mode != "CRD" {
			return nil, fmt.Errorf("depth-to-space mode %q not supported", mode)
		}
		c.d2s, c.d2sCRD = b, mode == "CRD"
	}
	if c.kh < 1 || c.kw < 1 || c.kh > 32 || c.kw > 32 || c.cout < 1 || c.cin < 1 {
		return nil, fmt.Errorf("weight shape %v not supported", w.Shape)
	}
	if len(in) > 2 && in[2] != nil {
		if len(in[2].Data) != c.cout || in[2].Data == nil {
			return nil, fmt.Errorf("bias has %d values for %d channels", len(in[2].Data), c.cout)
		}
		c.bias = in[2].Data
	} else {
		c.bias = make([]float32, c.cout)
	}
	c.weights = w.Data
	return c, nil
}

// prepare lays the weights out for the kernels that will run them: packed
// panels, or Winograd's transformed weights. Only a graph that runs needs
// it, not one compiled to be checked or converted to fixed point.
func (c *convOp) prepare() {
	switch {
	case c.winogradEligible():
		c.wino = winogradWeights(c.weights, c.cout, c.cin)
	case c.groups == 1:
		c.packed = packWeights(c.weights, c.cout, c.cin*c.kh*c.kw)
	}
}

// packWeights lays W[cout][k] out as panels of mr rows, k-major inside a
// panel, zero-padding the last panel.
func packWeights(w []float32, cout, k int) []float32 {
	panels := (cout + mr - 1) / mr
	p := make([]float32, panels*mr*k)
	for o := 0; o < cout; o++ {
		base := (o / mr) * mr * k
		for j := 0; j < k; j++ {
			p[base+j*mr+o%mr] = w[o*k+j]
		}
	}
	return p
}

func (c *convOp) outSize(h, w int) (int, int) {
	return (h+c.padT+c.padB-c.kh)/c.strideH + 1, (w+c.padL+c.padR-c.kw)/c.strideW + 1
}

// outShape is the conv's output shape for oh x ow positions, after its
// fused depth-to-space (a residual conv has none).
func (c *convOp) outShape(oh, ow int) []int {
	if b := c.d2s; b > 0 && !c.residual {
		return []int{1, c.cout / (b * b), oh * b, ow * b}
	}
	return []int{1, c.cout, oh, ow}
}

// overwritesResidual says whether the store adds into the residual's own
// buffer: it dies here, is not also the conv's input, and has the output's
// shape.
func (c *convOp) overwritesResidual(residualIsInput bool, residual, shape []int) bool {
	return c.inPlace && !residualIsInput && slices.Equal(residual, shape)
}

func (c *convOp) run(in []*Tensor, p *bufferPool) (*Tensor, error) {
	x := in[0]
	cin, h, w, ok := x.dims4()
	if !ok || cin != c.cin {
		return nil, fmt.Errorf("input %v, want [1 %d H W]", x.Shape, c.cin)
	}
	if h+c.padT+c.padB < c.kh || w+c.padL+c.padR < c.kw {
		return nil, fmt.Errorf("input %v smaller than the %dx%d kernel", x.Shape, c.kh, c.kw)
	}
	oh, ow := c.outSize(h, w)
	if _, err := checkedElements([]int{c.cout, oh, ow}); err != nil {
		return nil, err
	}
	var out *Tensor
	if c.residual {
		var err error
		if out, err = c.residualOutput(in[3], x, oh, ow, p); err != nil {
			return nil, err
		}
	} else {
		out = p.get(c.outShape(oh, ow)...)
	}
	if c.groups != 1 {
		c.depthwise(x.Data, h, w, out.Data, oh, ow)
		return out, nil
	}
	switch {
	case c.wino != nil:
		c.runWinograd(x.Data, h, w, out.Data, oh, ow, p)
	case c.cin*c.kh*c.stripRowWidth(w) <= maxStripFloats:
		c.runStrips(x.Data, h, w, out.Data, oh, ow, p)
	default:
		c.runGather(x.Data, h, w, out.Data, oh, ow, p)
	}
	return out, nil
}

// residualOutput is the output buffer of a conv whose store adds to it: the
// residual itself when it dies here, else a copy, broadcast as the unfused
// Add would (a scalar or one value per channel).
func (c *convOp) residualOutput(r, x *Tensor, oh, ow int, p *bufferPool) (*Tensor, error) {
	if r == nil {
		return nil, errors.New("no residual input")
	}
	shape := []int{1, c.cout, oh, ow}
	if c.overwritesResidual(r == x, r.Shape, shape) {
		return r, nil
	}
	out := p.get(shape...)
	run, err := broadcastRun(out, r)
	if err != nil {
		p.put(out)
		return nil, fmt.Errorf("residual input: %w", err)
	}
	if run == 0 {
		copy(out.Data, r.Data)
		return out, nil
	}
	for i, v := range r.Data {
		seg := out.Data[i*run : (i+1)*run]
		for j := range seg {
			seg[j] = v
		}
	}
	return out, nil
}

func (c *convOp) runGather(x []float32, h, w int, out []float32, oh, ow int, p *bufferPool) {
	overTiles(p, oh*ow, c.cin*c.kh*c.kw, func(kern microKernel, p0, np int, cols []float32, rows panelRows, tile []float32, runs []run) {
		c.gather(x, h, w, ow, p0, np, kern.nr, cols, runs)
		c.multiplyTile(kern, cols, rows, tile, out, oh, ow, p0, np)
	})
}

// multiplyTile computes the output channels of one tile of positions from
// its columns and stores them.
func (c *convOp) multiplyTile(kern microKernel, cols []float32, rows panelRows, tile, out []float32, oh, ow, p0, np int) {
	k := c.cin * c.kh * c.kw
	for o0 := 0; o0 < c.cout; o0 += mr {
		kern.run(k, c.packed[o0*k:(o0+mr)*k], cols, rows, tile)
		c.storeRow(tile, kern.nr, out, oh, ow, o0, p0, np)
	}
}

// stripFloats bounds a strip of several output rows, so that it stays in a
// core's L2 cache. A conv whose strip for one output row would exceed
// maxStripFloats (very wide input rows, tall kernels) gathers instead, so a
// hostile graph cannot make a strip much larger than the input.
const (
	stripFloats    = 1 << 17
	maxStripFloats = 1 << 22
)

// stripRowWidth is the width of a strip row for input rows of width w: the
// padded row, split into strideW phases of equal width.
func (c *convOp) stripRowWidth(w int) int {
	return c.strideW * c.phaseWidth(w)
}

func (c *convOp) phaseWidth(w int) int {
	return (w + c.padL + c.padR + c.strideW - 1) / c.strideW
}

// stagedDepth is the deepest conv (input channels x kernel taps) whose
// strips stage their output rows.
const stagedDepth = 640

// runStrips computes a convolution a few output rows at a time. The input
// rows they read are copied once into a strip, each row with its left and
// right padding as zeros and the rows above and below the input as zero
// rows. For a stride s along x, a padded row is stored as s phases, the
// columns u with u mod s = 0, 1, ..., each phase in order. Then the window
// of kernel tap (ci, ky, kx) for the positions x0..x0+nr-1 of output row y
// is a plain stretch of the strip (phase kx mod s, from x0 + kx/s), at a
// fixed offset per tap, which the micro-kernel reads in place: each input
// row is copied a few times instead of about kh*kw/(strideH*strideW) times
// by im2col.
func (c *convOp) runStrips(x []float32, h, w int, out []float32, oh, ow int, p *bufferPool) {
	kern := kernel
	nr := kern.nr
	pw := c.phaseWidth(w)
	rowW := c.stripRowWidth(w)
	rowsOut := min(max((stripFloats/(c.cin*rowW)-c.kh)/c.strideH+1, 1), 8, (oh+1)/2)
	rowsIn := (rowsOut-1)*c.strideH + c.kh
	chStride := rowsIn * rowW
	offs := make([]int, 0, c.cin*c.kh*c.kw)
	for ci := range c.cin {
		for ky := range c.kh {
			for kx := range c.kw {
				offs = append(offs, ci*chStride+ky*rowW+(kx%c.strideW)*pw+kx/c.strideW)
			}
		}
	}
	rows := newPanelRows(offs)
	// A tile that ends past a row reads on into the next strip row; the
	// last one reads up to nr floats past the strip.
	stripLen := c.cin*chStride + nr
	k := c.cin * c.kh * c.kw
	// A shallow conv spends much of its time storing: it stages a whole
	// output row of every channel and stores channel by channel, since a
	// tile of nr positions writes every channel's plane at once, and planes
	// a multiple of 4 KiB apart share cache sets. A deep one keeps L2 for
	// its strip (staging cost g_a's 5x5 64->64 a third more time).
	staged := k <= stagedDepth
	rowLen := 0
	if staged {
		rowLen = c.cout * ow
	}
	tasks := (oh + rowsOut - 1) / rowsOut
	workers := min(runtime.GOMAXPROCS(0), tasks)
	var next atomic.Int64
	var wg sync.WaitGroup
	scratch := make([]*Tensor, 0, 3*workers)
	for range workers {
		stripT, tileT, rowT := p.get(stripLen), p.get(mr*nr), p.get(rowLen)
		scratch = append(scratch, stripT, tileT, rowT)
		wg.Add(1)
		go func() {
			defer wg.Done()
			strip, tile, rowOut := stripT.Data, tileT.Data, rowT.Data
			clear(strip[c.cin*chStride:])
			for {
				t := int(next.Add(1)) - 1
				if t >= tasks {
					return
				}
				y0 := t * rowsOut
				for ci := range c.cin {
					plane := x[ci*h*w : (ci+1)*h*w]
					for r := range rowsIn {
						dst := strip[ci*chStride+r*rowW : ci*chStride+(r+1)*rowW]
						iy := y0*c.strideH - c.padT + r
						if iy < 0 || iy >= h {
							clear(dst)
							continue
						}
						src := plane[iy*w : (iy+1)*w]
						if c.strideW == 1 {
							clear(dst[:c.padL])
							copy(dst[c.padL:c.padL+w], src)
							clear(dst[c.padL+w:])
							continue
						}
						for ph := range c.strideW {
							seg := dst[ph*pw : (ph+1)*pw]
							for j := range seg {
								ix := j*c.strideW + ph - c.padL
								if ix >= 0 && ix < w {
									seg[j] = src[ix]
								} else {
									seg[j] = 0
								}
							}
						}
					}
				}
				for y := y0; y < min(y0+rowsOut, oh); y++ {
					if !staged {
						for x0 := 0; x0 < ow; x0 += nr {
							base := (y-y0)*c.strideH*rowW + x0
							c.multiplyTile(kern, strip[base:], rows, tile, out, oh, ow, y*ow+x0, min(nr, ow-x0))
						}
						continue
					}
					for x0 := 0; x0 < ow; x0 += nr {
						base := (y-y0)*c.strideH*rowW + x0
						n := min(nr, ow-x0)
						for o0 := 0; o0 < c.cout; o0 += mr {
							kern.run(k, c.packed[o0*k:(o0+mr)*k], strip[base:], rows, tile)
							for r := 0; r < mr && o0+r < c.cout; r++ {
								copy(rowOut[(o0+r)*ow+x0:], tile[r*nr:r*nr+n])
							}
						}
					}
					for o0 := 0; o0 < c.cout; o0 += mr {
						c.storeRow(rowOut[o0*ow:], ow, out, oh, ow, o0, y*ow, ow)
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

// overTiles calls fn for every tile of the micro-kernel's nr positions out
// of positions, spread over goroutines that each own scratch (from the pool)
// for a k-deep column panel, an mr x nr result tile and the gather's runs.
func overTiles(p *bufferPool, positions, k int, fn func(kern microKernel, p0, np int, cols []float32, rows panelRows, tile []float32, runs []run)) {
	kern := kernel
	nr := kern.nr
	rows := packedRows(k, nr)
	overBlocks(p, positions, 4*nr, k*nr+mr*nr, func(p0, np int, scratch []float32) {
		cols, tile := scratch[:k*nr], scratch[k*nr:]
		var runs [maxNR]run
		for q := p0; q < p0+np; q += nr {
			fn(kern, q, min(nr, p0+np-q), cols, rows, tile, runs[:nr])
		}
	})
}

// overBlocks calls fn for every block of up to block positions out of
// positions, spread over goroutines that each own scratch floats from the
// pool.
func overBlocks(p *bufferPool, positions, block, scratch int, fn func(p0, np int, scratch []float32)) {
	tasks := (positions + block - 1) / block
	workers := min(runtime.GOMAXPROCS(0), tasks)
	var next atomic.Int64
	var wg sync.WaitGroup
	buffers := make([]*Tensor, workers)
	for i := range buffers {
		buffers[i] = p.get(scratch)
		wg.Add(1)
		go func(buf []float32) {
			defer wg.Done()
			for {
				t := int(next.Add(1)) - 1
				if t >= tasks {
					return
				}
				fn(t*block, min(block, positions-t*block), buf)
			}
		}(buffers[i].Data)
	}
	wg.Wait()
	for _, b := range buffers {
		p.put(b)
	}
}

// maxNR bounds the tile width of any micro-kernel.
const maxNR = 64

// A run is a stretch of output positions within one output row.
type run struct{ oy, ox, i, n int }

// gather writes the im2col columns of positions p0..p0+np-1 as cols[k][nr],
// zero where the kernel window hangs over the padding. Positions are split
// into runs within one output row, so that for stride 1 each run is a plain
// copy of an input row segment.
func (c *convOp) gather(x []float32, h, w, ow, p0, np, nr int, cols []float32, runs []run) {
	nruns := 0
	for i := 0; i < np; {
		oy, ox := (p0+i)/ow, (p0+i)%ow
		n := min(np-i, ow-ox)
		runs[nruns] = run{oy, ox, i, n}
		nruns++
		i += n
	}
	j := 0
	for ci := 0; ci < c.cin; ci++ {
		plane := x[ci*h*w : (ci+1)*h*w]
		for ky := 0; ky < c.kh; ky++ {
			for kx := 0; kx < c.kw; kx++ {
				row := cols[j*nr : (j+1)*nr]
				j++
				clear(row[np:])
				for _, r := range runs[:nruns] {
					dst := row[r.i : r.i+r.n]
					iy := r.oy*c.strideH - c.padT + ky
					if iy < 0 || iy >= h {
						clear(dst)
						continue
					}
					src := plane[iy*w : (iy+1)*w]
					ix := r.ox*c.strideW - c.padL + kx
					sw := c.strideW
					if sw == 1 && ix >= 0 && ix+r.n <= w {
						copy(dst, src[ix:ix+r.n])
						continue
					}
					// Positions t0..t1-1 read inside the row; the rest is padding.
					t0, t1 := 0, 0
					if ix < 0 {
						t0 = (-ix + sw - 1) / sw
					}
					if ix <= w-1 {
						t1 = (w-1-ix)/sw + 1
					}
					t0 = min(t0, len(dst))
					t1 = max(t0, min(t1, len(dst)))
					clear(dst[:t0])
					if sw == 1 {
						copy(dst[t0:t1], src[ix+t0:])
					} else {
						for t, j := t0, ix+t0*sw; t < t1; t, j = t+1, j+sw {
							dst[t] = src[j]
						}
					}
					clear(dst[t1:])
				}
			}
		}
	}
}

func (c *convOp) store(tile []float32, nr int, out []float32, positions, o0, p0, np int) {
	for r := 0; r < mr && o0+r < c.cout; r++ {
		b := c.bias[o0+r]
		dst := out[(o0+r)*positions+p0 : (o0+r)*positions+p0+np]
		src := tile[r*nr : r*nr+np]
		switch {
		case c.residual:
			biasAdd(src, dst, b)
		case c.act == actNone || c.act == actRelu:
			biasStore(src, dst, b, c.act == actRelu)
		case c.act == actLeaky:
			for i, v := range src {
				v += b
				if v < 0 {
					v *= c.alpha
				}
				dst[i] = v
			}
		}
	}
}

// biasAddGo adds src[i]+bias to dst[i], the residual, rounding as the
// unfused Add(residual, conv) does.
func biasAddGo(src, dst []float32, bias float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] += v + bias
	}
}

// relu is "v > 0 ? v : 0", which is what the vector stores' MAXPS computes,
// NaN and -0 included.
func relu(v float32) float32 {
	if v > 0 {
		return v
	}
	return 0
}

// biasStoreGo sets dst[i] = src[i]+bias, through relu if asked.
func biasStoreGo(src, dst []float32, bias float32, withRelu bool) {
	dst = dst[:len(src)]
	if withRelu {
		for i, v := range src {
			dst[i] = relu(v + bias)
		}
		return
	}
	for i, v := range src {
		dst[i] = v + bias
	}
}

// biasStorePairsGo interleaves even[i]+be and odd[i]+bo into dst, through
// relu if asked.
func biasStorePairsGo(even, odd, dst []float32, be, bo float32, withRelu bool) {
	odd, dst = odd[:len(even)], dst[:2*len(even)]
	if withRelu {
		for t, v := range even {
			dst[2*t], dst[2*t+1] = relu(v+be), relu(odd[t]+bo)
		}
		return
	}
	for t, v := range even {
		dst[2*t], dst[2*t+1] = v+be, odd[t]+bo
	}
}

// storeDepthToSpace stores a tile where depth-to-space would move it: output
// channel o of position (y, x) lands at channel o/(b*b) (CRD) or o%C (DCR),
// row y*b+dy, column x*b+dx.
func (c *convOp) storeDepthToSpace(tile []float32, nr int, out []float32, oh, ow, o0, p0, np int) {
	b := c.d2s
	cc := c.cout / (b * b)
	outW := ow * b
	for r := 0; r < mr && o0+r < c.cout; r++ {
		o := o0 + r
		if b == 2 && c.d2sCRD && o%2 == 0 && r+1 < mr && o+1 < c.cout && (c.act == actNone || c.act == actRelu) {
			c.storeColumnPair(tile[r*nr:r*nr+np], tile[(r+1)*nr:(r+1)*nr+np], out, oh, ow, o, p0)
			r++
			continue
		}
		var ch, dy, dx int
		if c.d2sCRD {
			ch, dy, dx = o/(b*b), (o%(b*b))/b, o%b
		} else {
			ch, dy, dx = o%cc, (o/cc)/b, (o/cc)%b
		}
		plane := out[ch*oh*b*outW:]
		bias := c.bias[o]
		src := tile[r*nr : r*nr+np]
		// Walk the positions in stretches within one output row; in the
		// upsampled plane a stretch is every b-th element of one row.
		for p, i := p0, 0; i < np; {
			y, x := p/ow, p%ow
			n := min(np-i, ow-x)
			dst := plane[(y*b+dy)*outW+x*b+dx:]
			seg := src[i : i+n]
			switch c.act {
			case actNone:
				for t, v := range seg {
					dst[t*b] = v + bias
				}
			case actRelu:
				for t, v := range seg {
					dst[t*b] = relu(v + bias)
				}
			case actLeaky:
				for t, v := range seg {
					v += bias
					if v < 0 {
						v *= c.alpha
					}
					dst[t*b] = v
				}
			}
			p, i = p+n, i+n
		}
	}
}

// storeColumnPair stores the tile rows of output channels o and o+1 of a
// CRD depth-to-space by 2: they are the even and odd columns of the same
// upsampled rows, so they are written together, in order. Strided stores
// one channel at a time cost g_s a tenth of its decoding time.
func (c *convOp) storeColumnPair(even, odd []float32, out []float32, oh, ow, o, p0 int) {
	outW := ow * 2
	plane := out[(o/4)*oh*2*outW:]
	dy := (o % 4) / 2
	be, bo := c.bias[o], c.bias[o+1]
	relu := c.act == actRelu
	for p, i := p0, 0; i < len(even); {
		y, x := p/ow, p%ow
		n := min(len(even)-i, ow-x)
		dst := plane[(y*2+dy)*outW+x*2:][:2*n]
		biasStorePairs(even[i:i+n], odd[i:i+n], dst, be, bo, relu)
		p, i = p+n, i+n
	}
}

func (c *convOp) depthwise(x []float32, h, w int, out []float32, oh, ow int) {
	for ch := 0; ch < c.cout; ch++ {
		plane := x[ch*h*w:]
		wt := c.weights[ch*c.kh*c.kw:]
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				s := c.bias[ch]
				for ky := 0; ky < c.kh; ky++ {
					iy := oy*c.strideH - c.padT + ky
					if iy < 0 || iy >= h {
						continue
					}
					for kx := 0; kx < c.kw; kx++ {
						ix := ox*c.strideW - c.padL + kx
						if ix >= 0 && ix < w {
							s += plane[iy*w+ix] * wt[ky*c.kw+kx]
						}
					}
				}
				switch c.act {
				case actRelu:
					s = relu(s)
				case actLeaky:
					if s < 0 {
						s *= c.alpha
					}
				}
				out[ch*oh*ow+oy*ow+ox] = s
			}
		}
	}
}

// kernelGo is the portable micro-kernel. Three rows by four columns of
// accumulators stay in registers.
func kernelGo(k int, a, b []float32, rows panelRows, tile []float32) {
	nr := len(tile) / mr
	a = a[:k*mr]
	offs := rows.offs[:k]
	for r0 := 0; r0 < mr; r0 += 3 {
		for j0 := 0; j0 < nr; j0 += 4 {
			var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23 float32
			for p, off := range offs {
				ap := a[p*mr+r0 : p*mr+r0+3 : p*mr+r0+3]
				bp := b[off+j0 : off+j0+4 : off+j0+4]
				a0, a1, a2 := ap[0], ap[1], ap[2]
				b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
				c00 += a0 * b0
				c01 += a0 * b1
				c02 += a0 * b2
				c03 += a0 * b3
				c10 += a1 * b0
				c11 += a1 * b1
				c12 += a1 * b2
				c13 += a1 * b3
				c20 += a2 * b0
				c21 += a2 * b1
				c22 += a2 * b2
				c23 += a2 * b3
			}
			t := tile[r0*nr+j0:]
			t[0], t[1], t[2], t[3] = c00, c01, c02, c03
			t[nr], t[nr+1], t[nr+2], t[nr+3] = c10, c11, c12, c13
			t[2*nr], t[2*nr+1], t[2*nr+2], t[2*nr+3] = c20, c21, c22, c23
		}
	}
}
