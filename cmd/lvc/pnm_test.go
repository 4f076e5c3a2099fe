package main

import (
	"bytes"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPNMFormats reads the same 3x2 picture, or its gray or bitmap version,
// in every Netpbm form.
func TestPNMFormats(t *testing.T) {
	rgb := [][3]uint8{{255, 0, 0}, {0, 128, 0}, {0, 0, 255}, {0, 0, 0}, {255, 255, 255}, {51, 102, 153}}
	gray := []uint8{0, 85, 170, 255, 255, 0}
	bits := []uint8{255, 0, 255, 0, 0, 255} // white, black, ...
	for _, c := range []struct {
		name, file string
		want       any // []uint8 for gray, [][3]uint8 for colour, [][4]uint8 with alpha
	}{
		{"P1", "P1\n# plain bitmap\n3 2\n0 1 0\n1 # a comment in the raster\n10", bits},
		{"P1 packed digits", "P1 3 2 010110", bits},
		{"P4", "P4\n3 2\n\x40\xc0", bits},
		{"P4 wide", "P4 10 1\n\x00\xff", []uint8{255, 255, 255, 255, 255, 255, 255, 255, 0, 0}},
		{"P2 maxval 3", "P2\n3 2\n3\n0 1 2\n3 3 0\n", gray},
		{"P5", "P5 3 2 255\n\x00\x55\xaa\xff\xff\x00", gray},
		{"P5 comment after maxval", "P5 3#w\n2 255# ends the header\n\x00\x55\xaa\xff\xff\x00", gray},
		{"P5 16-bit", "P5 3 2 65535\n\x00\x00\x55\x55\xaa\xaa\xff\xff\xff\xff\x00\x00", gray},
		{"P3", "P3\n3 2 255\n255 0 0  0 128 0  0 0 255\n0 0 0 255 255 255 51 102 153\n", rgb},
		{"P3 maxval 1000", "P3 3 2 1000 1000 0 0 0 502 0 0 0 1000 0 0 0 1000 1000 1000 200 400 600", rgb},
		{"P6", "P6\n3 2\n255\n\xff\x00\x00\x00\x80\x00\x00\x00\xff\x00\x00\x00\xff\xff\xff\x33\x66\x99", rgb},
		{"P7 RGB", "P7\nWIDTH 3\nHEIGHT 2\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n\xff\x00\x00\x00\x80\x00\x00\x00\xff\x00\x00\x00\xff\xff\xff\x33\x66\x99", rgb},
		{"P7 GRAYSCALE", "P7\n# comment\nWIDTH 3\nHEIGHT 2\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n\x00\x55\xaa\xff\xff\x00", gray},
		{"P7 BLACKANDWHITE", "P7\nWIDTH 3\nHEIGHT 2\nDEPTH 1\nMAXVAL 1\nTUPLTYPE BLACKANDWHITE\nENDHDR\n\x01\x00\x01\x00\x00\x01", bits},
		{"P7 depth only", "P7\nWIDTH 3\nHEIGHT 2\nDEPTH 1\nMAXVAL 255\nENDHDR\n\x00\x55\xaa\xff\xff\x00", gray},
		{"P7 RGB_ALPHA", "P7\nWIDTH 2\nHEIGHT 1\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n\x10\x20\x30\x40\x50\x60\x70\xff",
			[][4]uint8{{0x10, 0x20, 0x30, 0x40}, {0x50, 0x60, 0x70, 0xff}}},
		{"P7 GRAYSCALE_ALPHA 16-bit", "P7\nWIDTH 1\nHEIGHT 1\nDEPTH 2\nMAXVAL 65535\nTUPLTYPE GRAYSCALE_ALPHA\nENDHDR\n\x80\x80\x00\x00",
			[][4]uint8{{0x80, 0x80, 0x80, 0}}},
	} {
		img, format, err := image.Decode(strings.NewReader(c.file))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		cfg, _, err := image.DecodeConfig(strings.NewReader(c.file))
		if err != nil || cfg.Width != img.Bounds().Dx() || cfg.Height != img.Bounds().Dy() || cfg.ColorModel != img.ColorModel() {
			t.Errorf("%s: config %+v, %v, against the image's %v", c.name, cfg, err, img.Bounds())
		}
		var got any
		w := img.Bounds().Dx()
		switch want := c.want.(type) {
		case []uint8:
			g, ok := img.(*image.Gray)
			if !ok {
				t.Errorf("%s (%s): %T, not gray", c.name, format, img)
				continue
			}
			got = g.Pix[:len(want)]
		case [][3]uint8:
			var px [][3]uint8
			for i := range want {
				c := color.NRGBAModel.Convert(img.At(i%w, i/w)).(color.NRGBA)
				px = append(px, [3]uint8{c.R, c.G, c.B})
			}
			got = px
		case [][4]uint8:
			var px [][4]uint8
			for i := range want {
				c := img.(*image.NRGBA).NRGBAAt(i%w, i/w)
				px = append(px, [4]uint8{c.R, c.G, c.B, c.A})
			}
			got = px
		}
		if !equalAny(got, c.want) {
			t.Errorf("%s: read %v, want %v", c.name, got, c.want)
		}
	}
}

func equalAny(a, b any) bool {
	switch a := a.(type) {
	case []uint8:
		return bytes.Equal(a, b.([]uint8))
	case [][3]uint8:
		b := b.([][3]uint8)
		return len(a) == len(b) && string(flatten3(a)) == string(flatten3(b))
	case [][4]uint8:
		b := b.([][4]uint8)
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	return false
}

func flatten3(p [][3]uint8) []byte {
	var b []byte
	for _, c := range p {
		b = append(b, c[:]...)
	}
	return b
}

func TestPNMErrors(t *testing.T) {
	for name, c := range map[string]struct{ file, err string }{
		"truncated raw":     {"P6 2 2 255\n\x01\x02\x03", "truncated"},
		"truncated plain":   {"P2 2 2 255\n1 2 3", "truncated"},
		"truncated bitmap":  {"P4 9 2\n\x00\x00\x00", "truncated"},
		"above maxval":      {"P5 2 1 100\n\x10\x65", "sample 101 is above the maximum value 100"},
		"above maxval text": {"P3 1 1 7\n1 8 1", "sample 8 is above"},
		"16-bit above":      {"P5 1 1 1000\n\x03\xe9", "sample 1001 is above"},
		"maxval 0":          {"P5 1 1 0\n\x00", "maximum value 0"},
		"maxval 65536":      {"P5 1 1 65536\n\x00", "maximum value 65536"},
		"zero width":        {"P5 0 1 255\n", "size 0x1"},
		"absurd size":       {"P6 1000000 1000000 255\n", "1000000x1000000 is outside the supported size (16384 per side"},
		"xv thumbnail":      {"P7 332\n#XVVERSION:1\n", "P7 is not alone on its line"},
		"pam twice":         {"P7\nWIDTH 1\nWIDTH 2\n", "WIDTH given twice"},
		"huge number":       {"P6 99999999999999999999 1 255\n", "number too large"},
		"letter in header":  {"P6 2x 1 255\n", "'x' after a number"},
		"header cut":        {"P6 2 1", "bad header"},
		"bad bitmap digit":  {"P1 1 1 2", "'2' in a plain bitmap"},
		"bad plain sample":  {"P2 1 1 255 z", "bad sample"},
		"not netpbm":        {"P8\n", "not a Netpbm file"},
		"pam no ENDHDR":     {"P7\nWIDTH 1\nHEIGHT 1\nDEPTH 1\nMAXVAL 255\n", "before ENDHDR"},
		"pam missing field": {"P7\nWIDTH 1\nHEIGHT 1\nMAXVAL 255\nENDHDR\n\x00", "are all required"},
		"pam depth":         {"P7\nWIDTH 1\nHEIGHT 1\nDEPTH 2\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n\x00\x00", "TUPLTYPE RGB needs DEPTH 3; the header says 2"},
		"pam tuple type":    {"P7\nWIDTH 1\nHEIGHT 1\nDEPTH 4\nMAXVAL 255\nTUPLTYPE CMYK\nENDHDR\n\x00\x00\x00\x00", "\"CMYK\" is not supported"},
		"pam depth 5":       {"P7\nWIDTH 1\nHEIGHT 1\nDEPTH 5\nMAXVAL 255\nENDHDR\n", "depth 5 without a tuple type"},
		"pam field":         {"P7\nWIDTH 1\nCOLOUR 3\nENDHDR\n", "unknown header field"},
		"pam number":        {"P7\nWIDTH -1\nENDHDR\n", "WIDTH \"-1\" is not a valid number"},
		"pam long line":     {"P7\n#" + strings.Repeat("x", 5000) + "\nENDHDR\n", "too long"},
	} {
		_, err := decodePNM(strings.NewReader(c.file))
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.err)
		}
	}
}

