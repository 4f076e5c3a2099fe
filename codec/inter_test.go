package codec

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"image"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/lvc-codec/lvc/container"
	"github.com/lvc-codec/lvc/entropy"
)

// sideStream codes parts as one stream and returns a Decoder at its start.
func sideStream(t *testing.T, parts ...entropy.Part) *entropy.Decoder {
	t.Helper()
	var enc entropy.Encoder
	b, err := enc.EncodeParts(nil, parts...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := entropy.NewDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSkipFlagsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, share := range []float64{0, 0.01, 0.5, 0.97, 1} {
		for _, n := range []int{1, 7, 240, 5000} {
			skip := make([]bool, n)
			for i := range skip {
				skip[i] = rng.Float64() < share
			}
			k, part, err := skipPart(skip)
			if err != nil {
				t.Fatal(err)
			}
			d := sideStream(t, part)
			got, err := decodeSkipFlags(d, k, n)
			if err == nil {
				err = d.Close()
			}
			if err != nil || !slices.Equal(got, skip) {
				t.Fatalf("share %v, %d positions: got %v, err %v", share, n, got, err)
			}
		}
	}
}

func TestModesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 192)
	for i := range random {
		random[i] = byte(rng.IntN(maxInterMode + 1))
	}
	skewed := make([]byte, 192)
	for i := range skewed {
		skewed[i] = byte(min(rng.ExpFloat64()*1.5, maxInterMode))
	}
	for _, modes := range [][]byte{random, skewed, make([]byte, 96), bytes.Repeat([]byte{maxInterMode}, 8)} {
		h, part, err := modesPart(modes)
		if err != nil {
			t.Fatal(err)
		}
		d := sideStream(t, part)
		got, err := decodeModes(d, h, len(modes))
		if err == nil {
			err = d.Close()
		}
		if err != nil || !bytes.Equal(got, modes) {
			t.Fatalf("modes %v: got %v, err %v", modes, got, err)
		}
	}
	// Coding pays: modes mostly 0 cost a fraction of their raw bytes.
	_, part, _ := modesPart(skewed)
	var bits float64
	for _, v := range part.Values {
		bits += part.Set.Bits(0, v)
	}
	if bits > 8*float64(len(skewed))/3 {
		t.Errorf("192 skewed modes take %.0f bits", bits)
	}
}

