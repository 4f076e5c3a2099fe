//go:build !js

package main

import (
	"bytes"
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
	"syscall"
	"testing"
	"time"

	"github.com/lvc-codec/lvc/codec"
	"github.com/lvc-codec/lvc/container"
	"github.com/lvc-codec/lvc/models"
	"github.com/lvc-codec/lvc/wasm/internal/crossorigin"
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
	return node, t.TempDir(), buildWasmFile(t)
}

// buildWasmFile builds the browser decoder into a temporary directory.
func buildWasmFile(tb testing.TB) string {
	tb.Helper()
	wasmFile := filepath.Join(tb.TempDir(), "lvc.wasm")
	build := exec.Command("go", "build", "-o", wasmFile, ".")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("building the wasm decoder: %v\n%s", err, out)
	}
	return wasmFile
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
	// 2 frames a second: the last of 3 is due a second after the first,
	// longer than even a slow machine takes to decode one.
	const frames, frameMs = 3, 500
	video := encodeCrops(t, m, 64, 64, frames, codec.Options{Quality: 3, IntraPeriod: 8, TimebaseNum: 1, TimebaseDen: 2,
		PixelAspectNum: 2, PixelAspectDen: 1})
	photo := encodeCrops(t, m, 64, 48, 1, codec.Options{Quality: 3})
	v := startViewer(t, map[string][]byte{"v.lvc": video, "photo.lvc": photo, "cut.lvc": cutInLastFrame(t, video, frames)})
	engines := []struct{ name, page string }{{"go", "?engine=go"}}
	if v.ort {
		engines = append(engines, struct{ name, page string }{"ort-compare", "?compare=1"},
			struct{ name, page string }{"ort-isolated-compare", "iso/?compare=1"})
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			rep := v.load(t, e.page+"&src=v.lvc")
			if rep.State != "ended" || rep.Frames != fmt.Sprint(frames) {
				t.Fatalf("page ended in state %q after %q frames", rep.State, rep.Frames)
			}
			if rep.AspectRatio != "128 / 64" {
				t.Errorf("canvas aspect ratio %q, want 128 / 64 (2:1 pixels)", rep.AspectRatio)
			}
			if played, err := strconv.Atoi(rep.PlayedMs); err != nil || played < (frames-1)*frameMs-10 { // 10: timer and clock granularity
				t.Errorf("played %d frames in %q ms; the last is due %d ms after the first", frames, rep.PlayedMs, (frames-1)*frameMs)
			}
			if e.name != "go" && rep.MaxDiff != "0" && rep.MaxDiff != "1" {
				t.Errorf("onnxruntime-web frames differ from Go's by %q levels (empty: not compared)", rep.MaxDiff)
			}
			if e.name == "ort-isolated-compare" && rep.Threads == "1" {
				t.Errorf("the isolated page ran onnxruntime-web on one thread")
			}
		})
	}
	// A pause pressed between frames 2 and 3, while frame 3 waits for its
	// time (or still decodes), delays it by the pause's length: it is due
	// (frames-1)*frameMs + pauseMs after the first, not sooner (a resume
	// that shows the late frame at once) and not at (frames-1)*frameMs (a
	// pause that does not stop the clock).
	t.Run("pause", func(t *testing.T) {
		const pauseMs = 800
		rep := v.load(t, fmt.Sprintf("?engine=go&src=v.lvc&pause=2,%d,%d", frameMs/2, pauseMs))
		if rep.State != "ended" || rep.Frames != fmt.Sprint(frames) {
			t.Fatalf("page ended in state %q after %q frames", rep.State, rep.Frames)
		}
		if played, err := strconv.Atoi(rep.PlayedMs); err != nil || played < (frames-1)*frameMs+pauseMs-10 {
			t.Errorf("played %d frames with a %d ms pause in %q ms; the last is due %d ms after the first",
				frames, pauseMs, rep.PlayedMs, (frames-1)*frameMs+pauseMs)
		}
	})
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
// Chromium and reports the page's decoding time per frame: with the Go
// engine (portable kernels, one thread), and with onnxruntime-web on one
// thread and, in a cross-origin isolated page, on every core. In the same
// run, the native decoder's time on the same file, on one thread and on
// every core, is the reference. Run it alone:
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
	decodeNative(b, m, video) // warm-up
	for _, threads := range []int{1, runtime.NumCPU()} {
		saved := runtime.GOMAXPROCS(threads)
		start := time.Now()
		for range b.N {
			decodeNative(b, m, video)
		}
		runtime.GOMAXPROCS(saved)
		b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N*frames), fmt.Sprintf("native-%dthreads-ms/frame", threads))
	}
	engines := []struct{ name, page string }{{"go", "?engine=go"}}
	if v.ort {
		engines = append(engines, struct{ name, page string }{"ort", "?engine=ort"},
			struct{ name, page string }{"ort-isolated", "iso/?engine=ort"})
	}
	for _, e := range engines {
		var total float64
		threads := ""
		for range b.N {
			rep := v.load(b, e.page+"&src=v.lvc")
			if rep.State != "ended" || rep.Frames != fmt.Sprint(frames) {
				b.Fatalf("page ended in state %q after %q frames: %s", rep.State, rep.Frames, rep.Status)
			}
			perFrame, err := strconv.ParseFloat(rep.MsPerFrame, 64)
			if err != nil {
				b.Fatalf("page reported %q ms a frame", rep.MsPerFrame)
			}
			total += perFrame
			threads = rep.Threads
		}
		b.ReportMetric(total/float64(b.N), fmt.Sprintf("%s-%sthreads-ms/frame", e.name, threads))
	}
	b.ReportMetric(0, "ns/op") // a whole run of builds, encodes and page loads: meaningless
}

