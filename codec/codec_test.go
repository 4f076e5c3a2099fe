package codec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lvc-codec/lvc/container"
	"github.com/lvc-codec/lvc/entropy"
	"github.com/lvc-codec/lvc/nn"
)

func tinyModel(t testing.TB) *Model {
	t.Helper()
	b, err := os.ReadFile("../testdata/tiny.lvcm")
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testImage is a smooth gradient with some texture, of a size that is not a
// multiple of the model stride.
func testImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x*x + y*3) % 256), 255})
		}
	}
	return img
}

// intraThenInter codes img as an intra frame, then again as an inter frame
// against it, at quality q256, with enc; it returns both frames' sub-streams
// and the inter frame's reference.
func intraThenInter(t testing.TB, m *Model, img image.Image, q256 uint16, enc *entropy.Encoder) (intra, inter [][]byte, ref *reference) {
	t.Helper()
	intra, _, _, ref, err := m.encodeFrame(img, q256, enc, nil, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	inter, typ, _, _, err := m.encodeFrame(img, q256, enc, ref, 0, false)
	if err != nil || typ != container.Inter {
		t.Fatalf("frame type %v, err %v", typ, err)
	}
	return intra, inter, ref
}

func encode(t testing.TB, m *Model, img image.Image, q float64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := EncodeImage(&buf, m, img, Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTripAnySize(t *testing.T) {
	m := tinyModel(t)
	for _, size := range [][2]int{{1, 1}, {65, 3}, {70, 130}} {
		img := testImage(size[0], size[1])
		data := encode(t, m, img, 2.5)
		out, err := DecodeImage(bytes.NewReader(data), m)
		if err != nil {
			t.Fatalf("%v: %v", size, err)
		}
		if out.Bounds().Dx() != size[0] || out.Bounds().Dy() != size[1] {
			t.Fatalf("decoded %v, want %v", out.Bounds(), size)
		}
		// Decoding twice gives the same pixels.
		again, err := DecodeImage(bytes.NewReader(data), m)
		if err != nil || !bytes.Equal(again.(*image.RGBA).Pix, out.(*image.RGBA).Pix) {
			t.Fatalf("second decode differs (%v)", err)
		}
	}
}

// TestDecoderLatentsAreExact: decoding must reproduce bit for bit the
// latents the encoder coded, which holds only if both ends derived the same
// means and scales.
func TestDecoderLatentsAreExact(t *testing.T) {
	m := tinyModel(t)
	img := testImage(64, 64)
	var enc entropy.Encoder
	streams, _, want, _, err := m.encodeFrame(img, 5<<8, &enc, nil, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := container.NewWriter(&buf, container.Header{ModelID: m.ID, Width: 64, Height: 64, TimebaseNum: 1, TimebaseDen: 1})
	w.WriteFrame(&container.Frame{Quality: 5 << 8, Streams: streams})
	w.Close()
	d, err := NewDecoder(&buf, m, DecoderOptions{LatentsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	if f.Image != nil || f.Latents.Channels != m.Info.M || f.Latents.Width != 4 {
		t.Fatalf("latents-only frame: %+v", f)
	}
	for i := range want.Data {
		if math.Float32bits(f.Latents.Data[i]) != math.Float32bits(want.Data[i]) {
			t.Fatalf("latent %d: decoded %v, encoder had %v", i, f.Latents.Data[i], want.Data[i])
		}
	}
}

func TestGrayStaysGray(t *testing.T) {
	m := tinyModel(t)
	g := image.NewGray(image.Rect(0, 0, 40, 20))
	for i := range g.Pix {
		g.Pix[i] = uint8(i)
	}
	out, err := DecodeImage(bytes.NewReader(encode(t, m, g, 1)), m)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out.(*image.Gray); !ok {
		t.Fatalf("gray input decoded as %T", out)
	}
}

func TestBadInputGetsErrors(t *testing.T) {
	m := tinyModel(t)
	data := encode(t, m, testImage(70, 40), 3)
	// A still image carries no seek index; its header's frame count is what
	// exposes a file cut after the header.
	if r, err := container.NewReader(bytes.NewReader(data)); err != nil || r.Header().Indexed {
		t.Errorf("still image: indexed or unreadable (%v)", err)
	}
	for cut := 0; cut < len(data); cut++ {
		if _, err := DecodeImage(bytes.NewReader(data[:cut]), m); err == nil {
			t.Fatalf("truncation at %d of %d decoded", cut, len(data))
		}
	}
	for bit := 0; bit < 8*len(data); bit += 3 {
		c := append([]byte(nil), data...)
		c[bit/8] ^= 1 << (bit % 8)
		if _, err := DecodeImage(bytes.NewReader(c), m); err == nil {
			t.Fatalf("bit flip %d decoded", bit)
		}
	}
	other, err := LoadModel(mustRead(t, "../testdata/tiny.lvcm"))
	if err != nil {
		t.Fatal(err)
	}
	other.ID[0] ^= 1
	if _, err := DecodeImage(bytes.NewReader(data), other); !errors.Is(err, errModelMismatch) {
		t.Errorf("wrong model: got %v", err)
	}
	if err := EncodeImage(io.Discard, m, testImage(8, 8), Options{Quality: 99}); err == nil {
		t.Error("quality beyond the model accepted")
	}
	if err := EncodeImage(io.Discard, m, image.NewRGBA(image.Rect(0, 0, 0, 5)), Options{}); err == nil {
		t.Error("empty image accepted")
	}
	if _, err := NewEncoder(io.Discard, m, 8, 8, container.RGB, Options{PixelAspectNum: 4}); err == nil ||
		!strings.Contains(err.Error(), "pixel aspect 4:0") {
		t.Errorf("pixel aspect 4:0: got %v, want it named", err)
	}
}

func TestPixelAspectReachesTheHeader(t *testing.T) {
	m := tinyModel(t)
	var buf bytes.Buffer
	if err := EncodeImage(&buf, m, testImage(16, 16), Options{PixelAspectNum: 32, PixelAspectDen: 27}); err != nil {
		t.Fatal(err)
	}
	d, err := NewDecoder(&buf, m, DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := d.Header(); h.PixelAspectNum != 32 || h.PixelAspectDen != 27 {
		t.Errorf("header pixel aspect %d:%d, want 32:27", h.PixelAspectNum, h.PixelAspectDen)
	}
	if _, err := d.Next(); err != nil {
		t.Error(err)
	}
}

func TestModelFileErrors(t *testing.T) {
	good := mustRead(t, "../testdata/tiny.lvcm")
	for cut := 0; cut < len(good); cut += 1 + len(good)/200 {
		if _, err := LoadModel(good[:cut]); err == nil {
			t.Fatalf("model truncated at %d loaded", cut)
		}
	}
	if _, err := LoadModel([]byte("LVCF\x01\x00\x00\x00")); err == nil {
		t.Error("an .lvc file loaded as a model")
	}
}

func TestHeaderSizeLimit(t *testing.T) {
	m := tinyModel(t)
	var buf bytes.Buffer
	w, err := container.NewWriter(&buf, container.Header{ModelID: m.ID, Width: 16384, Height: 16384, TimebaseNum: 1, TimebaseDen: 1})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteFrame(&container.Frame{Streams: [][]byte{{}, {}}})
	w.Close()
	if _, err := DecodeImage(&buf, m); err == nil {
		t.Error("a 16384x16384 frame with no data decoded")
	}
}

func mustRead(t testing.TB, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSharedModelConcurrently codes from several goroutines with one Model.
func TestSharedModelConcurrently(t *testing.T) {
	m := tinyModel(t)
	data := encode(t, m, testImage(70, 40), 3)
	want, err := DecodeImage(bytes.NewReader(data), m)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			if g%2 == 0 {
				errs <- EncodeImage(io.Discard, m, testImage(70, 40), Options{Quality: 3})
				return
			}
			got, err := DecodeImage(bytes.NewReader(data), m)
			if err == nil && !bytes.Equal(got.(*image.RGBA).Pix, want.(*image.RGBA).Pix) {
				err = errors.New("concurrent decode differs")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestInterFramesExact codes a short sequence against references and checks
// that the decoder reproduces the encoder's latents frame by frame, and that
// a static scene costs less as inter frames.
func TestInterFramesExact(t *testing.T) {
	m := tinyModel(t)
	frames := []image.Image{testImage(70, 40), testImage(70, 40), testImage(70, 40), shifted(testImage(70, 40))}
	for i, f := range framesExact(t, m, frames, 3<<8) {
		if (i == 0) != (f.Type == container.Intra) {
			t.Fatalf("frame %d coded as %v", i, f.Type)
		}
	}
}

// framesExact codes frames of one size as a stream (after the first, each
// against the one before) and requires the decoder's ŷ of each to equal the
// encoder's bit for bit. Each frame keeps its pixels for the next one's skip
// decisions. It returns the frames as written.
func framesExact(t *testing.T, m *Model, frames []image.Image, q256 uint16) []*container.Frame {
	t.Helper()
	w, h := frames[0].Bounds().Dx(), frames[0].Bounds().Dy()
	var enc entropy.Encoder
	var buf bytes.Buffer
	cw, _ := container.NewWriter(&buf, container.Header{ModelID: m.ID, Width: w, Height: h, TimebaseNum: 1, TimebaseDen: 25})
	var ref *reference
	var want []*Latents
	var written []*container.Frame
	for i, img := range frames {
		streams, typ, lat, next, err := m.encodeFrame(img, q256, &enc, ref, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		f := &container.Frame{Type: typ, Quality: q256, PTS: int64(i), Streams: streams}
		cw.WriteFrame(f)
		ref, want, written = next, append(want, lat), append(written, f)
	}
	cw.Close()
	d, err := NewDecoder(&buf, m, DecoderOptions{LatentsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		f, err := d.Next()
		if err != nil {
			t.Fatalf("%dx%d frame %d: %v", w, h, i, err)
		}
		for j := range want[i].Data {
			if math.Float32bits(f.Latents.Data[j]) != math.Float32bits(want[i].Data[j]) {
				t.Fatalf("%dx%d frame %d latent %d: decoded %v, encoder had %v", w, h, i, j, f.Latents.Data[j], want[i].Data[j])
			}
		}
	}
	return written
}

func shifted(img *image.RGBA) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	copy(out.Pix[4:], img.Pix)
	return out
}

func TestInterFrameWithoutReference(t *testing.T) {
	m := tinyModel(t)
	var enc entropy.Encoder
	_, _, _, ref, err := m.encodeFrame(testImage(70, 40), 3<<8, &enc, nil, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	streams, typ, _, _, err := m.encodeFrame(testImage(70, 40), 3<<8, &enc, ref, 0, false)
	if err != nil || typ != container.Inter {
		t.Fatalf("%v %v", typ, err)
	}
	var buf bytes.Buffer
	w, _ := container.NewWriter(&buf, container.Header{ModelID: m.ID, Width: 70, Height: 40, TimebaseNum: 1, TimebaseDen: 25})
	w.WriteFrame(&container.Frame{Type: container.Inter, Quality: 3 << 8, Streams: streams})
	w.Close()
	if _, err := DecodeImage(&buf, m); err == nil || !strings.Contains(err.Error(), "without a decoded frame before it") {
		t.Errorf("inter frame first: got %v", err)
	}
}

// TestScaledModelRoundTrip codes with a model whose transforms take
// per-quality scalers, at a quality between two trained ones, and checks that
// the decoder feeds them: without them the same file decodes differently.
func TestScaledModelRoundTrip(t *testing.T) {
	m, err := LoadModel(mustRead(t, "../testdata/tiny_scaled.lvcm"))
	if err != nil {
		t.Fatal(err)
	}
	img := testImage(70, 40)
	data := encode(t, m, img, 2.5)
	out, err := DecodeImage(bytes.NewReader(data), m)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range m.scalersS {
		for i := range v {
			v[i] = 1
		}
	}
	plain, err := DecodeImage(bytes.NewReader(data), m)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(out.(*image.RGBA).Pix, plain.(*image.RGBA).Pix) {
		t.Fatal("the synthesis scalers change nothing")
	}
}

// modelSections splits a model file into its sections, each with its header.
func modelSections(b []byte) [][]byte {
	var out [][]byte
	for rest := b[8:]; len(rest) > 0; {
		n := 8 + int(binary.LittleEndian.Uint32(rest[4:]))
		out = append(out, rest[:n])
		rest = rest[n:]
	}
	return out
}

// withoutSection rebuilds a model file without one section.
func withoutSection(b []byte, tag string) []byte {
	out := append([]byte(nil), b[:8]...)
	for _, sec := range modelSections(b) {
		if string(sec[:4]) != tag {
			out = append(out, sec...)
		}
	}
	return out
}

// TestScalerModelErrors: scalers that META does not announce, or networks
// that do not take the scalers META announces, are refused by name.
func TestScalerModelErrors(t *testing.T) {
	scaled := mustRead(t, "../testdata/tiny_scaled.lvcm")
	if _, err := LoadModel(withoutSection(scaled, "SCAL")); err == nil || !strings.Contains(err.Error(), "SCAL") {
		t.Errorf("scaled model without SCAL: %v", err)
	}
	// The plain model's g_s in the scaled model: its inputs do not match.
	mixed := withoutSection(scaled, "G_S ")
	for _, sec := range modelSections(mustRead(t, "../testdata/tiny.lvcm")) {
		if string(sec[:4]) == "G_S " {
			mixed = append(mixed, sec...)
		}
	}
	if _, err := LoadModel(mixed); err == nil || !strings.Contains(err.Error(), "g_s takes inputs") {
		t.Errorf("scaled model with an unscaled g_s: %v", err)
	}
}

// withMeta rebuilds a model file with its META JSON changed by edit.
func withMeta(t testing.TB, b []byte, edit func(map[string]any)) []byte {
	t.Helper()
	out := append([]byte(nil), b[:8]...)
	for _, sec := range modelSections(b) {
		if string(sec[:4]) == "META" {
			meta := map[string]any{}
			if err := json.Unmarshal(sec[8:], &meta); err != nil {
				t.Fatal(err)
			}
			edit(meta)
			js, err := json.Marshal(meta)
			if err != nil {
				t.Fatal(err)
			}
			sec = binary.LittleEndian.AppendUint32([]byte("META"), uint32(len(js)))
			sec = append(sec, js...)
		}
		out = append(out, sec...)
	}
	return out
}

// TestScalerWidths: the tiny scaled model's g_s has a wider last layer
// (META scaler_widths); widths that disagree with the layers, the SCAL
// section or the networks are refused by name.
func TestScalerWidths(t *testing.T) {
	scaled := mustRead(t, "../testdata/tiny_scaled.lvcm")
	m, err := LoadModel(scaled)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m.widthsA, m.widthsS) != "[4 4 4] [4 4 6]" {
		t.Fatalf("widths %v %v, want [4 4 4] [4 4 6]", m.widthsA, m.widthsS)
	}
	for _, c := range []struct {
		widths any
		want   string
	}{
		{[][]int{{4, 4, 4}}, "scaler_widths has 1 networks"},
		{[][]int{{4, 4}, {4, 4, 6}}, "scaler_widths gives 2 layers"},
		{[][]int{{4, 4, 4}, {4, 0, 6}}, "scaler width 0"},
		// g_s declares the width of each scaler input it takes.
		{[][]int{{4, 4, 4}, {4, 4, 4}}, "g_s input s2 has shape [1 6 1 1], the codec feeds it [1 4 1 1]"},
		{nil, "g_s input s2 has shape [1 6 1 1], the codec feeds it [1 4 1 1]"},
	} {
		b := withMeta(t, scaled, func(meta map[string]any) { meta["scaler_widths"] = c.widths })
		if _, err := LoadModel(b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("scaler_widths %v: %v, want an error with %q", c.widths, err, c.want)
		}
	}
	for _, sec := range modelSections(scaled) {
		if string(sec[:4]) == "SCAL" {
			cut := withSection(scaled, "SCAL", sec[8:len(sec)-4])
			if _, err := LoadModel(cut); err == nil || !strings.Contains(err.Error(), "SCAL has") {
				t.Errorf("SCAL one value short: %v, want an error with %q", err, "SCAL has")
			}
		}
	}
}

// TestNetworkInputShapes: a g_s that declares other latent channels than
// META's M is refused by name at load, not when it first decodes.
func TestNetworkInputShapes(t *testing.T) {
	b := mustRead(t, "../testdata/tiny.lvcm")
	m, err := LoadModel(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.gS.Inputs(); len(got) != 1 || fmt.Sprint(got[0].Shape) != fmt.Sprintf("[1 %d -1 -1]", m.Info.M) {
		t.Fatalf("g_s declares %v, want x of [1 %d ? ?]", got, m.Info.M)
	}
	// Another M in META would first fail GAIN's size; checkInputs is what
	// would refuse a g_s that META's other sections all agree with.
	for _, c := range []struct {
		name  string
		x     []int
		m     int
		wants string
	}{
		{"g_s against M+1", m.gS.Inputs()[0].Shape, m.Info.M + 1,
			fmt.Sprintf("g_s input x has shape [1 %d ? ?], the codec feeds it [1 %d ? ?]", m.Info.M, m.Info.M+1)},
		{"a batch of 2", []int{2, m.Info.M, -1, -1}, m.Info.M, fmt.Sprintf("the codec feeds it [1 %d ? ?]", m.Info.M)},
		{"a fixed height", []int{1, m.Info.M, 4, -1}, m.Info.M, "must leave height and width free"},
		{"no declared shape", nil, m.Info.M + 1, ""},
	} {
		err := checkInputs("g_s", []nn.Input{{Name: "x", Shape: c.x}}, c.m, nil)
		if c.wants == "" && err != nil || c.wants != "" && (err == nil || !strings.Contains(err.Error(), c.wants)) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.wants)
		}
	}
}

// withSection rebuilds a model file with one section's payload replaced.
func withSection(b []byte, tag string, payload []byte) []byte {
	out := append([]byte(nil), b[:8]...)
	for _, sec := range modelSections(b) {
		if string(sec[:4]) == tag {
			sec = binary.LittleEndian.AppendUint32([]byte(tag), uint32(len(payload)))
			sec = append(sec, payload...)
		}
		out = append(out, sec...)
	}
	return out
}

// gaussianPMFs gives Gaussian bin probabilities for each scale over
// ±(7σ+4), as train/fit_tables.py lays its tables out.
func gaussianPMFs(scales []float64) (pmfs [][]float64, offsets []int32) {
	for _, s := range scales {
		s = min(s, 100) // keeps the widest tables small
		k := int(math.Ceil(7*s)) + 4
		p := make([]float64, 2*k+1)
		for i := range p {
			v := float64(i - k)
			p[i] = 0.5 * (math.Erf((v+0.5)/(s*math.Sqrt2)) - math.Erf((v-0.5)/(s*math.Sqrt2)))
		}
		pmfs, offsets = append(pmfs, p), append(offsets, int32(-k))
	}
	return pmfs, offsets
}

// perQualityModel replaces a model file's table section (TABY or TABZ) by
// one set per quality, set q made of Gaussian pmfs at scales(q), and sets
// the META flag that announces it.
func perQualityModel(t *testing.T, plain []byte, tag, flag string, qualities int, scales func(q int) []float64) *Model {
	t.Helper()
	var pmfs [][]float64
	var offsets []int32
	for q := range qualities {
		p, o := gaussianPMFs(scales(q))
		pmfs, offsets = append(pmfs, p...), append(offsets, o...)
	}
	ts, err := entropy.FactorizedTables(pmfs, offsets, TablePrecision)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ts.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel(withMeta(t, withSection(plain, tag, b), func(meta map[string]any) { meta[flag] = true }))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPerQualityTables: with META y_tables_per_quality, a frame codes y with
// the table set of its quality. Tables change the file size, never the image.
func TestPerQualityTables(t *testing.T) {
	plain := mustRead(t, "../testdata/tiny.lvcm")
	m0, err := LoadModel(plain)
	if err != nil {
		t.Fatal(err)
	}
	const badQuality = 3
	m1 := perQualityModel(t, plain, "TABY", "y_tables_per_quality", m0.Info.Qualities, func(q int) []float64 {
		if q != badQuality {
			return m0.Info.Scales
		}
		wide := make([]float64, len(m0.Info.Scales)) // a poor fit: this quality's files must grow
		for i, s := range m0.Info.Scales {
			wide[i] = 8 * s
		}
		return wide
	})
	img := testImage(130, 70)
	// A fractional quality uses the nearest whole quality's set.
	for _, q := range []float64{badQuality - 1, badQuality, badQuality + 0.4, badQuality + 0.6} {
		a, b := encode(t, m0, img, q), encode(t, m1, img, q)
		if (math.Round(q) == badQuality) != (len(b) > len(a)+len(a)/10) {
			t.Errorf("quality %v: %d bytes with the Gaussian tables, %d with per-quality ones", q, len(a), len(b))
		}
		ia, err := DecodeImage(bytes.NewReader(a), m0)
		if err != nil {
			t.Fatal(err)
		}
		ib, err := DecodeImage(bytes.NewReader(b), m1)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ia.(*image.RGBA).Pix, ib.(*image.RGBA).Pix) {
			t.Errorf("quality %v: the tables changed the image", q)
		}
	}
	// The flag without a set per quality is refused.
	if _, err := LoadModel(withMeta(t, plain, func(meta map[string]any) { meta["y_tables_per_quality"] = true })); err == nil ||
		!strings.Contains(err.Error(), "y tables") {
		t.Errorf("one set of y tables for a per-quality model: %v", err)
	}
}

// TestPerQualityZTables: with META z_tables_per_quality, z is coded with the
// set of the frame's quality: two models that differ only in quality 3's set
// write identical frames at quality 2 and different ones at quality 3.
func TestPerQualityZTables(t *testing.T) {
	plain := mustRead(t, "../testdata/tiny.lvcm")
	m0, err := LoadModel(plain)
	if err != nil {
		t.Fatal(err)
	}
	withZ := func(badScale float64) *Model {
		return perQualityModel(t, plain, "TABZ", "z_tables_per_quality", m0.Info.Qualities, func(q int) []float64 {
			if q == 3 {
				return slices.Repeat([]float64{badScale}, m0.Info.N)
			}
			return slices.Repeat([]float64{1}, m0.Info.N)
		})
	}
	good, bad := withZ(1), withZ(40)
	img := testImage(130, 70)
	// The frame records, after the 48-byte header that names the model.
	if !bytes.Equal(encode(t, good, img, 2)[48:], encode(t, bad, img, 2)[48:]) {
		t.Error("quality 2's files differ: quality 3's z tables were used")
	}
	a, b := encode(t, good, img, 3), encode(t, bad, img, 3)
	if bytes.Equal(a[48:], b[48:]) {
		t.Error("quality 3's files are equal: its z tables were not used")
	}
	if _, err := DecodeImage(bytes.NewReader(b), bad); err != nil {
		t.Error(err)
	}
	if _, err := LoadModel(withMeta(t, plain, func(meta map[string]any) { meta["z_tables_per_quality"] = true })); err == nil ||
		!strings.Contains(err.Error(), "z tables") {
		t.Errorf("one set of z tables for a per-quality model: %v", err)
	}
}

// TestDecoderLeavesAnalysisUnloaded: a model that only decodes never
// compiles g_a and h_a (about 10 MB of the shipped model's memory); the
// first encode does.
func TestDecoderLeavesAnalysisUnloaded(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeImage(&buf, tinyModel(t), testImage(70, 40), Options{Quality: 3}); err != nil {
		t.Fatal(err)
	}
	m := tinyModel(t)
	if _, err := DecodeImage(bytes.NewReader(buf.Bytes()), m); err != nil {
		t.Fatal(err)
	}
	if m.gA != nil || m.hA != nil {
		t.Error("decoding compiled the analysis networks")
	}
	if err := EncodeImage(io.Discard, m, testImage(70, 40), Options{Quality: 3}); err != nil {
		t.Fatal(err)
	}
	if m.gA == nil || m.hA == nil {
		t.Error("encoding left the analysis networks unloaded")
	}
}

// TestDecoderDropsTheReferenceAfterAnError: when an inter frame is lost, the
// next inter frame must not be decoded against the frame before the lost
// one; it is an error until an intra frame comes.
func TestDecoderDropsTheReferenceAfterAnError(t *testing.T) {
	m := tinyModel(t)
	var enc entropy.Encoder
	intra, inter, _ := intraThenInter(t, m, testImage(70, 40), 3<<8, &enc)
	var buf bytes.Buffer
	w, _ := container.NewWriter(&buf, container.Header{ModelID: m.ID, Width: 70, Height: 40, TimebaseNum: 1, TimebaseDen: 25})
	for i, f := range []*container.Frame{
		{Type: container.Intra, Streams: intra},
		{Type: container.Inter, Streams: inter},
		{Type: container.Inter, Streams: inter},
		{Type: container.Intra, Streams: intra},
	} {
		f.Quality, f.PTS = 3<<8, int64(i)
		w.WriteFrame(f)
	}
	w.Close()
	data := buf.Bytes()
	// Frame 1's last payload byte: its checksum fails, the framing holds.
	second := bytes.Index(data[bytes.Index(data, []byte("LVFR"))+4:], []byte("LVFR")) + bytes.Index(data, []byte("LVFR")) + 4
	third := second + 4 + bytes.Index(data[second+4:], []byte("LVFR"))
	data[third-1]++
	d, err := NewDecoder(bytes.NewReader(data), m, DecoderOptions{LatentsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	for {
		_, err := d.Next()
		if err == io.EOF {
			break
		}
		errs = append(errs, err)
	}
	if len(errs) != 4 || errs[0] != nil || !errors.Is(errs[1], container.ErrChecksum) ||
		errs[2] == nil || !strings.Contains(errs[2].Error(), "without a decoded frame") || errs[3] != nil {
		t.Errorf("frames decoded with errors %v; want nil, a checksum error, no reference, nil", errs)
	}
}

// TestPremultipliedInputIsUnpremultiplied: the *image.RGBA fast path reads
// colour as the generic path does, straight, so transparency is dropped.
func TestPremultipliedInputIsUnpremultiplied(t *testing.T) {
	premul := image.NewRGBA(image.Rect(0, 0, 3, 1))
	for x, c := range []color.NRGBA{{255, 0, 0, 128}, {10, 200, 30, 255}, {90, 60, 30, 200}} {
		premul.Set(x, 0, c)
	}
	fast, generic := imageToTensor(premul, 3, 1), imageToTensor(struct{ image.Image }{premul}, 3, 1)
	if !slices.Equal(fast.Data, generic.Data) {
		t.Errorf("premultiplied RGBA reads as %v, through the generic path as %v", fast.Data, generic.Data)
	}
	if fast.Data[0] != 1 {
		t.Errorf("half-transparent red reads as %v, want 1", fast.Data[0])
	}
}

func TestModelHeaderReservedBytes(t *testing.T) {
	b := mustRead(t, "../testdata/tiny.lvcm")
	b[6] = 1
	if _, err := LoadModel(b); err == nil || !strings.Contains(err.Error(), "bytes 5-7") {
		t.Errorf("a model header with a non-zero reserved byte: %v", err)
	}
}

// TestNaNLatentsAreRefused: a NaN latent would become a platform-dependent
// symbol (int32(NaN)), so the encoder stops instead. Only a broken model
// makes one; here a gain is broken after loading.
func TestNaNLatentsAreRefused(t *testing.T) {
	m := tinyModel(t)
	m.gainEnc[0][0] = float32(math.NaN())
	img := image.NewRGBA(image.Rect(0, 0, 40, 24))
	err := EncodeImage(io.Discard, m, img, Options{Quality: 0})
	if err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("got %v, want an error naming NaN latents", err)
	}
}
