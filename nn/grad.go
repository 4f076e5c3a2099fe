package nn

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
)

// Input gradients, for encoders that optimize what they feed a synthesis
// transform: a Tape records one forward run with every activation kept, and
// Backward carries the gradient of a loss from the output back to one input.
// Weights get no gradients. Only the ops a synthesis transform is made of
// have a backward pass (stride-1 convolutions with their fused activation,
// depth-to-space and residual add, GDN, depth-to-space, Add/Sub/Mul,
// Relu/LeakyRelu with a slope of at least 0, Identity/Neg, Reshape);
// LoadDifferentiable refuses a graph with any other step that is not
// constant.

// LoadDifferentiable is Load for a graph whose input gradients will be
// needed. It keeps every activation of a run alive (Record), so it needs
// several times the memory of a graph from Load.
func LoadDifferentiable(onnx []byte) (*Graph, error) {
	g, err := parseGraph(onnx)
	if err != nil {
		return nil, err
	}
	return compileDifferentiable(g)
}

func compileDifferentiable(og *onnxGraph) (*Graph, error) {
	g, err := compile(og)
	if err != nil {
		return nil, err
	}
	g.prepareWeights()
	g.back = make([]*backward, len(g.steps))
	for i := range g.steps {
		s := &g.steps[i]
		// Nothing is freed or overwritten: Backward reads every activation.
		s.free = nil
		b := &backward{}
		switch o := s.op.(type) {
		case *convOp:
			o.inPlace = false
			if o.act == actLeaky && o.alpha < 0 {
				// The output's sign would no longer tell the input's.
				return nil, fmt.Errorf("nn: node %s: no gradient for LeakyRelu with a negative slope", s.name)
			}
			if b.conv, err = transposedConv(o); err != nil {
				return nil, fmt.Errorf("nn: node %s: no gradient: %w", s.name, err)
			}
		case *gdnOp:
			o.inPlace = false
			if b.conv, err = transposedConv(o.norm); err != nil {
				return nil, fmt.Errorf("nn: node %s: no gradient: %w", s.name, err)
			}
		case *binaryOp:
			o.inPlace = false
			if o.kind != "Add" && o.kind != "Sub" && o.kind != "Mul" {
				return nil, fmt.Errorf("nn: node %s: no gradient for %s", s.name, o.kind)
			}
		case unaryOp:
			if !slices.Contains([]string{"Relu", "LeakyRelu", "Identity", "Neg"}, o.kind) || o.alpha < 0 {
				return nil, fmt.Errorf("nn: node %s: no gradient for %s", s.name, o.kind)
			}
		case *depthToSpace, reshapeOp:
		default:
			return nil, fmt.Errorf("nn: node %s: no gradient for %T", s.name, s.op)
		}
		if b.conv != nil {
			b.conv.weights = nil // packed already
		}
		g.back[i] = b
	}
	g.dropLoadTimeConstants()
	return g, nil
}

// backward holds what a step's backward pass needs beyond its forward op.
type backward struct {
	// conv is the convolution that carries a gradient back through a conv
	// (its weights transposed and flipped) or through a GDN's 1x1 gamma
	// (transposed).
	conv *convOp
}

// transposedConv returns the convolution whose output is the gradient of c's
// input, given the gradient of c's output (before any fused store).
func transposedConv(c *convOp) (*convOp, error) {
	if c.groups != 1 || c.strideH != 1 || c.strideW != 1 {
		return nil, errors.New("only stride-1, non-grouped convolutions")
	}
	if c.padT >= c.kh || c.padB >= c.kh || c.padL >= c.kw || c.padR >= c.kw {
		return nil, errors.New("padding as large as the kernel")
	}
	w := NewTensor(c.cin, c.cout, c.kh, c.kw)
	for o := range c.cout {
		for i := range c.cin {
			for y := range c.kh {
				for x := range c.kw {
					w.Data[((i*c.cout+o)*c.kh+c.kh-1-y)*c.kw+c.kw-1-x] = c.weights[((o*c.cin+i)*c.kh+y)*c.kw+x]
				}
			}
		}
	}
	pads := []int64{int64(c.kh - 1 - c.padT), int64(c.kw - 1 - c.padL), int64(c.kh - 1 - c.padB), int64(c.kw - 1 - c.padR)}
	t, err := newConv(onnxNode{attrs: map[string]attribute{"pads": {ints: pads}}}, []*Tensor{nil, w})
	if err != nil {
		return nil, err
	}
	t.prepare()
	return t, nil
}

// A Tape is one recorded run of a differentiable graph. It stays valid until
// the graph's next run.
type Tape struct {
	g    *Graph
	vals []*Tensor
	run  int
}

// Record runs the graph on the named inputs and keeps every activation for
// Backward. The graph must come from LoadDifferentiable.
func (g *Graph) Record(inputs map[string]*Tensor) (*Tape, error) {
	if g.back == nil {
		return nil, errors.New("nn: graph was not loaded with LoadDifferentiable")
	}
	vals, run, err := g.execute(inputs)
	if err != nil {
		return nil, err
	}
	return &Tape{g: g, vals: vals, run: run}, nil
}