// viewer serves the page, the wasm decoder and test files to headless
// Chromium, and collects the reports the page posts.
type viewer struct {
	chromium string
	url      string
	reports  chan viewerReport
	loads    int  // pages opened so far; each reports with its number
	ort      bool // onnxruntime-web is installed
}

// viewerReport is the state viewer.js posts to ?report=.
type viewerReport struct {
	Load        int    `json:"-"` // from the report's URL
	State       string `json:"state"`
	Frames      string `json:"frames"`
	MaxDiff     string `json:"maxdiff"`
	Status      string `json:"status"`
	AspectRatio string `json:"aspectRatio"`
	PlayedMs    string `json:"playedMs"`
	MsPerFrame  string `json:"msPerFrame"`
	Threads     string `json:"threads"`
}

// startViewer builds the decoder and serves the page with files; it skips
// without Chromium.
func startViewer(tb testing.TB, files map[string][]byte) *viewer {
	tb.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		tb.Skip("chromium not installed")
	}
	wasmFile := buildWasmFile(tb)
	served := map[string]string{
		"lvc.wasm":     wasmFile,
		"wasm_exec.js": filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js"),
		"viewer.js":    "web/viewer.js",
	}
	v := &viewer{chromium: chromium, reports: make(chan viewerReport, 4)}
	if _, err := os.Stat("node_modules/onnxruntime-web"); err == nil {
		const dist = "node_modules/onnxruntime-web/dist/"
		for _, f := range []string{"ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs"} {
			served["ort/"+f] = dist + f
		}
		v.ort = true
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
		rep.Load, _ = strconv.Atoi(r.URL.Query().Get("load"))
		select {
		case v.reports <- rep:
		default: // more reports than any load waits for: drop
		}
	})
	// Under /iso/ the same files come cross-origin isolated, as make serve
	// serves them, so that onnxruntime-web runs on every core.
	top := http.NewServeMux()
	top.Handle("/", mux)
	top.Handle("/iso/", http.StripPrefix("/iso", crossorigin.Isolate(mux)))
	srv := httptest.NewServer(top)
	tb.Cleanup(srv.Close)
	v.url = srv.URL
	return v
}

// load opens the page at page ("?query", or "iso/?query" for the isolated
// page) in headless Chromium and waits for its report.
func (v *viewer) load(tb testing.TB, page string) viewerReport {
	tb.Helper()
	v.loads++
	load := v.loads
	url := v.url + "/" + strings.Replace(page, "?", fmt.Sprintf("?report=report%%3Fload%%3D%d&", load), 1)
	cmd := exec.Command(v.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--enable-logging=stderr", "--user-data-dir="+tb.TempDir(), url)
	cmd.Env = append(os.Environ(), "TMPDIR="+tb.TempDir()) // Chromium leaves files there
	// Its own process group, so that stopping it stops its helpers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	timeout := time.After(90 * time.Second)
	for {
		select {
		case rep := <-v.reports:
			if rep.Load != load {
				continue // from an earlier page
			}
			stop()
			tb.Logf("%s", rep.Status)
			return rep
		case err := <-exited:
			tb.Fatalf("chromium ended before the page reported (%v):\n%s", err, stderr.String())
		case <-timeout:
			stop()
			tb.Fatalf("the page sent no report in 90 s; chromium said:\n%s", stderr.String())
		}
	}
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
