package nn

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

func buildOp(n onnxNode, in []*Tensor) (op, error) {
	need := func(k int) error {
		if len(n.inputs) != k {
			return fmt.Errorf("%d inputs, want %d", len(n.inputs), k)
		}
		return nil
	}
	switch n.opType {
	case "Conv":
		return newConv(n, in)
	case "lvc.GDN": // fused by fuse()
		return newGDN(n, in)
	case "DepthToSpace":
		if err := need(1); err != nil {
			return nil, err
		}
		b := n.attrs["blocksize"].i
		if b < 1 || b > 16 {
			return nil, fmt.Errorf("blocksize %d out of range", b)
		}
		mode := string(n.attrs["mode"].s)
		if mode != "" && mode != "DCR" && mode != "CRD" {
			return nil, fmt.Errorf("mode %q not supported", mode)
		}
		return &depthToSpace{block: int(b), crd: mode == "CRD"}, nil
	case "Add", "Sub", "Mul", "Div", "Pow":
		if err := need(2); err != nil {
			return nil, err
		}
		return &binaryOp{kind: n.opType}, nil
	case "Relu", "Sqrt", "Abs", "Exp", "Log", "Sigmoid", "Tanh", "Identity", "Neg":
		if err := need(1); err != nil {
			return nil, err
		}
		return unaryOp{kind: n.opType}, nil
	case "LeakyRelu":
		if err := need(1); err != nil {
			return nil, err
		}
		alpha := float32(0.01)
		if a, ok := n.attrs["alpha"]; ok {
			alpha = a.f
		}
		return unaryOp{kind: n.opType, alpha: alpha}, nil
	case "Cast":
		// Exported weights are float16 initializers cast to float; every
		// tensor here is already float32.
		if err := need(1); err != nil {
			return nil, err
		}
		if to := n.attrs["to"].i; to != onnxFloat {
			return nil, fmt.Errorf("cast to element type %d is not supported", to)
		}
		return unaryOp{kind: "Identity"}, nil
	case "Constant":
		a, ok := n.attrs["value"]
		if !ok || a.t == nil {
			return nil, errors.New("only tensor-valued constants are supported")
		}
		return constantOp{a.t}, nil
	case "Reshape":
		if err := need(2); err != nil {
			return nil, err
		}
		if in[1] == nil {
			return nil, errors.New("the shape must be a constant")
		}
		shape := make([]int, len(in[1].Data))
		for i, v := range in[1].Data {
			if !(v >= -1 && v <= maxDimension) || v != float32(math.Trunc(float64(v))) {
				return nil, fmt.Errorf("shape %v out of range", in[1].Data)
			}
			shape[i] = int(v)
		}
		return reshapeOp{shape}, nil
	case "Transpose":
		if err := need(1); err != nil {
			return nil, err
		}
		perm := n.attrs["perm"].ints
		if len(perm) == 0 || len(perm) > maxRank {
			return nil, errors.New("perm must be given")
		}
		seen := make([]bool, len(perm))
		p := make([]int, len(perm))
		for i, v := range perm {
			if v < 0 || int(v) >= len(perm) || seen[v] {
				return nil, fmt.Errorf("perm %v is not a permutation", perm)
			}
			seen[v] = true
			p[i] = int(v)
		}
		return transposeOp{p}, nil
	case "Concat":
		a, ok := n.attrs["axis"]
		if !ok || len(n.inputs) < 1 || a.i < -maxRank || a.i >= maxRank {
			return nil, errors.New("needs inputs and an axis")
		}
		return concatOp{axis: int(a.i)}, nil
	}
	return nil, fmt.Errorf("op %s is not supported", n.opType)
}

type constantOp struct{ t *Tensor }

func (c constantOp) run(_ []*Tensor, _ *bufferPool) (*Tensor, error) { return c.t, nil }

