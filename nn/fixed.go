package nn

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
)

// FixedFracBits is the fixed-point precision of FixedGraph activations.
const FixedFracBits = 16

// A FixedGraph runs a network of Conv, Relu and DepthToSpace in integer
// arithmetic: activations are int32 with FixedFracBits fraction bits, weights
// are rounded to the same precision, and sums are exact in int64. Its
// results are therefore identical on every platform and for any number of
// goroutines, which the entropy model needs: the decoder must derive the
// same scales and means as the encoder did.
type FixedGraph struct {
	layers []fixedLayer
	mu     sync.Mutex // Run serializes calls: they share free
	// free holds the buffers of earlier runs' intermediate results (padded
	// planes, layer outputs), so that repeated runs allocate only their
	// outputs.
	free [][]int32
}

type fixedLayer struct {
	name string
	conv *fixedConv
	d2s  int // block size, CRD order
	relu bool
}

type fixedConv struct {
	cout, cin, k, pad int
	// w holds, per group of fixedGroup output channels and per tap
	// (input channel, row, column), the group's weights side by side,
	// zero past cout; FixedFracBits fraction bits.
	w    []int64
	bias []int64 // 2*FixedFracBits fraction bits
	relu bool
}

// A fixedBlockFunc is a fixed-point micro-kernel: it adds
// Σ_t src[rows.offs[t]+p]·w[fixedGroup·t+j] to acc[fixedBlockWidth·j+p].
type fixedBlockFunc func(rows panelRows, src []int32, w []int64, acc *[fixedGroup * fixedBlockWidth]int64)

// The fixed-point micro-kernel computes fixedGroup output channels at
// fixedBlockWidth positions at a time.
const (
	fixedGroup      = 4
	fixedBlockWidth = 8
)

// LoadFixed compiles an ONNX model for fixed-point execution. It accepts
// only square, stride-1, symmetric-padding convolutions, Relu and CRD
// depth-to-space, in one chain.
func LoadFixed(onnx []byte) (*FixedGraph, error) {
	g, err := parseAndCompile(onnx)
	if err != nil {
		return nil, err
	}
	return fixedGraph(g)
}

// fixedGraph converts a compiled float graph whose weights are as ONNX has
// them.
func fixedGraph(g *Graph) (*FixedGraph, error) {
	if len(g.inputs) != 1 || len(g.outputs) != 1 {
		return nil, errors.New("nn: fixed-point graphs take one input and give one output")
	}
	fg := &FixedGraph{}
	prev := -1
	for id := range g.inputs {
		prev = g.inputs[id]
	}
	for _, s := range g.steps {
		if len(s.in) == 0 || s.in[0] != prev {
			return nil, fmt.Errorf("nn: node %s: fixed-point graphs must be a chain", s.name)
		}
		prev = s.out
		l := fixedLayer{name: s.name}
		switch o := s.op.(type) {
		case *convOp:
			for _, id := range s.in[1:min(len(s.in), 3)] {
				if by, ok := g.inexact[id]; ok {
					return nil, fmt.Errorf("nn: node %s: its weights come from %s at load, whose float result may differ by platform; fixed-point graphs need exact weights", s.name, by)
				}
			}
			// "Same" convolutions only: the padded-plane loop relies on it.
			if o.groups != 1 || o.kh != o.kw || o.strideH != 1 || o.strideW != 1 ||
				o.padT != o.padB || o.padL != o.padR || o.padT != o.padL || o.kh != 2*o.padT+1 || o.act == actLeaky {
				return nil, fmt.Errorf("nn: node %s: conv form not supported in fixed point (want k x k, stride 1, padding (k-1)/2)", s.name)
			}
			if o.residual {
				return nil, fmt.Errorf("nn: node %s: residual add not supported in fixed point", s.name)
			}
			fc, err := newFixedConv(o)
			if err != nil {
				return nil, fmt.Errorf("nn: node %s: %w", s.name, err)
			}
			l.conv = fc
			if o.d2s > 0 { // fused by the float compiler; here a layer of its own
				if !o.d2sCRD {
					return nil, fmt.Errorf("nn: node %s: only CRD depth-to-space in fixed point", s.name)
				}
				fg.layers = append(fg.layers, l)
				l = fixedLayer{name: s.name, d2s: o.d2s}
			}
		case *depthToSpace:
			if !o.crd {
				return nil, fmt.Errorf("nn: node %s: only CRD depth-to-space in fixed point", s.name)
			}
			l.d2s = o.block
		case unaryOp:
			if o.kind != "Relu" {
				return nil, fmt.Errorf("nn: node %s: %s not supported in fixed point", s.name, o.kind)
			}
			l.relu = true
		default:
			return nil, fmt.Errorf("nn: node %s: op not supported in fixed point", s.name)
		}
		fg.layers = append(fg.layers, l)
	}
	if len(g.outputs) != 1 || g.outputs[0] != prev {
		return nil, errors.New("nn: fixed-point graph output is not the end of the chain")
	}
	return fg, nil
}

