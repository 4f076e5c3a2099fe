package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const foreman = "../../../shared/data/video/foreman_qcif_176x144_3frames.y4m"

func TestY4MRoundTripThroughCodec(t *testing.T) {
	if _, err := os.Stat(foreman); err != nil {
		t.Skip("shared video data not present")
	}
	dir := t.TempDir()
	enc, dec := filepath.Join(dir, "v.lvc"), filepath.Join(dir, "v.y4m")
	if _, _, err := runCLI("encode", foreman, "-o", enc, "-q", "7", "--intra", "2"); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI("info", enc)
	if err != nil || !strings.Contains(out, "frames:    3") || !strings.Contains(out, "1001/30000") ||
		strings.Count(out, "intra ") != 2 || strings.Count(out, "inter ") != 1 {
		t.Fatalf("info: %v\n%s", err, out)
	}
	full := filepath.Join(dir, "v444.y4m")
	if _, _, err := runCLI("decode", enc, "-o", full, "--chroma", "444"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(full); !bytes.Contains(b[:min(len(b), 80)], []byte(" C444 ")) || len(b) < 3*3*176*144 {
		t.Errorf("--chroma 444 wrote %d bytes, header %q", len(b), b[:min(len(b), 60)])
	}
	if _, _, err := runCLI("decode", enc, "-o", dec); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(foreman)
	b, _ := os.ReadFile(dec)
	ra, _ := newY4MReader(bytes.NewReader(a))
	rb, err := newY4MReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		fa, errA := ra.next()
		fb, errB := rb.next()
		if errA == io.EOF && errB == io.EOF {
			if i != 3 {
				t.Fatalf("%d frames", i)
			}
			return
		}
		if errA != nil || errB != nil {
			t.Fatalf("frame %d: %v / %v", i, errA, errB)
		}
		var se float64
		bd := fa.Bounds()
		for y := 0; y < bd.Dy(); y++ {
			for x := 0; x < bd.Dx(); x++ {
				r1, g1, b1, _ := fa.At(x, y).RGBA()
				r2, g2, b2, _ := fb.At(x, y).RGBA()
				for _, d := range []float64{float64(r1>>8) - float64(r2>>8), float64(g1>>8) - float64(g2>>8), float64(b1>>8) - float64(b2>>8)} {
					se += d * d
				}
			}
		}
		psnr := 10 * math.Log10(255*255/(se/float64(3*bd.Dx()*bd.Dy())))
		t.Logf("frame %d: %.2f dB", i, psnr)
		if psnr < 20 {
			t.Errorf("frame %d: %.2f dB, the video came back wrong", i, psnr)
		}
	}
}

