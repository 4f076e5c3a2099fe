//go:build js && wasm

// Command wasm is lvc's decoder for browsers: built with GOOS=js
// GOARCH=wasm, it registers lvcDecode(bytes) in the JavaScript global scope.
// The page in wasm/web uses it to show .lvc files.
package main

import (
	"bytes"
	"image"
	"syscall/js"
	"time"

	"github.com/lvc-codec/lvc/codec"
	"github.com/lvc-codec/lvc/models"
)

func main() {
	model, modelErr := codec.LoadModel(models.Default)
	js.Global().Set("lvcDecode", js.FuncOf(func(this js.Value, args []js.Value) any {
		if modelErr != nil {
			return map[string]any{"error": modelErr.Error()}
		}
		if len(args) != 1 || !args[0].InstanceOf(js.Global().Get("Uint8Array")) {
			return map[string]any{"error": "lvcDecode takes one Uint8Array"}
		}
		data := make([]byte, args[0].Get("length").Int())
		js.CopyBytesToGo(data, args[0])
		start := time.Now()
		img, err := codec.DecodeImage(bytes.NewReader(data), model)
		if err != nil {
			return map[string]any{"error": err.Error()}
		}
		rgba := toRGBA(img)
		pix := js.Global().Get("Uint8ClampedArray").New(len(rgba.Pix))
		js.CopyBytesToJS(pix, rgba.Pix)
		b := rgba.Bounds()
		return map[string]any{"width": b.Dx(), "height": b.Dy(), "rgba": pix, "ms": time.Since(start).Milliseconds()}
	}))
	if modelErr == nil {
		js.Global().Set("lvcModelID", model.IDString())
	} else {
		js.Global().Set("lvcModelID", "unavailable: "+modelErr.Error())
	}
	select {} // keep the exported function alive
}

// toRGBA returns the image as 8-bit RGBA, the layout of a canvas ImageData.
func toRGBA(img image.Image) *image.RGBA {
	if r, ok := img.(*image.RGBA); ok {
		return r
	}
	b := img.Bounds()
	out := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.Set(x, y, img.At(x, y))
		}
	}
	return out
}
