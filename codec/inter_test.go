package codec

import (
	"bytes"
	"image"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/lvc-codec/lvc/container"
	"github.com/lvc-codec/lvc/entropy"
)

func TestSkipMapRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var enc entropy.Encoder
	for _, share := range []float64{0, 0.01, 0.5, 0.97, 1} {
		for _, n := range []int{1, 7, 240, 5000} {
			skip := make([]bool, n)
			for i := range skip {
				skip[i] = rng.Float64() < share
			}
			stream, err := encodeSkipMap(&enc, skip)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeSkipMap(stream, n)
			if err != nil || !slices.Equal(got, skip) {
				t.Fatalf("share %v, %d positions: got %v, err %v", share, n, got, err)
			}
		}
	}
}

func TestModesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var enc entropy.Encoder
	random := make([]byte, 192)
	for i := range random {
		random[i] = byte(rng.IntN(maxInterMode + 1))
	}
	skewed := make([]byte, 192)
	for i := range skewed {
		skewed[i] = byte(min(rng.ExpFloat64()*1.5, maxInterMode))
	}
	for _, modes := range [][]byte{random, skewed, make([]byte, 96), bytes.Repeat([]byte{maxInterMode}, 8)} {
		stream, err := encodeModes(&enc, modes)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeModes(stream, len(modes), true)
		if err != nil || !bytes.Equal(got, modes) {
			t.Fatalf("modes %v: got %v, err %v", modes, got, err)
		}
	}
	// Coding pays: modes mostly 0 cost a fraction of their raw bytes.
	stream, _ := encodeModes(&enc, skewed)
	if len(stream) > len(skewed)/2 {
		t.Errorf("192 skewed modes take %d bytes", len(stream))
	}
}

func TestModeTableSetTakesAnyWeights(t *testing.T) {
	for _, h := range [][]byte{make([]byte, modeWeights), bytes.Repeat([]byte{255}, modeWeights), append([]byte{1}, make([]byte, modeWeights-1)...)} {
		ts, err := modeTableSet(h)
		if err != nil {
			t.Fatalf("weights %v: %v", h, err)
		}
		for k := range modeWeights + 1 {
			if ts.Freq(0, k) == 0 {
				t.Fatalf("weights %v: symbol %d has no frequency", h, k)
			}
		}
	}
}

func TestCorruptInterSideStreams(t *testing.T) {
	var enc entropy.Encoder
	escaped := func(ts *entropy.TableSet, v int32) []byte {
		b, err := enc.Encode(nil, []int32{v}, []uint16{0}, ts)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	skipTab, _ := skipTable(128)
	modeTab, _ := modeTableSet(make([]byte, modeWeights))
	for _, c := range []struct {
		name, want string
		err        func() error
	}{
		{"skip probability 0", "probability 0", func() error { _, err := decodeSkipMap([]byte{0, 1, 2, 3}, 4); return err }},
		{"skip flag 2", "skip flag 2", func() error { _, err := decodeSkipMap(append([]byte{128}, escaped(skipTab, 2)...), 1); return err }},
		{"skip map cut", "skip map", func() error { _, err := decodeSkipMap([]byte{128}, 100); return err }},
		{"mode weights cut", "without their weights", func() error { _, err := decodeModes(make([]byte, 5), 8, true); return err }},
		{"mode 17", "mode 17", func() error {
			_, err := decodeModes(append(make([]byte, modeWeights), escaped(modeTab, 17)...), 1, true)
			return err
		}},
		{"raw mode 17", "mode 17", func() error { _, err := decodeModes([]byte{0, 17}, 2, false); return err }},
		{"raw modes short", "channel modes", func() error { _, err := decodeModes([]byte{0}, 2, false); return err }},
	} {
		if err := c.err(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// noisy returns img with every sample moved by up to ±amp, as a camera's
// noise moves a still scene from frame to frame.
func noisy(img image.Image, amp int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 5))
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := out.PixOffset(x, y)
			for c, v := range []uint32{r >> 8, g >> 8, bl >> 8} {
				out.Pix[i+c] = uint8(min(max(int(v)+rng.IntN(2*amp+1)-amp, 0), 255))
			}
			out.Pix[i+3] = 255
		}
	}
	return out
}

// TestSkippedBlocksDecodeExactly codes a still scene under noise with the
// shipped model: its inter frames skip blocks and reuse the reference's z,
// and the decoder rebuilds every frame's latents bit for bit.
func TestSkippedBlocksDecodeExactly(t *testing.T) {
	m, img := benchSetup(t)
	crop := img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(0, 0, 256, 192))
	frames := []image.Image{noisy(crop, 3, 1), noisy(crop, 3, 2), noisy(crop, 3, 3)}
	reused := 0
	for i, f := range framesExact(t, m, frames, 4<<8)[1:] {
		if len(f.Streams) != 4 || len(f.Streams[3]) == 0 {
			t.Fatalf("inter frame %d of a still scene skips nothing", i+1)
		}
		if len(f.Streams[0]) == 0 {
			reused++
		}
	}
	if reused == 0 {
		t.Error("no inter frame of a still scene reuses its reference's hyper-latents")
	}
}

