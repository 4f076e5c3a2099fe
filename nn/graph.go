package nn

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A Graph is a loaded ONNX model, compiled into a list of kernel steps. It
// is not for concurrent use: Run serializes calls, but each run recycles
// the previous run's outputs.
type Graph struct {
	mu      sync.Mutex
	last    []*Tensor // outputs of the previous run, recycled by the next
	steps   []step
	slots   int
	inputs  map[string]int
	shapes  map[string][]int // what the file declares of each input
	outputs []int
	consts  map[int]*Tensor
	// inexact names, for each constant that folding computed with a math
	// function (Exp, Pow...), the node that did: its bits may differ by
	// platform, which a fixed-point graph cannot take.
	inexact map[int]string
	pool    bufferPool
	plan    *memoryPlan // for the last run's input shapes
	// stepTime, if set, gets each step's time (per-layer profiles in
	// BenchmarkGraphFile).
	stepTime func(step int, elapsed time.Duration)
	// back is set by LoadDifferentiable: per step, what Tape.Backward needs.
	back     []*backward
	gradPool bufferPool
	runs     int // counts runs, so a Tape knows when it is stale
}

type step struct {
	name string // the ONNX node it came from, for error messages
	op   op
	in   []int
	out  int
	free []int // slots whose last use is this step
}

// An op computes one output from its inputs, taking buffers from the pool.
type op interface {
	run(in []*Tensor, p *bufferPool) (*Tensor, error)
}

// Load parses and compiles an ONNX model. Unknown ops, unsupported
// attributes and dangling inputs are errors that name the node.
func Load(onnx []byte) (*Graph, error) {
	g, err := parseAndCompile(onnx)
	if err != nil {
		return nil, err
	}
	g.prepareWeights()
	g.dropLoadTimeConstants()
	return g, nil
}

// An Input is a graph input as the ONNX file declares it. Shape is nil when
// the file gives none; a dimension the file leaves free (a symbolic "h" or
// "w") is -1.
type Input struct {
	Name  string
	Shape []int
}

// Check parses and compiles an ONNX model as Load does, with the same
// errors, and gives its inputs, without laying out its weights for
// running: a caller that only checks a model, to load it later, pays for
// it once.
func Check(onnx []byte) (inputs []Input, err error) {
	g, err := parseAndCompile(onnx)
	if err != nil {
		return nil, err
	}
	return g.Inputs(), nil
}

// parseAndCompile reads an ONNX model and compiles its graph, keeping every
// constant and leaving the weights as ONNX has them (LoadFixed converts
// them; prepareWeights lays them out for the float kernels).
func parseAndCompile(onnx []byte) (*Graph, error) {
	g, err := parseGraph(onnx)
	if err != nil {
		return nil, err
	}
	return compile(g)
}

// parseGraph reads an ONNX model of a supported opset.
func parseGraph(onnx []byte) (*onnxGraph, error) {
	m, err := parseModel(onnx)
	if err != nil {
		return nil, err
	}
	if m.opset < 0 {
		return nil, errors.New("nn: onnx model imports no ai.onnx opset")
	}
	if m.opset < 7 || m.opset > 18 {
		return nil, fmt.Errorf("nn: onnx opset %d is not supported (7..18)", m.opset)
	}
	return &m.graph, nil
}

// packedConv is the convolution with packed (or Winograd) weights that op
// runs, if any.
func packedConv(op op) *convOp {
	var c *convOp
	switch o := op.(type) {
	case *convOp:
		c = o
	case *gdnOp:
		c = o.norm
	}
	if c == nil || c.groups != 1 {
		return nil
	}
	return c
}

// prepareWeights lays out every convolution's weights for its kernel.
func (g *Graph) prepareWeights() {
	for _, s := range g.steps {
		if c := packedConv(s.op); c != nil {
			c.prepare()
		}
	}
}

// dropLoadTimeConstants lets go of the constants that only compiling needed:
// the convolutions and GDNs keep their weights packed, and a weight read
// from fp16 was converted by a folded Cast. Without this a model's weights
// stay in memory three times.
func (g *Graph) dropLoadTimeConstants() {
	read := map[int]bool{}
	for i := range g.steps {
		s := &g.steps[i]
		if c := packedConv(s.op); c != nil {
			c.weights = nil
			// Inputs 1 and 2 are the weights and bias that compiling packed; a
			// residual or a GDN's scale (input 3) is read at run time, even
			// when it is a constant.
			for j := 1; j < min(len(s.in), 3); j++ {
				if _, isConst := g.consts[s.in[j]]; isConst {
					s.in[j] = -1
				}
			}
		}
		for _, id := range s.in {
			read[id] = true
		}
	}
	for _, id := range g.outputs {
		read[id] = true
	}
	for id := range g.consts {
		if !read[id] {
			delete(g.consts, id)
		}
	}
}

