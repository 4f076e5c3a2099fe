package codec

import (
	"bytes"
	"image"
	"math/rand/v2"
	"strings"
	"testing"
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
// the inter frames after them (one pass), at sizes whose latent planes are
// odd, even and a single column.
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
	// h_s in CTX's place: a fixed-point chain of the wrong shape.
	var wrong []byte
	for _, sec := range modelSections(ctxModel) {
		if string(sec[:4]) == "H_S " {
			wrong = withSection(ctxModel, "CTX ", sec[8:])
		}
	}
	if _, err := LoadModel(wrong); err == nil || !strings.Contains(err.Error(), "checkerboard context") {
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
	yhat, means := make([]int64, M*plane), make([]int64, M*plane)
	scales := make([]int32, M*plane)
	for i := range yhat {
		yhat[i], means[i] = rng.Int64N(20<<16)-10<<16, rng.Int64N(4<<16)-2<<16
		scales[i] = int32(rng.Int64N(8 << 16))
	}
	_, _, second := checkerboardOrder(M, yw, yh)
	if len(second) <= 2*contextChunk {
		t.Fatalf("%d positions do not make three chunks", len(second))
	}
	all, err := m.contextCorrections(yhat, means, scales, second, yw, yh)
	if err != nil {
		t.Fatal(err)
	}
	for j, pos := range second {
		one, err := m.contextCorrections(yhat, means, scales, []int32{pos}, yw, yh)
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