// TestSkippingPays: the same noisy still scene through the public Encoder
// takes fewer bytes than with NoSkip.
func TestSkippingPays(t *testing.T) {
	m, img := benchSetup(t)
	crop := img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(0, 0, 256, 192))
	frames := []image.Image{noisy(crop, 3, 1), noisy(crop, 3, 2), noisy(crop, 3, 3), noisy(crop, 3, 4)}
	with, without := writeVideo(t, m, frames, Options{Quality: 4}), writeVideo(t, m, frames, Options{Quality: 4, NoSkip: true})
	t.Logf("4 noisy still frames: %d bytes, %d with NoSkip", len(with), len(without))
	if len(with) >= len(without) {
		t.Errorf("skipping gave %d bytes, not skipping %d", len(with), len(without))
	}
	r, err := container.NewReader(bytes.NewReader(without))
	if err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		f, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && len(f.Streams[3]) != 0 {
			t.Fatalf("NoSkip: frame %d has a skip map", i)
		}
	}
}

// writeVideo codes frames through the public Encoder and returns the file.
func writeVideo(t *testing.T, m *Model, frames []image.Image, opts Options) []byte {
	t.Helper()
	b := frames[0].Bounds()
	var buf bytes.Buffer
	opts.IntraPeriod, opts.FrameCount = 12, uint32(len(frames))
	e, err := NewEncoder(&buf, m, b.Dx(), b.Dy(), container.RGB, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if err := e.WriteImage(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFullySkippedFrameIsItsReference: a map that skips every position and
// an empty y stream decode to the reference's latents exactly.
func TestFullySkippedFrameIsItsReference(t *testing.T) {
	m := tinyModel(t)
	var enc entropy.Encoder
	_, inter, ref := intraThenInter(t, m, testImage(70, 40), 3<<8, &enc)
	lat, next, err := m.decodeLatents(container.Inter, fullySkipped(t, m, inter, 70, 40, &enc), 70, 40, 3<<8, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(next.yhat, ref.yhat) {
		t.Fatal("a fully skipped frame's ŷ differs from its reference's")
	}
	if len(lat.Data) != len(ref.yhat) {
		t.Fatalf("%d latents, reference has %d", len(lat.Data), len(ref.yhat))
	}
}

// fullySkipped turns an inter frame's sub-streams into those of a w×h frame
// that skips every position: an empty y stream and a map of ones.
func fullySkipped(t testing.TB, m *Model, inter [][]byte, w, h int, enc *entropy.Encoder) [][]byte {
	t.Helper()
	_, _, yw, yh, _, _ := m.latentGeometry(w, h)
	all := make([]bool, yw*yh)
	for i := range all {
		all[i] = true
	}
	skipBytes, err := encodeSkipMap(enc, all)
	if err != nil {
		t.Fatal(err)
	}
	yBytes, err := enc.Encode(nil, nil, nil, m.tablesY)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{inter[0], yBytes, inter[2], skipBytes}
}

// firstForm codes img against ref in version 1's first form: its own z,
// raw modes, no skip map. It returns the sub-streams and the latents the
// encoder had.
func firstForm(t testing.TB, m *Model, img image.Image, ref *reference, enc *entropy.Encoder) ([][]byte, *Latents) {
	t.Helper()
	plain := *ref
	plain.z, plain.pixels = nil, nil // no z to reuse, no pixels to skip against
	streams, _, lat, _, err := m.encodeFrame(img, ref.q256, enc, &plain, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != 4 || len(streams[0]) == 0 || len(streams[3]) != 0 {
		t.Fatalf("inter frame coded with sub-stream sizes %d %d %d %d", len(streams[0]), len(streams[1]), len(streams[2]), len(streams[3]))
	}
	modes, err := decodeModes(streams[2], m.Info.M, true)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{streams[0], streams[1], modes}, lat
}

// TestFirstFormInterFrame: inter frames of three sub-streams, with raw modes
// and no skip map, still decode, to what the coded modes give.
func TestFirstFormInterFrame(t *testing.T) {
	m := tinyModel(t)
	var enc entropy.Encoder
	_, _, _, ref, err := m.encodeFrame(testImage(70, 40), 3<<8, &enc, nil, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	streams, want := firstForm(t, m, shifted(testImage(70, 40)), ref, &enc)
	lat, _, err := m.decodeLatents(container.Inter, streams, 70, 40, 3<<8, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lat.Data, want.Data) {
		t.Fatal("first-form frame decodes to other latents")
	}
}

// TestReusedHyperLatentsNeedThem: an empty z sub-stream reuses the
// reference's z; a reference without one (of another size) makes it corrupt.
func TestReusedHyperLatentsNeedThem(t *testing.T) {
	m := tinyModel(t)
	var enc entropy.Encoder
	_, inter, ref := intraThenInter(t, m, testImage(70, 40), 3<<8, &enc)
	streams := slices.Clone(inter)
	streams[0] = nil
	if _, _, err := m.decodeLatents(container.Inter, streams, 70, 40, 3<<8, ref); err != nil && strings.Contains(err.Error(), "hyper-latents") {
		t.Fatalf("reusing the reference's z: %v", err)
	}
	short := *ref
	short.z = ref.z[:len(ref.z)-1]
	if _, _, err := m.decodeLatents(container.Inter, streams, 70, 40, 3<<8, &short); err == nil || !strings.Contains(err.Error(), "reuses hyper-latents") {
		t.Fatalf("reference without its z: got %v", err)
	}
}