func compile(g *onnxGraph) (*Graph, error) {
	gr := &Graph{inputs: map[string]int{}, shapes: map[string][]int{}, consts: map[int]*Tensor{}, inexact: map[int]string{}}
	slot := map[string]int{}
	newSlot := func(name string) int {
		slot[name] = gr.slots
		gr.slots++
		return gr.slots - 1
	}
	for _, it := range g.initializers {
		if _, dup := slot[it.name]; dup {
			return nil, fmt.Errorf("nn: initializer %q defined twice", it.name)
		}
		gr.consts[newSlot(it.name)] = it.t
	}
	for _, in := range g.inputs {
		if _, isConst := slot[in.Name]; isConst {
			continue
		}
		if _, dup := gr.inputs[in.Name]; dup {
			return nil, fmt.Errorf("nn: input %q declared twice", in.Name)
		}
		gr.inputs[in.Name] = newSlot(in.Name)
		gr.shapes[in.Name] = in.Shape
	}
	if len(gr.inputs) == 0 {
		return nil, errors.New("nn: graph has no input")
	}
	// The fused forms carry lvc.* op types and attributes, which only fuse
	// may set: the kernels trust them.
	for _, n := range g.nodes {
		if strings.HasPrefix(n.opType, "lvc.") {
			return nil, fmt.Errorf("nn: node %s: op type %q is internal", n.name, n.opType)
		}
		for name := range n.attrs {
			if strings.HasPrefix(name, "lvc.") {
				return nil, fmt.Errorf("nn: node %s: attribute %q is internal", n.name, name)
			}
		}
	}
	nodes := fuse(g.nodes, g.initializers)
	for _, n := range nodes {
		label := n.name
		if label == "" {
			label = n.opType
		}
		if n.domain != "" && n.domain != "ai.onnx" {
			return nil, fmt.Errorf("nn: node %s: domain %q is not supported", label, n.domain)
		}
		if len(n.outputs) != 1 {
			return nil, fmt.Errorf("nn: node %s: %d outputs, want 1", label, len(n.outputs))
		}
		s := step{name: label}
		allConst := true
		var constIn []*Tensor
		for i, in := range n.inputs {
			if in == "" {
				// ONNX marks an omitted optional input with an empty name;
				// the only one we take is Conv's bias.
				if n.opType != "Conv" || i != 2 {
					return nil, fmt.Errorf("nn: node %s: input %d is empty", label, i)
				}
				s.in = append(s.in, -1)
				constIn = append(constIn, nil)
				continue
			}
			id, ok := slot[in]
			if !ok {
				return nil, fmt.Errorf("nn: node %s: input %q is not defined before it (missing initializer or a cycle)", label, in)
			}
			s.in = append(s.in, id)
			c, isConst := gr.consts[id]
			allConst = allConst && isConst
			constIn = append(constIn, c)
		}
		o, err := buildOp(n, constIn)
		if err != nil {
			return nil, fmt.Errorf("nn: node %s (%s): %w", label, n.opType, err)
		}
		if _, dup := slot[n.outputs[0]]; dup {
			return nil, fmt.Errorf("nn: node %s: output %q defined twice", label, n.outputs[0])
		}
		s.op = o
		s.out = newSlot(n.outputs[0])
		if allConst {
			// Constant subgraphs (Identity, Pow of parameters, shapes) are
			// evaluated once here. A convolution's output can be far
			// larger than its inputs, and a constant one has no use.
			switch o.(type) {
			case *convOp, *gdnOp:
				return nil, fmt.Errorf("nn: node %s (%s): convolution of constants is not supported", label, n.opType)
			}
			total := 0
			for _, c := range constIn {
				if c != nil {
					total += len(c.Data)
				}
			}
			if total > maxFoldedElements {
				return nil, fmt.Errorf("nn: node %s (%s): constant inputs of %d elements", label, n.opType, total)
			}
			var t *Tensor
			if u, ok := o.(unaryOp); ok && u.kind == "Identity" && constIn[0] != nil {
				// A Cast of a weight read from fp16 (already float32 here):
				// share it rather than copy a model's weights at load.
				t = constIn[0]
			} else if t, err = o.run(constIn, &bufferPool{}); err != nil {
				return nil, fmt.Errorf("nn: node %s (%s): %w", label, n.opType, err)
			}
			if len(t.Data) > maxFoldedElements {
				return nil, fmt.Errorf("nn: node %s (%s): constant of %d elements", label, n.opType, len(t.Data))
			}
			gr.consts[s.out] = t
			for _, id := range s.in {
				if by, ok := gr.inexact[id]; ok {
					gr.inexact[s.out] = by
				}
			}
			if platformDependent(o) {
				gr.inexact[s.out] = label
			}
			continue
		}
		gr.steps = append(gr.steps, s)
	}
	for _, name := range g.outputs {
		id, ok := slot[name]
		if !ok {
			return nil, fmt.Errorf("nn: graph output %q is never computed (or is inside a fused pattern)", name)
		}
		for _, o := range gr.outputs {
			if o == id {
				return nil, fmt.Errorf("nn: graph output %q listed twice", name)
			}
		}
		gr.outputs = append(gr.outputs, id)
	}
	if len(gr.outputs) == 0 {
		return nil, errors.New("nn: graph has no output")
	}
	gr.planFrees()
	return gr, nil
}

