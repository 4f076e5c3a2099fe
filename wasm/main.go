//go:build js && wasm

// Command wasm is lvc's decoder for browsers: built with GOOS=js
// GOARCH=wasm, it registers lvcDecode(bytes) in the JavaScript global scope.
// The page in wasm/web uses it to show .lvc files.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"io"
	"syscall/js"
	"time"
	"unsafe"

	"github.com/lvc-codec/lvc/codec"
	"github.com/lvc-codec/lvc/container"
	"github.com/lvc-codec/lvc/models"
)

func main() {
	model, modelErr := codec.LoadModel(models.Default)
	export("lvcDecode", func(args []js.Value) any {
		data, fail := fileArg("lvcDecode", args, modelErr)
		if fail != nil {
			return fail
		}
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
	})
	// The fast path: Go decodes the bitstream to the synthesis input, and the
	// page runs the synthesis ONNX with onnxruntime-web.
	export("lvcDecodeLatents", func(args []js.Value) any {
		data, fail := fileArg("lvcDecodeLatents", args, modelErr)
		if fail != nil {
			return fail
		}
		start := time.Now()
		d, err := codec.NewDecoder(bytes.NewReader(data), model, codec.DecoderOptions{LatentsOnly: true})
		if err != nil {
			return map[string]any{"error": err.Error()}
		}
		f, err := d.Next()
		if err == io.EOF {
			err = errors.New("codec: file has no frames")
		}
		if err != nil {
			return map[string]any{"error": err.Error()}
		}
		// The synthesis network's inputs: x, and for models with per-quality
		// scalers s0, s1, ... of shape [1, C, 1, 1], C being each layer's width.
		scalers := []any{}
		for _, s := range model.SynthesisScalers(f) {
			scalers = append(scalers, float32Array(s))
		}
		h := d.Header()
		l := f.Latents
		return map[string]any{"width": h.Width, "height": h.Height, "gray": h.Color == container.Gray,
			"shape": []any{1, l.Channels, l.Height, l.Width}, "input": float32Array(model.SynthesisInput(f)),
			"scalers": scalers, "ms": time.Since(start).Milliseconds()}
	})
	export("lvcSynthesisONNX", func(args []js.Value) any {
		if modelErr != nil {
			return nil
		}
		b := model.SynthesisONNX()
		arr := js.Global().Get("Uint8Array").New(len(b))
		js.CopyBytesToJS(arr, b)
		return arr
	})
	if modelErr == nil {
		js.Global().Set("lvcModelID", model.IDString())
	} else {
		js.Global().Set("lvcModelID", "unavailable: "+modelErr.Error())
	}
	select {} // keep the exported functions alive
}

// export sets fn as the JavaScript global name. A panic, which would be a
// bug, comes back as {error} instead of ending the Go program, after which
// every call from the page would fail.
func export(name string, fn func(args []js.Value) any) {
	js.Global().Set(name, js.FuncOf(func(this js.Value, args []js.Value) (result any) {
		defer func() {
			if r := recover(); r != nil {
				result = map[string]any{"error": fmt.Sprintf("%s: internal error: %v", name, r)}
			}
		}()
		return fn(args)
	}))
}

func float32Array(v []float32) js.Value {
	arr := js.Global().Get("Float32Array").New(len(v))
	js.CopyBytesToJS(js.Global().Get("Uint8Array").New(arr.Get("buffer")), float32Bytes(v))
	return arr
}

// fileArg copies the one Uint8Array argument of an exported function, or
// returns the {error} object to hand back to JavaScript.
func fileArg(fn string, args []js.Value, modelErr error) ([]byte, map[string]any) {
	if modelErr != nil {
		return nil, map[string]any{"error": modelErr.Error()}
	}
	if len(args) != 1 || !args[0].InstanceOf(js.Global().Get("Uint8Array")) {
		return nil, map[string]any{"error": fn + " takes one Uint8Array"}
	}
	data := make([]byte, args[0].Get("length").Int())
	js.CopyBytesToGo(data, args[0])
	return data, nil
}

// float32Bytes views floats as their little-endian bytes (wasm is
// little-endian), for one copy into a JS Float32Array.
func float32Bytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
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