// ReleaseBuffers lets go of the activations and gradients that the graph
// keeps for reuse (and invalidates any Tape).
func (g *Graph) ReleaseBuffers() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.runs++
	g.last, g.pool, g.gradPool = nil, bufferPool{}, bufferPool{}
}

// Output is the graph's i-th output in the recorded run (recycled, like the
// whole tape, by the graph's next run).
func (t *Tape) Output(i int) *Tensor { return t.vals[t.g.outputs[i]] }

// Backward returns the gradient, with respect to the input named wrt, of a
// loss whose gradient with respect to the first output is gradOut. The
// result is the caller's.
func (t *Tape) Backward(wrt string, gradOut *Tensor) (*Tensor, error) {
	g := t.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if t.run != g.runs {
		return nil, errors.New("nn: tape is stale: the graph has run since")
	}
	in, ok := g.inputs[wrt]
	if !ok {
		return nil, fmt.Errorf("nn: graph has no input %q", wrt)
	}
	out := g.outputs[0]
	if !slices.Equal(gradOut.Shape, t.vals[out].Shape) {
		return nil, fmt.Errorf("nn: output gradient %v for output %v", gradOut.Shape, t.vals[out].Shape)
	}
	// Only slots that depend on the input carry a gradient.
	needs := make([]bool, g.slots)
	needs[in] = true
	for _, s := range g.steps {
		for _, id := range s.in {
			if id >= 0 && needs[id] {
				needs[s.out] = true
			}
		}
	}
	p := &g.gradPool
	grads := make([]*Tensor, g.slots)
	defer func() {
		for _, gr := range grads {
			p.put(gr)
		}
	}()
	grads[out] = p.get(gradOut.Shape...)
	copy(grads[out].Data, gradOut.Data)
	for i := len(g.steps) - 1; i >= 0; i-- {
		s := g.steps[i]
		gOut := grads[s.out]
		if gOut == nil || !needs[s.out] {
			continue
		}
		add := func(j int, gIn *Tensor) error {
			id := s.in[j]
			if !needs[id] {
				p.put(gIn)
				return nil
			}
			if !slices.Equal(gIn.Shape, t.vals[id].Shape) {
				return fmt.Errorf("nn: node %s: gradient %v for input %v", s.name, gIn.Shape, t.vals[id].Shape)
			}
			if grads[id] == nil {
				grads[id] = gIn
				return nil
			}
			binarySlices("Add", grads[id].Data, grads[id].Data, gIn.Data)
			p.put(gIn)
			return nil
		}
		if err := g.stepBackward(i, t.vals, gOut, needs, p, add); err != nil {
			return nil, fmt.Errorf("nn: node %s: %w", s.name, err)
		}
		p.put(gOut)
		grads[s.out] = nil
	}
	if grads[in] == nil {
		return NewTensor(t.vals[in].Shape...), nil
	}
	res := NewTensor(grads[in].Shape...)
	copy(res.Data, grads[in].Data)
	return res, nil
}

// stepBackward hands add the gradient of each input of step i that needs one.
// gOut is the step's own buffer: it may be overwritten.
func (g *Graph) stepBackward(i int, vals []*Tensor, gOut *Tensor, needs []bool, p *bufferPool, add func(int, *Tensor) error) error {
	s := g.steps[i]
	need := func(j int) bool { return j < len(s.in) && s.in[j] >= 0 && needs[s.in[j]] }
	clone := func(t *Tensor) *Tensor {
		c := p.get(t.Shape...)
		copy(c.Data, t.Data)
		return c
	}
	switch o := s.op.(type) {
	case *convOp:
		out := vals[s.out]
		if o.residual && need(3) {
			if !slices.Equal(vals[s.in[3]].Shape, out.Shape) {
				return errors.New("no gradient through a broadcast residual")
			}
			if err := add(3, clone(gOut)); err != nil {
				return err
			}
		}
		if !need(0) {
			return nil
		}
		maskByActivation(gOut.Data, out.Data, o.act, o.alpha)
		gConv := gOut
		if o.d2s > 0 {
			gConv = spaceToDepth(gOut, o.d2s, o.d2sCRD, p)
		}
		gIn, err := g.back[i].conv.run([]*Tensor{gConv}, p)
		if gConv != gOut {
			p.put(gConv)
		}
		if err != nil {
			return err
		}
		return add(0, gIn)
	case *gdnOp:
		if need(3) {
			return errors.New("no gradient for a GDN's scale")
		}
		gIn, err := gdnBackward(o, g.back[i].conv, vals[s.in[0]], scaleInput(s, vals), gOut, p)
		if err != nil {
			return err
		}
		return add(0, gIn)
	case *binaryOp:
		a, b := vals[s.in[0]], vals[s.in[1]]
		for j, other := range []*Tensor{b, a} {
			if !need(j) {
				continue
			}
			if !slices.Equal(vals[s.in[j]].Shape, gOut.Shape) {
				return errors.New("no gradient through a broadcast operand")
			}
			gIn := clone(gOut)
			switch {
			case o.kind == "Mul":
				mul := binaryOp{kind: "Mul"}
				prod, err := mul.run([]*Tensor{gIn, other}, p)
				p.put(gIn)
				if err != nil {
					return err
				}
				gIn = prod
			case o.kind == "Sub" && j == 1:
				for k := range gIn.Data {
					gIn.Data[k] = -gIn.Data[k]
				}
			}
			if err := add(j, gIn); err != nil {
				return err
			}
		}
		return nil
	case unaryOp:
		switch o.kind {
		case "Relu":
			maskByActivation(gOut.Data, vals[s.out].Data, actRelu, 0)
		case "LeakyRelu":
			maskByActivation(gOut.Data, vals[s.out].Data, actLeaky, o.alpha)
		case "Neg":
			for k := range gOut.Data {
				gOut.Data[k] = -gOut.Data[k]
			}
		}
		return add(0, clone(gOut))
	case *depthToSpace:
		return add(0, spaceToDepth(gOut, o.block, o.crd, p))
	case reshapeOp:
		gIn := clone(gOut)
		gIn.Shape = append(gIn.Shape[:0], vals[s.in[0]].Shape...)
		return add(0, gIn)
	}
	return fmt.Errorf("no gradient for %T", s.op)
}

