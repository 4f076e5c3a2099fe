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
	"github.com/lvc-codec/lvc/nn"
)

// passOrder is the coding order of y's elements in an intra frame of a
// model with a checkerboard context: the first pass, then each later one.
func passOrder(m *Model, yw, yh int) []int32 {
	first, passes := m.contextPasses(yw, yh)
	order := inEveryChannel(first, m.Info.M, yw*yh, nil)
	for _, pass := range passes {
		order = append(order, inEveryChannel(pass.targets, m.Info.M, yw*yh, nil)...)
	}
	return order
}

// lastPass is the checkerboard's second pass.
func lastPass(m *Model, yw, yh int) contextPass {
	_, passes := m.contextPasses(yw, yh)
	return passes[len(passes)-1]
}

func contextModel(t testing.TB) *Model {
	t.Helper()
	m, err := LoadModel(mustRead(t, "../testdata/tiny_ctx.lvcm"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func anchorModel(t testing.TB) *Model {
	t.Helper()
	m, err := LoadModel(mustRead(t, "../testdata/tiny_actx.lvcm"))
	if err != nil {
		t.Fatal(err)
	}
	if m.ctxAnchor == nil {
		t.Fatal("tiny_actx.lvcm has no anchor context")
	}
	return m
}

// TestContextPassesCoverThePlane: the passes split a latent plane between
// them, and every tap a pass reads lies in an earlier pass (or outside the
// plane), for planes of odd and even sides, with and without an anchor
// context.
func TestContextPassesCoverThePlane(t *testing.T) {
	for _, m := range []*Model{contextModel(t), anchorModel(t)} {
		for _, size := range [][2]int{{1, 1}, {5, 3}, {8, 6}, {7, 9}} {
			yw, yh := size[0], size[1]
			first, passes := m.contextPasses(yw, yh)
			if want := 1 + btoi(m.ctxAnchor != nil); len(passes) != want {
				t.Fatalf("%d passes after the first, want %d", len(passes), want)
			}
			pass := make([]int, yw*yh) // 1 + the pass coding each position
			for _, p := range first {
				pass[p] = 1
			}
			for k, ps := range passes {
				for _, p := range ps.targets {
					if pass[p] != 0 {
						t.Fatalf("%dx%d: position %d in two passes", yw, yh, p)
					}
					pass[p] = k + 2
				}
			}
			for k, ps := range passes {
				for _, p := range ps.targets {
					for _, tap := range ps.taps {
						r, c := int(p)/yw+tap[0], int(p)%yw+tap[1]
						if r >= 0 && r < yh && c >= 0 && c < yw && pass[r*yw+c] > k+1 {
							t.Fatalf("%dx%d: %s reads position %d, coded after it", yw, yh, ps.name, r*yw+c)
						}
					}
				}
			}
			for p, k := range pass {
				if k == 0 {
					t.Fatalf("%dx%d: position %d in no pass", yw, yh, p)
				}
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestPassesDecodeExactly: y coded in passes with many non-zero symbols
// (the tiny models' own latents round to the means) decodes to the
// encoder's symbols, means and tables, with and without an anchor context,
// so no pass reads a position the decoder has not decoded yet.
func TestPassesDecodeExactly(t *testing.T) {
	for _, m := range []*Model{contextModel(t), anchorModel(t)} {
		const yw, yh, q256 = 9, 7, 3 << 8
		M, plane := m.Info.M, yw*yh
		rng := rand.New(rand.NewPCG(7, 8))
		means, scales := make([]int64, M*plane), make([]int32, M*plane)
		tables := make([]uint16, M*plane)
		y, sym := make([]float32, M*plane), make([]int32, M*plane)
		for i := range y {
			means[i], scales[i] = rng.Int64N(4<<16)-2<<16, int32(rng.Int64N(8<<16))
			tables[i] = m.scaleIdx.Index(int64(scales[i]))
			y[i] = float32(means[i])/(1<<nn.FixedFracBits) + float32(rng.NormFloat64()*4)
		}
		encMeans, encTables := slices.Clone(means), slices.Clone(tables)
		for i, v := range y {
			sym[i] = symbolAround(v, encMeans[i])
		}
		order, err := m.codeInPasses(y, sym, encMeans, scales, encTables, yw, yh)
		if err != nil {
			t.Fatal(err)
		}
		nonzero := 0
		for _, v := range sym {
			nonzero += btoi(v != 0)
		}
		if nonzero < len(sym)/2 {
			t.Fatalf("only %d of %d symbols are non-zero", nonzero, len(sym))
		}
		coded := slices.Clone(encTables)
		m.toTableSet(coded, q256)
		var enc entropy.Encoder
		stream, err := enc.EncodeParts(nil, entropy.Part{Values: permute(sym, order), Tables: permute(coded, order), Set: m.tablesY})
		if err != nil {
			t.Fatal(err)
		}
		got := make([]int32, len(sym))
		if err := m.decodePasses(stream, got, means, scales, tables, q256, yw, yh, nil); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, sym) || !slices.Equal(means, encMeans) || !slices.Equal(tables, encTables) {
			t.Fatalf("anchor context %v: the decoder's symbols, means or tables differ from the encoder's", m.ctxAnchor != nil)
		}
		// Each pass took its symbols around its corrected means.
		for i, v := range y {
			yhat := float64(int64(got[i])<<nn.FixedFracBits+means[i]) / (1 << nn.FixedFracBits)
			if d := math.Abs(yhat - float64(v)); d > 0.5+1e-4 {
				t.Fatalf("anchor context %v, latent %d: ŷ %v is %v from y", m.ctxAnchor != nil, i, yhat, d)
			}
		}
	}
}

// TestAnchorContextIsUsed: the anchor context changes how an intra frame is
// coded. The same model without it codes other bytes, and does not decode
// the file to the same pixels.
func TestAnchorContextIsUsed(t *testing.T) {
	m := anchorModel(t)
	img := testImage(70, 40)
	with := encode(t, m, img, 2)
	want, err := DecodeImage(bytes.NewReader(with), m)
	if err != nil {
		t.Fatal(err)
	}
	anchor := m.ctxAnchor
	m.ctxAnchor = nil
	defer func() { m.ctxAnchor = anchor }()
	if without := encode(t, m, img, 2); bytes.Equal(with, without) {
		t.Fatal("the anchor context changes nothing")
	}
	if got, err := DecodeImage(bytes.NewReader(with), m); err == nil && bytes.Equal(got.(*image.RGBA).Pix, want.(*image.RGBA).Pix) {
		t.Fatal("a file coded with the anchor context decodes the same without it")
	}
}

func TestAnchorContextModelErrors(t *testing.T) {
	model := mustRead(t, "../testdata/tiny_actx.lvcm")
	for _, c := range []struct {
		name string
		file []byte
		want string
	}{
		{"without CTXA", withoutSection(model, "CTXA"), "CTXA"},
		{"without META anchor_context", withMeta(t, model, func(meta map[string]any) { delete(meta, "anchor_context") }), "CTXA"},
		{"without a checkerboard", withoutSection(withMeta(t, model, func(meta map[string]any) { delete(meta, "checkerboard") }), "CTX "), "without a checkerboard"},
		{"of another width", withMeta(t, model, func(meta map[string]any) { meta["anchor_context"] = meta["anchor_context"].(float64) + 1 }), "hidden width"},
		{"of a negative width", withMeta(t, model, func(meta map[string]any) { meta["anchor_context"] = -3 }), "anchor_context -3"},
		{"wider than any model", withMeta(t, model, func(meta map[string]any) { meta["anchor_context"] = 1025 }), "anchor_context 1025"},
		{"of the wrong shape", withSection(model, "CTXA", mustRead(t, "../testdata/nn/conv1x1_nobias.onnx")), "does not map"},
	} {
		if _, err := LoadModel(c.file); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("anchor context model %s: %v, want an error naming %q", c.name, err, c.want)
		}
	}
}

// TestCheckerboardLatentsExact: with the checkerboard context, and with an
// anchor context too, the decoder's ŷ equals the encoder's bit for bit, in
// intra frames (two or three passes) and in the inter frames after them
// (one pass), for latent planes of 8×4, 12×16 and 4×8 (the stride of 64
// makes every side a multiple of 4).
func TestCheckerboardLatentsExact(t *testing.T) {
	for _, m := range []*Model{contextModel(t), anchorModel(t)} {
		for _, size := range [][2]int{{70, 40}, {130, 200}, {16, 100}} {
			w, h := size[0], size[1]
			framesExact(t, m, []image.Image{testImage(w, h), shifted(testImage(w, h))}, 2<<8)
		}
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
	pass := lastPass(m, yw, yh)
	second := pass.targets
	if len(second) <= 2*contextChunk {
		t.Fatalf("%d positions do not make three chunks", len(second))
	}
	all, err := m.contextCorrections(pass, sym, means, scales, yw, yh, nil)
	if err != nil {
		t.Fatal(err)
	}
	for j, pos := range second {
		alone := pass
		alone.targets = []int32{pos}
		one, err := m.contextCorrections(alone, sym, means, scales, yw, yh, nil)
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
	pass := lastPass(m, yw, yh)
	second := pass.targets
	d, err := m.contextCorrections(pass, sym, means, scales, yw, yh, nil)
	if err != nil {
		t.Fatal(err)
	}
	newMeans := append([]int64(nil), means...)
	if err := m.applyContext(pass, sym, newMeans, scales, tables, yw, yh, nil); err != nil {
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