// planFrees marks, for each step, the activations it reads for the last time,
// so their buffers are recycled and peak memory stays near the two or three
// largest live tensors.
func (g *Graph) planFrees() {
	last := map[int]int{}
	for i, s := range g.steps {
		for _, id := range s.in {
			if _, c := g.consts[id]; !c && id >= 0 {
				last[id] = i
			}
		}
	}
	// A step output that nothing reads is recycled right away.
	for i, st := range g.steps {
		if _, read := last[st.out]; !read {
			last[st.out] = i
		}
	}
	for _, id := range g.outputs {
		delete(last, id)
	}
	for id, i := range last {
		if _, isInput := g.inputSlot(id); !isInput {
			g.steps[i].free = append(g.steps[i].free, id)
			// An op that may overwrite its input does so when this step is
			// the input's last reader.
			in := g.steps[i].in
			if in[0] == id && countIn(in, id) == 1 {
				switch op := g.steps[i].op.(type) {
				case *gdnOp:
					op.inPlace = true
				case *binaryOp:
					op.inPlace = true
				}
			}
			// A conv that adds a residual writes into it when it dies here
			// (and is not also the conv's input).
			if c, ok := g.steps[i].op.(*convOp); ok && c.residual && len(in) == 4 && in[3] == id && countIn(in, id) == 1 {
				c.inPlace = true
			}
		}
	}
}

func countIn(ids []int, id int) int {
	n := 0
	for _, v := range ids {
		if v == id {
			n++
		}
	}
	return n
}

func (g *Graph) inputSlot(id int) (string, bool) {
	for name, s := range g.inputs {
		if s == id {
			return name, true
		}
	}
	return "", false
}

// InputNames lists the graph's inputs in sorted order.
func (g *Graph) InputNames() []string {
	names := make([]string, 0, len(g.inputs))
	for name := range g.inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Inputs lists the graph's inputs, sorted by name, with the shapes the
// file declares.
func (g *Graph) Inputs() []Input {
	ins := make([]Input, 0, len(g.inputs))
	for _, name := range g.InputNames() {
		ins = append(ins, Input{name, slices.Clone(g.shapes[name])})
	}
	return ins
}

// ShapesAgree reports whether two shapes have one rank and the same size
// wherever both fix one (a declared shape's free dimensions are -1).
func ShapesAgree(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] >= 0 && b[i] >= 0 && a[i] != b[i] {
			return false
		}
	}
	return true
}