// TestEncodePlainPPM: lvc encode reads Netpbm through image.Decode.
func TestEncodePlainPPM(t *testing.T) {
	dir := t.TempDir()
	in, enc := filepath.Join(dir, "in.ppm"), filepath.Join(dir, "x.lvc")
	var b strings.Builder
	b.WriteString("P3 16 16 15\n")
	for i := range 16 * 16 {
		b.WriteString(strings.Repeat(" "+string(rune('0'+i%10)), 3))
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runCLI("encode", in, "-o", enc, "-q", "0"); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
}

func FuzzPNM(f *testing.F) {
	for _, seed := range []string{
		"P1 3 2 010110",
		"P2\n3 2\n3\n0 1 2\n3 3 0\n",
		"P3 1 1 1000 1000 0 0",
		"P4\n3 2\n\x40\xc0",
		"P5 # comment\n3 2 255\n123456",
		"P5 1 1 65535\n\xff\xfe",
		"P6\n2 1\n255\n\x01\x02\x03\x04\x05\x06",
		"P7\nWIDTH 2\nHEIGHT 1\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n\x10\x20\x30\x40\x50\x60\x70\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, cfgErr := decodePNMConfig(bytes.NewReader(data))
		img, err := decodePNM(bytes.NewReader(data))
		if err != nil {
			return
		}
		if cfgErr != nil || img.Bounds() != image.Rect(0, 0, cfg.Width, cfg.Height) || img.ColorModel() != cfg.ColorModel {
			t.Fatalf("image %v %v decoded, but its config is %+v, %v", img.Bounds(), img.ColorModel(), cfg, cfgErr)
		}
	})
}