func TestY4MBadInput(t *testing.T) {
	frame := "FRAME\n" + strings.Repeat("\x80", 4*4+2*2*2)
	for name, data := range map[string]string{
		"not y4m":     "P6\n4 4\n255\n",
		"interlaced":  "YUV4MPEG2 W4 H4 It C420jpeg\n" + frame,
		"huge":        "YUV4MPEG2 W100000 H4\n",
		"too many px": "YUV4MPEG2 W16384 H16384\n",
		"bad rate":    "YUV4MPEG2 W4 H4 F0:1\n",
		"rate no den": "YUV4MPEG2 W4 H4 F25\n",
		"bad aspect":  "YUV4MPEG2 W4 H4 A1:0\n",
		"aspect text": "YUV4MPEG2 W4 H4 Awide\n",
		"422":         "YUV4MPEG2 W4 H4 C422\n",
		"long line":   "YUV4MPEG2 " + strings.Repeat("X", 2000) + "\n",
		"10-bit":      "YUV4MPEG2 W4 H4 C420p10 XYSCSS=420P10\n",
		"16-bit mono": "YUV4MPEG2 W4 H4 Cmono16\n",
	} {
		if _, err := newY4MReader(strings.NewReader(data)); err == nil {
			t.Errorf("%s: header accepted", name)
		}
	}
	r, err := newY4MReader(strings.NewReader("YUV4MPEG2 W4 H4 C420jpeg\n" + frame + frame[:20]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.next(); err != errTruncatedFrame {
		t.Errorf("truncated frame: got %v", err)
	}
	if _, err := newY4MReader(strings.NewReader("YUV4MPEG2 W4 H4 C420p10\n")); err == nil || !strings.Contains(err.Error(), "8-bit") {
		t.Errorf("10-bit: got %v, want it named", err)
	}
	if _, err := newY4MReader(strings.NewReader("YUV4MPEG2 W4 H4 C444alpha\n")); err == nil || strings.Contains(err.Error(), "8-bit") {
		t.Errorf("C444alpha: got %v, want it called unsupported, not high bit depth", err)
	}
	r, _ = newY4MReader(strings.NewReader("YUV4MPEG2 W4 H4 C420jpeg\n" + frame + "FRA"))
	r.next()
	if _, err := r.next(); err != errTruncatedFrame {
		t.Errorf("truncated frame marker: got %v", err)
	}
}

// TestY4MRange: colour is limited range and mono full range unless the
// header says otherwise, and mono written by lvc reads back unchanged.
func TestY4MRange(t *testing.T) {
	for _, c := range []struct {
		header string
		in     byte
		want   uint8
	}{
		{"Cmono", 10, 10}, {"Cmono XCOLORRANGE=LIMITED", 16, 0}, {"Cmono XCOLORRANGE=FULL", 10, 10},
		{"C444", 16, 0}, {"C444 XCOLORRANGE=FULL", 16, 16},
	} {
		n := 4
		if !strings.HasPrefix(c.header, "Cmono") {
			n = 12
		}
		data := strings.Repeat(string([]byte{c.in}), 4) + strings.Repeat("\x80", n-4)
		r, err := newY4MReader(strings.NewReader("YUV4MPEG2 W2 H2 " + c.header + "\nFRAME\n" + data))
		if err != nil {
			t.Fatal(err)
		}
		img, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if got, _, _, _ := img.At(0, 0).RGBA(); uint8(got>>8) != c.want {
			t.Errorf("%s: %d reads as %d, want %d", c.header, c.in, got>>8, c.want)
		}
	}
	var buf bytes.Buffer
	w, _ := newY4MWriter(&buf, y4mHeader{width: 2, height: 1, fpsNum: 25, fpsDen: 1, chroma: "mono"})
	g := image.NewGray(image.Rect(0, 0, 2, 1))
	g.Pix[0], g.Pix[1] = 3, 250
	w.write(g)
	w.flush()
	r, err := newY4MReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	back, err := r.next()
	if err != nil || back.(*image.Gray).Pix[0] != 3 || back.(*image.Gray).Pix[1] != 250 {
		t.Errorf("mono round trip: %v %v", back, err)
	}
}

// TestY4MChromaSiting: a step between two chroma samples is interpolated
// from where the header sites them. Full-range gray luma with Cb 128 then
// 168 gives blue 128, then 128+1.772*40 = 199.
func TestY4MChromaSiting(t *testing.T) {
	for _, c := range []struct {
		tag        string
		blue, down [4]uint8 // row 0 across, column 1 down
	}{
		// Centred: chroma k sits at luma 2k+0.5 on both axes.
		{"C420jpeg", [4]uint8{128, 146, 181, 199}, [4]uint8{146, 146, 146, 146}},
		{"C420", [4]uint8{128, 146, 181, 199}, [4]uint8{146, 146, 146, 146}},
		// Co-sited with the even luma columns, centred vertically.
		{"C420mpeg2", [4]uint8{128, 163, 199, 199}, [4]uint8{163, 163, 163, 163}},
		{"C420paldv", [4]uint8{128, 163, 199, 199}, [4]uint8{163, 163, 163, 163}},
	} {
		// 4x4 luma 128, chroma 2x2: Cb columns 128 and 168, Cr 128.
		frame := strings.Repeat("\x80", 16) + "\x80\xa8\x80\xa8" + strings.Repeat("\x80", 4)
		r, err := newY4MReader(strings.NewReader("YUV4MPEG2 W4 H4 " + c.tag + " XCOLORRANGE=FULL\nFRAME\n" + frame))
		if err != nil {
			t.Fatal(err)
		}
		img, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		var blue, down [4]uint8
		for i := range 4 {
			blue[i] = img.(*image.NRGBA).NRGBAAt(i, 0).B
			down[i] = img.(*image.NRGBA).NRGBAAt(1, i).B
		}
		if blue != c.blue || down != c.down {
			t.Errorf("%s: blue across %v, down %v; want %v, %v", c.tag, blue, down, c.blue, c.down)
		}
	}
	// Vertically: a step between chroma rows, co-sited only in 420paldv.
	for tag, want := range map[string][4]uint8{
		"C420jpeg": {128, 146, 181, 199}, "C420mpeg2": {128, 146, 181, 199}, "C420paldv": {128, 163, 199, 199},
	} {
		frame := strings.Repeat("\x80", 16) + "\x80\x80\xa8\xa8" + strings.Repeat("\x80", 4)
		r, err := newY4MReader(strings.NewReader("YUV4MPEG2 W4 H4 " + tag + " XCOLORRANGE=FULL\nFRAME\n" + frame))
		if err != nil {
			t.Fatal(err)
		}
		img, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		var got [4]uint8
		for i := range 4 {
			got[i] = img.(*image.NRGBA).NRGBAAt(0, i).B
		}
		if got != want {
			t.Errorf("%s: blue down %v, want %v", tag, got, want)
		}
	}
	// Odd sizes: the last luma column and row past the last chroma sample
	// clamp to it. W3 H3 has 2x2 chroma; W1 H1 one sample.
	for _, c := range []struct {
		header, planes string
		want           []uint8 // blue along row 0
	}{
		{"W3 H3 C420jpeg", strings.Repeat("\x80", 9) + "\x80\xa8\x80\xa8" + strings.Repeat("\x80", 4), []uint8{128, 146, 181}},
		{"W3 H3 C420mpeg2", strings.Repeat("\x80", 9) + "\x80\xa8\x80\xa8" + strings.Repeat("\x80", 4), []uint8{128, 163, 199}},
		{"W1 H1 C420jpeg", "\x80\xa8\x80", []uint8{199}},
	} {
		r, err := newY4MReader(strings.NewReader("YUV4MPEG2 " + c.header + " XCOLORRANGE=FULL\nFRAME\n" + c.planes))
		if err != nil {
			t.Fatal(err)
		}
		img, err := r.next()
		if err != nil {
			t.Fatalf("%s: %v", c.header, err)
		}
		for x, want := range c.want {
			if got := img.(*image.NRGBA).NRGBAAt(x, 0).B; got != want {
				t.Errorf("%s: blue at %d is %d, want %d", c.header, x, got, want)
			}
		}
	}
}

// 4:4:4 output keeps each pixel's colour, which 4:2:0 averages over 2x2.
func TestY4MWriterChroma(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	colours := []color.RGBA{{250, 10, 10, 255}, {10, 250, 10, 255}, {10, 10, 250, 255}, {200, 200, 20, 255}}
	for i, c := range colours {
		img.Set(i%2, i/2, c)
	}
	for _, c := range []struct {
		chroma  string
		maxDiff int
	}{{"444", 4}, {"420", 1000}} {
		var buf bytes.Buffer
		w, err := newY4MWriter(&buf, y4mHeader{width: 2, height: 2, fpsNum: 25, fpsDen: 1, chroma: c.chroma})
		if err != nil {
			t.Fatal(err)
		}
		w.write(img)
		w.flush()
		r, err := newY4MReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if r.h.chroma != c.chroma {
			t.Errorf("%s: header reads back as %s", c.chroma, r.h.chroma)
		}
		back, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		worst := 0
		for i, want := range colours {
			got := color.RGBAModel.Convert(back.At(i%2, i/2)).(color.RGBA)
			for _, d := range []int{int(got.R) - int(want.R), int(got.G) - int(want.G), int(got.B) - int(want.B)} {
				worst = max(worst, d, -d)
			}
		}
		if c.chroma == "444" && worst > c.maxDiff {
			t.Errorf("444: a channel is off by %d", worst)
		}
		if c.chroma == "420" && worst < 50 {
			t.Errorf("420 kept distinct colours in a 2x2 block (worst %d): is it subsampling?", worst)
		}
	}
	if _, err := newY4MWriter(io.Discard, y4mHeader{width: 2, height: 2, fpsNum: 25, fpsDen: 1, chroma: "422"}); err == nil {
		t.Error("4:2:2 output accepted")
	}
}

// opaqueImage hides an image's concrete type, so the writer takes At.
type opaqueImage struct{ image.Image }

// testFrames is an RGBA and a Gray frame of odd size with a sub-image's
// nonzero origin, filled with a pattern.
func testFrames(w, h int) []image.Image {
	rgba := image.NewRGBA(image.Rect(0, 0, w+3, h+2))
	gray := image.NewGray(image.Rect(0, 0, w+3, h+2))
	for i := range rgba.Pix {
		rgba.Pix[i] = byte(i*37 + i/5)
		if i%4 == 3 {
			rgba.Pix[i] = 255
		}
	}
	for i := range gray.Pix {
		gray.Pix[i] = byte(i*53 + i/7)
	}
	r := image.Rect(2, 1, w+2, h+1)
	return []image.Image{rgba.SubImage(r), gray.SubImage(r)}
}

func TestY4MWriterFastPathMatchesAt(t *testing.T) {
	frames := testFrames(7, 5)
	// A second frame of each kind, so the reused frame buffer is seen
	// carrying nothing over from the first.
	second := testFrames(7, 5)
	for _, img := range second {
		img.(interface{ Set(int, int, color.Color) }).Set(4, 3, color.White)
	}
	for i, img := range frames {
		for _, chroma := range []string{"420", "444", "mono"} {
			var fast, slow bytes.Buffer
			for _, c := range []struct {
				buf    *bytes.Buffer
				images []image.Image
			}{{&fast, []image.Image{img, second[i]}}, {&slow, []image.Image{opaqueImage{img}, opaqueImage{second[i]}}}} {
				w, err := newY4MWriter(c.buf, y4mHeader{width: 7, height: 5, fpsNum: 25, fpsDen: 1, chroma: chroma})
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range c.images {
					if err := w.write(f); err != nil {
						t.Fatal(err)
					}
				}
				w.flush()
			}
			if !bytes.Equal(fast.Bytes(), slow.Bytes()) {
				t.Errorf("%T %s: Pix path writes other bytes than At", img, chroma)
			}
			// Without the Pix path a frame costs an allocation per pixel.
			w, _ := newY4MWriter(io.Discard, y4mHeader{width: 7, height: 5, fpsNum: 25, fpsDen: 1, chroma: chroma})
			if n := testing.AllocsPerRun(5, func() { w.write(img) }); n > 3 {
				t.Errorf("%T %s: %.0f allocations per frame; is the Pix path taken?", img, chroma, n)
			}
		}
	}
}

func BenchmarkY4MWriter(b *testing.B) {
	img := testFrames(416, 240)[0]
	for _, c := range []struct {
		name string
		img  image.Image
	}{{"Pix", img}, {"At", opaqueImage{img}}} {
		b.Run(c.name, func(b *testing.B) {
			w, _ := newY4MWriter(io.Discard, y4mHeader{width: 416, height: 240, fpsNum: 25, fpsDen: 1, chroma: "420"})
			b.ReportAllocs()
			for b.Loop() {
				w.write(c.img)
			}
		})
	}
}

func FuzzY4MReader(f *testing.F) {
	f.Add([]byte("YUV4MPEG2 W4 H2 F25:1 C420jpeg\nFRAME\n" + strings.Repeat("\x10", 12)))
	f.Add([]byte("YUV4MPEG2 W3 H3 Cmono XCOLORRANGE=FULL\nFRAME\n123456789"))
	f.Add([]byte("YUV4MPEG2 W3 H3 A32:27 Cmono\nFRAME\n123456789"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := newY4MReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		for range 4 {
			if _, err := r.next(); err != nil {
				return
			}
		}
	})
}

// TestY4MTruncatedLastFrame: a capture cut short keeps its whole frames,
// with a warning, as ffmpeg does.
func TestY4MTruncatedLastFrame(t *testing.T) {
	dir := t.TempDir()
	in, enc := filepath.Join(dir, "cut.y4m"), filepath.Join(dir, "cut.lvc")
	frame := "FRAME\n" + strings.Repeat("\x70", 16*16+2*8*8)
	os.WriteFile(in, []byte("YUV4MPEG2 W16 H16 F25:1 C420jpeg\n"+frame+frame+frame[:100]), 0o644)
	_, stderr, err := runCLI("encode", in, "-o", enc, "-q", "0")
	if err != nil || !strings.Contains(stderr, "frame 2 is truncated") {
		t.Fatalf("%v, stderr %q", err, stderr)
	}
	out, _, err := runCLI("info", enc)
	if err != nil || !strings.Contains(out, "frames:    2") {
		t.Errorf("info: %v\n%s", err, out)
	}

	// To a pipe, which cannot seek: the same bytes, and the size counted.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(pr); got <- b }()
	var errb bytes.Buffer
	err = run([]string{"encode", in, "-o", "-", "-q", "0"}, pw, &errb)
	pw.Close()
	piped := <-got
	want := mustRead(t, enc)
	// The header differs: a pipe keeps frame count 0 (FORMAT.md §1).
	if err != nil || len(piped) != len(want) || !bytes.Equal(piped[48:], want[48:]) || !strings.Contains(errb.String(), fmt.Sprintf("%d bytes", len(want))) {
		t.Errorf("encode to a pipe: %v, %d bytes against %d, stderr %q", err, len(piped), len(want), errb.String())
	}
}

// TestNoSkipFlag: on a still scene under noise, skipped blocks make the file
// smaller, --no-skip turns them off, and both decode; on an image the flag
// only warns.
func TestNoSkipFlag(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const w, h = 96, 64
	var clip bytes.Buffer
	clip.WriteString("YUV4MPEG2 W96 H64 F25:1 C444\n")
	for range 4 {
		clip.WriteString("FRAME\n")
		for p := range 3 * w * h {
			base := 128 + 60*math.Sin(float64(p%w)/7)*math.Cos(float64(p/w%h)/5)
			clip.WriteByte(byte(int(base) + rng.IntN(7) - 3))
		}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "still.y4m")
	if err := os.WriteFile(src, clip.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	size := map[bool]int64{}
	for _, noSkip := range []bool{false, true} {
		out := filepath.Join(dir, "still.lvc")
		args := []string{"encode", src, "-o", out, "-q", "4"}
		if noSkip {
			args = append(args, "--no-skip")
		}
		if _, _, err := runCLI(args...); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(out)
		size[noSkip] = st.Size()
		if _, _, err := runCLI("decode", out, "-o", filepath.Join(dir, "still_dec.y4m")); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("4 still frames: %d bytes, %d with --no-skip", size[false], size[true])
	if size[false] >= size[true] {
		t.Errorf("skipping gave %d bytes, --no-skip %d", size[false], size[true])
	}
	_, stderr, err := runCLI("encode", "../../testdata/sample.png", "-o", filepath.Join(dir, "img.lvc"), "--no-skip")
	if err != nil || !strings.Contains(stderr, "--no-skip is for video") {
		t.Errorf("image with --no-skip: %v, %q", err, stderr)
	}
}

// TestY4MPixelAspect: Y4M's A tag goes into the .lvc header and comes back
// out of the decoder (anamorphic DVD video is 720x480 with A32:27); a file
// without it, or with A0:0, stays unsaid.
func TestY4MPixelAspect(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ tag, want, info string }{
		{" A32:27", " A32:27 ", "aspect:    32:27"},
		{" A0:0", " A0:0 ", ""},
		{"", " A0:0 ", ""},
	} {
		var clip bytes.Buffer
		clip.WriteString("YUV4MPEG2 W32 H16 F25:1" + c.tag + " C420jpeg\n")
		for range 2 {
			clip.WriteString("FRAME\n")
			clip.Write(bytes.Repeat([]byte{100}, 32*16+2*16*8))
		}
		src, enc, dec := filepath.Join(dir, "a.y4m"), filepath.Join(dir, "a.lvc"), filepath.Join(dir, "b.y4m")
		if err := os.WriteFile(src, clip.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := runCLI("encode", src, "-o", enc, "-q", "0"); err != nil {
			t.Fatal(err)
		}
		out, _, err := runCLI("info", enc)
		if err != nil || strings.Contains(out, "aspect:") != (c.info != "") || !strings.Contains(out, c.info) {
			t.Errorf("tag %q: info %v\n%s", c.tag, err, out)
		}
		if _, _, err := runCLI("decode", enc, "-o", dec); err != nil {
			t.Fatal(err)
		}
		b := mustRead(t, dec)
		line, _, found := bytes.Cut(b, []byte("\n"))
		if !found || !bytes.Contains(line, []byte(c.want)) {
			t.Errorf("tag %q: decoded header %.80q, want %q in it", c.tag, line, c.want)
		}
	}
}
