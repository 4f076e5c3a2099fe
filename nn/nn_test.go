package nn

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func readTensor(t testing.TB, path string) *Tensor {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	x, _, err := parseTensor(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return x
}

func loadGraph(t testing.TB, path string) *Graph {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Load(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return g
}

// checkClose requires max |got-want| <= 1e-4 of want's range.
func checkClose(t *testing.T, name string, got, want *Tensor) {
	t.Helper()
	if !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("%s: shape %v, want %v", name, got.Shape, want.Shape)
	}
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, v := range want.Data {
		lo, hi = min(lo, v), max(hi, v)
	}
	var worst float64
	for i := range got.Data {
		worst = max(worst, math.Abs(float64(got.Data[i]-want.Data[i])))
	}
	if tol := 1e-4 * float64(hi-lo); worst > tol {
		t.Errorf("%s: max abs diff %g above %g", name, worst, tol)
	}
}

// TestOpGoldens runs every op graph that train/export.py wrote against
// PyTorch's output for the same input.
func TestOpGoldens(t *testing.T) {
	files, _ := filepath.Glob("../testdata/nn/*.onnx")
	if len(files) < 10 {
		t.Fatalf("only %d golden graphs in testdata/nn", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".onnx")
		t.Run(name, func(t *testing.T) {
			g := loadGraph(t, f)
			base := strings.TrimSuffix(f, ".onnx")
			got, err := g.Run(readTensor(t, base+".in.pb"))
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, name, got, readTensor(t, base+".out.pb"))
		})
	}
}

func TestFusion(t *testing.T) {
	for file, want := range map[string]string{
		"gdn": "*nn.gdnOp", "igdn": "*nn.gdnOp", "pixelshuffle_reshape": "*nn.depthToSpace", "conv_relu": "*nn.convOp",
	} {
		g := loadGraph(t, "../testdata/nn/"+file+".onnx")
		if len(g.steps) != 1 {
			t.Errorf("%s: %d steps after fusion, want 1", file, len(g.steps))
			continue
		}
		if got := typeName(g.steps[0].op); got != want {
			t.Errorf("%s: fused to %s, want %s", file, got, want)
		}
	}
}

// TestResidualFusion checks that a residual block's Add is folded into its
// last conv, which writes into the residual only when nothing reads it later;
// a folded constant is added too, broadcast per channel (TestOpGoldens checks
// the graphs' outputs against PyTorch).
func TestResidualFusion(t *testing.T) {
	for file, inPlace := range map[string]bool{"resblock": true, "resblock_kept": false, "conv_add_const": false} {
		g := loadGraph(t, "../testdata/nn/"+file+".onnx")
		var residual []*convOp
		for _, s := range g.steps {
			if c, ok := s.op.(*convOp); ok && c.residual {
				residual = append(residual, c)
			}
			if b, ok := s.op.(*binaryOp); ok && b.kind == "Add" {
				t.Errorf("%s: an Add is left after fusion", file)
			}
		}
		if len(residual) != 1 || residual[0].inPlace != inPlace {
			t.Errorf("%s: %d convs with a residual, want 1 with inPlace %v", file, len(residual), inPlace)
		}
	}
}

func TestTinyModelGoldens(t *testing.T) {
	dir := "../testdata/tiny"
	for _, c := range []struct{ net, in, out string }{
		{"g_a", "g_a.in", "g_a.out"}, {"h_a", "g_a.out", "h_a.out"}, {"h_s", "h_s.in", "h_s.out"}, {"g_s", "g_s.in", "g_s.out"},
	} {
		g := loadGraph(t, filepath.Join(dir, c.net+".onnx"))
		got, err := g.Run(readTensor(t, filepath.Join(dir, c.in+".pb")))
		if err != nil {
			t.Fatal(err)
		}
		checkClose(t, c.net, got, readTensor(t, filepath.Join(dir, c.out+".pb")))
		got = &Tensor{Shape: append([]int(nil), got.Shape...), Data: append([]float32(nil), got.Data...)}
		// A second run reuses pooled buffers, the first output's included,
		// and must give the same result.
		again, err := g.Run(readTensor(t, filepath.Join(dir, c.in+".pb")))
		if err != nil {
			t.Fatal(err)
		}
		checkClose(t, c.net+" (second run)", again, got)
	}
}

