package codec

import (
	"bytes"
	"image"
	_ "image/png"
	"os"
	"testing"

	"github.com/lvc-codec/lvc/models"
)

func benchSetup(b *testing.B) (*Model, image.Image) {
	m, err := LoadModel(models.Default)
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

// BenchmarkEncode and BenchmarkDecode time one 768x512 Kodak image with the
// shipped model; pixels/s is reported as MB/s of RGB input.
func BenchmarkEncode(b *testing.B) {
	m, img := benchSetup(b)
	b.SetBytes(int64(3 * img.Bounds().Dx() * img.Bounds().Dy()))
	for range b.N {
		if err := EncodeImage(&bytes.Buffer{}, m, img, Options{Quality: 4}); err != nil {
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
