package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writePNG(t *testing.T, path string, w, h int) {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func runCLI(args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := run(args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestEncodeDecodeInfo(t *testing.T) {
	dir := t.TempDir()
	in, enc, dec := filepath.Join(dir, "in.png"), filepath.Join(dir, "x.lvc"), filepath.Join(dir, "out.ppm")
	writePNG(t, in, 70, 50)
	if _, _, err := runCLI("encode", in, "-o", enc, "-q", "3"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI("decode", enc, "-o", dec); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(dec)
	if !bytes.HasPrefix(b, []byte("P6\n70 50\n255\n")) || len(b) != 13+70*50*3 {
		t.Errorf("decoded PPM has %d bytes", len(b))
	}
	refined := filepath.Join(dir, "refined.lvc")
	if _, _, err := runCLI("encode", in, "-o", refined, "-q", "3", "--refine", "20"); err != nil {
		t.Fatal(err)
	}
	if a, b := mustRead(t, enc), mustRead(t, refined); bytes.Equal(a, b) {
		t.Error("--refine 20 wrote the same file as no refinement")
	}
	if _, _, err := runCLI("decode", refined, "-o", dec); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI("info", enc)
	if err != nil || !strings.Contains(out, "70x50") || !strings.Contains(out, "intra") {
		t.Errorf("info: %v\n%s", err, out)
	}
	out, _, err = runCLI("psnr", in, dec)
	if err != nil || !strings.HasPrefix(out, "PSNR: ") {
		t.Errorf("psnr: %v %q", err, out)
	}
	if out, _, _ = runCLI("psnr", in, in); !strings.Contains(out, "identical") {
		t.Errorf("psnr of an image with itself: %q", out)
	}
	// The test image is noise-like, so the target is generous; the search
	// must land within it.
	if _, _, err := runCLI("encode", in, "-o", enc, "--bpp", "6"); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(enc); float64(8*st.Size())/(70*50) > 6 {
		t.Errorf("--bpp 6 gave %.2f bpp", float64(8*st.Size())/(70*50))
	}
}

func TestErrorsLeaveNoOutput(t *testing.T) {
	dir := t.TempDir()
	in, enc := filepath.Join(dir, "in.png"), filepath.Join(dir, "x.lvc")
	writePNG(t, in, 40, 40)
	if _, _, err := runCLI("encode", in, "-o", enc); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(enc)
	bad := filepath.Join(dir, "bad.lvc")
	notImage := filepath.Join(dir, "notimage.png")
	os.WriteFile(notImage, []byte("hello"), 0o644)
	for _, c := range []struct {
		name string
		data []byte
		args []string
	}{
		{"truncated", good[:len(good)/2], []string{"decode", bad, "-o", filepath.Join(dir, "o1.png")}},
		{"bad magic", append([]byte("XXXX"), good[4:]...), []string{"decode", bad, "-o", filepath.Join(dir, "o2.png")}},
		{"unreadable image", nil, []string{"encode", notImage, "-o", filepath.Join(dir, "o3.lvc")}},
		{"missing input", nil, []string{"encode", filepath.Join(dir, "nope.png"), "-o", filepath.Join(dir, "o4.lvc")}},
	} {
		if c.data != nil {
			os.WriteFile(bad, c.data, 0o644)
		}
		_, _, err := runCLI(c.args...)
		if err == nil {
			t.Errorf("%s: no error", c.name)
		}
		out := c.args[len(c.args)-1]
		if _, statErr := os.Stat(out); statErr == nil {
			t.Errorf("%s: partial output %s left behind", c.name, out)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestUsageErrors(t *testing.T) {
	var ue usageError
	for _, args := range [][]string{{}, {"frobnicate"}, {"encode"}, {"encode", "a.png"}, {"decode", "a", "b", "-o", "c"}, {"encode", "a.png", "-o", "b", "-q", "1", "--bpp", "1"}, {"encode", "a.png", "-o", "b", "--refine", "-1"},
		{"encode", "a.png", "-o", "b", "-q", "-3"}, {"encode", "a.png", "-o", "b", "-q", "8"}, {"encode", "a.png", "-o", "b", "--bpp", "0"},
		{"encode", "a.png", "-o", "b", "--bpp", "-0.5"}, {"decode", "a.lvc", "-o", "b.jpg"},
		{"decode", "a.lvc", "-o", "b.y4m", "--chroma", "422"}, {"decode", "a.lvc", "-o", "b.png", "--chroma", "444"}} {
		if _, _, err := runCLI(args...); !errors.As(err, &ue) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
	for _, args := range [][]string{{"help"}, {"encode", "-h"}, {"decode", "x", "--help"}, {"model", "-h"}, {"model", "info", "-h"}} {
		out, _, err := runCLI(args...)
		if err != nil || !strings.Contains(out, "Examples:") {
			t.Errorf("%q: %v", args, err)
		}
	}
}

// TestOutputTargets: "-" is standard output; an output that is a symbolic
// link is written through, and one that exists keeps its mode; a new one
// gets the umask's.
func TestOutputTargets(t *testing.T) {
	dir := t.TempDir()
	in, enc := filepath.Join(dir, "in.png"), filepath.Join(dir, "x.lvc")
	writePNG(t, in, 40, 24)
	if _, _, err := runCLI("encode", in, "-o", enc, "-q", "1"); err != nil {
		t.Fatal(err)
	}
	want := mustRead(t, enc)
	out, _, err := runCLI("encode", in, "-o", "-", "-q", "1")
	if err != nil || out != string(want) {
		t.Errorf("encode -o -: %v, %d bytes on stdout, want %d", err, len(out), len(want))
	}
	if _, err := os.Stat("-"); err == nil {
		os.Remove("-")
		t.Error("encode -o - wrote a file named -")
	}
	png, _, err := runCLI("decode", enc, "-o", "-")
	if err != nil || !strings.HasPrefix(png, "\x89PNG") {
		t.Errorf("decode -o -: %v, %q", err, png[:min(8, len(png))])
	}

	real, link := filepath.Join(dir, "real.lvc"), filepath.Join(dir, "link.lvc")
	os.WriteFile(real, nil, 0o600)
	os.Chmod(real, 0o666) // wider than the umask gives a new file
	if err := os.Symlink(real, link); err != nil {
		t.Skip(err)
	}
	if _, _, err := runCLI("encode", in, "-o", link, "-q", "1"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Error("the symbolic link was replaced")
	}
	if st, err := os.Stat(real); err != nil || st.Size() != int64(len(want)) || st.Mode().Perm() != 0o666 {
		t.Errorf("the link's target: %v, %v", st, err)
	}
	dangling, target := filepath.Join(dir, "dangling.lvc"), filepath.Join(dir, "target.lvc")
	os.Symlink("target.lvc", dangling) // relative, and the file does not exist yet
	if _, _, err := runCLI("encode", in, "-o", dangling, "-q", "1"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(dangling); err != nil || st.Mode()&os.ModeSymlink == 0 || string(mustRead(t, target)) != string(want) {
		t.Error("a dangling link was not written through to its target")
	}
	_, _, err = runCLI("encode", in, "-o", dir, "-q", "1")
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a directory as output: got %v", err)
	}
	fresh := filepath.Join(dir, "fresh.lvc")
	if _, _, err := runCLI("encode", in, "-o", fresh, "-q", "1"); err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(dir, "probe")
	f, _ := os.OpenFile(probe, os.O_CREATE|os.O_WRONLY, 0o666)
	f.Close()
	a, _ := os.Stat(fresh)
	b, _ := os.Stat(probe)
	if a.Mode().Perm() != b.Mode().Perm() {
		t.Errorf("a new output has mode %v, a new file %v", a.Mode().Perm(), b.Mode().Perm())
	}
}

// TestBPPTargetBelowQualityZero: the search keeps quality 0 and says it
// overshot.
func TestBPPTargetBelowQualityZero(t *testing.T) {
	dir := t.TempDir()
	in, enc := filepath.Join(dir, "in.png"), filepath.Join(dir, "x.lvc")
	writePNG(t, in, 40, 24)
	_, stderr, err := runCLI("encode", in, "-o", enc, "--bpp", "0.0001")
	if err != nil || !strings.Contains(stderr, "even quality 0") {
		t.Errorf("%v, stderr %q", err, stderr)
	}
}

func TestAbsurdDimensionsRejectedBeforeDecoding(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "huge.png")
	writePNG(t, in, 8, 8)
	b, _ := os.ReadFile(in)
	// IHDR starts at byte 8: length, "IHDR", width, height, ..., CRC.
	binary.BigEndian.PutUint32(b[16:], 1<<20)
	binary.BigEndian.PutUint32(b[20:], 1<<20)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	os.WriteFile(in, b, 0o644)
	_, _, err := runCLI("encode", in, "-o", filepath.Join(dir, "x.lvc"))
	if err == nil || !strings.Contains(err.Error(), "outside the supported size") {
		t.Errorf("got %v", err)
	}
}