func TestKernelsMatchPortable(t *testing.T) {
	for _, kern := range availableKernels() {
		nr := kern.nr
		for _, k := range []int{1, 3, 4, 7, 64, 577} {
			a := make([]float32, k*mr)
			b := make([]float32, k*nr)
			for i := range a {
				a[i] = float32(i%13) - 6
			}
			for i := range b {
				b[i] = float32(i%7)*0.25 - 0.5
			}
			want := make([]float32, mr*nr)
			got := make([]float32, mr*nr)
			rows := packedRows(k, nr)
			kernelGo(k, a, b, rows, want)
			kern.run(k, a, b, rows, got)
			for i := range want {
				if d := math.Abs(float64(want[i] - got[i])); d > 1e-3*math.Max(1, math.Abs(float64(want[i]))) {
					t.Fatalf("%s k=%d element %d: %v vs portable %v", kern.name, k, i, got[i], want[i])
				}
			}
		}
	}
}

// TestLoadKeepsWeightsOnce checks that a loaded graph holds no constant that
// only compiling read, and that its convolutions keep their weights packed
// only: the shipped model's weights, stored fp16 and cast, were otherwise
// held three times (37 MB of heap instead of 15).
func TestLoadKeepsWeightsOnce(t *testing.T) {
	g, err := Load(mustRead(t, "../testdata/tiny/g_s.onnx")) // fp16 weights, cast at load
	if err != nil {
		t.Fatal(err)
	}
	read := map[int]bool{}
	convs := 0
	for _, s := range g.steps {
		for _, id := range s.in {
			read[id] = true
		}
		if c := packedConv(s.op); c != nil {
			convs++
			if c.weights != nil {
				t.Errorf("step %s keeps its unpacked weights", s.name)
			}
		}
	}
	if convs == 0 {
		t.Fatal("no convolution in the graph")
	}
	for id, c := range g.consts {
		if !read[id] {
			t.Errorf("constant %v in slot %d is read by no step", c.Shape, id)
		}
	}
}

// TestStripsMatchGather checks that convolutions read in place from padded
// strips give bit for bit what gathered columns give, with every kernel: the
// same products summed in the same order. The shapes cover tiles that end
// past a row, images shorter than the kernel's reach, asymmetric and missing
// padding, fused depth-to-space, and strides 2 and 3 (phase-split rows).
// fillTestConv gives c packed weights in [-48, 48]/wDiv, biases, and returns
// the weights and an h x w input in [-15, 15]/xDiv.
func fillTestConv(c *convOp, h, w int, wDiv, xDiv float32) (weights, x []float32) {
	k := c.cin * c.kh * c.kw
	weights = make([]float32, c.cout*k)
	for i := range weights {
		weights[i] = float32(int(uint32(i)*2654435761>>20)%97-48) / wDiv
	}
	c.packed = packWeights(weights, c.cout, k)
	c.bias = make([]float32, c.cout)
	for i := range c.bias {
		c.bias[i] = float32(i%5) * 0.1
	}
	x = make([]float32, c.cin*h*w)
	for i := range x {
		x[i] = float32(int(uint32(i)*40503>>7)%31-15) / xDiv
	}
	return weights, x
}

