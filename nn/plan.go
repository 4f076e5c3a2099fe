package nn

import (
	"slices"
	"sort"
)

// Memory planning. A decoder's synthesis grows its activations stage by
// stage, so a pool that only recycles buffers keeps every earlier stage's
// smaller ones idle beside the later, larger ones. Knowing each step's output
// size before the run, a plan places all outputs in one arena at offsets that
// outputs alive at the same time never share: the arena is the largest set of
// live activations, not the sum of every size ever needed.
//
// The plan is advice that a run checks. A step takes its planned place only if
// no live activation overlaps it, and an op takes it only for an output of
// exactly its size; anything else falls back to the pool. A wrong plan costs
// memory, never a wrong result.

// A planner is an op whose output shape, and the input it overwrites (if
// any), follow from its inputs' shapes.
type planner interface {
	// plan gives the output shape for inputs of the given shapes (nil where
	// unknown) in slots ids, and the index of the input that the op
	// overwrites to make its output, or -1.
	plan(in [][]int, ids []int) (shape []int, overwrites int, ok bool)
}

func (c *convOp) plan(in [][]int, ids []int) ([]int, int, bool) {
	x := in[0]
	if len(x) != 4 || x[0] != 1 || x[1] != c.cin || x[2]+c.padT+c.padB < c.kh || x[3]+c.padL+c.padR < c.kw {
		return nil, -1, false
	}
	shape := c.outShape(c.outSize(x[2], x[3]))
	if c.residual && len(in) == 4 && c.overwritesResidual(ids[3] == ids[0], in[3], shape) {
		return shape, 3, true
	}
	return shape, -1, true
}

func (g *gdnOp) plan(in [][]int, ids []int) ([]int, int, bool) {
	if in[0] == nil {
		return nil, -1, false
	}
	if len(in) == 4 && !scalesPerChannel(in[0], in[3]) {
		return in[0], -1, true // the scale is multiplied out into a new buffer
	}
	if g.inPlace {
		return in[0], 0, true
	}
	return in[0], -1, true
}

func (o *binaryOp) plan(in [][]int, ids []int) ([]int, int, bool) {
	a, b := in[0], in[1]
	if a == nil || b == nil {
		return nil, -1, false
	}
	swapped := o.swaps(a, b)
	if swapped {
		a, b = b, a
	}
	if _, err := broadcastShapes(a, b); err != nil {
		return nil, -1, false
	}
	if o.inPlace && !swapped && ids[0] != ids[1] {
		return a, 0, true
	}
	return a, -1, true
}

func (o unaryOp) plan(in [][]int, _ []int) ([]int, int, bool) {
	return in[0], -1, in[0] != nil
}

func (d *depthToSpace) plan(in [][]int, _ []int) ([]int, int, bool) {
	shape, ok := d.outShape(in[0])
	return shape, -1, ok
}

func (r reshapeOp) plan(in [][]int, _ []int) ([]int, int, bool) {
	shape, err := r.outShape(in[0])
	return shape, -1, in[0] != nil && err == nil
}

func (t transposeOp) plan(in [][]int, _ []int) ([]int, int, bool) {
	shape, err := t.outShape(in[0])
	return shape, -1, in[0] != nil && err == nil
}

func (c concatOp) plan(in [][]int, _ []int) ([]int, int, bool) {
	for _, s := range in {
		if s == nil {
			return nil, -1, false
		}
	}
	shape, _, err := c.outShape(in)
	return shape, -1, err == nil
}

// A memoryPlan places step outputs in one arena for one set of input shapes.
type memoryPlan struct {
	inputs map[string][]int // the input shapes it was made for
	out    []*Tensor        // per step, its output's place, or nil
	span   map[*Tensor][2]int
}

// planAlign keeps every place a multiple of 64 bytes from the arena's start.
const planAlign = 16

