package codec

import (
	"bytes"
	"image"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/lvc-codec/lvc/entropy"
	"github.com/lvc-codec/lvc/models"
	"github.com/lvc-codec/lvc/nn"
)

// rdCost is λ·255²·MSE + bits per pixel of a coded image, the cost
// refinement lowers (file bytes, header included: the same for both files).
func rdCost(t *testing.T, m *Model, img *image.RGBA, data []byte, q int) float64 {
	t.Helper()
	out, err := DecodeImage(bytes.NewReader(data), m)
	if err != nil {
		t.Fatal(err)
	}
	dec := out.(*image.RGBA)
	var sse float64
	for i, v := range img.Pix {
		if i%4 != 3 {
			d := float64(v) - float64(dec.Pix[i])
			sse += d * d
		}
	}
	b := img.Bounds()
	pixels := float64(b.Dx() * b.Dy())
	return m.Info.Lambdas[q]*sse/(3*pixels) + float64(8*len(data))/pixels
}

func TestRefinementLowersCost(t *testing.T) {
	for _, path := range []string{"../testdata/tiny.lvcm", "../testdata/tiny_scaled.lvcm", "shipped"} {
		data := models.Default
		if path != "shipped" {
			data = mustRead(t, path)
		}
		m, err := LoadModel(data)
		if err != nil {
			t.Fatal(err)
		}
		img := testImage(150, 90)
		for _, q := range []int{0, m.Info.Qualities - 1} {
			code := func(steps int) []byte {
				var buf bytes.Buffer
				if err := EncodeImage(&buf, m, img, Options{Quality: float64(q), RefineSteps: steps}); err != nil {
					t.Fatal(err)
				}
				return buf.Bytes()
			}
			plain, refined := code(0), code(30)
			before, after := rdCost(t, m, img, plain, q), rdCost(t, m, img, refined, q)
			t.Logf("%s q%d: cost %.4f -> %.4f, %d -> %d bytes", path, q, before, after, len(plain), len(refined))
			if !(after < before) {
				t.Errorf("%s q%d: refinement raised the rate-distortion cost from %.4f to %.4f", path, q, before, after)
			}
			if again := code(30); !bytes.Equal(again, refined) {
				t.Errorf("%s q%d: two refined encodes differ", path, q)
			}
		}
	}
}