// TestModeTableSetFrequencies pins the table FORMAT.md 2.1 specifies.
func TestModeTableSetFrequencies(t *testing.T) {
	for _, c := range []struct {
		h          []byte
		mode0, esc uint32
		others     uint32 // every other mode's
	}{
		{make([]byte, modeWeights), 3855, 1, 3855}, // 1 + 65518/17 each, nothing left over
		{append([]byte{255}, make([]byte, modeWeights-1)...), 65519, 1, 1},
		{append([]byte{1, 3}, make([]byte, modeWeights-2)...), 1 + 65518/4 + (65536 - (1 + 65518/4) - (1 + 3*65518/4) - 15 - 1), 1, 1},
	} {
		ts, err := modeTableSet(c.h)
		if err != nil {
			t.Fatal(err)
		}
		if ts.Freq(0, 0) != c.mode0 || ts.Freq(0, modeWeights) != c.esc || ts.Freq(0, modeWeights-1) != c.others {
			t.Errorf("weights %v: mode 0 %d, escape %d, mode 16 %d; want %d, %d, %d", c.h,
				ts.Freq(0, 0), ts.Freq(0, modeWeights), ts.Freq(0, modeWeights-1), c.mode0, c.esc, c.others)
		}
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

func TestCorruptInterSideInfo(t *testing.T) {
	single := func(ts *entropy.TableSet, v int32) *entropy.Decoder {
		return sideStream(t, entropy.Part{Values: []int32{v}, Tables: []uint16{0}, Set: ts})
	}
	skipTab, _ := skipTable(128)
	zeros := make([]byte, modeWeights)
	modeTab, _ := modeTableSet(zeros)
	for _, c := range []struct {
		name, want string
		err        func() error
	}{
		{"skip probability 0", "probability 0", func() error { _, err := decodeSkipFlags(single(skipTab, 0), 0, 1); return err }},
		{"skip flag 2", "skip flag 2", func() error { _, err := decodeSkipFlags(single(skipTab, 2), 128, 1); return err }},
		{"skip flags cut", "skip flags", func() error { _, err := decodeSkipFlags(single(skipTab, 1), 128, 100); return err }},
		{"skip probability of 2 bytes", "skip probability of 2 bytes", func() error {
			_, _, _, err := decodeSideInfo([][]byte{nil, nil, zeros, {1, 2}}, 4, 4)
			return err
		}},
		{"stream cut", "latents", func() error { _, _, _, err := decodeSideInfo([][]byte{nil, {1, 2}, zeros, nil}, 4, 4); return err }},
		{"mode weights cut", "mode weights", func() error { _, err := decodeModes(single(modeTab, 0), zeros[:5], 1); return err }},
		{"mode 17", "mode 17", func() error { _, err := decodeModes(single(modeTab, 17), zeros, 1); return err }},
		{"raw mode 17", "mode 17", func() error { _, err := rawModes([]byte{0, 17}, 2); return err }},
		{"raw modes short", "channel modes", func() error { _, err := rawModes([]byte{0}, 2); return err }},
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

// TestSkipsThatOnlyLookCheapAreRefused: the per-block rule judges a skipped
// block by the reference's pixels, the decoder draws it from the
// reference's ŷ, and the encoder checks the frame as drawn. Against a
// reference whose pixels are the new frame itself (every block looks free to
// skip) but whose ŷ codes another image, nothing may be skipped; against the
// coding of the same scene under other noise, blocks are. Either way the
// reference the encoder keeps is the coding it wrote.
func TestSkipsThatOnlyLookCheapAreRefused(t *testing.T) {
	m, img := benchSetup(t)
	sub := img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage
	scene := sub(image.Rect(0, 0, 128, 64))
	frame, other := noisy(scene, 3, 2), sub(image.Rect(256, 192, 384, 256))
	const q = 4 << 8
	var enc entropy.Encoder
	_, _, _, otherRef, err := m.encodeFrame(other, q, &enc, nil, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, sceneRef, err := m.encodeFrame(noisy(scene, 3, 1), q, &enc, nil, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	lying := *otherRef
	pw, ph, _, _, _, _ := m.latentGeometry(128, 64)
	lying.pixels = imageToTensor(frame, pw, ph)
	for _, c := range []struct {
		name string
		ref  *reference
		skip bool
	}{{"pixels of the frame, ŷ of another image", &lying, false}, {"the same scene", sceneRef, true}} {
		streams, typ, _, next, err := m.encodeFrame(frame, q, &enc, c.ref, 0, true)
		if err != nil || typ != container.Inter {
			t.Fatalf("%s: frame type %v, err %v", c.name, typ, err)
		}
		if skipped := len(streams[3]) != 0; skipped != c.skip {
			t.Errorf("%s: skips blocks %v, want %v", c.name, skipped, c.skip)
		}
		lat, decoded, err := m.decodeLatents(typ, streams, 128, 64, q, c.ref)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(next.yhat, decoded.yhat) {
			t.Errorf("%s: the encoder keeps another ŷ than it wrote", c.name)
		}
		px, err := m.framePixels(lat, q)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(next.pixels.Data, px.Data) {
			t.Errorf("%s: the encoder keeps other pixels than its ŷ draws", c.name)
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
// that skips every position: modes all 0, every flag 1, no y symbol.
func fullySkipped(t testing.TB, m *Model, inter [][]byte, w, h int, enc *entropy.Encoder) [][]byte {
	t.Helper()
	_, _, yw, yh, _, _ := m.latentGeometry(w, h)
	all := make([]bool, yw*yh)
	for i := range all {
		all[i] = true
	}
	y := entropy.Part{Set: m.tablesY}
	streams, err := interStreams(enc, inter[0], make([]byte, m.Info.M), all, y)
	if err != nil {
		t.Fatal(err)
	}
	return streams
}

// firstForm codes img against ref in version 1's first form: its own z,
// raw modes, y alone in sub-stream 1, nothing skipped. It returns the
// sub-streams and the latents the encoder had.
func firstForm(t testing.TB, m *Model, img image.Image, ref *reference, enc *entropy.Encoder) ([][]byte, *Latents) {
	t.Helper()
	plain := *ref
	plain.z, plain.pixels = nil, nil // no z to reuse, no pixels to skip against
	b := img.Bounds()
	streams, _, lat, _, err := m.encodeFrame(img, ref.q256, enc, &plain, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != 4 || len(streams[0]) == 0 || len(streams[3]) != 0 {
		t.Fatalf("inter frame coded with %d sub-streams", len(streams))
	}
	// Read the four-stream form as the decoder does, and write y alone.
	_, _, yw, yh, zw, zh := m.latentGeometry(b.Dx(), b.Dy())
	z := make([]int32, m.Info.N*zw*zh)
	if err := entropy.Decode(streams[0], z, m.zTables(zw*zh, ref.q256), m.tablesZ); err != nil {
		t.Fatal(err)
	}
	means, _, tables, err := m.hyperParams(z, zw, zh, nil)
	if err != nil {
		t.Fatal(err)
	}
	modes, _, d, err := decodeSideInfo(streams, m.Info.M, yw*yh)
	if err != nil {
		t.Fatal(err)
	}
	m.applyModes(means, tables, modes, ref, yw*yh, nil)
	m.toTableSet(tables, ref.q256)
	sym := make([]int32, len(means))
	if err := d.Decode(sym, tables, m.tablesY); err != nil {
		t.Fatal(err)
	}
	yBytes, err := enc.Encode(nil, sym, tables, m.tablesY)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{streams[0], yBytes, modes}, lat
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
// reference's z, so a reference with a z of another size makes the frame
// corrupt, and so does an empty z in the first form. A reference whose ŷ
// is of another size is refused as well.
func TestReusedHyperLatentsNeedThem(t *testing.T) {
	m := tinyModel(t)
	var enc entropy.Encoder
	_, inter, ref := intraThenInter(t, m, testImage(70, 40), 3<<8, &enc)
	streams := slices.Clone(inter)
	streams[0] = nil
	short := *ref
	short.z = ref.z[:len(ref.z)-1]
	if _, _, err := m.decodeLatents(container.Inter, streams, 70, 40, 3<<8, &short); err == nil || !strings.Contains(err.Error(), "reuses hyper-latents") {
		t.Errorf("reference without its z: got %v", err)
	}
	// The container keeps every frame one size, so only a reference handed
	// over wrongly could differ; the decoder still refuses it.
	narrow := *ref
	narrow.yhat = ref.yhat[:len(ref.yhat)-1]
	if _, _, err := m.decodeLatents(container.Inter, streams, 70, 40, 3<<8, &narrow); err == nil || !strings.Contains(err.Error(), "reference frame of another size") {
		t.Errorf("reference with fewer latents: got %v", err)
	}
	first, _ := firstForm(t, m, testImage(70, 40), ref, &enc)
	first[0] = nil
	if _, _, err := m.decodeLatents(container.Inter, first, 70, 40, 3<<8, ref); err == nil || !strings.Contains(err.Error(), "hyper-latents") {
		t.Errorf("first form without z: got %v", err)
	}
}

// TestInterGoldens decodes two small files of the tiny scaled model, a
// moving half beside a still one under noise (4 frames, 128×64, quality 7),
// and pins a hash of every frame's latents. inter_first_form.lvc was written
// by the encoder of 5821ab9, before inter frames had four sub-streams (its
// decoder and today's give the same Y4M bytes); inter_skip.lvc by today's,
// whose inter frames reuse z and skip some blocks. The hashes hold the
// format still, on every platform: decoding is integer arithmetic.
func TestInterGoldens(t *testing.T) {
	m, err := LoadModel(mustRead(t, "../testdata/tiny_scaled.lvcm"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file, want string
		streams    int
	}{
		{"inter_first_form.lvc", "884170a5fb4f547150509e25fee4cde6f3297ef91a88be9f240eafc16508e3d0", 3},
		{"inter_skip.lvc", "48294acf3b5ba55882ef688c39e8c835e1a32bcec45aaef8432dfc5e85b88d1f", 4},
	} {
		data := mustRead(t, "../testdata/"+c.file)
		r, err := container.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		skipped, positions := 0, 0
		for i := 0; ; i++ {
			f, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Type != container.Inter {
				continue
			}
			if len(f.Streams) != c.streams {
				t.Fatalf("%s frame %d: %d sub-streams, want %d", c.file, i, len(f.Streams), c.streams)
			}
			if c.streams == 4 {
				if len(f.Streams[0]) != 0 || len(f.Streams[3]) != 1 {
					t.Fatalf("%s frame %d neither reuses z nor skips", c.file, i)
				}
				_, _, yw, yh, _, _ := m.latentGeometry(128, 64)
				_, skip, _, err := decodeSideInfo(f.Streams, m.Info.M, yw*yh)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range skip {
					if s {
						skipped++
					}
				}
				positions += len(skip)
			}
		}
		if c.streams == 4 && (skipped == 0 || skipped == positions) {
			t.Fatalf("%s skips %d of %d positions: the golden covers no partial skip", c.file, skipped, positions)
		}
		d, err := NewDecoder(bytes.NewReader(data), m, DecoderOptions{LatentsOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		for {
			f, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", c.file, err)
			}
			binary.Write(h, binary.LittleEndian, f.Latents.Data)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != c.want {
			t.Errorf("%s: latents hash %s, want %s", c.file, got, c.want)
		}
	}
}