// depthToSpace moves channel blocks to space: [C*b*b, H, W] -> [C, H*b, W*b].
// CRD (PixelShuffle) orders input channels as c*b*b + dy*b + dx; DCR as
// (dy*b + dx)*C + c.
type depthToSpace struct {
	block int
	crd   bool
}

// outShape is [1, C, H*b, W*b] for an input [1, C*b*b, H, W].
func (d *depthToSpace) outShape(x []int) ([]int, bool) {
	b := d.block
	if len(x) != 4 || x[0] != 1 || x[1]%(b*b) != 0 {
		return nil, false
	}
	return []int{1, x[1] / (b * b), x[2] * b, x[3] * b}, true
}

func (d *depthToSpace) run(in []*Tensor, p *bufferPool) (*Tensor, error) {
	shape, ok := d.outShape(in[0].Shape)
	if !ok {
		return nil, fmt.Errorf("input %v: channels not divisible by %d", in[0].Shape, d.block*d.block)
	}
	_, h, w, _ := in[0].dims4()
	b, c := d.block, shape[1]
	out := p.get(shape...)
	src, dst := in[0].Data, out.Data
	for co := 0; co < c; co++ {
		for dy := 0; dy < b; dy++ {
			for dx := 0; dx < b; dx++ {
				ch := (dy*b+dx)*c + co
				if d.crd {
					ch = co*b*b + dy*b + dx
				}
				plane := src[ch*h*w : (ch+1)*h*w]
				for y := 0; y < h; y++ {
					row := dst[(co*h*b+y*b+dy)*w*b+dx:]
					for x, v := range plane[y*w : (y+1)*w] {
						row[x*b] = v
					}
				}
			}
		}
	}
	return out, nil
}

// gdnOp is generalized divisive normalization, fused from its exported
// pattern x / sqrt(Conv1x1(x*x, gamma, beta)) (or x * sqrt(...) inverse).
// It works tile by tile: the squares of a tile of positions go straight
// into the GEMM panel and the normalization is applied as the tile is
// stored, so neither x*x nor the norm is ever a whole tensor. When the graph
// frees x at this step, the result overwrites x. A fourth input s makes the
// input x*s: a per-channel s is applied as x is read, which saves the
// per-quality scalers a pass over every activation.
type gdnOp struct {
	norm    *convOp
	inverse bool
	inPlace bool
}

func newGDN(n onnxNode, in []*Tensor) (op, error) {
	c, err := newConv(n, in)
	if err != nil {
		return nil, err
	}
	if c.kh != 1 || c.kw != 1 || c.cin != c.cout || c.groups != 1 || c.padT+c.padL+c.padB+c.padR != 0 ||
		c.strideH != 1 || c.strideW != 1 {
		return nil, errors.New("GDN needs a square 1x1 gamma")
	}
	return &gdnOp{norm: c, inverse: n.attrs["inverse"].i == 1}, nil
}

// scalesPerChannel says whether GDN's optional fourth input s scales x per
// channel, which the kernel folds in; any other scale is multiplied out
// first, into a new buffer.
func scalesPerChannel(x, s []int) bool {
	run, err := broadcastShapes(x, s)
	return err == nil && run > 0 && numElements(s) > 1
}

