package nn

import (
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

func randomTensor(r *rand.Rand, scale float32, shape ...int) *Tensor {
	t := NewTensor(shape...)
	for i := range t.Data {
		t.Data[i] = scale * (2*r.Float32() - 1)
	}
	return t
}

// checkGradient compares Backward with a central difference of
// L = Σ w·output along a random direction of the input "x".
func checkGradient(t *testing.T, name string, g *Graph, inputs map[string]*Tensor, r *rand.Rand) {
	t.Helper()
	x := inputs["x"]
	loss := func(dx []float32, eps float32) float64 {
		shifted := NewTensor(x.Shape...)
		for i := range x.Data {
			shifted.Data[i] = x.Data[i] + eps*dx[i]
		}
		in := map[string]*Tensor{}
		for k, v := range inputs {
			in[k] = v
		}
		in["x"] = shifted
		out, err := g.RunNamed(in)
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for i, v := range out[0].Data {
			sum += float64(v) * weightAt(i)
		}
		return sum
	}
	tape, err := g.Record(inputs)
	if err != nil {
		t.Fatal(err)
	}
	gradOut := NewTensor(tape.Output(0).Shape...)
	for i := range gradOut.Data {
		gradOut.Data[i] = float32(weightAt(i))
	}
	grad, err := tape.Backward("x", gradOut)
	if err != nil {
		t.Fatal(err)
	}
	for trial := range 3 {
		dir := randomTensor(r, 1, x.Shape...).Data
		var analytic, magnitude float64
		for i, v := range grad.Data {
			analytic += float64(v) * float64(dir[i])
			magnitude += math.Abs(float64(v) * float64(dir[i]))
		}
		const eps = 1e-2
		numeric := (loss(dir, eps) - loss(dir, -eps)) / (2 * eps)
		if math.Abs(numeric-analytic) > 1e-2*magnitude+1e-4 {
			t.Errorf("%s, direction %d: gradient·d = %.6g, central difference %.6g", name, trial, analytic, numeric)
		}
	}
}

func weightAt(i int) float64 { return math.Sin(float64(i)*0.7) + 0.3 }

func TestGradientOfTinySynthesis(t *testing.T) {
	b, err := os.ReadFile("../testdata/tiny/g_s.onnx")
	if err != nil {
		t.Fatal(err)
	}
	g, err := LoadDifferentiable(b)
	if err != nil {
		t.Fatal(err)
	}
	x := readTensor(t, "../testdata/tiny/g_s.in.pb")
	checkGradient(t, "tiny g_s", g, map[string]*Tensor{"x": x}, rand.New(rand.NewPCG(1, 2)))
}

// TestGradientOfEveryOp covers each backward pass in one graph: a conv with
// a fused Relu and depth-to-space, a scaled GDN, a residual conv, a
// LeakyRelu, Neg, a standalone DepthToSpace (DCR), a Reshape, Mul of two
// activations and Sub.
func TestGradientOfEveryOp(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ints := func(v ...int64) attribute { return attribute{ints: v} }
	for _, inverse := range []bool{false, true} {
		last := "Div"
		if inverse {
			last = "Mul"
		}
		gamma := randomTensor(r, 1, 2, 2, 1, 1)
		for i := range gamma.Data {
			gamma.Data[i] = float32(math.Abs(float64(gamma.Data[i])))
		}
		beta := NewTensor(2)
		beta.Data[0], beta.Data[1] = 0.7, 1.3
		og := &onnxGraph{
			nodes: []onnxNode{
				{opType: "Conv", inputs: []string{"x", "w1", "b1"}, outputs: []string{"c1"}, attrs: map[string]attribute{"pads": ints(1, 1, 1, 1)}},
				{opType: "Relu", inputs: []string{"c1"}, outputs: []string{"r1"}},
				{opType: "DepthToSpace", inputs: []string{"r1"}, outputs: []string{"d1"}, attrs: map[string]attribute{"blocksize": {i: 2}, "mode": {s: []byte("CRD")}}},
				{opType: "Mul", inputs: []string{"d1", "s"}, outputs: []string{"v"}},
				{opType: "Mul", inputs: []string{"v", "v"}, outputs: []string{"v2"}},
				{opType: "Conv", inputs: []string{"v2", "gamma", "beta"}, outputs: []string{"n2"}},
				{opType: "Sqrt", inputs: []string{"n2"}, outputs: []string{"n"}},
				{opType: last, inputs: []string{"v", "n"}, outputs: []string{"gdn"}},
				{opType: "Conv", inputs: []string{"gdn", "w3", "b3"}, outputs: []string{"c3"}, attrs: map[string]attribute{"pads": ints(0, 1, 2, 1)}},
				{opType: "Add", inputs: []string{"gdn", "c3"}, outputs: []string{"res"}},
				{opType: "LeakyRelu", inputs: []string{"res"}, outputs: []string{"lr"}, attrs: map[string]attribute{"alpha": {f: 0.2}}},
				{opType: "Conv", inputs: []string{"lr", "w4", "b4"}, outputs: []string{"c4"}, attrs: map[string]attribute{"pads": ints(1, 1, 1, 1)}},
				// Neg keeps the DepthToSpace out of the conv's store.
				{opType: "Neg", inputs: []string{"c4"}, outputs: []string{"c4n"}},
				{opType: "DepthToSpace", inputs: []string{"c4n"}, outputs: []string{"d4"}, attrs: map[string]attribute{"blocksize": {i: 2}}},
				{opType: "Reshape", inputs: []string{"d4", "shape"}, outputs: []string{"d4r"}},
				{opType: "Mul", inputs: []string{"d4r", "d4r"}, outputs: []string{"sq"}},
				{opType: "Sub", inputs: []string{"sq", "d4r"}, outputs: []string{"out"}},
			},
			initializers: []namedTensor{
				{"w1", randomTensor(r, 0.3, 8, 3, 3, 3)}, {"b1", randomTensor(r, 0.1, 8)},
				{"gamma", gamma}, {"beta", beta},
				{"w3", randomTensor(r, 0.3, 2, 2, 3, 3)}, {"b3", randomTensor(r, 0.1, 2)},
				{"w4", randomTensor(r, 0.3, 4, 2, 3, 3)}, {"b4", randomTensor(r, 0.1, 4)},
				{"shape", &Tensor{Shape: []int{4}, Data: []float32{1, 1, 12, -1}}},
			},
			inputs:  []Input{{Name: "x"}, {Name: "s"}},
			outputs: []string{"out"},
		}
		g, err := compileDifferentiable(og)
		if err != nil {
			t.Fatal(err)
		}
		var fused []string
		for _, s := range g.steps {
			if c, ok := s.op.(*convOp); ok && (c.residual || c.d2s > 0 && c.act == actRelu) || typeName(s.op) == "*nn.gdnOp" {
				fused = append(fused, s.name)
			}
		}
		if len(fused) != 3 {
			t.Fatalf("fused steps %v, want the conv+relu+depth-to-space, the GDN and the residual conv", fused)
		}
		standalone := 0
		for _, s := range g.steps {
			if _, ok := s.op.(*depthToSpace); ok {
				standalone++
			}
		}
		if standalone != 1 {
			t.Fatalf("%d standalone DepthToSpace steps, want 1", standalone)
		}
		s := &Tensor{Shape: []int{1, 2, 1, 1}, Data: []float32{0.8, 1.5}}
		checkGradient(t, "inverse="+last, g, map[string]*Tensor{"x": randomTensor(r, 1, 1, 3, 3, 5), "s": s}, r)
	}
}

func TestDifferentiableRefusals(t *testing.T) {
	b, err := os.ReadFile("../testdata/nn/conv5x5_s2.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDifferentiable(b); err == nil || !strings.Contains(err.Error(), "no gradient") {
		t.Errorf("stride-2 conv: err = %v, want a no-gradient error", err)
	}
	w := randomTensor(rand.New(rand.NewPCG(5, 6)), 1, 2, 2, 3, 3)
	leaky := &onnxGraph{
		nodes: []onnxNode{
			{opType: "Conv", inputs: []string{"x", "w"}, outputs: []string{"c"}, attrs: map[string]attribute{"pads": {ints: []int64{1, 1, 1, 1}}}},
			{opType: "LeakyRelu", inputs: []string{"c"}, outputs: []string{"y"}, attrs: map[string]attribute{"alpha": {f: -0.5}}},
		},
		initializers: []namedTensor{{"w", w}},
		inputs:       []Input{{Name: "x"}},
		outputs:      []string{"y"},
	}
	if _, err := compileDifferentiable(leaky); err == nil || !strings.Contains(err.Error(), "negative slope") {
		t.Errorf("LeakyRelu with a negative slope: err = %v", err)
	}
	// A GDN node carrying a conv's fused store: only a hostile file has one,
	// and compile refuses fused forms from a file.
	gdn := &onnxGraph{
		nodes: []onnxNode{{opType: "lvc.GDN", inputs: []string{"x", "gamma", "beta", "s"}, outputs: []string{"y"},
			attrs: map[string]attribute{"lvc.residual": {i: 1}}}},
		initializers: []namedTensor{{"gamma", NewTensor(2, 2, 1, 1)}, {"beta", NewTensor(2)}},
		inputs:       []Input{{Name: "x"}, {Name: "s"}},
		outputs:      []string{"y"},
	}
	if _, err := compile(gdn); err == nil || !strings.Contains(err.Error(), "is internal") {
		t.Errorf("GDN with a fused residual: err = %v", err)
	}
	g := loadGraph(t, "../testdata/tiny/g_s.onnx")
	if _, err := g.Record(map[string]*Tensor{}); err == nil {
		t.Error("Record on a graph from Load: no error")
	}
	b, _ = os.ReadFile("../testdata/tiny/g_s.onnx")
	dg, err := LoadDifferentiable(b)
	if err != nil {
		t.Fatal(err)
	}
	x := readTensor(t, "../testdata/tiny/g_s.in.pb")
	tape, err := dg.Record(map[string]*Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	gradOut := NewTensor(tape.Output(0).Shape...)
	if _, err := dg.Run(x); err != nil {
		t.Fatal(err)
	}
	if _, err := tape.Backward("x", gradOut); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Errorf("stale tape: err = %v", err)
	}
	tape, _ = dg.Record(map[string]*Tensor{"x": x})
	if _, err := tape.Backward("x", NewTensor(1, 1, 2, 2)); err == nil {
		t.Error("wrong output gradient shape: no error")
	}
	if _, err := tape.Backward("y", gradOut); err == nil {
		t.Error("unknown input: no error")
	}
}
