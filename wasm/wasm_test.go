//go:build !js

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvc-codec/lvc/codec"
	"github.com/lvc-codec/lvc/container"
	"github.com/lvc-codec/lvc/models"
)

// TestWasmDecoderMatchesNative builds the browser decoder, decodes with it
// under Node a short video of Kodak crops (an intra frame, then inter
// frames) and an image, and compares every frame with the native decoder.
// Latents are bit-exact by design; pixels may differ by rounding between
// the portable (wasm) and SIMD (amd64) float kernels.
func TestWasmDecoderMatchesNative(t *testing.T) {
	node, dir, wasmFile := buildWasm(t)
	m, err := codec.LoadModel(models.Default)
	if err != nil {
		t.Fatal(err)
	}
	// Small crops keep the single-threaded wasm run short.
	const w, h = 128, 96
	for _, c := range []struct {
		name   string
		frames int
		opts   codec.Options
		aspect string
	}{
		{"video", 3, codec.Options{Quality: 4, IntraPeriod: 8, PixelAspectNum: 32, PixelAspectDen: 27}, "32:27"},
		{"image", 1, codec.Options{Quality: 5.5}, "0:0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := encodeCrops(t, m, w, h, c.frames, c.opts)
			in, out := filepath.Join(dir, c.name+".lvc"), filepath.Join(dir, c.name+".rgba")
			os.WriteFile(in, file, 0o644)
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
			if gotW != w || gotH != h || gotFrames != c.frames || aspect != c.aspect {
				t.Fatalf("node decoded %dx%d, %d frames, aspect %s; want %dx%d, %d frames, %s", gotW, gotH, gotFrames, aspect, w, h, c.frames, c.aspect)
			}
			t.Logf("wasm decode of %d frames of %dx%d: %d ms", c.frames, w, h, ms)
			got, _ := os.ReadFile(out)
			want, types := decodeNative(t, m, file)
			if c.frames > 1 && types[container.Inter] == 0 {
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
		})
	}
}

