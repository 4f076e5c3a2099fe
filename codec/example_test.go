package codec_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"io"
	"log"

	"github.com/lvc-codec/lvc/codec"
	"github.com/lvc-codec/lvc/models"
)

func gradient(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	return img
}

// Encode an image with the embedded model and decode it again.
func Example() {
	m, err := codec.LoadModel(models.Default)
	if err != nil {
		log.Fatal(err)
	}
	var file bytes.Buffer
	if err := codec.EncodeImage(&file, m, gradient(200, 120), codec.Options{Quality: 4}); err != nil {
		log.Fatal(err)
	}
	img, err := codec.DecodeImage(&file, m)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(img.Bounds().Dx(), img.Bounds().Dy())
	// Output: 200 120
}

// A perception pipeline can read the decoded latents straight from the
// stream and skip the synthesis transform, which is most of a decode.
func ExampleDecoder_latents() {
	m, err := codec.LoadModel(models.Default)
	if err != nil {
		log.Fatal(err)
	}
	var file bytes.Buffer
	if err := codec.EncodeImage(&file, m, gradient(256, 128), codec.Options{Quality: 2}); err != nil {
		log.Fatal(err)
	}
	d, err := codec.NewDecoder(&file, m, codec.DecoderOptions{LatentsOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	for {
		f, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		l := f.Latents // channel-major [Channels][Height][Width] float32
		fmt.Println(f.Type, l.Channels, l.Height, l.Width, f.Image == nil)
	}
	// Output: intra 192 8 16 true
}