func (g *gdnOp) run(in []*Tensor, p *bufferPool) (*Tensor, error) {
	x, inPlace := in[0], g.inPlace
	var scale []float32 // per channel, or nil
	if len(in) == 4 {
		if scalesPerChannel(x.Shape, in[3].Shape) {
			scale = in[3].Data
		} else {
			// Not per channel: multiply out first, into a buffer of our own.
			pre := binaryOp{kind: "Mul"}
			var err error
			if x, err = pre.run([]*Tensor{x, in[3]}, p); err != nil {
				return nil, err
			}
			inPlace = true
		}
	}
	ch, h, w, ok := x.dims4()
	if !ok || ch != g.norm.cin {
		return nil, fmt.Errorf("input %v, want [1 %d H W]", x.Shape, g.norm.cin)
	}
	out := x
	if !inPlace {
		out = p.get(x.Shape...)
	}
	scaleOf := func(c int) float32 {
		if scale == nil {
			return 1
		}
		return scale[c]
	}
	positions := h * w
	kern := kernel
	nr := kern.nr
	rows := packedRows(ch, nr)
	block := min(max(1, gdnBlock/nr), (positions+nr-1)/nr) * nr
	overBlocks(p, positions, block, 2*ch*block+mr*nr, func(p0, np int, scratch []float32) {
		cols, norm, tile := scratch[:ch*block], scratch[ch*block:2*ch*block], scratch[2*ch*block:]
		tiles := (np + nr - 1) / nr
		for c := range ch {
			src := x.Data[c*positions+p0 : c*positions+p0+np]
			for t := range tiles {
				panel := cols[(t*ch+c)*nr : (t*ch+c+1)*nr]
				n := min(nr, np-t*nr)
				squareScaled(src[t*nr:t*nr+n], panel, scaleOf(c))
				clear(panel[n:])
			}
		}
		for t := range tiles {
			panel := cols[t*ch*nr : (t+1)*ch*nr]
			n := min(nr, np-t*nr)
			for o0 := 0; o0 < ch; o0 += mr {
				kern.run(ch, g.norm.packed[o0*ch:(o0+mr)*ch], panel, rows, tile)
				for r := 0; r < mr && o0+r < ch; r++ {
					copy(norm[(o0+r)*block+t*nr:], tile[r*nr:r*nr+n])
				}
			}
		}
		for c := range ch {
			at := c*positions + p0
			gdnStore(g.inverse, x.Data[at:at+np], norm[c*block:c*block+np], out.Data[at:at+np],
				scaleOf(c), g.norm.bias[c])
		}
	})
	return out, nil
}

// gdnBlock is about how many positions a GDN task normalizes. Its passes
// over x and the output go one channel at a time over the whole block: a
// tile of nr positions touches every channel's plane at once, and planes
// a multiple of 4 KiB apart all fall into the same cache sets (on a Zen 3
// the GDN at 1/2 resolution took a quarter of g_s's time that way).
const gdnBlock = 1024

// squareScaledGo sets dst[i] = (x[i]*s)²; a scale of 1 changes nothing.
func squareScaledGo(x, dst []float32, s float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		v *= s
		dst[i] = v * v
	}
}

// gdnStoreGo sets dst[i] = x[i]*s / sqrt(norm[i]+beta), or times the root
// when inverse. The vector versions must round every step as this does.
func gdnStoreGo(inverse bool, x, norm, dst []float32, s, beta float32) {
	norm, dst = norm[:len(x)], dst[:len(x)]
	for i, v := range x {
		v *= s
		root := float32(math.Sqrt(float64(norm[i] + beta)))
		if inverse {
			dst[i] = v * root
		} else {
			dst[i] = v / root
		}
	}
}

// binaryOp is an elementwise Add, Sub, Mul, Div or Pow. When the graph
// frees its first input at this step and the result has that input's shape,
// the result overwrites it: a per-quality scaler in front of each GDN would
// otherwise add a whole activation to a decode's peak memory.
type binaryOp struct {
	kind    string
	inPlace bool
}

// broadcastRun says how b's elements line up with a's: b has a's shape
// (0), or b's value is constant over consecutive runs of the returned length
// of a, cycling through b: a scalar (one run, all of a) or (1,C,1,1) against
// (1,C,H,W) (runs of H*W).
func broadcastRun(a, b *Tensor) (int, error) {
	return broadcastShapes(a.Shape, b.Shape)
}

// broadcastShapes is broadcastRun on shapes alone, for planning.
func broadcastShapes(a, b []int) (int, error) {
	switch {
	case numElements(b) == 1:
		return max(numElements(a), 1), nil
	case slices.Equal(a, b):
		return 0, nil
	}
	if len(a) == 4 && a[0] == 1 {
		c := a[1]
		if numElements(b) == c && (len(b) == 4 && b[1] == c || len(b) == 3 && b[0] == c) {
			return max(a[2]*a[3], 1), nil
		}
	}
	return 0, fmt.Errorf("cannot broadcast %v to %v", b, a)
}