// newFixedConv rounds a convolution's weights and biases to fixed point,
// the weights grouped for the micro-kernel.
func newFixedConv(o *convOp) (*fixedConv, error) {
	fc := &fixedConv{cout: o.cout, cin: o.cin, k: o.kh, pad: o.padT, relu: o.act == actRelu}
	taps := o.cin * o.kh * o.kh
	fc.w = make([]int64, (o.cout+fixedGroup-1)/fixedGroup*fixedGroup*taps)
	var err error
	for i, v := range o.weights {
		co, t := i/taps, i%taps
		at := (co/fixedGroup*taps+t)*fixedGroup + co%fixedGroup
		if fc.w[at], err = toFixed(v, FixedFracBits, math.MaxInt32); err != nil {
			return nil, fmt.Errorf("weight %d: %w", i, err)
		}
	}
	fc.bias = make([]int64, len(o.bias))
	for i, v := range o.bias {
		if fc.bias[i], err = toFixed(v, 2*FixedFracBits, 1<<62); err != nil {
			return nil, fmt.Errorf("bias %d: %w", i, err)
		}
	}
	return fc, nil
}

// Pointwise reports whether every layer computes each position from that
// position alone: 1x1 convolutions and Relu, no depth-to-space. Such a
// graph gives the same outputs however its positions are laid out.
func (fg *FixedGraph) Pointwise() bool {
	for _, l := range fg.layers {
		if l.d2s > 0 || (l.conv != nil && l.conv.k != 1) {
			return false
		}
	}
	return true
}

// ConvWidths gives the output channels of each convolution, in order.
func (fg *FixedGraph) ConvWidths() []int {
	var widths []int
	for _, l := range fg.layers {
		if l.conv != nil {
			widths = append(widths, l.conv.cout)
		}
	}
	return widths
}

// toFixed rounds v*2^frac to an integer clamped to ±limit. Scaling by a
// power of two and rounding are exact, so every platform gets the same
// value; NaN and infinities, whose integer conversion varies by platform,
// are errors.
func toFixed(v float32, frac int, limit int64) (int64, error) {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return 0, fmt.Errorf("non-finite value %v", v)
	}
	f := math.Round(math.Ldexp(float64(v), frac))
	return int64(max(min(f, float64(limit)), -float64(limit))), nil
}

// Run evaluates the graph on a [c, h, w] tensor of fixed-point values and
// returns the output, which is the caller's, and its shape.
func (fg *FixedGraph) Run(in []int32, c, h, w int) ([]int32, [3]int, error) {
	if len(in) != c*h*w {
		return nil, [3]int{}, fmt.Errorf("nn: fixed-point input has %d values for %dx%dx%d", len(in), c, h, w)
	}
	fg.mu.Lock()
	defer fg.mu.Unlock()
	// Every layer's result but the last goes back to free once the next
	// layer has read it; the last is the caller's.
	x, ours := in, false
	next := func(out []int32) {
		if ours {
			fg.free = append(fg.free, x)
		}
		x, ours = out, true
	}
	for _, l := range fg.layers {
		switch {
		case l.conv != nil:
			if c != l.conv.cin {
				return nil, [3]int{}, fmt.Errorf("nn: node %s: %d channels in, want %d", l.name, c, l.conv.cin)
			}
			// The network's shapes come from the file: bound what it may
			// allocate, as the float executor does.
			p := 2 * l.conv.pad
			if _, err := checkedElements([]int{max(l.conv.cout, l.conv.cin), h + p, w + p}); err != nil {
				return nil, [3]int{}, fmt.Errorf("nn: node %s: %w", l.name, err)
			}
			padded := fg.get(l.conv.paddedSize(h, w))
			next(l.conv.run(x, h, w, fg.get(l.conv.cout*h*w), padded))
			fg.free = append(fg.free, padded)
			c = l.conv.cout
		case l.d2s > 0:
			b := l.d2s
			if c%(b*b) != 0 {
				return nil, [3]int{}, fmt.Errorf("nn: node %s: %d channels for block %d", l.name, c, b)
			}
			out := fg.get(len(x))
			co := c / (b * b)
			for ch := range co {
				for dy := range b {
					for dx := range b {
						src := x[(ch*b*b+dy*b+dx)*h*w:]
						for y := range h {
							dst := out[(ch*h*b+y*b+dy)*w*b+dx:]
							for xx := range w {
								dst[xx*b] = src[y*w+xx]
							}
						}
					}
				}
			}
			next(out)
			c, h, w = co, h*b, w*b
		case l.relu:
			for i, v := range x {
				x[i] = max(v, 0)
			}
		}
	}
	return x, [3]int{c, h, w}, nil
}

// get returns a buffer of n values from free, or a new one; its contents
// are left over from an earlier run.
func (fg *FixedGraph) get(n int) []int32 {
	best := -1
	for i, b := range fg.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(fg.free[best])) {
			best = i
		}
	}
	if best < 0 {
		return make([]int32, n)
	}
	b := fg.free[best][:n]
	fg.free = slices.Delete(fg.free, best, best+1)
	return b
}

// paddedSize is the length of run's padded copy of an h x w input.
func (fc *fixedConv) paddedSize(h, w int) int {
	p := fc.pad
	return fc.cin*(h+2*p)*(w+2*p) + 2*p + fixedBlockWidth
}

