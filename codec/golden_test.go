package codec

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/lvc-codec/lvc/models"
	"github.com/lvc-codec/lvc/nn"
)

// TestShippedModelGoldens runs each network of the embedded model on the
// inputs train/export.py wrote to testdata/default and compares with
// PyTorch's outputs (max abs diff <= 1e-4 of the output range; 2e-4 for h_s,
// which runs in fixed point with its weights rounded to 16 fraction bits:
// for hp64d that moves its output by 1.35e-4 of the range). The goldens name
// the model ID they were made for.
func TestShippedModelGoldens(t *testing.T) {
	dir := "../testdata/default"
	id, err := os.ReadFile(filepath.Join(dir, "model_id.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel(models.Default)
	if err != nil {
		t.Fatal(err)
	}
	if string(id) != m.IDString() {
		t.Fatalf("goldens are for model %s, the embedded model is %s: regenerate them with the model", id, m.IDString())
	}
	checkModelGoldens(t, m, dir)
}

// TestScaledModelGoldens does the same for a tiny model whose g_a and g_s
// take per-quality (I)GDN input scalers, and checks that the model file gives
// them in the layout PyTorch trained them in.
func TestScaledModelGoldens(t *testing.T) {
	m, err := LoadModel(mustRead(t, "../testdata/tiny_scaled.lvcm"))
	if err != nil {
		t.Fatal(err)
	}
	if m.scalersA == nil || m.scalersS == nil {
		t.Fatal("tiny_scaled.lvcm has no scalers")
	}
	checkModelGoldens(t, m, "../testdata/tiny_scaled")
}

// TestContextModelGoldens does the same for a tiny model with a checkerboard
// context (random weights, so its corrections are not zero).
func TestContextModelGoldens(t *testing.T) {
	m, err := LoadModel(mustRead(t, "../testdata/tiny_ctx.lvcm"))
	if err != nil {
		t.Fatal(err)
	}
	if m.ctx == nil {
		t.Fatal("tiny_ctx.lvcm has no checkerboard context")
	}
	checkModelGoldens(t, m, "../testdata/tiny_ctx")
}

// TestAnchorContextModelGoldens does the same for a tiny model with a
// checkerboard and an anchor context: both passes' fixed-point corrections.
func TestAnchorContextModelGoldens(t *testing.T) {
	checkModelGoldens(t, anchorModel(t), "../testdata/tiny_actx")
}

// goldenQuality is train/export.py's GOLDEN_QUALITY: the goldens of a scaled
// model use that quality's scalers.
const goldenQuality = 3

func checkModelGoldens(t *testing.T, m *Model, dir string) {
	t.Helper()
	read := func(name string) *nn.Tensor {
		b, err := os.ReadFile(filepath.Join(dir, name+".pb"))
		if err != nil {
			t.Fatal(err)
		}
		x, err := nn.UnmarshalTensor(b)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	if err := m.loadAnalysis(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		g       *nn.Graph
		scalers [][]float32
		widths  []int
		in, out string
	}{{"g_a", m.gA, m.scalersA, m.widthsA, "g_a.in", "g_a.out"}, {"h_a", m.hA, nil, nil, "g_a.out", "h_a.out"},
		{"g_s", m.gS, m.scalersS, m.widthsS, "g_s.in", "g_s.out"}} {
		for i, s := range layerScalers(c.scalers, c.widths, goldenQuality*256) {
			closeTo(t, fmt.Sprintf("%s scaler %d", c.name, i), s, read(fmt.Sprintf("%s.s%d", c.name, i)).Data, 1e-4)
		}
		got, err := m.runScaled(c.g, read(c.in), c.scalers, c.widths, goldenQuality*256)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, c.name, got.Data, read(c.out).Data, 1e-4)
	}
	in := read("h_s.in")
	q := make([]int32, len(in.Data))
	for i, v := range in.Data {
		q[i] = int32(v) << nn.FixedFracBits
	}
	out, _, err := m.hS.Run(q, in.Shape[1], in.Shape[2], in.Shape[3])
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, len(out))
	for i, v := range out {
		got[i] = float32(v) / (1 << nn.FixedFracBits)
	}
	// Weights and activations rounded to FixedFracBits move h_s's output
	// from PyTorch's float result: by up to 2.5e-4 of its range on hp64l's
	// goldens, under 2e-4 on earlier models'.
	closeTo(t, "h_s (fixed point)", got, read("h_s.out").Data, 4e-4)
	if m.ctx != nil {
		checkContextGoldens(t, m, func(yw, yh int) contextPass { return lastPass(m, yw, yh) },
			read("ctx.yhat"), read("h_s.out"), read("ctx.out"))
	}
	if m.ctxAnchor != nil {
		checkContextGoldens(t, m, func(yw, yh int) contextPass { _, p := m.contextPasses(yw, yh); return p[0] },
			read("ctx_anchor.yhat"), read("h_s.out"), read("ctx_anchor.out"))
	}
}

// checkContextGoldens compares a context pass's fixed-point corrections with
// PyTorch's, given the ŷ at the positions decoded before it and h_s's
// parameters at its targets.
func checkContextGoldens(t *testing.T, m *Model, passOf func(yw, yh int) contextPass, yhat, params, want *nn.Tensor) {
	t.Helper()
	M, h, w := m.Info.M, yhat.Shape[2], yhat.Shape[3]
	plane := h * w
	pass := passOf(w, h)
	isTarget := make([]bool, plane)
	for _, pos := range pass.targets {
		isTarget[pos] = true
	}
	fixed := func(v float32) int64 { return int64(math.Round(float64(v) * (1 << nn.FixedFracBits))) }
	// ŷ is read at the taps and the means at the targets, so with zero
	// symbols the other positions' "means" can carry ŷ.
	sym, means := make([]int32, M*plane), make([]int64, M*plane)
	scales := make([]int32, M*plane)
	for i := range means {
		means[i], scales[i] = fixed(params.Data[i]), int32(fixed(params.Data[M*plane+i]))
		if !isTarget[i%plane] {
			means[i] = fixed(yhat.Data[i])
		}
	}
	d, err := m.contextCorrections(pass, sym, means, scales, w, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, ref := make([]float32, 0, len(d)), make([]float32, 0, len(d))
	for c := range 2 * M {
		for j, pos := range pass.targets {
			got = append(got, float32(d[c*len(pass.targets)+j])/(1<<nn.FixedFracBits))
			ref = append(ref, want.Data[c*plane+int(pos)])
		}
		for i := range plane {
			if !isTarget[i] && want.Data[c*plane+i] != 0 {
				t.Fatalf("%s golden corrects position %d of channel %d, not a target", pass.name, i, c)
			}
		}
	}
	closeTo(t, pass.name+" (fixed point)", got, ref, 2e-4)
}

// closeTo requires max |got-want| <= frac of want's range.
func closeTo(t *testing.T, name string, got, want []float32, frac float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, v := range want {
		lo, hi = min(lo, v), max(hi, v)
	}
	var worst float64
	for i := range got {
		worst = max(worst, math.Abs(float64(got[i]-want[i])))
	}
	if tol := frac * float64(hi-lo); worst > tol {
		t.Errorf("%s: max abs diff %g above %g", name, worst, tol)
	}
}