// With every step far too long, each iterate costs more than the
// analysis's latents, and those are what the encoder codes.
func TestRefinementKeepsTheCheapestIterate(t *testing.T) {
	m, err := LoadModel(models.Default)
	if err != nil {
		t.Fatal(err)
	}
	img := testImage(150, 90)
	code := func(steps int) []byte {
		var buf bytes.Buffer
		if err := EncodeImage(&buf, m, img, Options{Quality: 3, RefineSteps: steps}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	plain := code(0)
	saved := refineLearningRate
	refineLearningRate = 50
	defer func() { refineLearningRate = saved }()
	if overshot := code(5); !bytes.Equal(overshot, plain) {
		t.Errorf("refinement with overshooting steps wrote %d bytes, not the unrefined file's %d", len(overshot), len(plain))
	}
}

// TestRefinementIgnoresCoreCount encodes an image with more latents than one
// noise chunk on 1 and on 4 threads.
func TestRefinementIgnoresCoreCount(t *testing.T) {
	m := tinyModel(t)
	img := testImage(1410, 1000)
	if n := m.Info.M * (1472 / 16) * (1024 / 16); n <= refineChunk {
		t.Fatalf("%d latents: no more than one noise chunk", n)
	}
	code := func(procs int) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		var buf bytes.Buffer
		if err := EncodeImage(&buf, m, img, Options{Quality: 3, RefineSteps: 30}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	if !bytes.Equal(code(1), code(4)) {
		t.Error("the refined file depends on the number of cores")
	}
}

func TestRefineStepsBounds(t *testing.T) {
	m := tinyModel(t)
	for _, steps := range []int{-1, MaxRefineSteps + 1} {
		if _, err := NewEncoder(&bytes.Buffer{}, m, 16, 16, 0, Options{RefineSteps: steps}); err == nil {
			t.Errorf("RefineSteps %d: no error", steps)
		}
	}
}

// TestRefinementNeedsAGaussianModel: refinement prices rates under a
// Gaussian, so a Laplace model refuses it by name.
func TestRefinementNeedsAGaussianModel(t *testing.T) {
	m, err := LoadModel(withMeta(t, mustRead(t, "../testdata/tiny.lvcm"), func(meta map[string]any) { meta["family"] = "laplace" }))
	if err != nil {
		t.Fatal(err)
	}
	err = EncodeImage(&bytes.Buffer{}, m, testImage(70, 40), Options{Quality: 3, RefineSteps: 2})
	if err == nil || !strings.Contains(err.Error(), `not family "laplace"`) {
		t.Errorf("refinement with a Laplace model: %v", err)
	}
}

// The step stays 0.005 up to the knee, where the rate still matters, and
// grows with λ above it, continuously.
func TestRefineFirstStep(t *testing.T) {
	for _, c := range []struct{ lambda, want float64 }{
		{0.0004, 0.005}, {0.06, 0.005}, {refineKneeLambda, 0.005}, {2 * refineKneeLambda, 0.01}, {0.45, 0.036},
	} {
		if got := refineFirstStep(c.lambda); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("refineFirstStep(%v) = %v, want %v", c.lambda, got, c.want)
		}
	}
}

// roundedBits rounds each latent around its mean before pricing it, and
// prices a latent far out in the tail at the likelihood bound.
func TestRoundedBits(t *testing.T) {
	y := []float32{2.4, -0.3, 100}
	mean := []float64{0.1, 0.4, 0}
	sigma := []float64{1, 0.5, 0.11}
	// round(2.3) = 2 under σ 1: P = Φ(2.5) − Φ(1.5); round(−0.7) = −1 under σ 0.5: Φ(3) − Φ(1).
	want := -math.Log2(0.99379033-0.93319280) - math.Log2(0.99865010-0.84134475) - math.Log2(1e-9)
	if got := roundedBits(y, mean, sigma); math.Abs(got-want) > 1e-5 {
		t.Errorf("roundedBits = %v, want %v", got, want)
	}
}

func TestBitsSlope(t *testing.T) {
	bits := func(r, sigma float64) float64 {
		a := math.Abs(r)
		p := 0.5*math.Erfc(-(0.5-a)/sigma/math.Sqrt2) - 0.5*math.Erfc(-(-0.5-a)/sigma/math.Sqrt2)
		return -math.Log2(p)
	}
	for _, c := range []struct{ r, sigma float64 }{{0.3, 1}, {-1.7, 0.5}, {4, 3}, {-0.2, 0.11}, {12, 40}} {
		const h = 1e-5
		want := (bits(c.r+h, c.sigma) - bits(c.r-h, c.sigma)) / (2 * h)
		if got := bitsSlope(c.r, c.sigma); math.Abs(got-want) > 1e-4*math.Max(1, math.Abs(want)) {
			t.Errorf("bitsSlope(%v, %v) = %v, numerically %v", c.r, c.sigma, got, want)
		}
	}
	if got := bitsSlope(30, 0.11); got != 0 {
		t.Errorf("beyond the likelihood bound: slope %v, want 0", got)
	}
}

// Inter frames are coded around the previous frame's latents, which the
// refinement's cost does not model: they are left alone.
func TestRefinementSkipsInterFrames(t *testing.T) {
	m := tinyModel(t)
	var enc entropy.Encoder
	img := testImage(150, 90)
	_, plain, ref := intraThenInter(t, m, img, 3<<8, &enc)
	refined, _, _, _, err := m.encodeFrame(img, 3<<8, &enc, ref, 30, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range plain {
		if !bytes.Equal(plain[i], refined[i]) {
			t.Errorf("sub-stream %d of an inter frame changed with refinement", i)
		}
	}
}

// TestRefinementFollowsContext: with a checkerboard context, refinement
// prices each latent after the first pass under the mean and scale the
// encoder will code it with, derived from the current earlier passes, and
// leaves the first pass's under the hyperprior's; with and without an
// anchor context.
func TestRefinementFollowsContext(t *testing.T) {
	refinementFollowsContext(t, contextModel(t))
	refinementFollowsContext(t, anchorModel(t))
}

func refinementFollowsContext(t *testing.T, m *Model) {
	const yw, yh = 8, 6
	M, plane := m.Info.M, yw*yh
	rng := rand.New(rand.NewPCG(5, 6))
	means, scales := make([]int32, M*plane), make([]int32, M*plane)
	tables := make([]uint16, M*plane)
	y := make([]float32, M*plane)
	mean, sigma := make([]float64, M*plane), make([]float64, M*plane)
	for i := range y {
		means[i], scales[i] = int32(rng.Int64N(4<<16)-2<<16), int32(rng.Int64N(8<<16))
		tables[i] = m.scaleIdx.Index(int64(scales[i]))
		y[i] = float32(means[i])/(1<<nn.FixedFracBits) + float32(rng.IntN(7)-3)
		mean[i], sigma[i] = float64(means[i])/(1<<nn.FixedFracBits), m.Info.Scales[tables[i]]
	}
	hyperMean, hyperSigma := append([]float64(nil), mean...), append([]float64(nil), sigma...)
	update := m.refineContext(means, scales, tables, yw, yh)
	// What encodeFrame codes y with: symbols around the hyperprior's means,
	// then each later pass's corrections and its symbols around them.
	encoderPriors := func() ([]int64, []uint16) {
		sym, corrected := make([]int32, len(y)), make([]int64, len(y))
		tab := append([]uint16(nil), tables...)
		for i, v := range y {
			sym[i] = clampSymbol(v - float32(means[i])/(1<<nn.FixedFracBits))
			corrected[i] = int64(means[i])
		}
		_, passes := m.contextPasses(yw, yh)
		for _, pass := range passes {
			if err := m.applyContext(pass, sym, corrected, scales, tab, yw, yh, nil); err != nil {
				t.Fatal(err)
			}
			for _, i := range inEveryChannel(pass.targets, M, yw*yh, nil) {
				sym[i] = symbolAround(y[i], corrected[i])
			}
		}
		return corrected, tab
	}
	first, _ := m.contextPasses(yw, yh)
	isFirst := make([]bool, plane)
	for _, pos := range first {
		isFirst[pos] = true
	}
	check := func() []float64 {
		if err := update(y, mean, sigma); err != nil {
			t.Fatal(err)
		}
		corrected, tab := encoderPriors()
		for i := range y {
			wantMean, wantSigma := float64(corrected[i])/(1<<nn.FixedFracBits), m.Info.Scales[tab[i]]
			if isFirst[i%plane] {
				wantMean, wantSigma = hyperMean[i], hyperSigma[i]
			}
			if mean[i] != wantMean || sigma[i] != wantSigma {
				t.Fatalf("latent %d: refinement prices it at mean %v scale %v, the encoder codes it at %v, %v", i, mean[i], sigma[i], wantMean, wantSigma)
			}
		}
		return append([]float64(nil), mean...)
	}
	before := check()
	// Moving one anchor (a first one, row and column even) moves the priors
	// of the positions beside it and only those; with an anchor context
	// also those of the later anchors at its corners, whose symbols then
	// move the priors beside them.
	const anchor = 2*yw + 4
	y[anchor] += 3
	after := check()
	beside := map[int]bool{}
	reach := func(p int, taps [4][2]int) {
		for _, tap := range taps {
			beside[p+tap[0]*yw+tap[1]] = true
		}
	}
	reach(anchor, neighbours)
	if m.ctxAnchor != nil {
		reach(anchor, corners)
		for _, c := range corners {
			reach(anchor+c[0]*yw+c[1], neighbours)
		}
	}
	delete(beside, anchor)
	moved := 0
	for i := range after {
		if after[i] != before[i] {
			if !beside[i%plane] {
				t.Fatalf("latent %d (position %d) moved with the anchor at %d", i, i%plane, anchor)
			}
			moved++
		}
	}
	if moved == 0 {
		t.Error("moving an anchor moved no second-pass prior")
	}
}