// run convolves in padded coordinates: the input planes get a zero border
// of fc.pad, and positions span the padded width, so that each tap reads
// the input at one fixed offset from the output position. The micro-kernel
// sums a block of positions for a group of output channels over every tap
// in registers; the extra columns are dropped at the end. It writes every
// value of out (cout*h*w); padded is its scratch (paddedSize).
func (fc *fixedConv) run(x []int32, h, w int, out, padded []int32) []int32 {
	p := fc.pad
	pw := w + 2*p
	n := h * pw // positions, in padded width
	plane := (h + 2*p) * pw
	// The border, and the up to 2p+fixedBlockWidth-1 values past the
	// padded planes that the last block's taps read, must be zero.
	clear(padded)
	for ci := range fc.cin {
		for y := range h {
			copy(padded[ci*plane+(y+p)*pw+p:], x[(ci*h+y)*w:(ci*h+y+1)*w])
		}
	}
	taps := fc.cin * fc.k * fc.k
	offs := make([]int, 0, taps)
	for ci := range fc.cin {
		for ky := range fc.k {
			for kx := range fc.k {
				offs = append(offs, ci*plane+ky*pw+kx)
			}
		}
	}
	rows := newPanelRows(offs)
	groups := (fc.cout + fixedGroup - 1) / fixedGroup
	lo := int64(math.MinInt32)
	if fc.relu {
		lo = 0
	}
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), groups)
	for wk := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var bias, acc [fixedGroup * fixedBlockWidth]int64
			for g := wk; g < groups; g += workers {
				o0 := g * fixedGroup
				og := min(fixedGroup, fc.cout-o0)
				weights := fc.w[g*taps*fixedGroup : (g+1)*taps*fixedGroup]
				bias = [fixedGroup * fixedBlockWidth]int64{}
				for j := range og {
					for q := range fixedBlockWidth {
						bias[j*fixedBlockWidth+q] = fc.bias[o0+j]
					}
				}
				for i0 := 0; i0 < n; i0 += fixedBlockWidth {
					acc = bias
					fixedBlock(rows, padded[i0:], weights, &acc)
					if p == 0 && i0+fixedBlockWidth <= n { // laid out as the output
						for j := range og {
							dst := out[(o0+j)*n+i0:][:fixedBlockWidth]
							for q, a := range acc[j*fixedBlockWidth:][:fixedBlockWidth] {
								dst[q] = fixedRound(a, lo)
							}
						}
						continue
					}
					y0, x0 := i0/pw, i0%pw
					for j := range og {
						y, xx := y0, x0
						dst := out[(o0+j)*h*w:][:h*w]
						for q := range min(fixedBlockWidth, n-i0) {
							if xx < w {
								dst[y*w+xx] = fixedRound(acc[j*fixedBlockWidth+q], lo)
							}
							if xx++; xx == pw {
								y, xx = y+1, 0
							}
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// fixedRound takes a sum (2·FixedFracBits fraction bits) to an activation,
// rounded half up, clamped to int32 and below to lo (0 for Relu).
func fixedRound(a, lo int64) int32 {
	return int32(min(max((a+1<<(FixedFracBits-1))>>FixedFracBits, lo), math.MaxInt32))
}

// fixedBlockGo adds Σ_t src[offs[t]+q]·w[4t+j] to acc[8j+q] for the
// block's 8 positions q and 4 output channels j, over the taps t of rows,
// two positions at a time so that the sums stay in registers.
func fixedBlockGo(rows panelRows, src []int32, w []int64, acc *[fixedGroup * fixedBlockWidth]int64) {
	offs := rows.offs
	w = w[:fixedGroup*len(offs)]
	for q := 0; q < fixedBlockWidth; q += 2 {
		a00, a01 := acc[q], acc[q+1]
		a10, a11 := acc[8+q], acc[8+q+1]
		a20, a21 := acc[16+q], acc[16+q+1]
		a30, a31 := acc[24+q], acc[24+q+1]
		for t, off := range offs {
			// One bounds check per slice, and the weights in locals: 8%
			// faster under js/wasm (BenchmarkFixedConv).
			x := src[off+q : off+q+2 : off+q+2]
			x0, x1 := int64(x[0]), int64(x[1])
			wt := w[4*t : 4*t+4 : 4*t+4]
			w0, w1, w2, w3 := wt[0], wt[1], wt[2], wt[3]
			a00 += x0 * w0
			a01 += x1 * w0
			a10 += x0 * w1
			a11 += x1 * w1
			a20 += x0 * w2
			a21 += x1 * w2
			a30 += x0 * w3
			a31 += x1 * w3
		}
		acc[q], acc[q+1] = a00, a01
		acc[8+q], acc[8+q+1] = a10, a11
		acc[16+q], acc[16+q+1] = a20, a21
		acc[24+q], acc[24+q+1] = a30, a31
	}
}

// Recycle hands an output of Run back, for later runs to reuse; the caller
// must not use it again.
func (fg *FixedGraph) Recycle(out []int32) {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	fg.free = append(fg.free, out)
}
