package codec

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/lvc-codec/lvc/models"
	"github.com/lvc-codec/lvc/nn"
)

// TestShippedModelGoldens runs each network of the embedded model on the
// inputs train/export.py wrote to testdata/default and compares with
// PyTorch's outputs (max abs diff <= 1e-4 of the output range; h_s runs in
// fixed point). The goldens name the model ID they were made for.
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
	for _, c := range []struct {
		name    string
		g       *nn.Graph
		in, out string
	}{{"g_a", m.gA, "g_a.in", "g_a.out"}, {"h_a", m.hA, "g_a.out", "h_a.out"}, {"g_s", m.gS, "g_s.in", "g_s.out"}} {
		got, err := c.g.Run(read(c.in))
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, c.name, got.Data, read(c.out).Data)
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
	closeTo(t, "h_s (fixed point)", got, read("h_s.out").Data)
}

func closeTo(t *testing.T, name string, got, want []float32) {
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
	if tol := 1e-4 * float64(hi-lo); worst > tol {
		t.Errorf("%s: max abs diff %g above %g", name, worst, tol)
	}
}