// swaps says whether the op broadcasts its first operand rather than its
// second: a commutative op broadcasts the smaller one.
func (o *binaryOp) swaps(a, b []int) bool {
	return numElements(a) < numElements(b) && o.kind != "Sub" && o.kind != "Div" && o.kind != "Pow"
}

func (o *binaryOp) run(in []*Tensor, p *bufferPool) (*Tensor, error) {
	a, b := in[0], in[1]
	if o.swaps(a.Shape, b.Shape) {
		a, b = b, a
	}
	run, err := broadcastRun(a, b)
	if err != nil {
		return nil, err
	}
	out := a
	if !o.inPlace || a != in[0] || b == in[0] {
		out = p.get(a.Shape...)
	}
	if run == 0 {
		binarySlices(o.kind, out.Data, a.Data, b.Data)
		return out, nil
	}
	for i, u := range b.Data {
		if i*run >= len(a.Data) {
			break
		}
		binaryConst(o.kind, out.Data[i*run:(i+1)*run], a.Data[i*run:(i+1)*run], u)
	}
	return out, nil
}

// binaryConst sets dst[i] = a[i] (kind) u. The switch is outside the loops,
// which run over whole channels: per element it cost several times the
// arithmetic (the per-quality scalers touch every activation of g_s).
func binaryConst(kind string, dst, a []float32, u float32) {
	switch kind {
	case "Add":
		for i, v := range a {
			dst[i] = v + u
		}
	case "Sub":
		for i, v := range a {
			dst[i] = v - u
		}
	case "Mul":
		for i, v := range a {
			dst[i] = v * u
		}
	case "Div":
		for i, v := range a {
			dst[i] = v / u
		}
	case "Pow":
		for i, v := range a {
			dst[i] = float32(math.Pow(float64(v), float64(u)))
		}
	}
}

// binarySlices sets dst[i] = a[i] (kind) b[i].
func binarySlices(kind string, dst, a, b []float32) {
	b = b[:len(a)]
	switch kind {
	case "Add":
		for i, v := range a {
			dst[i] = v + b[i]
		}
	case "Sub":
		for i, v := range a {
			dst[i] = v - b[i]
		}
	case "Mul":
		for i, v := range a {
			dst[i] = v * b[i]
		}
	case "Div":
		for i, v := range a {
			dst[i] = v / b[i]
		}
	case "Pow":
		for i, v := range a {
			dst[i] = float32(math.Pow(float64(v), float64(b[i])))
		}
	}
}

// platformDependent reports whether op's float results may differ between
// platforms: it calls a math function (Exp, Log, Pow...) whose last bit is
// not specified. Arithmetic and Sqrt are correctly rounded everywhere.
func platformDependent(o op) bool {
	switch o := o.(type) {
	case unaryOp:
		return o.kind == "Exp" || o.kind == "Log" || o.kind == "Sigmoid" || o.kind == "Tanh"
	case *binaryOp:
		return o.kind == "Pow"
	}
	return false
}

type unaryOp struct {
	kind  string
	alpha float32
}

func (o unaryOp) run(in []*Tensor, p *bufferPool) (*Tensor, error) {
	x := in[0]
	out := p.get(x.Shape...)
	for i, v := range x.Data {
		switch o.kind {
		case "Relu":
			v = relu(v)
		case "LeakyRelu":
			if v < 0 {
				v *= o.alpha
			}
		case "Sqrt":
			v = float32(math.Sqrt(float64(v)))
		case "Abs":
			v = float32(math.Abs(float64(v)))
		case "Exp":
			v = float32(math.Exp(float64(v)))
		case "Log":
			v = float32(math.Log(float64(v)))
		case "Sigmoid":
			v = float32(1 / (1 + math.Exp(-float64(v))))
		case "Tanh":
			v = float32(math.Tanh(float64(v)))
		case "Neg":
			v = -v
		}
		out.Data[i] = v
	}
	return out, nil
}

