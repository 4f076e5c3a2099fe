package codec

import (
	"bytes"
	"image"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/lvc-codec/lvc/entropy"
)

func contextModel(t testing.TB) *Model {
	t.Helper()
	m, err := LoadModel(mustRead(t, "../testdata/tiny_ctx.lvcm"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCheckerboardLatentsExact: with the checkerboard context, the decoder's
// ŷ equals the encoder's bit for bit, in intra frames (two passes) and in
// the inter frames after them (one pass), for latent planes of 8×4, 12×16
// and 4×8 (the stride of 64 makes every side a multiple of 4).
func TestCheckerboardLatentsExact(t *testing.T) {
	m := contextModel(t)
	for _, size := range [][2]int{{70, 40}, {130, 200}, {16, 100}} {
		w, h := size[0], size[1]
		framesExact(t, m, []image.Image{testImage(w, h), shifted(testImage(w, h))}, 2<<8)
	}
}

// TestCheckerboardIsUsed: the context changes how an intra frame is coded.
// The same model without it codes other bytes, and cannot read the file.
func TestCheckerboardIsUsed(t *testing.T) {
	m := contextModel(t)
	img := testImage(70, 40)
	with := encode(t, m, img, 2)
	if _, err := DecodeImage(bytes.NewReader(with), m); err != nil {
		t.Fatal(err)
	}
	ctx := m.ctx
	m.ctx = nil
	defer func() { m.ctx = ctx }()
	if without := encode(t, m, img, 2); bytes.Equal(with, without) {
		t.Fatal("the checkerboard context changes nothing")
	}
	if got, err := DecodeImage(bytes.NewReader(with), m); err == nil {
		m.ctx = ctx
		want, _ := DecodeImage(bytes.NewReader(with), m)
		if bytes.Equal(got.(*image.RGBA).Pix, want.(*image.RGBA).Pix) {
			t.Fatal("a file coded with the context decodes the same without it")
		}
	}
}

func TestCheckerboardModelErrors(t *testing.T) {
	ctxModel := mustRead(t, "../testdata/tiny_ctx.lvcm")
	if _, err := LoadModel(withoutSection(ctxModel, "CTX ")); err == nil || !strings.Contains(err.Error(), "CTX") {
		t.Errorf("checkerboard model without CTX: %v", err)
	}
	noFlag := withMeta(t, ctxModel, func(meta map[string]any) { delete(meta, "checkerboard") })
	if _, err := LoadModel(noFlag); err == nil || !strings.Contains(err.Error(), "CTX") {
		t.Errorf("CTX section without META checkerboard: %v", err)
	}
	// h_s in CTX's place: 3x3 convolutions and depth-to-space.
	var wrong []byte
	for _, sec := range modelSections(ctxModel) {
		if string(sec[:4]) == "H_S " {
			wrong = withSection(ctxModel, "CTX ", sec[8:])
		}
	}
	if _, err := LoadModel(wrong); err == nil || !strings.Contains(err.Error(), "not pointwise") {
		t.Errorf("CTX with 3x3 convolutions: %v", err)
	}
	wrongWidth := withMeta(t, ctxModel, func(meta map[string]any) { meta["checkerboard"] = meta["checkerboard"].(float64) + 1 })
	if _, err := LoadModel(wrongWidth); err == nil || !strings.Contains(err.Error(), "hidden width") {
		t.Errorf("META checkerboard not CTX's width: %v", err)
	}
	// A pointwise network of other channel counts.
	other := withSection(ctxModel, "CTX ", mustRead(t, "../testdata/nn/conv1x1_nobias.onnx"))
	if _, err := LoadModel(other); err == nil || !strings.Contains(err.Error(), "does not map") {
		t.Errorf("CTX of the wrong shape: %v", err)
	}
}

// TestContextChunksArePositionwise: the context network runs on chunks of
// positions; every position's corrections must be what it gets alone.
func TestContextChunksArePositionwise(t *testing.T) {
	m := contextModel(t)
	const yw, yh = 31, 19 // 294 second-pass positions: three chunks, the last partial
	M, plane := m.Info.M, yw*yh
	rng := rand.New(rand.NewPCG(1, 2))
	sym, means := make([]int32, M*plane), make([]int64, M*plane)
	scales := make([]int32, M*plane)
	for i := range sym {
		sym[i], means[i] = int32(rng.IntN(21))-10, rng.Int64N(4<<16)-2<<16
		scales[i] = int32(rng.Int64N(8 << 16))
	}
	_, _, second := checkerboardOrder(M, yw, yh)
	if len(second) <= 2*contextChunk {
		t.Fatalf("%d positions do not make three chunks", len(second))
	}
	all, err := m.contextCorrections(sym, means, scales, second, yw, yh)
	if err != nil {
		t.Fatal(err)
	}
	for j, pos := range second {
		one, err := m.contextCorrections(sym, means, scales, []int32{pos}, yw, yh)
		if err != nil {
			t.Fatal(err)
		}
		for c := range 2 * M {
			if one[c] != all[c*len(second)+j] {
				t.Fatalf("position %d, output %d: %d in a chunk, %d alone", pos, c, all[c*len(second)+j], one[c])
			}
		}
	}
}

// TestCheckerboardCodesAroundCorrectedMeans: an intra frame's ŷ lies within
// half a step of y everywhere, so the second pass's symbols were taken
// around the corrected means; and applyContext moves exactly the
// second-pass means and tables, by the network's corrections.
func TestCheckerboardCodesAroundCorrectedMeans(t *testing.T) {
	m := contextModel(t)
	img := testImage(70, 40)
	const q256 = 2 << 8
	pw, ph, yw, yh, _, _ := m.latentGeometry(70, 40)
	if err := m.loadAnalysis(); err != nil {
		t.Fatal(err)
	}
	y, err := m.runScaled(m.gA, imageToTensor(img, pw, ph), m.scalersA, m.widthsA, q256)
	if err != nil {
		t.Fatal(err)
	}
	// The graph reuses its output buffer, which encodeFrame scales in place.
	yData := append([]float32(nil), y.Data...)
	ge := gain(m.gainEnc, q256)
	var enc entropy.Encoder
	_, _, lat, _, err := m.encodeFrame(img, q256, &enc, nil, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	plane := yw * yh
	for i, v := range lat.Data {
		if d := math.Abs(float64(v) - float64(yData[i]*ge[i/plane])); d > 0.5+1e-4 {
			t.Fatalf("latent %d: ŷ %v is %v from y", i, v, d)
		}
	}

	M := m.Info.M
	rng := rand.New(rand.NewPCG(3, 4))
	sym, means := make([]int32, M*plane), make([]int64, M*plane)
	scales, tables := make([]int32, M*plane), make([]uint16, M*plane)
	for i := range sym {
		sym[i], means[i], scales[i] = int32(rng.IntN(9))-4, rng.Int64N(4<<16)-2<<16, int32(rng.Int64N(8<<16))
	}
	_, _, second := checkerboardOrder(M, yw, yh)
	d, err := m.contextCorrections(sym, means, scales, second, yw, yh)
	if err != nil {
		t.Fatal(err)
	}
	newMeans := append([]int64(nil), means...)
	if err := m.applyContext(sym, newMeans, scales, tables, second, yw, yh); err != nil {
		t.Fatal(err)
	}
	isSecond := make([]bool, plane)
	for _, pos := range second {
		isSecond[pos] = true
	}
	moved := 0
	for c := range M {
		for pos := range plane {
			i := c*plane + pos
			if !isSecond[pos] {
				if newMeans[i] != means[i] || tables[i] != 0 {
					t.Fatalf("anchor %d changed", i)
				}
				continue
			}
			j := slices.Index(second, int32(pos))
			dm, ds := int64(d[c*len(second)+j]), int64(d[(M+c)*len(second)+j])
			if newMeans[i] != means[i]+dm || tables[i] != m.scaleIdx.Index(int64(scales[i])+ds) {
				t.Fatalf("element %d: mean %d table %d, want %d and %d", i, newMeans[i], tables[i], means[i]+dm, m.scaleIdx.Index(int64(scales[i])+ds))
			}
			if dm != 0 {
				moved++
			}
		}
	}
	if moved == 0 {
		t.Fatal("the context moved no mean")
	}
}