// decodeNative decodes every frame of file, returning their RGBA pixels
// one after another and the count of each frame type.
func decodeNative(t testing.TB, m *codec.Model, file []byte) ([]byte, map[container.FrameType]int) {
	t.Helper()
	d, err := codec.NewDecoder(bytes.NewReader(file), m, codec.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pix []byte
	types := map[container.FrameType]int{}
	for {
		f, err := d.Next()
		if err == io.EOF {
			return pix, types
		}
		if err != nil {
			t.Fatal(err)
		}
		types[f.Type]++
		pix = append(pix, f.Image.(*image.RGBA).Pix...)
	}
}

// encodeCrops encodes frames crops of testdata/sample.png, each shifted
// right by 2 pixels from the one before, as a video.
func encodeCrops(t testing.TB, m *codec.Model, w, h, frames int, opts codec.Options) []byte {
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
// page has: Go alone, and, when onnxruntime-web is installed, that engine
// checked against Go (?compare=1), on one thread and, in a cross-origin
// isolated page, on every core. It also shows an image, and a video cut
// inside its last frame. The page posts its final state to the test's
// server (?report=), so the test waits in real time, not in Chromium's
// virtual time, and can check that frames keep their presentation times.
func TestViewerPlaysVideo(t *testing.T) {
	m, err := codec.LoadModel(models.Default)
	if err != nil {
		t.Fatal(err)
	}
	// 4 frames a second: the last of 3 is due 500 ms after the first.
	const frames, frameMs = 3, 250
	video := encodeCrops(t, m, 64, 64, frames, codec.Options{Quality: 3, IntraPeriod: 8, TimebaseNum: 1, TimebaseDen: 4,
		PixelAspectNum: 2, PixelAspectDen: 1})
	photo := encodeCrops(t, m, 64, 48, 1, codec.Options{Quality: 3})
	v := startViewer(t, map[string][]byte{"v.lvc": video, "photo.lvc": photo, "cut.lvc": cutInLastFrame(t, video, frames)})
	for _, engine := range v.engines {
		t.Run(engine, func(t *testing.T) {
			rep := v.load(t, engine+"&src=v.lvc")
			if rep.State != "ended" || rep.Frames != fmt.Sprint(frames) {
				t.Fatalf("page ended in state %q after %q frames", rep.State, rep.Frames)
			}
			if rep.AspectRatio != "128 / 64" {
				t.Errorf("canvas aspect ratio %q, want 128 / 64 (2:1 pixels)", rep.AspectRatio)
			}
			if played, _ := strconv.Atoi(rep.PlayedMs); played < (frames-1)*frameMs-10 { // 10: timer and clock granularity
				t.Errorf("played %d frames in %s ms; the last is due %d ms after the first", frames, rep.PlayedMs, (frames-1)*frameMs)
			}
			threaded := fmt.Sprintf("onnxruntime-web (%d threads)", runtime.NumCPU())
			if strings.HasPrefix(engine, "iso/") && runtime.NumCPU() > 1 && !strings.Contains(rep.Status, threaded) {
				t.Errorf("the isolated page did not run %s", threaded)
			}
			if strings.Contains(engine, "compare=1") && rep.MaxDiff != "0" && rep.MaxDiff != "1" {
				t.Errorf("onnxruntime-web frames differ from Go's by %q levels (empty: not compared)", rep.MaxDiff)
			}
		})
	}
	t.Run("image", func(t *testing.T) {
		rep := v.load(t, "?src=photo.lvc&engine=go")
		if rep.State != "decoded" || rep.Frames != "1" || rep.AspectRatio != "64 / 48" {
			t.Fatalf("page ended in state %q after %q frames, aspect ratio %q", rep.State, rep.Frames, rep.AspectRatio)
		}
	})
	// The others show, then the page says where it stopped and why.
	t.Run("truncated", func(t *testing.T) {
		rep := v.load(t, "?src=cut.lvc&engine=go")
		if rep.State != "error" || rep.Frames != fmt.Sprint(frames-1) ||
			!strings.Contains(rep.Status, fmt.Sprintf("after %d frames: ", frames-1)) || !strings.Contains(rep.Status, "truncated") {
			t.Fatalf("page ended in state %q after %q frames", rep.State, rep.Frames)
		}
	})
}

// BenchmarkViewerVideo plays 24 frames of 320x192 (a pan over
// testdata/sample.png at quality 3) through the viewer page in headless
// Chromium with each engine, and reports the page's decoding time per
// frame beside the native decoder's on the same file, in the same run;
// onnxruntime-web runs on one thread, then on all cores in a cross-origin
// isolated page.
// Decoding, not the 12 fps presentation, bounds it. Run it alone:
//
//	go test -run '^$' -bench ViewerVideo -benchtime 1x ./wasm
func BenchmarkViewerVideo(b *testing.B) {
	m, err := codec.LoadModel(models.Default)
	if err != nil {
		b.Fatal(err)
	}
	const frames = 24
	video := encodeCrops(b, m, 320, 192, frames, codec.Options{Quality: 3, IntraPeriod: 12, TimebaseNum: 1, TimebaseDen: 12})
	v := startViewer(b, map[string][]byte{"v.lvc": video})
	start := time.Now()
	decodeNative(b, m, video)
	native := float64(time.Since(start).Milliseconds()) / frames
	engines := []string{"?engine=go"}
	if len(v.engines) > 1 {
		// The page's default engine when onnxruntime-web is there, on one
		// thread, and on every core when the page is cross-origin isolated.
		engines = append(engines, "?engine=ort", "iso/?engine=ort")
	}
	for _, engine := range engines {
		for range b.N {
			rep := v.load(b, engine+"&src=v.lvc")
			if rep.State != "ended" || rep.Frames != fmt.Sprint(frames) {
				b.Fatalf("page ended in state %q after %q frames: %s", rep.State, rep.Frames, rep.Status)
			}
			perFrame, _ := strconv.ParseFloat(rep.MsPerFrame, 64)
			name := strings.TrimPrefix(engine, "?engine=")
			if strings.HasPrefix(engine, "iso/") {
				name = fmt.Sprintf("ort-%dthreads", runtime.NumCPU())
			}
			b.ReportMetric(perFrame, name+"-ms/frame")
		}
	}
	b.ReportMetric(native, "native-ms/frame")
}

// viewer serves the page, the wasm decoder and test files to headless
// Chromium, and collects the reports the page posts.
type viewer struct {
	chromium string
	url      string
	reports  chan viewerReport
	engines  []string // the page's path and query for each engine it can use
}

// startViewer builds the decoder and serves the page with files; it skips
// without Chromium.
func startViewer(tb testing.TB, files map[string][]byte) *viewer {
	tb.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		tb.Skip("chromium not installed")
	}
	wasmFile := filepath.Join(tb.TempDir(), "lvc.wasm")
	build := exec.Command("go", "build", "-o", wasmFile, ".")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("building the wasm decoder: %v\n%s", err, out)
	}
	served := map[string]string{
		"lvc.wasm":     wasmFile,
		"wasm_exec.js": filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js"),
		"viewer.js":    "web/viewer.js",
	}
	v := &viewer{chromium: chromium, reports: make(chan viewerReport, 1), engines: []string{"?engine=go"}}
	if _, err := os.Stat("node_modules/onnxruntime-web"); err == nil {
		const dist = "node_modules/onnxruntime-web/dist/"
		for _, f := range []string{"ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs"} {
			served["ort/"+f] = dist + f
		}
		// Checked against Go, on one thread and on every core.
		v.engines = append(v.engines, "?compare=1", "iso/?compare=1")
	} else {
		tb.Log("onnxruntime-web not installed (make wasm): Go engine only")
	}
	mux := http.NewServeMux()
	for name, path := range served {
		mux.HandleFunc("/"+name, func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, path) })
	}
	// ServeFile answers /index.html with a redirect to the directory.
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, "web/index.html") })
	for name, data := range files {
		mux.HandleFunc("/"+name, func(w http.ResponseWriter, r *http.Request) { w.Write(data) })
	}
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var rep viewerReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
			rep.Status = "unreadable report: " + err.Error()
		}
		select {
		case v.reports <- rep:
		default: // a second report from the same page: the first counts
		}
	})
	// Under /iso/ the same files come cross-origin isolated, as make serve
	// serves them, so that onnxruntime-web runs on every core.
	top := http.NewServeMux()
	top.Handle("/", mux)
	top.Handle("/iso/", http.StripPrefix("/iso", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cross-Origin-Opener-Policy", "same-origin")
		w.Header().Set("Cross-Origin-Embedder-Policy", "require-corp")
		mux.ServeHTTP(w, r)
	})))
	srv := httptest.NewServer(top)
	tb.Cleanup(srv.Close)
	v.url = srv.URL
	return v
}

// load opens the page at page ("?query", or "iso/?query" for the isolated
// page) in headless Chromium and waits for its report.
func (v *viewer) load(tb testing.TB, page string) viewerReport {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, v.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--enable-logging=stderr",
		"--user-data-dir="+tb.TempDir(), v.url+"/"+strings.Replace(page, "?", "?report=report&", 1))
	cmd.Env = append(os.Environ(), "TMPDIR="+tb.TempDir()) // Chromium leaves files there
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// Chromium's helper processes may hold its output open after it is
	// killed; Wait gives up on them after this long.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	select {
	case rep := <-v.reports:
		tb.Logf("%s", rep.Status)
		return rep
	case <-time.After(90 * time.Second):
		tb.Fatalf("the page sent no report in 90 s; chromium said:\n%s", stderr.String())
	}
	return viewerReport{}
}

// viewerReport is the state viewer.js posts to ?report=.
type viewerReport struct {
	State, Frames, MaxDiff, Status, AspectRatio, PlayedMs, MsPerFrame string
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
