//go:build !js

package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lvc-codec/lvc/codec"
	"github.com/lvc-codec/lvc/container"
	"github.com/lvc-codec/lvc/models"
)

// TestWasmDecoderMatchesNative builds the browser decoder, decodes a short
// video of Kodak crops (an intra frame, then inter frames) with it under
// Node, and compares every frame with the native decoder. Latents are
// bit-exact by design; pixels may differ by rounding between the portable
// (wasm) and SIMD (amd64) float kernels.
func TestWasmDecoderMatchesNative(t *testing.T) {
	node, dir, wasmFile := buildWasm(t)
	m, err := codec.LoadModel(models.Default)
	if err != nil {
		t.Fatal(err)
	}
	// Small crops keep the single-threaded wasm run short.
	const w, h, frames = 128, 96, 3
	video := encodeCrops(t, m, w, h, frames, codec.Options{Quality: 4, IntraPeriod: 8, PixelAspectNum: 32, PixelAspectDen: 27})
	in, out := filepath.Join(dir, "x.lvc"), filepath.Join(dir, "x.rgba")
	os.WriteFile(in, video, 0o644)
	run := exec.Command(node, "node_decode.cjs", filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js"), wasmFile, in, out)
	msg, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, msg)
	}
	var gotW, gotH, gotFrames, ms int
	var aspect string
	if _, err := fmt.Sscan(string(msg), &gotW, &gotH, &gotFrames, &ms, &aspect); err != nil {
		t.Fatalf("node printed %q: %v", msg, err)
	}
	if gotW != w || gotH != h || gotFrames != frames || aspect != "32:27" {
		t.Fatalf("node decoded %dx%d, %d frames, aspect %s; want %dx%d, %d frames, 32:27", gotW, gotH, gotFrames, aspect, w, h, frames)
	}
	t.Logf("wasm decode of %d frames of %dx%d: %d ms", frames, w, h, ms)
	got, _ := os.ReadFile(out)
	d, err := codec.NewDecoder(bytes.NewReader(video), m, codec.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	types := map[container.FrameType]int{}
	for {
		f, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types[f.Type]++
		want = append(want, f.Image.(*image.RGBA).Pix...)
	}
	if types[container.Inter] == 0 {
		t.Fatalf("the test video has no inter frame (%v)", types)
	}
	if len(got) != len(want) {
		t.Fatalf("wasm gave %d bytes, native %d", len(got), len(want))
	}
	worst := 0
	for i := range want {
		worst = max(worst, abs(int(got[i])-int(want[i])))
	}
	if worst > 2 {
		t.Errorf("wasm and native pixels differ by up to %d", worst)
	}
}

// encodeCrops encodes frames crops of testdata/sample.png, each shifted
// right by 2 pixels from the one before, as a video.
func encodeCrops(t *testing.T, m *codec.Model, w, h, frames int, opts codec.Options) []byte {
	t.Helper()
	f, err := os.Open("../testdata/sample.png")
	if err != nil {
		t.Fatal(err)
	}
	src, _, err := image.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	sub := src.(interface {
		SubImage(image.Rectangle) image.Image
	})
	var buf bytes.Buffer
	enc, err := codec.NewEncoder(&buf, m, w, h, container.RGB, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		if err := enc.WriteImage(sub.SubImage(image.Rect(300+2*i, 200, 300+2*i+w, 200+h))); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// TestViewerOrtPathMatchesGo decodes like the viewer's fast path: Go/wasm
// latents, then the synthesis under onnxruntime-web with the model's scaler
// inputs, at a fractional quality, for an intra and an inter frame; the
// pixels must match the all-Go decode within one level.
func TestViewerOrtPathMatchesGo(t *testing.T) {
	if _, err := os.Stat("node_modules/onnxruntime-web"); err != nil {
		t.Skip("onnxruntime-web not installed (make wasm)")
	}
	node, dir, wasmFile := buildWasm(t)
	m, err := codec.LoadModel(models.Default)
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "x.lvc")
	os.WriteFile(in, encodeCrops(t, m, 96, 64, 2, codec.Options{Quality: 2.5, IntraPeriod: 2}), 0o644)
	msg, err := exec.Command(node, "ort_decode.mjs", filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js"), wasmFile, in).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, msg)
	}
	var size string
	var frames, scalers, worst int
	if _, err := fmt.Sscanf(string(msg), "%s %d frames, %d scaler inputs: max difference %d levels", &size, &frames, &scalers, &worst); err != nil {
		t.Fatalf("node printed %q: %v", msg, err)
	}
	if frames != 2 {
		t.Errorf("onnxruntime-web path decoded %d frames, want 2", frames)
	}
	t.Logf("%s", msg)
	if worst > 1 {
		t.Errorf("onnxruntime-web path differs from Go by %d levels", worst)
	}
}

// buildWasm builds the browser decoder into a temporary directory; it skips
// the test without Node.
func buildWasm(t *testing.T) (node, dir, wasmFile string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	dir = t.TempDir()
	wasmFile = filepath.Join(dir, "lvc.wasm")
	build := exec.Command("go", "build", "-o", wasmFile, ".")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the wasm decoder: %v\n%s", err, out)
	}
	return node, dir, wasmFile
}