func TestStripsMatchGather(t *testing.T) {
	saved := kernel
	defer func() { kernel = saved }()
	cases := []struct {
		cin, cout, k, h, w     int
		padT, padL, padB, padR int
		d2s                    int
		stride                 int
	}{
		{3, 8, 3, 5, 7, 1, 1, 1, 1, 0, 1},
		{64, 12, 3, 9, 70, 1, 1, 1, 1, 2, 1},
		{5, 7, 1, 4, 131, 0, 0, 0, 0, 0, 1},
		{2, 13, 5, 2, 3, 2, 2, 2, 2, 0, 1},
		{4, 6, 3, 17, 65, 0, 1, 2, 0, 0, 1},
		{16, 4, 3, 1, 1, 1, 1, 1, 1, 0, 1},
		{6, 24, 3, 11, 33, 1, 1, 1, 1, 2, 1},
		{3, 16, 5, 16, 24, 2, 2, 2, 2, 0, 2},
		{64, 64, 5, 13, 141, 2, 2, 2, 2, 0, 2},
		{5, 7, 4, 9, 10, 1, 0, 2, 3, 0, 3},
		{2, 6, 3, 2, 2, 1, 1, 1, 1, 0, 2},
	}
	for _, tc := range cases {
		for _, residual := range []bool{false, true} {
			if residual && tc.d2s > 0 {
				continue // the graph never fuses both
			}
			c := &convOp{cout: tc.cout, cin: tc.cin, kh: tc.k, kw: tc.k, strideH: tc.stride, strideW: tc.stride, groups: 1,
				padT: tc.padT, padL: tc.padL, padB: tc.padB, padR: tc.padR, act: actRelu, d2s: tc.d2s, d2sCRD: true,
				residual: residual}
			_, x := fillTestConv(c, tc.h, tc.w, 64, 8)
			oh, ow := c.outSize(tc.h, tc.w)
			for _, kern := range availableKernels() {
				kernel = kern
				var p bufferPool
				want := make([]float32, tc.cout*oh*ow)
				got := make([]float32, len(want))
				if residual {
					for i := range want {
						want[i] = float32(i%9) - 4
					}
					copy(got, want)
				}
				c.runGather(x, tc.h, tc.w, want, oh, ow, &p)
				c.runStrips(x, tc.h, tc.w, got, oh, ow, &p)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s %+v residual=%v: element %d is %v from strips, %v gathered",
							kern.name, tc, residual, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestGraphSameWithEveryKernel runs a model with each kernel the CPU has.
func TestGraphSameWithEveryKernel(t *testing.T) {
	saved := kernel
	defer func() { kernel = saved }()
	in := readTensor(t, "../testdata/tiny/g_s.in.pb")
	want := readTensor(t, "../testdata/tiny/g_s.out.pb")
	for _, kern := range availableKernels() {
		kernel = kern
		g := loadGraph(t, "../testdata/tiny/g_s.onnx")
		got, err := g.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		checkClose(t, kern.name, got, want)
	}
}

func TestBadGraphsGetErrors(t *testing.T) {
	good, err := os.ReadFile("../testdata/nn/conv3x3_s1.onnx")
	if err != nil {
		t.Fatal(err)
	}
	for cut := 0; cut < len(good); cut += 1 + len(good)/300 {
		g, err := Load(good[:cut])
		if err == nil {
			// A prefix can be a valid smaller model only if it still runs.
			if _, err := g.Run(NewTensor(1, 8, 4, 4)); err == nil {
				continue
			}
		}
	}
	// Without the declared shape that Run checks first, the conv itself
	// must refuse the wrong channel count.
	og, err := parseGraph(good)
	if err != nil {
		t.Fatal(err)
	}
	og.inputs[0].Shape = nil
	g, err := compile(og)
	if err != nil {
		t.Fatal(err)
	}
	g.prepareWeights()
	if _, err := g.Run(NewTensor(1, 3, 4, 4)); err == nil || !strings.Contains(err.Error(), "node") {
		t.Errorf("wrong channel count: got %v, want an error naming the node", err)
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *gdnOp:
		return "*nn.gdnOp"
	case *depthToSpace:
		return "*nn.depthToSpace"
	case *convOp:
		return "*nn.convOp"
	}
	return "other"
}

func TestFixedGraphMatchesFloat(t *testing.T) {
	b, err := os.ReadFile("../testdata/tiny/h_s.onnx")
	if err != nil {
		t.Fatal(err)
	}
	fg, err := LoadFixed(b)
	if err != nil {
		t.Fatal(err)
	}
	in := readTensor(t, "../testdata/tiny/h_s.in.pb")
	want := readTensor(t, "../testdata/tiny/h_s.out.pb")
	q := make([]int32, len(in.Data))
	for i, v := range in.Data {
		q[i] = int32(v) << FixedFracBits
	}
	out, shape, err := fg.Run(q, in.Shape[1], in.Shape[2], in.Shape[3])
	if err != nil {
		t.Fatal(err)
	}
	if shape != [3]int{want.Shape[1], want.Shape[2], want.Shape[3]} {
		t.Fatalf("shape %v, want %v", shape, want.Shape)
	}
	got := &Tensor{Shape: want.Shape, Data: make([]float32, len(out))}
	for i, v := range out {
		got.Data[i] = float32(v) / (1 << FixedFracBits)
	}
	checkClose(t, "fixed h_s", got, want)
	if _, err := LoadFixed(mustRead(t, "../testdata/nn/gdn.onnx")); err == nil {
		t.Error("GDN accepted in fixed point")
	}
	// The float compiler fuses a residual block's Add into its last conv;
	// fixed point must not drop it.
	if _, err := LoadFixed(mustRead(t, "../testdata/nn/resblock.onnx")); err == nil {
		t.Error("residual add accepted in fixed point")
	}
}

func mustRead(t testing.TB, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixedGoldenSHA256 pins the exact output of the fixed-point h_s of the tiny
// model on a fixed input: any change of FixedGraph's arithmetic, however
// small, would make old bitstreams undecodable, and shows up here.
const fixedGoldenSHA256 = "0ec5f2e9393be0f1de52a47351c8a0194416fc5ecfa4a90e32fc3b2858266245"

func TestFixedGraphExactOutput(t *testing.T) {
	fg, err := LoadFixed(mustRead(t, "../testdata/tiny/h_s.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	const c, h, w = 4, 5, 7
	in := make([]int32, c*h*w)
	for i := range in {
		in[i] = int32((i*7919)%13-6) << FixedFracBits
	}
	out, _, err := fg.Run(in, c, h, w)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4*len(out))
	for i, v := range out {
		binary.LittleEndian.PutUint32(buf[4*i:], uint32(v))
	}
	sum := sha256.Sum256(buf)
	if got := hex.EncodeToString(sum[:]); got != fixedGoldenSHA256 {
		t.Fatalf("fixed-point output hash %s, want %s", got, fixedGoldenSHA256)
	}
}

// TestFixedGraphReusesBuffers: runs that reuse an earlier run's buffers,
// larger and smaller ones with stale contents, give what a fresh graph
// gives, and leave the outputs already returned untouched.
func TestFixedGraphReusesBuffers(t *testing.T) {
	onnx := mustRead(t, "../testdata/tiny/h_s.onnx")
	reused, err := LoadFixed(onnx)
	if err != nil {
		t.Fatal(err)
	}
	const c = 4
	var kept [][]int32
	var want [][]int32
	for n, size := range [][2]int{{5, 7}, {2, 3}, {9, 4}, {5, 7}, {1, 1}} {
		h, w := size[0], size[1]
		in := make([]int32, c*h*w)
		for i := range in {
			in[i] = int32((i*7919+n*31)%13-6) << FixedFracBits
		}
		fresh, err := LoadFixed(onnx)
		if err != nil {
			t.Fatal(err)
		}
		wantOut, _, err := fresh.Run(slices.Clone(in), c, h, w)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := reused.Run(in, c, h, w)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, wantOut) {
			t.Fatalf("run %d (%dx%d) on reused buffers differs from a fresh graph's", n, h, w)
		}
		kept, want = append(kept, got), append(want, slices.Clone(wantOut))
	}
	for n := range kept {
		if !slices.Equal(kept[n], want[n]) {
			t.Fatalf("output of run %d changed by later runs", n)
		}
	}
}

// TestFixedBlockMatchesPortable: every fixed-point micro-kernel this CPU runs
// sums exactly what the portable one does, over inputs and weights spanning
// int32 and sums beyond it, for any number of taps.
func TestFixedBlockMatchesPortable(t *testing.T) {
	for _, taps := range []int{0, 1, 3, 9, 1152} {
		offs := make([]int, taps)
		w := make([]int64, fixedGroup*taps)
		extremes := []int64{math.MaxInt32, math.MinInt32 + 1, -3, 65536}
		for i := range offs {
			offs[i] = (i * 37) % 101 // out of order, repeated
			for j := range fixedGroup {
				w[fixedGroup*i+j] = extremes[(i+j)%4]
			}
		}
		rows := newPanelRows(append(offs, 0)[:max(taps, 1)])
		rows.offs = rows.offs[:taps]
		src := make([]int32, 101+fixedBlockWidth)
		for i := range src {
			src[i] = int32(uint32(i*2654435761) ^ 0x5bd1e995) // full int32 range, both signs
		}
		var want [fixedGroup * fixedBlockWidth]int64
		for i := range want {
			want[i] = int64(i-16) << 40
		}
		start := want
		fixedBlockGo(rows, src, w, &want)
		for name, block := range availableFixedBlocks() {
			got := start
			block(rows, src, w, &got)
			if got != want {
				t.Fatalf("%s, %d taps: %v, portable %v", name, taps, got, want)
			}
		}
	}
}

// TestGDNStoreMatchesPortable checks that the vector GDN passes (squares,
// then the store) round as the scalar loops do, bit for bit, in place too: decoded images and the codec's
// goldens depend on it. The inputs cover tails, subnormals, zero norms and
// norms whose roots round differently in float32 and float64.
func TestGDNStoreMatchesPortable(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 31, 416} {
		x := make([]float32, n)
		norm := make([]float32, n)
		for i := range x {
			h := uint32(i) * 2654435761
			x[i] = math.Float32frombits(h&0x807fffff | (uint32(i%200)+20)<<23) // both signs, wide exponents
			norm[i] = math.Float32frombits(h>>1&0x007fffff | (uint32(i*7%250)+1)<<23)
		}
		if n > 2 {
			norm[1], x[2] = 0, math.Float32frombits(1) // a zero norm meets beta; a subnormal x
		}
		for _, inverse := range []bool{false, true} {
			for _, s := range []float32{1, 0.37} {
				wantSq, gotSq := make([]float32, n), make([]float32, n)
				squareScaledGo(x, wantSq, s)
				squareScaled(x, gotSq, s)
				for i := range wantSq {
					if math.Float32bits(gotSq[i]) != math.Float32bits(wantSq[i]) {
						t.Fatalf("n=%d s=%v square %d: %v, portable %v", n, s, i, gotSq[i], wantSq[i])
					}
				}
				want := make([]float32, n)
				gdnStoreGo(inverse, x, norm, want, s, 1e-6)
				got := slices.Clone(x)
				gdnStore(inverse, got, norm, got, s, 1e-6) // in place, as when the graph frees x
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("n=%d inverse=%v s=%v element %d: %v, portable %v", n, inverse, s, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestBiasStoresMatchPortable checks the vector conv stores against the Go
// loops bit for bit, NaN, -0 and tails included.
func TestBiasStoresMatchPortable(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 64} {
		even, odd := make([]float32, n), make([]float32, n)
		for i := range even {
			even[i] = float32(int(uint32(i)*2654435761>>24)%17-8) / 4
			odd[i] = float32(int(uint32(i)*40503>>5)%13-6) / 3
		}
		if n > 3 {
			even[0], even[1], odd[2] = float32(math.NaN()), float32(math.Copysign(0, -1)), -0.25
		}
		for _, withRelu := range []bool{false, true} {
			want, got := make([]float32, n), make([]float32, n)
			biasStoreGo(even, want, 0.25, withRelu)
			biasStore(even, got, 0.25, withRelu)
			wantAdd, gotAdd := slices.Clone(odd), slices.Clone(odd)
			biasAddGo(even, wantAdd, 0.25)
			biasAdd(even, gotAdd, 0.25)
			wantPairs, gotPairs := make([]float32, 2*n), make([]float32, 2*n)
			biasStorePairsGo(even, odd, wantPairs, 0.25, 0, withRelu)
			biasStorePairs(even, odd, gotPairs, 0.25, 0, withRelu)
			for _, c := range []struct {
				what      string
				got, want []float32
			}{{"store", got, want}, {"pairs", gotPairs, wantPairs}, {"add", gotAdd, wantAdd}} {
				for i := range c.want {
					if math.Float32bits(c.got[i]) != math.Float32bits(c.want[i]) {
						t.Fatalf("%s n=%d relu=%v element %d: %v, portable %v", c.what, n, withRelu, i, c.got[i], c.want[i])
					}
				}
			}
		}
	}
}

// TestWinogradTransformsMatchPortable checks that the transforms in use
// (AVX2 where the CPU has it) give the portable loops' bits, for tile counts
// that are and are not multiples of the vector width.
func TestWinogradTransformsMatchPortable(t *testing.T) {
	val := func(i int) float32 { return float32(int(uint32(i)*2654435761>>22)%61-30) / 7 }
	for _, n := range []int{1, 7, 8, 9, 16, 64} {
		halfW, stride := n+1, n+3
		s := make([]float32, 8*halfW)
		for i := range s {
			s[i] = val(i)
		}
		want, got := make([]float32, 16*stride), make([]float32, 16*stride)
		winogradInGo(s, halfW, want, stride, n)
		winogradIn(s, halfW, got, stride, n)
		m := make([]float32, 16*stride)
		for i := range m {
			m[i] = val(3*i + 1)
		}
		want0, want1, got0, got1 := make([]float32, 2*n), make([]float32, 2*n), make([]float32, 2*n), make([]float32, 2*n)
		winogradOutGo(m, stride, want0, want1, n)
		winogradOut(m, stride, got0, got1, n)
		wantE, wantO, gotE, gotO := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
		deinterleaveGo(m[:2*n], wantE, wantO)
		deinterleave(m[:2*n], gotE, gotO)
		for _, c := range []struct {
			what      string
			got, want []float32
		}{{"input", got, want}, {"output row 0", got0, want0}, {"output row 1", got1, want1}, {"even", gotE, wantE}, {"odd", gotO, wantO}} {
			for i := range c.want {
				if math.Float32bits(c.got[i]) != math.Float32bits(c.want[i]) {
					t.Fatalf("%s n=%d element %d: %v, portable %v", c.what, n, i, c.got[i], c.want[i])
				}
			}
		}
	}
}

// TestHostileGraphs loads graphs that once panicked (review findings): an
// empty input name, nodes without inputs inside fusable patterns, a reshape
// whose element count overflows, and a fixed-point conv that is not "same".
func TestHostileGraphs(t *testing.T) {
	files, _ := filepath.Glob("../testdata/nn/bad/*.onnx")
	if len(files) < 5 {
		t.Fatalf("only %d hostile graphs", len(files))
	}
	for _, f := range files {
		b := mustRead(t, f)
		if g, err := Load(b); err == nil {
			for _, c := range []int{1, 2, 4} {
				g.Run(NewTensor(1, c, 5, 5))
			}
		}
		if fg, err := LoadFixed(b); err == nil {
			t.Errorf("%s: accepted in fixed point", f)
			fg.Run(make([]int32, 4*5*5), 4, 5, 5)
		}
	}
}

// TestScaledGDN: a per-quality scaler Mul(a, s) in front of a GDN is fused
// into the GDN, which gives what the unfused pattern computes; an s that is
// not per channel goes through the general multiply.
func TestScaledGDN(t *testing.T) {
	// 41x53 spans several of the GDN's blocks of positions, the last one partial.
	for _, size := range [][2]int{{2, 5}, {41, 53}} {
		testScaledGDN(t, size[0], size[1])
	}
}

func testScaledGDN(t *testing.T, h, w int) {
	const c = 3
	gamma, beta := NewTensor(c, c, 1, 1), NewTensor(c)
	for i := range gamma.Data {
		gamma.Data[i] = 0.05 * float32(i%4+1)
	}
	for i := range beta.Data {
		beta.Data[i] = 0.5 + float32(i)
	}
	a := NewTensor(1, c, h, w)
	for i := range a.Data {
		a.Data[i] = float32(i%7) - 3
	}
	perChannel, full := NewTensor(1, c, 1, 1), NewTensor(1, c, h, w)
	copy(perChannel.Data, []float32{0.5, 2, 1.25})
	for i := range full.Data {
		full.Data[i] = perChannel.Data[i/(h*w)]
	}
	for _, inverse := range []bool{false, true} {
		last := "Div"
		if inverse {
			last = "Mul"
		}
		g, err := compile(&onnxGraph{
			nodes: []onnxNode{
				{opType: "Mul", inputs: []string{"a", "s"}, outputs: []string{"x"}},
				{opType: "Mul", inputs: []string{"x", "x"}, outputs: []string{"x2"}},
				{opType: "Conv", inputs: []string{"x2", "gamma", "beta"}, outputs: []string{"norm2"}},
				{opType: "Sqrt", inputs: []string{"norm2"}, outputs: []string{"norm"}},
				{opType: last, inputs: []string{"x", "norm"}, outputs: []string{"y"}},
			},
			initializers: []namedTensor{{"gamma", gamma}, {"beta", beta}},
			inputs:       []Input{{Name: "a"}, {Name: "s"}},
			outputs:      []string{"y"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(g.steps) != 1 || typeName(g.steps[0].op) != "*nn.gdnOp" {
			t.Fatalf("inverse=%v: %d steps after fusion, want one GDN", inverse, len(g.steps))
		}
		g.prepareWeights()
		want := NewTensor(1, c, h, w)
		for p := range h * w {
			for o := range c {
				sum := beta.Data[o]
				for k := range c {
					v := a.Data[k*h*w+p] * perChannel.Data[k]
					sum += gamma.Data[o*c+k] * v * v
				}
				x, n := a.Data[o*h*w+p]*perChannel.Data[o], float32(math.Sqrt(float64(sum)))
				if inverse {
					want.Data[o*h*w+p] = x * n
				} else {
					want.Data[o*h*w+p] = x / n
				}
			}
		}
		for _, s := range []*Tensor{perChannel, full} {
			out, err := g.RunNamed(map[string]*Tensor{"a": a, "s": s})
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, fmt.Sprintf("%dx%d, inverse=%v, s %v", h, w, inverse, s.Shape), out[0], want)
		}
	}
}

// TestWinogradMatchesDirect compares F(2x2, 3x3) with the direct
// convolution: odd and even sizes, asymmetric padding, fewer or more tiles
// than a task holds, stores with depth-to-space, and every kernel. They
// round differently, so the bound is relative to the sum of |w*x| terms.
func TestWinogradMatchesDirect(t *testing.T) {
	saved := kernel
	defer func() { kernel = saved }()
	cases := []struct {
		cin, cout, h, w        int
		padT, padL, padB, padR int
		d2s                    int
		act                    activation
	}{
		{3, 8, 5, 7, 1, 1, 1, 1, 0, actRelu},
		{64, 12, 9, 70, 1, 1, 1, 1, 2, actNone},
		{16, 24, 2, 2, 1, 1, 1, 1, 2, actRelu},
		{4, 6, 17, 131, 0, 1, 2, 0, 0, actNone},
		{7, 5, 3, 3, 0, 0, 0, 0, 0, actLeaky},
		{1, 1, 1, 1, 1, 1, 1, 1, 0, actNone},
		{32, 64, 6, 300, 1, 1, 1, 1, 0, actRelu},
		{5, 9, 8, 4, 2, 0, 0, 2, 0, actNone},
		{8, 36, 7, 9, 1, 1, 1, 1, 3, actNone},    // DCR below
		{16, 32, 9, 70, 1, 1, 1, 1, -1, actNone}, // residual add below
	}
	for _, tc := range cases {
		residual := tc.d2s < 0
		tc.d2s = max(tc.d2s, 0)
		c := &convOp{cout: tc.cout, cin: tc.cin, kh: 3, kw: 3, strideH: 1, strideW: 1, groups: 1,
			padT: tc.padT, padL: tc.padL, padB: tc.padB, padR: tc.padR, act: tc.act, alpha: 0.1, d2s: tc.d2s, d2sCRD: tc.d2s != 3}
		// Not dyadic, so that both paths round and the bound is exercised.
		weights, x := fillTestConv(c, tc.h, tc.w, 56, 7)
		c.wino = winogradWeights(weights, tc.cout, tc.cin)
		c.residual = residual
		// The bound: a few float32 roundings of the largest possible sum.
		tol := float32(tc.cin*9) * (48.0 / 56) * (15.0 / 7) * 1e-6
		oh, ow := c.outSize(tc.h, tc.w)
		for _, kern := range availableKernels() {
			kernel = kern
			var p bufferPool
			want := make([]float32, tc.cout*oh*ow)
			got := make([]float32, len(want))
			for i := range got {
				got[i] = float32(math.NaN()) // every element must be written
				if residual {
					got[i] = float32(i%9) - 4 // the stores add to it
					want[i] = got[i]
				}
			}
			c.runStrips(x, tc.h, tc.w, want, oh, ow, &p)
			c.runWinograd(x, tc.h, tc.w, got, oh, ow, &p)
			for i := range want {
				if !(math.Abs(float64(got[i]-want[i])) <= float64(tol)) {
					t.Fatalf("%s %+v: element %d is %v by Winograd, %v direct", kern.name, tc, i, got[i], want[i])
				}
			}
		}
	}
}

// TestCompileRefuses: markers that only fuse may set, a convolution of
// constants (its output can dwarf its inputs), and, in fixed point, weights
// that a math function computed at load.
func TestCompileRefuses(t *testing.T) {
	w := NewTensor(2, 1, 1, 1)
	w.Data[0], w.Data[1] = 0.5, -0.25
	conv := func(attrs map[string]attribute) onnxNode {
		return onnxNode{name: "c", opType: "Conv", inputs: []string{"x", "w"}, outputs: []string{"y"}, attrs: attrs}
	}
	for _, tc := range []struct {
		name  string
		nodes []onnxNode
		want  string
	}{
		{"fused activation from the file", []onnxNode{conv(map[string]attribute{"lvc.act": {i: 3}})}, `attribute "lvc.act" is internal`},
		{"fused GDN from the file", []onnxNode{{name: "g", opType: "lvc.GDN", inputs: []string{"x", "w"}, outputs: []string{"y"}}}, `op type "lvc.GDN" is internal`},
		{"constant convolution", []onnxNode{
			{name: "k", opType: "Conv", inputs: []string{"w", "w"}, outputs: []string{"big"}, attrs: map[string]attribute{"pads": {ints: []int64{64, 64, 64, 64}}}},
			{name: "a", opType: "Sqrt", inputs: []string{"big"}, outputs: []string{"y"}},
		}, "convolution of constants"},
	} {
		_, err := compile(&onnxGraph{nodes: tc.nodes, initializers: []namedTensor{{"w", w}}, inputs: []Input{{Name: "x"}}, outputs: []string{"y"}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, fn := range []string{"Exp", "Abs"} {
		g, err := compile(&onnxGraph{nodes: []onnxNode{
			{name: "f", opType: fn, inputs: []string{"w0"}, outputs: []string{"w"}},
			conv(nil),
		}, initializers: []namedTensor{{"w0", w}}, inputs: []Input{{Name: "x"}}, outputs: []string{"y"}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = fixedGraph(g)
		if exact := fn == "Abs"; exact != (err == nil) || !exact && !strings.Contains(err.Error(), "come from f") {
			t.Errorf("fixed point with weights from %s: %v", fn, err)
		}
	}
}

// TestDeclaredInputShapes: Load keeps the input shape the file declares,
// and a run on another shape is refused by name instead of computing on a
// layout the model was not made for.
func TestDeclaredInputShapes(t *testing.T) {
	b, err := os.ReadFile("../testdata/nn/conv3x3_s1.onnx")
	if err != nil {
		t.Fatal(err)
	}
	g, err := Load(b)
	if err != nil {
		t.Fatal(err)
	}
	if ins := g.Inputs(); fmt.Sprint(ins) != "[{x [1 8 13 17]}]" {
		t.Fatalf("inputs %v, want x of [1 8 13 17]", ins)
	}
	if _, err := g.Run(NewTensor(1, 8, 13, 17)); err != nil {
		t.Fatal(err)
	}
	_, err = g.Run(NewTensor(1, 8, 12, 17))
	if want := `input "x" has shape [1 8 12 17], the model declares [1 8 13 17]`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("run on [1 8 12 17]: %v, want an error with %q", err, want)
	}
	if !ShapesAgree([]int{1, 8, 5, 7}, []int{1, 8, -1, -1}) || ShapesAgree([]int{1, 8, 5}, []int{1, 8, -1, -1}) {
		t.Error("ShapesAgree: free dimensions must match any size, ranks must match")
	}
}
