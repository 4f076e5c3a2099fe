//go:build js && wasm

// Command wasm is lvc's decoder for browsers: built with GOOS=js
// GOARCH=wasm, it registers lvcOpen, lvcNext and lvcClose in the
// JavaScript global scope, which decode images and videos frame by frame,
// and lvcSynthesisONNX and lvcModelID, which hand the page the embedded
// model's synthesis network (for onnxruntime-web) and its ID.
// The page in wasm/web uses them to show and play .lvc files.
package main

import (
	"bytes"
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
	streams := map[int]*stream{}
	nextHandle := 1
	// lvcOpen(bytes, latentsOnly) reads the header of an image or a video and
	// returns it with a handle for lvcNext. With latentsOnly, frames stop at
	// the synthesis input: the fast path, where the page runs the synthesis
	// ONNX with onnxruntime-web.
	export("lvcOpen", func(args []js.Value) any {
		if modelErr != nil {
			return map[string]any{"error": modelErr.Error()}
		}
		if len(args) != 2 || !args[0].InstanceOf(js.Global().Get("Uint8Array")) || args[1].Type() != js.TypeBoolean {
			return map[string]any{"error": "lvcOpen takes a Uint8Array and a boolean (latents only)"}
		}
		data := make([]byte, args[0].Get("length").Int())
		js.CopyBytesToGo(data, args[0])
		d, err := codec.NewDecoder(bytes.NewReader(data), model, codec.DecoderOptions{LatentsOnly: args[1].Bool()})
		if err != nil {
			return map[string]any{"error": err.Error()}
		}
		handle := nextHandle
		nextHandle++
		streams[handle] = &stream{d: d}
		h := d.Header()
		return map[string]any{"handle": handle, "width": h.Width, "height": h.Height, "gray": h.Color == container.Gray,
			"frames": h.FrameCount, "timebaseNum": h.TimebaseNum, "timebaseDen": h.TimebaseDen,
			"aspectNum": h.PixelAspectNum, "aspectDen": h.PixelAspectDen}
	})
	// lvcNext(handle) decodes the next frame: {rgba} or, for a latents-only
	// stream, the synthesis input {shape, input, scalers}; {done: true} after
	// the last frame. Both, and an {error}, free the stream: a page that
	// called again after an error could otherwise loop on a file that
	// fails for good (a truncated one), where codec.Decoder would let a
	// player go on to the next intra frame after a damaged one.
	export("lvcNext", func(args []js.Value) any {
		if len(args) != 1 || args[0].Type() != js.TypeNumber {
			return map[string]any{"error": "lvcNext takes a handle from lvcOpen"}
		}
		handle := args[0].Int()
		s, ok := streams[handle]
		if !ok {
			return map[string]any{"error": fmt.Sprintf("lvcNext: no open stream %d", handle)}
		}
		// Out of the map until the frame is decoded: an error, or a panic
		// that export recovers, leaves it freed.
		delete(streams, handle)
		start := time.Now()
		f, err := s.d.Next()
		if err != nil {
			if err == io.EOF {
				if !s.started {
					return map[string]any{"error": codec.ErrNoFrames.Error()}
				}
				return map[string]any{"done": true}
			}
			return map[string]any{"error": err.Error()}
		}
		s.started = true
		streams[handle] = s
		h := s.d.Header()
		out := map[string]any{"width": h.Width, "height": h.Height, "pts": f.PTS, "intra": f.Type == container.Intra,
			"quality": f.Quality, "bytes": f.Bytes}
		if f.Image != nil {
			rgba := toRGBA(f.Image)
			pix := js.Global().Get("Uint8ClampedArray").New(len(rgba.Pix))
			js.CopyBytesToJS(pix, rgba.Pix)
			out["rgba"] = pix
		} else {
			// The synthesis network's inputs: x, and for models with per-quality
			// scalers s0, s1, ... of shape [1, C, 1, 1], C being each layer's width.
			scalers := []any{}
			for _, v := range model.SynthesisScalers(f) {
				scalers = append(scalers, float32Array(v))
			}
			l := f.Latents
			out["shape"] = []any{1, l.Channels, l.Height, l.Width}
			out["input"] = float32Array(model.SynthesisInput(f))
			out["scalers"] = scalers
		}
		out["ms"] = time.Since(start).Milliseconds()
		return out
	})
	// lvcClose(handle) frees a stream that a page abandons before its end.
	export("lvcClose", func(args []js.Value) any {
		if len(args) == 1 && args[0].Type() == js.TypeNumber {
			delete(streams, args[0].Int())
		}
		return nil
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

// A stream is an open file being decoded frame by frame.
type stream struct {
	d       *codec.Decoder
	started bool // a frame has been decoded
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
