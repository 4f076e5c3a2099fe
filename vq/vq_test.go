package vq

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func randomValues(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

func TestNearestIsTheClosestEntry(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dim := range []int{1, 3, 8, 16} {
		cb, err := NewCodebook(dim, randomValues(rng, 64*dim))
		if err != nil {
			t.Fatal(err)
		}
		for range 500 {
			v := randomValues(rng, dim)
			got, d := cb.Nearest(v)
			if want := sqDist(cb.Entry(got), v); d != want {
				t.Fatalf("dim %d: Nearest reports distance %v, entry %d is at %v", dim, d, got, want)
			}
			for i := range cb.Size() {
				// The search ranks by |e|²/2 - e·v, whose rounding differs
				// from |e - v|²'s, so allow a relative slack.
				if e := sqDist(cb.Entry(i), v); e < d*(1-1e-5)-1e-6 {
					t.Fatalf("dim %d: Nearest chose entry %d at %v, entry %d is at %v", dim, got, d, i, e)
				}
			}
		}
	}
}

func TestNearestPrefersTheLowestIndexAmongEquals(t *testing.T) {
	cb, err := NewCodebook(2, []float32{1, 0, -1, 0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if i, _ := cb.Nearest([]float32{0, 0}); i != 0 {
		t.Errorf("three entries equally far: got %d, want 0", i)
	}
}

func TestQuantizeThenLookup(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cb, err := NewCodebook(4, randomValues(rng, 32*4))
	if err != nil {
		t.Fatal(err)
	}
	vectors := randomValues(rng, 100*4)
	indices := make([]int32, 100)
	sse, err := cb.Quantize(indices, vectors)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(vectors))
	if err := cb.Lookup(out, indices); err != nil {
		t.Fatal(err)
	}
	var want float64
	for i := range out {
		d := float64(out[i] - vectors[i])
		want += d * d
	}
	if math.Abs(sse-want) > 1e-4*want {
		t.Errorf("Quantize's error %v, the looked-up vectors' %v", sse, want)
	}
	if _, err := cb.Quantize(indices, vectors[:5]); err == nil {
		t.Error("Quantize took 5 values for 100 vectors")
	}
}

func TestLookupRejectsIndicesOutsideTheCodebook(t *testing.T) {
	cb, err := NewCodebook(2, []float32{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []int32{-1, 2, math.MaxInt32} {
		err := cb.Lookup(make([]float32, 4), []int32{0, bad})
		if !errors.Is(err, ErrIndex) {
			t.Errorf("index %d: error %v, want ErrIndex", bad, err)
		}
	}
	if err := cb.Lookup(make([]float32, 3), []int32{0, 1}); err == nil {
		t.Error("Lookup wrote 2 vectors of 2 into 3 values")
	}
}

func TestNewCodebookRejectsBadShapesAndValues(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		name    string
		dim     int
		entries []float32
		want    string
	}{
		{"zero length", 0, []float32{1}, "vector length"},
		{"too long", MaxDim + 1, make([]float32, MaxDim+1), "vector length"},
		{"empty", 2, nil, "whole number"},
		{"ragged", 2, []float32{1, 2, 3}, "whole number"},
		{"too many", 1, make([]float32, MaxSize+1), "more than"},
		{"NaN", 2, []float32{0, 0, 1, float32(math.NaN())}, "entry 1"},
		{"infinite", 2, []float32{inf, 0}, "entry 0"},
		{"overflowing norm", 2, []float32{3e38, 3e38}, "too large"},
	} {
		if _, err := NewCodebook(tc.dim, tc.entries); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	cb, err := NewCodebook(6, randomValues(rng, 10*6))
	if err != nil {
		t.Fatal(err)
	}
	b, err := cb.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalCodebook(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Dim() != 6 || back.Size() != 10 || !slices.Equal(back.entries, cb.entries) {
		t.Errorf("round trip changed the codebook: %d×%d", back.Size(), back.Dim())
	}
}

func TestUnmarshalNamesTheProblem(t *testing.T) {
	cb, _ := NewCodebook(2, []float32{1, 2, 3, 4})
	good, _ := cb.MarshalBinary()
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short", good[:5], "shorter than its"},
		{"magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), "not a codebook"},
		{"version", edit(func(b []byte) []byte { b[4] = 9; return b }), "version 9"},
		{"zero length", edit(func(b []byte) []byte { b[5], b[6] = 0, 0; return b }), "outside"},
		{"huge size", edit(func(b []byte) []byte { b[7], b[8], b[9], b[10] = 255, 255, 255, 255; return b }), "outside"},
		{"truncated", good[:len(good)-1], "needs 27 bytes, has 26"},
		{"trailing", append(bytes.Clone(good), 0), "needs 27 bytes, has 28"},
		{"NaN", edit(func(b []byte) []byte { copy(b[len(b)-4:], []byte{0, 0, 0xc0, 0x7f}); return b }), "entry 1"},
	} {
		if _, err := UnmarshalCodebook(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// mixture draws n vectors around centers with Gaussian noise of the given
// standard deviation, cycling through the centers.
func mixture(rng *rand.Rand, centers [][]float32, n int, sigma float64) []float32 {
	dim := len(centers[0])
	v := make([]float32, 0, n*dim)
	for k := range n {
		for _, c := range centers[k%len(centers)] {
			v = append(v, c+float32(sigma*rng.NormFloat64()))
		}
	}
	return v
}

func TestTrainFindsTheClusters(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	centers := make([][]float32, 8)
	for i := range centers {
		centers[i] = randomValues(rng, 4)
		for j := range centers[i] {
			centers[i][j] *= 10
		}
	}
	const sigma = 0.1
	vectors := mixture(rng, centers, 4000, sigma)
	cb, stats, err := Train(vectors, 4, TrainOptions{Size: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !stats.Converged {
		t.Errorf("no convergence in %d iterations", stats.Iterations)
	}
	for i, c := range centers {
		if _, d := cb.Nearest(c); d > 0.01 {
			t.Errorf("center %d is %v (squared) from every entry", i, d)
		}
	}
	if stats.MSE > 1.1*sigma*sigma || stats.MSE < 0.9*sigma*sigma {
		t.Errorf("MSE %v, want the noise's %v", stats.MSE, sigma*sigma)
	}
}

func TestLloydIterationsLowerTheError(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	vectors := randomValues(rng, 5000*4)
	_, seeded, err := Train(vectors, 4, TrainOptions{Size: 64, MaxIterations: 1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	_, trained, err := Train(vectors, 4, TrainOptions{Size: 64, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if trained.Iterations < 2 || trained.MSE > 0.9*seeded.MSE {
		t.Errorf("%d iterations reach MSE %v, one reaches %v", trained.Iterations, trained.MSE, seeded.MSE)
	}
}

func TestTrainIgnoresCoreCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	vectors := randomValues(rng, 3*chunk*2+17*2)
	train := func(procs int) []float32 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		cb, _, err := Train(vectors, 2, TrainOptions{Size: 32, MaxIterations: 10, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		return cb.entries
	}
	if !slices.Equal(train(1), train(4)) {
		t.Error("1 and 4 cores train different codebooks")
	}
}

func TestTrainOnTooFewDistinctVectors(t *testing.T) {
	vectors := []float32{1, 1, 1, 1, 1, 1, 2, 2}
	cb, stats, err := Train(vectors, 2, TrainOptions{Size: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if stats.MSE != 0 {
		t.Errorf("two distinct vectors, three entries: MSE %v", stats.MSE)
	}
	if cb.Size() != 3 {
		t.Errorf("size %d", cb.Size())
	}
}

func TestTrainRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vectors []float32
		dim     int
		size    int
		want    string
	}{
		{"zero length", []float32{1}, 0, 1, "vector length"},
		{"ragged", []float32{1, 2, 3}, 2, 1, "whole number"},
		{"size zero", []float32{1, 2}, 2, 0, "codebook size"},
		{"size too big", []float32{1, 2}, 2, MaxSize + 1, "codebook size"},
		{"too few vectors", []float32{1, 2, 3, 4}, 2, 3, "2 training vectors for 3"},
		{"NaN", []float32{1, 2, float32(math.NaN()), 4}, 2, 1, "training vector 1"},
	} {
		if _, _, err := Train(tc.vectors, tc.dim, TrainOptions{Size: tc.size}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
