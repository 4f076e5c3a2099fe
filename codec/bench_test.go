package codec

import (
	"bytes"
	"image"
	_ "image/png"
	"os"
	"testing"

	"github.com/lvc-codec/lvc/container"
	"github.com/lvc-codec/lvc/entropy"
	"github.com/lvc-codec/lvc/models"
)

// benchSetup loads the shipped model, or the model file LVC_BENCH_MODEL
// names (to time a candidate before shipping it), and the 768x512 Kodak
// sample.
func benchSetup(b testing.TB) (*Model, image.Image) {
	data := models.Default
	if path := os.Getenv("LVC_BENCH_MODEL"); path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			b.Fatal(err)
		}
	}
	m, err := LoadModel(data)
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Open("../testdata/sample.png")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		b.Fatal(err)
	}
	return m, img
}

// BenchmarkLoadModel times a decoder's start-up: LoadModel of the shipped
// model, which checks every network and compiles those a decode runs.
func BenchmarkLoadModel(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		if _, err := LoadModel(models.Default); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode and BenchmarkDecode time one 768x512 Kodak image with the
// shipped model; pixels/s is reported as MB/s of RGB input.
func BenchmarkEncode(b *testing.B) { benchEncode(b, Options{Quality: 4}) }

// BenchmarkEncodeRefine times an encode with 10 refinement steps; against
// BenchmarkEncode it gives the cost of one step.
func BenchmarkEncodeRefine(b *testing.B) { benchEncode(b, Options{Quality: 4, RefineSteps: 10}) }

func benchEncode(b *testing.B, opts Options) {
	m, img := benchSetup(b)
	b.SetBytes(int64(3 * img.Bounds().Dx() * img.Bounds().Dy()))
	for range b.N {
		if err := EncodeImage(&bytes.Buffer{}, m, img, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	m, img := benchSetup(b)
	var buf bytes.Buffer
	if err := EncodeImage(&buf, m, img, Options{Quality: 4}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(3 * img.Bounds().Dx() * img.Bounds().Dy()))
	b.ResetTimer()
	for range b.N {
		if _, err := DecodeImage(bytes.NewReader(buf.Bytes()), m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeLatents decodes a frame's ŷ without the synthesis: entropy
// decoding, h_s and, for a model with one, the checkerboard context. It is
// what a perception pipeline reading latents pays.
func BenchmarkDecodeLatents(b *testing.B) {
	m, img := benchSetup(b)
	var enc entropy.Encoder
	streams, _, _, _, err := m.encodeFrame(img, 4<<8, &enc, nil, 0, false)
	if err != nil {
		b.Fatal(err)
	}
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	b.ResetTimer()
	for range b.N {
		if _, _, err := m.decodeLatents(container.Intra, streams, w, h, 4<<8, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEntropyDecodeKodak decodes the y sub-stream of a Kodak image with
// its real table indices: the entropy coder alone on real statistics. With a
// checkerboard context, the indices are the two passes' (found by decoding
// once), in the stream's order.
func BenchmarkEntropyDecodeKodak(b *testing.B) {
	m, img := benchSetup(b)
	var enc entropy.Encoder
	streams, _, _, _, err := m.encodeFrame(img, 4<<8, &enc, nil, 0, false)
	if err != nil {
		b.Fatal(err)
	}
	_, _, yw, yh, zw, zh := m.latentGeometry(img.Bounds().Dx(), img.Bounds().Dy())
	z := make([]int32, m.Info.N*zw*zh)
	if err := entropy.Decode(streams[0], z, m.zTables(zw*zh, 4<<8), m.tablesZ); err != nil {
		b.Fatal(err)
	}
	means, scales, tables, err := m.hyperParams(z, zw, zh, nil)
	if err != nil {
		b.Fatal(err)
	}
	sym := make([]int32, len(tables))
	if m.ctx != nil {
		mean := m.applyModes(means, tables, nil, nil, yw*yh, nil)
		if err := m.decodePasses(streams[1], sym, mean, scales, tables, 4<<8, yw, yh, nil); err != nil {
			b.Fatal(err)
		}
		tables = permute(tables, passOrder(m, yw, yh))
	}
	m.toTableSet(tables, 4<<8)
	b.SetBytes(int64(len(streams[1])))
	b.ResetTimer()
	for range b.N {
		if err := entropy.Decode(streams[1], sym, tables, m.tablesY); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(sym))/b.Elapsed().Seconds()/1e6, "Msym/s")
}

// TestInterSavesBitsOnStaticScene: with the shipped model, a repeated frame
// coded against its predecessor must cost clearly less than coding it alone.
func TestInterSavesBitsOnStaticScene(t *testing.T) {
	m, img := benchSetup(t)
	crop := img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(0, 0, 256, 192))
	var enc entropy.Encoder
	intra, inter, _ := intraThenInter(t, m, crop, 4<<8, &enc)
	a, b := len(intra[0])+len(intra[1]), len(inter[0])+len(inter[1])+len(inter[2])
	t.Logf("static frame: intra %d bytes, inter %d bytes", a, b)
	if b > a*3/4 {
		t.Errorf("inter frame of a static scene costs %d bytes against %d intra", b, a)
	}
}