func scaleInput(s step, vals []*Tensor) *Tensor {
	if len(s.in) == 4 {
		return vals[s.in[3]]
	}
	return nil
}

// maskByActivation multiplies a gradient by the derivative of the activation
// whose output is out (positive out means a positive input).
func maskByActivation(g, out []float32, act activation, alpha float32) {
	if act == actNone {
		return
	}
	for k, v := range out[:len(g)] {
		if v <= 0 {
			if act == actRelu {
				g[k] = 0
			} else {
				g[k] *= alpha
			}
		}
	}
}

// spaceToDepth is depthToSpace's inverse: [C, H*b, W*b] -> [C*b*b, H, W].
func spaceToDepth(t *Tensor, b int, crd bool, p *bufferPool) *Tensor {
	c, hb, wb, _ := t.dims4()
	h, w := hb/b, wb/b
	out := p.get(1, c*b*b, h, w)
	for co := range c {
		for dy := range b {
			for dx := range b {
				ch := (dy*b+dx)*c + co
				if crd {
					ch = co*b*b + dy*b + dx
				}
				plane := out.Data[ch*h*w : (ch+1)*h*w]
				for y := range h {
					row := t.Data[(co*hb+y*b+dy)*wb+dx:]
					for x := range w {
						plane[y*w+x] = row[x*b]
					}
				}
			}
		}
	}
	return out
}

// gdnBackward is the gradient of a GDN's input x. With v = x*s and
// n = beta + gamma·v² per position, the output is v*sqrt(n) (inverse) or
// v/sqrt(n), so
//
//	inverse: dv_c = g_c sqrt(n_c) + v_c Σ_o gamma[o][c] g_o v_o / sqrt(n_o)
//	forward: dv_c = g_c / sqrt(n_c) − v_c Σ_o gamma[o][c] g_o v_o / n_o^1.5
//
// and dx = s·dv. gammaT is the 1x1 conv with gamma transposed.
func gdnBackward(o *gdnOp, gammaT *convOp, x, s, gOut *Tensor, p *bufferPool) (*Tensor, error) {
	mul := binaryOp{kind: "Mul"}
	v := x
	if s != nil {
		var err error
		if v, err = mul.run([]*Tensor{x, s}, p); err != nil {
			return nil, err
		}
		defer p.put(v)
	}
	sq := p.get(v.Shape...)
	squareScaledGo(v.Data, sq.Data, 1)
	n, err := o.norm.run([]*Tensor{sq}, p)
	p.put(sq)
	if err != nil {
		return nil, err
	}
	defer p.put(n)
	t := p.get(v.Shape...)
	inChunks(len(n.Data), func(lo, hi int) {
		for k := lo; k < hi; k++ {
			root := float32(math.Sqrt(float64(n.Data[k])))
			n.Data[k] = root
			if o.inverse {
				t.Data[k] = gOut.Data[k] * v.Data[k] / root
			} else {
				t.Data[k] = gOut.Data[k] * v.Data[k] / (root * root * root)
			}
		}
	})
	u, err := gammaT.run([]*Tensor{t}, p)
	p.put(t)
	if err != nil {
		return nil, err
	}
	inChunks(len(n.Data), func(lo, hi int) {
		for k := lo; k < hi; k++ {
			if o.inverse {
				u.Data[k] = gOut.Data[k]*n.Data[k] + v.Data[k]*u.Data[k]
			} else {
				u.Data[k] = gOut.Data[k]/n.Data[k] - v.Data[k]*u.Data[k]
			}
		}
	})
	if s == nil {
		return u, nil
	}
	dx, err := mul.run([]*Tensor{u, s}, p)
	p.put(u)
	return dx, err
}

// inChunks runs fn over [0, n) split into one contiguous range per core.
func inChunks(n int, fn func(lo, hi int)) {
	workers := max(1, min(runtime.GOMAXPROCS(0), n/4096))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(n*w/workers, n*(w+1)/workers)
		}()
	}
	wg.Wait()
}