type reshapeOp struct{ shape []int }

func (r reshapeOp) run(in []*Tensor, p *bufferPool) (*Tensor, error) {
	x := in[0]
	shape, err := r.outShape(x.Shape)
	if err != nil {
		return nil, err
	}
	out := p.get(shape...)
	copy(out.Data, x.Data)
	return out, nil
}

// outShape resolves the target shape's 0s (copy x's dimension) and -1 (the
// rest) for an input of shape x.
func (r reshapeOp) outShape(x []int) ([]int, error) {
	size := numElements(x)
	shape := make([]int, len(r.shape))
	known, infer := 1, -1
	for i, d := range r.shape {
		switch {
		case d == 0 && i < len(x):
			d = x[i]
		case d == -1:
			if infer >= 0 {
				return nil, errors.New("more than one -1 in shape")
			}
			infer = i
			continue
		}
		shape[i] = d
		known *= d
	}
	if infer >= 0 {
		if known == 0 || size%known != 0 {
			return nil, fmt.Errorf("cannot reshape %v to %v", x, r.shape)
		}
		shape[infer] = size / known
	}
	if n, err := checkedElements(shape); err != nil || n != size {
		return nil, fmt.Errorf("cannot reshape %v to %v", x, r.shape)
	}
	return shape, nil
}

type transposeOp struct{ perm []int }

func (t transposeOp) run(in []*Tensor, p *bufferPool) (*Tensor, error) {
	x := in[0]
	shape, err := t.outShape(x.Shape)
	if err != nil {
		return nil, err
	}
	r := len(shape)
	out := p.get(shape...)
	stride := make([]int, r)
	s := 1
	for i := r - 1; i >= 0; i-- {
		stride[i] = s
		s *= x.Shape[i]
	}
	idx := make([]int, r)
	for o := range out.Data {
		src := 0
		for i := range r {
			src += idx[i] * stride[t.perm[i]]
		}
		out.Data[o] = x.Data[src]
		for i := r - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out, nil
}

func (t transposeOp) outShape(x []int) ([]int, error) {
	if len(x) != len(t.perm) {
		return nil, fmt.Errorf("perm %v for rank %d", t.perm, len(x))
	}
	shape := make([]int, len(x))
	for i, p := range t.perm {
		shape[i] = x[p]
	}
	return shape, nil
}

type concatOp struct{ axis int }

// outShape is the shape of in concatenated, and the axis resolved.
func (c concatOp) outShape(in [][]int) ([]int, int, error) {
	r := len(in[0])
	axis := c.axis
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		return nil, 0, fmt.Errorf("axis %d for rank %d", c.axis, r)
	}
	shape := append([]int(nil), in[0]...)
	shape[axis] = 0
	for _, t := range in {
		if len(t) != r {
			return nil, 0, errors.New("inputs differ in rank")
		}
		for i := range r {
			if i != axis && t[i] != in[0][i] {
				return nil, 0, fmt.Errorf("shapes %v and %v do not concatenate", in[0], t)
			}
		}
		shape[axis] += t[axis]
	}
	if _, err := checkedElements(shape); err != nil {
		return nil, 0, err
	}
	return shape, axis, nil
}

func (c concatOp) run(in []*Tensor, p *bufferPool) (*Tensor, error) {
	shapes := make([][]int, len(in))
	for i, t := range in {
		shapes[i] = t.Shape
	}
	shape, axis, err := c.outShape(shapes)
	if err != nil {
		return nil, err
	}
	out := p.get(shape...)
	outer := numElements(shape[:axis])
	pos := 0
	for o := range outer {
		for _, t := range in {
			n := numElements(t.Shape[axis:])
			copy(out.Data[pos:pos+n], t.Data[o*n:(o+1)*n])
			pos += n
		}
	}
	return out, nil
}
