package nn

import (
	"errors"
	"fmt"
	"math"
	"runtime"
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
}

type fixedLayer struct {
	name string
	conv *fixedConv
	d2s  int // block size, CRD order
	relu bool
}

type fixedConv struct {
	cout, cin, k, pad int
	w                 []int64 // [cout][cin][k][k], FixedFracBits fraction bits
	bias              []int64 // 2*FixedFracBits fraction bits
	relu              bool
}

// LoadFixed compiles an ONNX model for fixed-point execution. It accepts
// only square, stride-1, symmetric-padding convolutions, Relu and CRD
// depth-to-space, in one chain.
func LoadFixed(onnx []byte) (*FixedGraph, error) {
	g, err := parseAndCompile(onnx)
	if err != nil {
		return nil, err
	}
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
			// "Same" convolutions only: the padded-plane loop relies on it.
			if o.groups != 1 || o.kh != o.kw || o.strideH != 1 || o.strideW != 1 ||
				o.padT != o.padB || o.padL != o.padR || o.padT != o.padL || o.kh != 2*o.padT+1 || o.act == actLeaky {
				return nil, fmt.Errorf("nn: node %s: conv form not supported in fixed point (want k x k, stride 1, padding (k-1)/2)", s.name)
			}
			if o.residual {
				return nil, fmt.Errorf("nn: node %s: residual add not supported in fixed point", s.name)
			}
			fc := &fixedConv{cout: o.cout, cin: o.cin, k: o.kh, pad: o.padT, relu: o.act == actRelu}
			fc.w = make([]int64, len(o.weights))
			for i, v := range o.weights {
				if fc.w[i], err = toFixed(v, FixedFracBits, math.MaxInt32); err != nil {
					return nil, fmt.Errorf("nn: node %s: weight %d: %w", s.name, i, err)
				}
			}
			fc.bias = make([]int64, len(o.bias))
			for i, v := range o.bias {
				if fc.bias[i], err = toFixed(v, 2*FixedFracBits, 1<<62); err != nil {
					return nil, fmt.Errorf("nn: node %s: bias %d: %w", s.name, i, err)
				}
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
// returns the output and its shape.
func (fg *FixedGraph) Run(in []int32, c, h, w int) ([]int32, [3]int, error) {
	if len(in) != c*h*w {
		return nil, [3]int{}, fmt.Errorf("nn: fixed-point input has %d values for %dx%dx%d", len(in), c, h, w)
	}
	x := in
	for _, l := range fg.layers {
		switch {
		case l.conv != nil:
			if c != l.conv.cin {
				return nil, [3]int{}, fmt.Errorf("nn: node %s: %d channels in, want %d", l.name, c, l.conv.cin)
			}
			x = l.conv.run(x, h, w)
			c = l.conv.cout
		case l.d2s > 0:
			b := l.d2s
			if c%(b*b) != 0 {
				return nil, [3]int{}, fmt.Errorf("nn: node %s: %d channels for block %d", l.name, c, b)
			}
			out := make([]int32, len(x))
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
			x, c, h, w = out, co, h*b, w*b
		case l.relu:
			for i, v := range x {
				x[i] = max(v, 0)
			}
		}
	}
	return x, [3]int{c, h, w}, nil
}

// run convolves in padded coordinates: the input planes get a zero border
// of fc.pad, and accumulators span the padded width, so that each kernel tap
// is one long contiguous multiply-add over the whole plane. Four output
// channels share each input load. The extra columns are dropped at the end.
func (fc *fixedConv) run(x []int32, h, w int) []int32 {
	p := fc.pad
	pw := w + 2*p
	n := h * pw // accumulators per output channel, in padded width
	// The last taps read up to 2p past the padded plane; keep them zero.
	padded := make([]int64, fc.cin*(h+2*p)*pw+2*p)
	plane := (h + 2*p) * pw
	for ci := range fc.cin {
		for y := range h {
			dst := padded[ci*plane+(y+p)*pw+p:]
			for xx, v := range x[(ci*h+y)*w : (ci*h+y+1)*w] {
				dst[xx] = int64(v)
			}
		}
	}
	out := make([]int32, fc.cout*h*w)
	const group = 4
	groups := (fc.cout + group - 1) / group
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), groups)
	for wk := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acc := make([]int64, group*n)
			for g := wk; g < groups; g += workers {
				o0 := g * group
				og := min(group, fc.cout-o0)
				for j := range og {
					clear(acc[j*n : (j+1)*n])
					for i := range n {
						acc[j*n+i] = fc.bias[o0+j]
					}
				}
				a0, a1, a2, a3 := acc[:n], acc[n:2*n], acc[2*n:3*n], acc[3*n:4*n]
				for ci := range fc.cin {
					for ky := range fc.k {
						for kx := range fc.k {
							src := padded[ci*plane+ky*pw+kx:][:n]
							var wt [group]int64
							for j := range og {
								wt[j] = fc.w[(((o0+j)*fc.cin+ci)*fc.k+ky)*fc.k+kx]
							}
							fixedMAC4(src, &wt, a0, a1, a2, a3)
						}
					}
				}
				for j := range og {
					res := out[(o0+j)*h*w : (o0+j+1)*h*w]
					for y := range h {
						row := acc[j*n+y*pw : j*n+y*pw+w]
						for xx, a := range row {
							v := (a + 1<<(FixedFracBits-1)) >> FixedFracBits
							v = min(max(v, math.MinInt32), math.MaxInt32)
							if fc.relu {
								v = max(v, 0)
							}
							res[y*w+xx] = int32(v)
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// fixedMAC4Go adds v[i]*w[j] to a_j[i] for four output channels j.
func fixedMAC4Go(v []int64, w *[4]int64, a0, a1, a2, a3 []int64) {
	w0, w1, w2, w3 := w[0], w[1], w[2], w[3]
	a0, a1, a2, a3 = a0[:len(v)], a1[:len(v)], a2[:len(v)], a3[:len(v)]
	for i, x := range v {
		a0[i] += x * w0
		a1[i] += x * w1
		a2[i] += x * w2
		a3[i] += x * w3
	}
}