// ShapeString writes a declared shape with "?" for free dimensions.
func ShapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = "?"
		if d >= 0 {
			parts[i] = strconv.Itoa(d)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Run executes the graph on one input (the graph must have exactly one) and
// returns its first output. The output stays valid until the next run of
// this graph, which reuses its memory: copy it to keep it longer.
func (g *Graph) Run(x *Tensor) (*Tensor, error) {
	if len(g.inputs) != 1 {
		return nil, fmt.Errorf("nn: graph has %d inputs, Run takes one", len(g.inputs))
	}
	for name := range g.inputs {
		out, err := g.RunNamed(map[string]*Tensor{name: x})
		if err != nil {
			return nil, err
		}
		return out[0], nil
	}
	panic("unreachable")
}

// RunNamed executes the graph with named inputs and returns all outputs,
// valid until the next run.
func (g *Graph) RunNamed(inputs map[string]*Tensor) ([]*Tensor, error) {
	vals, _, err := g.execute(inputs)
	if err != nil {
		return nil, err
	}
	outs := make([]*Tensor, len(g.outputs))
	for i, id := range g.outputs {
		outs[i] = vals[id]
	}
	return outs, nil
}

// execute runs the steps and returns every slot's value and the run's
// number. What the previous run left alive (its outputs, or for a
// differentiable graph every activation) goes back to the pool first.
func (g *Graph) execute(inputs map[string]*Tensor) ([]*Tensor, int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.runs++
	for _, t := range g.last {
		g.pool.put(t)
	}
	g.last = g.last[:0]
	vals := make([]*Tensor, g.slots)
	for id, t := range g.consts {
		vals[id] = t
	}
	for name, id := range g.inputs {
		t, ok := inputs[name]
		if !ok {
			return nil, 0, fmt.Errorf("nn: input %q not given", name)
		}
		if len(t.Data) != numElements(t.Shape) {
			return nil, 0, fmt.Errorf("nn: input %q: %d values for shape %v", name, len(t.Data), t.Shape)
		}
		if want := g.shapes[name]; want != nil && !ShapesAgree(t.Shape, want) {
			return nil, 0, fmt.Errorf("nn: input %q has shape %v, the model declares %s", name, t.Shape, ShapeString(want))
		}
		vals[id] = t
	}
	var plan *memoryPlan
	if g.back == nil { // a differentiable run keeps every activation
		plan = g.memoryPlanFor(inputs)
	}
	args := make([]*Tensor, 0, 4)
	for i, s := range g.steps {
		args = args[:0]
		for _, id := range s.in {
			if id < 0 {
				args = append(args, nil)
			} else {
				args = append(args, vals[id])
			}
		}
		var start time.Time
		if g.stepTime != nil {
			start = time.Now()
		}
		if plan != nil {
			g.pool.planned = plan.claim(i, vals)
		}
		t, err := s.op.run(args, &g.pool)
		g.pool.planned = nil
		if g.stepTime != nil {
			g.stepTime(i, time.Since(start))
		}
		if err != nil {
			g.keepAlive(vals)
			return nil, 0, fmt.Errorf("nn: node %s: %w", s.name, err)
		}
		vals[s.out] = t
		for _, id := range s.free {
			// An input the op overwrote is its output, which lives on
			// unless nothing reads it (id == s.out).
			if vals[id] != t || id == s.out {
				g.pool.put(vals[id])
			}
			vals[id] = nil
		}
	}
	g.keepAlive(vals)
	return vals, g.runs, nil
}

// keepAlive records the run's live step outputs, each once, for the next run
// to recycle.
func (g *Graph) keepAlive(vals []*Tensor) {
	seen := map[*Tensor]bool{}
	for _, s := range g.steps {
		if t := vals[s.out]; t != nil && !seen[t] {
			seen[t] = true
			g.last = append(g.last, t)
		}
	}
}

// bufferPool recycles activation buffers between steps and between runs.
type bufferPool struct {
	free  []*Tensor
	owned map[*Tensor]bool
	// planned is the current step's place in a memory plan: the step's
	// first request of exactly its size takes it.
	planned *Tensor
}

func (p *bufferPool) get(shape ...int) *Tensor {
	n := numElements(shape)
	if t := p.planned; t != nil && cap(t.Data) == n {
		p.planned = nil
		t.Shape = append(t.Shape[:0], shape...)
		t.Data = t.Data[:n]
		clear(t.Data)
		return t
	}
	best := -1
	for i, t := range p.free {
		if cap(t.Data) >= n && (best < 0 || cap(t.Data) < cap(p.free[best].Data)) {
			best = i
		}
	}
	if best >= 0 {
		t := p.free[best]
		p.free = append(p.free[:best], p.free[best+1:]...)
		t.Shape = append(t.Shape[:0], shape...)
		t.Data = t.Data[:n]
		clear(t.Data)
		return t
	}
	t := NewTensor(shape...)
	if p.owned == nil {
		p.owned = map[*Tensor]bool{}
	}
	p.owned[t] = true
	return t
}

func (p *bufferPool) put(t *Tensor) {
	if t != nil && p.owned[t] {
		p.free = append(p.free, t)
	}
}

// maxFoldedElements bounds the tensors constant folding reads and writes at
// load time, so a small file cannot unfold into a large allocation.
const maxFoldedElements = 1 << 22

// checkedElements is the element count of shape, or an error if a dimension
// is negative or the count exceeds maxElements (checked without overflow).
func checkedElements(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 || d > maxDimension {
			return 0, fmt.Errorf("dimension %d out of range in %v", d, shape)
		}
		if d != 0 && n > maxElements/d {
			return 0, fmt.Errorf("shape %v exceeds %d elements", shape, maxElements)
		}
		n *= d
	}
	return n, nil
}