// memoryPlanFor returns the plan for these inputs, making a new one when
// their shapes changed since the last run.
func (g *Graph) memoryPlanFor(inputs map[string]*Tensor) *memoryPlan {
	if p := g.plan; p != nil {
		same := true
		for name := range g.inputs {
			if !slices.Equal(p.inputs[name], inputs[name].Shape) {
				same = false
				break
			}
		}
		if same {
			return p
		}
	}
	g.plan = g.makeMemoryPlan(inputs)
	return g.plan
}

func (g *Graph) makeMemoryPlan(inputs map[string]*Tensor) *memoryPlan {
	shapes := make([][]int, g.slots)
	for id, t := range g.consts {
		shapes[id] = t.Shape
	}
	plan := &memoryPlan{inputs: map[string][]int{}, out: make([]*Tensor, len(g.steps)), span: map[*Tensor][2]int{}}
	for name, id := range g.inputs {
		if t := inputs[name]; t != nil {
			shapes[id] = t.Shape
			plan.inputs[name] = slices.Clone(t.Shape)
		}
	}
	// Each slot lives from its step to the step that frees it; outputs
	// live to the end.
	end := make([]int, g.slots)
	for i := range end {
		end[i] = len(g.steps)
	}
	for i, s := range g.steps {
		for _, id := range s.free {
			end[id] = i
		}
	}
	type buffer struct{ size, first, last, offset, step int }
	var bufs []buffer
	owner := make([]int, g.slots) // the buffer a slot lives in, or -1
	for i := range owner {
		owner[i] = -1
	}
	in := make([][]int, 0, 4)
	for i, s := range g.steps {
		p, ok := s.op.(planner)
		if !ok {
			continue
		}
		in = in[:0]
		for _, id := range s.in {
			if id < 0 {
				in = append(in, nil)
			} else {
				in = append(in, shapes[id])
			}
		}
		shape, over, ok := p.plan(in, s.in)
		if !ok {
			continue
		}
		n, err := checkedElements(shape)
		if err != nil {
			continue
		}
		shapes[s.out] = shape
		if over >= 0 {
			// The output is the overwritten input's buffer, which now
			// lives as long as the output does.
			if b := owner[s.in[over]]; b >= 0 {
				owner[s.out] = b
				bufs[b].last = max(bufs[b].last, end[s.out])
			}
			continue
		}
		owner[s.out] = len(bufs)
		bufs = append(bufs, buffer{size: n, first: i, last: end[s.out], step: i})
	}
	// Largest first, each at the lowest offset clear of the buffers placed
	// so far that are alive at the same time.
	order := make([]int, len(bufs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return bufs[order[a]].size > bufs[order[b]].size })
	total := 0
	var placed []int
	for _, b := range order {
		cur := &bufs[b]
		var clash [][2]int
		for _, o := range placed {
			if p := bufs[o]; p.first <= cur.last && cur.first <= p.last {
				clash = append(clash, [2]int{p.offset, p.offset + p.size})
			}
		}
		sort.Slice(clash, func(i, j int) bool { return clash[i][0] < clash[j][0] })
		off := 0
		for _, c := range clash {
			if off+cur.size <= c[0] {
				break
			}
			off = max(off, (c[1]+planAlign-1)/planAlign*planAlign)
		}
		cur.offset = off
		total = max(total, off+cur.size)
		placed = append(placed, b)
	}
	arena := make([]float32, total)
	for _, b := range bufs {
		t := &Tensor{Data: arena[b.offset : b.offset+b.size : b.offset+b.size]}
		plan.out[b.step] = t
		plan.span[t] = [2]int{b.offset, b.offset + b.size}
	}
	return plan
}

// claim gives step i's planned output if no live activation overlaps it.
func (p *memoryPlan) claim(i int, live []*Tensor) *Tensor {
	t := p.out[i]
	if t == nil {
		return nil
	}
	r := p.span[t]
	for _, v := range live {
		if s, ok := p.span[v]; ok && s[0] < r[1] && r[0] < s[1] {
			return nil
		}
	}
	return t
}