// TestViewerPlaysVideo loads the viewer page in headless Chromium and plays
// a short video with non-square pixels through it, with each engine the
// page has: Go alone, and onnxruntime-web checked against Go (?compare=1).
// The page reports its state in <body data-*> attributes, which
// --dump-dom prints once the page has gone quiet.
func TestViewerPlaysVideo(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed")
	}
	_, _, wasmFile := buildWasm(t)
	m, err := codec.LoadModel(models.Default)
	if err != nil {
		t.Fatal(err)
	}
	const frames = 3
	video := encodeCrops(t, m, 64, 64, frames, codec.Options{Quality: 3, IntraPeriod: 8, PixelAspectNum: 2, PixelAspectDen: 1})
	files := map[string]string{
		"lvc.wasm":     wasmFile,
		"wasm_exec.js": filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js"),
		"viewer.js":    "web/viewer.js",
	}
	engines := []string{"engine=go"}
	if _, err := os.Stat("node_modules/onnxruntime-web"); err == nil {
		const dist = "node_modules/onnxruntime-web/dist/"
		for _, f := range []string{"ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs"} {
			files["ort/"+f] = dist + f
		}
		engines = append(engines, "compare=1")
	} else {
		t.Log("onnxruntime-web not installed (make wasm): Go engine only")
	}
	mux := http.NewServeMux()
	for name, path := range files {
		mux.HandleFunc("/"+name, func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, path) })
	}
	// ServeFile answers /index.html with a redirect to the directory.
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, "web/index.html") })
	mux.HandleFunc("/v.lvc", func(w http.ResponseWriter, r *http.Request) { w.Write(video) })
	cut := cutInLastFrame(t, video, frames)
	mux.HandleFunc("/cut.lvc", func(w http.ResponseWriter, r *http.Request) { w.Write(cut) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			dom, state, status := loadViewer(t, chromium, srv.URL+"/?src=v.lvc&"+engine)
			if state("data-state") != "ended" || state("data-frames") != fmt.Sprint(frames) {
				t.Fatalf("page ended in state %q after %q frames; status: %s", state("data-state"), state("data-frames"), status)
			}
			if !bytes.Contains(dom, []byte("aspect-ratio: 128 / 64")) {
				t.Errorf("canvas not stretched to the 2:1 pixel aspect: %s", regexp.MustCompile(`<canvas[^>]*>`).Find(dom))
			}
			if engine == "compare=1" {
				if d := state("data-maxdiff"); d != "0" && d != "1" {
					t.Errorf("onnxruntime-web frames differ from Go's by %q levels", d)
				}
			}
			t.Logf("%s", status)
		})
	}
	// A file cut inside its last frame: the others show, then the page says
	// where it stopped and why.
	t.Run("truncated", func(t *testing.T) {
		_, state, status := loadViewer(t, chromium, srv.URL+"/?src=cut.lvc&engine=go")
		if state("data-state") != "error" || state("data-frames") != fmt.Sprint(frames-1) ||
			!strings.Contains(status, fmt.Sprintf("after %d frames: ", frames-1)) || !strings.Contains(status, "truncated") {
			t.Fatalf("page ended in state %q after %q frames; status: %s", state("data-state"), state("data-frames"), status)
		}
		t.Logf("%s", status)
	})
}

// cutInLastFrame returns the longest prefix of a file of frames frames
// whose last frame is incomplete.
func cutInLastFrame(t *testing.T, file []byte, frames int) []byte {
	t.Helper()
	for n := len(file) - 1; n > 0; n-- {
		r, err := container.NewReader(bytes.NewReader(file[:n]))
		if err != nil {
			t.Fatal(err)
		}
		read := 0
		for ; err == nil; read++ {
			_, err = r.Next()
		}
		if read-1 == frames-1 {
			return file[:n]
		}
	}
	t.Fatal("no cut leaves the frames before the last")
	return nil
}

// loadViewer loads the page in headless Chromium until it goes quiet, and
// returns its DOM, a reader of <body>'s attributes and the status line.
func loadViewer(t *testing.T, chromium, url string) (dom []byte, state func(string) string, status string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=120000", "--dump-dom", url)
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	body := regexp.MustCompile(`<body[^>]*>`).Find(dom)
	state = func(name string) string {
		m := regexp.MustCompile(name + `="([^"]*)"`).FindSubmatch(body)
		if m == nil {
			return ""
		}
		return string(m[1])
	}
	if m := regexp.MustCompile(`<div id="status"[^>]*>([^<]*)<`).FindSubmatch(dom); m != nil {
		status = string(m[1])
	}
	return dom, state, status
}
