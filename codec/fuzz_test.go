package codec

import (
	"bytes"
	"io"
	"testing"

	"github.com/lvc-codec/lvc/container"
	"github.com/lvc-codec/lvc/entropy"
)

// FuzzDecode runs the whole decoder (container, entropy decoding, hyper-
// synthesis, context passes, synthesis) on arbitrary bytes, with the tiny
// model, the tiny checkerboard one or the tiny one with an anchor context,
// as the first byte says.
func FuzzDecode(f *testing.F) {
	models := []*Model{tinyModel(f), contextModel(f), anchorModel(f)}
	for i, m := range models {
		f.Add(append([]byte{byte(i)}, encode(f, m, testImage(70, 40), 3)...))
		f.Add(append([]byte{byte(i)}, encode(f, m, testImage(5, 5), 0)...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		DecodeImage(bytes.NewReader(data[1:]), models[int(data[0])%len(models)])
	})
}

func FuzzLoadModel(f *testing.F) {
	f.Add(mustRead(f, "../testdata/tiny.lvcm"))
	f.Add(mustRead(f, "../testdata/tiny_scaled.lvcm"))
	f.Add(mustRead(f, "../testdata/tiny_ctx.lvcm"))
	f.Add(mustRead(f, "../testdata/tiny_actx.lvcm"))
	// Per-quality table flags without the tables to match: an error path.
	for _, flag := range []string{"y_tables_per_quality", "z_tables_per_quality"} {
		f.Add(withMeta(f, mustRead(f, "../testdata/tiny.lvcm"), func(meta map[string]any) { meta[flag] = true }))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := LoadModel(data)
		if err != nil {
			return
		}
		// Refinement reads META's λ values and loads g_s a second time,
		// with gradients.
		EncodeImage(io.Discard, m, testImage(20, 12), Options{RefineSteps: 2})
	})
}

// FuzzDecodeStreams skips the container (whose CRC stops most mutations)
// and feeds arbitrary sub-streams, frame types and sizes straight to frame
// decoding, intra and inter (both forms, with and without a skip map), then
// to synthesis. The first byte picks the model (below 64 the tiny one,
// below 128 the checkerboard one, then the one with an anchor context) and,
// modulo 64, the frame type.
func FuzzDecodeStreams(f *testing.F) {
	models := []*Model{tinyModel(f), contextModel(f), anchorModel(f)}
	var enc entropy.Encoder
	img := testImage(70, 40)
	var refs []*reference
	pack := func(typ byte, streams [][]byte) []byte {
		out := []byte{typ, 69, 39} // decoded as 1 + byte: 70x40, the reference's size
		for _, s := range streams {
			out = append(out, byte(len(s)>>8), byte(len(s)))
			out = append(out, s...)
		}
		return out
	}
	for i, m := range models {
		intra, inter, ref := intraThenInter(f, m, img, 3<<8, &enc)
		f.Add(pack(byte(64*i), intra))
		f.Add(pack(byte(64*i+1), inter))
		f.Add(pack(byte(64*i+1), fullySkipped(f, m, inter, 70, 40, &enc)))
		first, _ := firstForm(f, m, shifted(img), ref, &enc)
		f.Add(pack(byte(64*i+1), first))
		refs = append(refs, ref)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		k := min(int(data[0])/64, len(models)-1)
		m, ref := models[k], refs[k]
		typ := container.FrameType(data[0] % 64 % 3)
		w, h := 1+int(data[1])%130, 1+int(data[2])%130
		var streams [][]byte
		for rest := data[3:]; len(rest) >= 2 && len(streams) < 4; {
			n := min(int(rest[0])<<8|int(rest[1]), len(rest)-2)
			streams = append(streams, rest[2:2+n])
			rest = rest[2+n:]
		}
		var r *reference
		if typ == container.Inter && w == 70 && h == 40 {
			r = ref
		}
		lat, _, err := m.decodeLatents(typ, streams, w, h, 3<<8, r)
		if err != nil {
			return
		}
		if _, err := m.synthesize(lat, 3<<8, w, h, container.RGB); err != nil {
			t.Fatalf("latents decoded but synthesis failed: %v", err)
		}
	})
}
