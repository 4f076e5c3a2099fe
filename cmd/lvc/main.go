// Command lvc encodes and decodes images with the lvc learned codec.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	_ "image/gif"
	_ "image/jpeg"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"

	"github.com/lvc-codec/lvc/codec"
	"github.com/lvc-codec/lvc/container"
	"github.com/lvc-codec/lvc/models"
)

const usage = `lvc: a learned image codec

Usage:
  lvc encode IN -o OUT.lvc [-q Q | --bpp X] [--intra N] [--refine STEPS] [--model FILE]
  lvc decode IN.lvc -o OUT.(png|ppm|pgm|y4m) [--chroma 420|444] [--model FILE]
  lvc info IN.lvc
  lvc psnr REFERENCE IMAGE
  lvc model info [FILE]
  lvc model pack DIR -o OUT.lvcm

IN may be PNG, JPEG, WebP, BMP, TIFF, GIF, PNM/PAM, or Y4M video. In video,
every --intra'th frame (default 12) is coded on its own; the frames between
are coded against the frame before. Quality indices run from 0
(smallest file) to the model's highest (see 'lvc model info'); fractions
interpolate. --bpp searches the quality that comes closest to X bits per
pixel without exceeding it (and warns when even quality 0 exceeds it).
Decoded Y4M is 4:2:0 unless --chroma 444. -o - writes to standard output.

Examples:
  lvc encode photo.jpg -o photo.lvc -q 5
  lvc encode photo.png -o photo.lvc --bpp 0.5
  lvc decode photo.lvc -o photo.png
  lvc encode clip.y4m -o clip.lvc -q 3
  lvc decode clip.lvc -o clip.y4m
  lvc info photo.lvc

Exit status: 0 on success, 1 on a failed operation, 2 on bad usage.
`

type usageError struct{ msg string }

// errHelp is -h after a command: run prints the usage and succeeds.
var errHelp = errors.New("help requested")

func (e usageError) Error() string { return e.msg }

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "lvc:", err)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(os.Stderr, "Run 'lvc help' for usage.")
		os.Exit(2)
	}
	os.Exit(1)
}

func run(args []string, stdout, stderr io.Writer) error {
	err := runCommand(args, stdout, stderr)
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	return err
}

func runCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command"}
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	case "encode":
		return encodeCmd(args[1:], stdout, stderr)
	case "decode":
		return decodeCmd(args[1:], stdout, stderr)
	case "info":
		return infoCmd(args[1:], stdout)
	case "psnr":
		return psnrCmd(args[1:], stdout)
	case "model":
		return modelCmd(args[1:], stdout)
	}
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

// parse accepts flags before and after the positional arguments, as users
// of cwebp and ffmpeg expect.
func parse(fs *flag.FlagSet, args []string, positional int) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		} else if err != nil {
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != positional {
		return nil, usageError{fmt.Sprintf("%s takes %d file argument(s), got %d", fs.Name(), positional, len(pos))}
	}
	return pos, nil
}

func loadModel(path string) (*codec.Model, error) {
	b := models.Default
	if path != "" {
		var err error
		if b, err = os.ReadFile(path); err != nil {
			return nil, err
		}
	}
	return codec.LoadModel(b)
}

func encodeCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("encode", flag.ContinueOnError)
	out := fs.String("o", "", "output .lvc file")
	q := fs.Float64("q", -1, "quality index")
	bpp := fs.Float64("bpp", 0, "target bits per pixel")
	modelPath := fs.String("model", "", "model file (default: the embedded model)")
	intra := fs.Int("intra", 12, "video: distance between intra frames (1: every frame intra)")
	refine := fs.Int("refine", 0, "refine each intra frame's latents for this many steps (slower encode, smaller file; 40 is a good start)")
	noSkip := fs.Bool("no-skip", false, "video: code every block of inter frames, none taken from the frame before (faster encode, larger file)")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if *out == "" {
		return usageError{"encode needs -o OUT.lvc"}
	}
	if _, err := outputTarget(*out); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if given["q"] && given["bpp"] {
		return usageError{"give -q or --bpp, not both"}
	}
	if given["q"] && !(*q >= 0) {
		return usageError{fmt.Sprintf("-q %v: quality indices start at 0", *q)}
	}
	if given["bpp"] && !(*bpp > 0) {
		return usageError{fmt.Sprintf("--bpp %v: the target must be above 0", *bpp)}
	}
	if *intra < 1 {
		return usageError{"--intra must be at least 1"}
	}
	if *refine < 0 || *refine > codec.MaxRefineSteps {
		return usageError{fmt.Sprintf("--refine must be 0..%d", codec.MaxRefineSteps)}
	}
	m, err := loadModel(*modelPath)
	if err != nil {
		return err
	}
	if top := float64(m.Info.Qualities - 1); *q > top {
		return usageError{fmt.Sprintf("-q %v: this model's qualities run from 0 to %v", *q, top)}
	}
	if strings.EqualFold(filepath.Ext(pos[0]), ".y4m") {
		if given["bpp"] {
			return usageError{"--bpp is for images; give -q for video"}
		}
		return encodeVideo(m, pos[0], *out, codec.Options{Quality: *q, IntraPeriod: *intra, RefineSteps: *refine, NoSkip: *noSkip},
			stdout, stderr)
	}
	for _, name := range []string{"intra", "no-skip"} {
		if given[name] {
			fmt.Fprintf(stderr, "lvc: --%s is for video; %s is an image\n", name, pos[0])
		}
	}
	img, err := readImage(pos[0])
	if err != nil {
		return err
	}
	if codec.HasAlpha(img) {
		fmt.Fprintf(stderr, "lvc: %s has transparency; the alpha channel is dropped\n", pos[0])
	}
	b := img.Bounds()
	pixels := float64(b.Dx() * b.Dy())
	start := time.Now()
	var data []byte
	quality := *q
	switch {
	case given["bpp"]:
		quality, data, err = searchBPP(m, img, *bpp, *refine)
		if err == nil && float64(8*len(data))/pixels > *bpp {
			fmt.Fprintf(stderr, "lvc: even quality 0 takes %.4f bpp, more than --bpp %v\n", float64(8*len(data))/pixels, *bpp)
		}
	default:
		if quality < 0 {
			quality = float64(m.Info.Qualities) / 2
		}
		data, err = encodeBytes(m, img, quality, *refine)
	}
	if err != nil {
		return err
	}
	if err := writeAtomically(*out, stdout, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s: %dx%d, quality %.2f, %d bytes, %.4f bpp, %v\n", *out, b.Dx(), b.Dy(), quality,
		len(data), float64(8*len(data))/pixels, time.Since(start).Round(time.Millisecond))
	return nil
}

func encodeBytes(m *codec.Model, img image.Image, q float64, refine int) ([]byte, error) {
	var buf bytes.Buffer
	err := codec.EncodeImage(&buf, m, img, codec.Options{Quality: q, RefineSteps: refine})
	return buf.Bytes(), err
}

// searchBPP bisects the quality index for the largest file within target.
func searchBPP(m *codec.Model, img image.Image, target float64, refine int) (float64, []byte, error) {
	b := img.Bounds()
	pixels := float64(b.Dx() * b.Dy())
	lo, hi := 0.0, float64(m.Info.Qualities-1)
	best, err := encodeBytes(m, img, lo, refine)
	if err != nil {
		return 0, nil, err
	}
	bestQ := lo
	// 12 halvings of [0, Q-1] reach below 1/256 of a quality step, the
	// container's resolution, for up to 16 qualities.
	for range 12 {
		mid := (lo + hi) / 2
		data, err := encodeBytes(m, img, mid, refine)
		if err != nil {
			return 0, nil, err
		}
		if float64(8*len(data))/pixels <= target {
			lo, best, bestQ = mid, data, mid
		} else {
			hi = mid
		}
	}
	return bestQ, best, nil
}

func readImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable image: %w", path, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > container.MaxDimension || cfg.Height > container.MaxDimension ||
		cfg.Width*cfg.Height > codec.MaxPixels {
		return nil, fmt.Errorf("%s: %dx%d %s is outside the supported size (%d per side, %d pixels)",
			path, cfg.Width, cfg.Height, format, container.MaxDimension, codec.MaxPixels)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

func decodeCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("decode", flag.ContinueOnError)
	out := fs.String("o", "", "output .png file")
	modelPath := fs.String("model", "", "model file (default: the embedded model)")
	chroma := fs.String("chroma", "420", "chroma subsampling of Y4M output: 420 or 444 (gray video is always mono)")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if *out == "" {
		return usageError{"decode needs -o OUT.png"}
	}
	video := strings.EqualFold(filepath.Ext(*out), ".y4m")
	if *chroma != "420" && *chroma != "444" {
		return usageError{fmt.Sprintf("--chroma is 420 or 444, not %q", *chroma)}
	}
	if *chroma != "420" && !video {
		return usageError{"--chroma applies to Y4M output only"}
	}
	switch strings.ToLower(filepath.Ext(*out)) {
	case ".png", ".ppm", ".pgm", ".y4m":
	default:
		if *out != "-" {
			return usageError{fmt.Sprintf("decode writes .png, .ppm, .pgm or .y4m (or - for PNG on standard output), not %s", *out)}
		}
	}
	if _, err := outputTarget(*out); err != nil {
		return err
	}
	m, err := loadModel(*modelPath)
	if err != nil {
		return err
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	if video {
		return decodeVideo(m, f, pos[0], *out, *chroma, stdout, stderr)
	}
	start := time.Now()
	img, err := codec.DecodeImage(f, m)
	if errors.Is(err, codec.ErrVideo) {
		return fmt.Errorf("%s: %w: -o OUT.y4m", pos[0], err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	elapsed := time.Since(start)
	if err := writeAtomically(*out, stdout, func(w io.Writer) error { return writeImage(w, *out, img) }); err != nil {
		return err
	}
	b := img.Bounds()
	fmt.Fprintf(stderr, "%s: %dx%d, decoded in %v\n", *out, b.Dx(), b.Dy(), elapsed.Round(time.Millisecond))
	return nil
}

// writeImage writes PNG, or uncompressed PPM/PGM (fast, for timing and
// pipelines) when the name ends in .ppm or .pgm; decodeCmd has checked the
// name.
func writeImage(w io.Writer, name string, img image.Image) error {
	ext := strings.ToLower(filepath.Ext(name))
	if ext != ".ppm" && ext != ".pgm" {
		return png.Encode(w, img)
	}
	b := img.Bounds()
	bw := bufio.NewWriter(w)
	if g, ok := img.(*image.Gray); ok && ext == ".pgm" {
		fmt.Fprintf(bw, "P5\n%d %d\n255\n", b.Dx(), b.Dy())
		for y := range b.Dy() {
			bw.Write(g.Pix[y*g.Stride : y*g.Stride+b.Dx()])
		}
		return bw.Flush()
	}
	if ext == ".pgm" {
		return fmt.Errorf("%s: the image is in colour; write .ppm or .png", name)
	}
	fmt.Fprintf(bw, "P6\n%d %d\n255\n", b.Dx(), b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			bw.Write([]byte{byte(r >> 8), byte(g >> 8), byte(bl >> 8)})
		}
	}
	return bw.Flush()
}

func infoCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := container.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	h := r.Header()
	color := map[container.ColorFormat]string{container.RGB: "rgb", container.Gray: "gray"}[h.Color]
	fmt.Fprintf(stdout, "file:      %s\nformat:    lvc version %d\nmodel:     %x\nsize:      %dx%d %s\ntimebase:  %d/%d s\n",
		pos[0], container.Version, h.ModelID, h.Width, h.Height, color, h.TimebaseNum, h.TimebaseDen)
	if h.PixelAspectNum > 0 {
		fmt.Fprintf(stdout, "aspect:    %d:%d (pixel width:height)\n", h.PixelAspectNum, h.PixelAspectDen)
	}
	if h.FrameCount > 0 {
		fmt.Fprintf(stdout, "frames:    %d\n", h.FrameCount)
	}
	pixels := float64(h.Width * h.Height)
	fmt.Fprintf(stdout, "%-6s %-6s %8s %8s %10s %8s\n", "frame", "type", "pts", "quality", "bytes", "bpp")
	total, frames := 0, 0
	for i := 0; ; i++ {
		fr, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		n := 0
		var parts []string
		for _, s := range fr.Streams {
			n += len(s)
			parts = append(parts, fmt.Sprint(len(s)))
		}
		total += n
		frames++
		fmt.Fprintf(stdout, "%-6d %-6s %8d %8.2f %10d %8.4f  (sub-streams %s)\n", i, fr.Type, fr.PTS,
			float64(fr.Quality)/256, n, float64(8*n)/pixels, strings.Join(parts, "+"))
	}
	st, err := f.Stat()
	if err == nil {
		fmt.Fprintf(stdout, "total:     %d bytes, %.4f bpp per frame on average (payload %d bytes)\n",
			st.Size(), float64(8*st.Size())/pixels/float64(max(1, frames)), total)
	}
	return nil
}

// psnrCmd prints the PSNR of an image against a reference, over 8-bit RGB
// (the convention of the rate-distortion tables).
func psnrCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("psnr", flag.ContinueOnError)
	pos, err := parse(fs, args, 2)
	if err != nil {
		return err
	}
	a, err := readImage(pos[0])
	if err != nil {
		return err
	}
	b, err := readImage(pos[1])
	if err != nil {
		return err
	}
	ab, bb := a.Bounds(), b.Bounds()
	if ab.Dx() != bb.Dx() || ab.Dy() != bb.Dy() {
		return fmt.Errorf("%s is %dx%d, %s is %dx%d", pos[0], ab.Dx(), ab.Dy(), pos[1], bb.Dx(), bb.Dy())
	}
	var se float64
	for y := range ab.Dy() {
		for x := range ab.Dx() {
			// Unpremultiplied colour, which is what the codec keeps of a
			// transparent image.
			p := color.NRGBAModel.Convert(a.At(ab.Min.X+x, ab.Min.Y+y)).(color.NRGBA)
			q := color.NRGBAModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y)).(color.NRGBA)
			for _, d := range [3]float64{float64(p.R) - float64(q.R), float64(p.G) - float64(q.G), float64(p.B) - float64(q.B)} {
				se += d * d
			}
		}
	}
	mse := se / float64(3*ab.Dx()*ab.Dy())
	if mse == 0 {
		fmt.Fprintln(stdout, "PSNR: inf dB (identical)")
		return nil
	}
	fmt.Fprintf(stdout, "PSNR: %.2f dB (RGB, MSE %.3f)\n", 10*math.Log10(255*255/mse), mse)
	return nil
}

func modelCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"model needs a subcommand: info or pack"}
	}
	switch args[0] {
	case "-h", "-help", "--help":
		return errHelp
	case "info":
		fs := flag.NewFlagSet("model info", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		if err := fs.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
			return errHelp
		} else if err != nil || fs.NArg() > 1 {
			return usageError{"model info takes at most one file"}
		}
		m, err := loadModel(fs.Arg(0))
		if err != nil {
			return err
		}
		in := m.Info
		fmt.Fprintf(stdout, "model: %s\nchannels: N=%d M=%d\nqualities: %d\nscales: %d from %.3g to %.3g\ntrained: %d steps\n",
			m.IDString(), in.N, in.M, in.Qualities, len(in.Scales), in.Scales[0], in.Scales[len(in.Scales)-1], in.Step)
		if in.ScalerLayers != nil {
			fmt.Fprintf(stdout, "feature scalers: g_a %d layers, g_s %d layers\n", in.ScalerLayers[0], in.ScalerLayers[1])
		}
		if in.ScalerWidths != nil {
			fmt.Fprintf(stdout, "layer widths: g_a %v, g_s %v\n", in.ScalerWidths[0], in.ScalerWidths[1])
		}
		if in.Checkerboard > 0 {
			fmt.Fprintf(stdout, "checkerboard context: %d hidden channels\n", in.Checkerboard)
		}
		if in.AnchorContext > 0 {
			fmt.Fprintf(stdout, "anchor context: %d hidden channels\n", in.AnchorContext)
		}
		for _, k := range []string{"g_a", "h_a", "h_s", "context", "anchor_context", "g_s"} {
			if v, ok := in.KMACPerPixel[k]; ok {
				fmt.Fprintf(stdout, "kMAC/pixel %s: %.2f\n", k, v)
			}
		}
		return nil
	case "pack":
		fs := flag.NewFlagSet("model pack", flag.ContinueOnError)
		out := fs.String("o", "", "output .lvcm file")
		pos, err := parse(fs, args[1:], 1)
		if err != nil {
			return err
		}
		if *out == "" {
			return usageError{"model pack needs -o OUT.lvcm"}
		}
		b, err := codec.PackModel(pos[0])
		if err != nil {
			return err
		}
		return writeAtomically(*out, stdout, func(w io.Writer) error { _, err := w.Write(b); return err })
	}
	return usageError{fmt.Sprintf("unknown model subcommand %q", args[0])}
}

// encodeVideo codes a Y4M file with opts; a negative quality picks the
// middle one.
func encodeVideo(m *codec.Model, in, out string, opts codec.Options, stdout, stderr io.Writer) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	y, err := newY4MReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if opts.Quality < 0 {
		opts.Quality = float64(m.Info.Qualities) / 2
	}
	total := estimateFrames(f, y)
	start := time.Now()
	frames := 0
	var size int64
	err = writeAtomically(out, stdout, func(w io.Writer) error {
		color := container.RGB
		if y.h.chroma == "mono" {
			color = container.Gray
		}
		// One tick per frame: the timebase is the frame duration. When w
		// is a file (the temporary file, standard output, a FIFO) the
		// container gets its WriteAt, with which Close sets the final
		// frame count where the file allows it.
		opts.TimebaseNum, opts.TimebaseDen, opts.FrameCount = y.h.fpsDen, y.h.fpsNum, total
		opts.PixelAspectNum, opts.PixelAspectDen = y.h.aspectNum, y.h.aspectDen
		e, err := codec.NewEncoder(w, m, y.h.width, y.h.height, color, opts)
		if err != nil {
			return err
		}
		for {
			img, err := y.next()
			if err == io.EOF {
				break
			}
			if errors.Is(err, errTruncatedFrame) && frames > 0 {
				fmt.Fprintf(stderr, "\nlvc: %s: frame %d is truncated; kept the %d before it\n", in, frames, frames)
				break
			}
			if err != nil {
				endProgress(stderr, frames)
				return fmt.Errorf("%s: frame %d: %w", in, frames, err)
			}
			if err := e.WriteImage(img); err != nil {
				endProgress(stderr, frames)
				return err
			}
			frames++
			if total > 0 {
				fmt.Fprintf(stderr, "\rframe %d/%d", frames, total)
			} else {
				fmt.Fprintf(stderr, "\rframe %d", frames)
			}
		}
		fmt.Fprintln(stderr)
		if frames == 0 {
			return fmt.Errorf("%s: no frames", in)
		}
		if err := e.Close(); err != nil {
			return err
		}
		size = e.Size()
		return nil
	})
	if err != nil {
		return err
	}
	secs := float64(frames) * float64(y.h.fpsDen) / float64(y.h.fpsNum)
	fmt.Fprintf(stderr, "%s: %d frames %dx%d, %d bytes, %.1f kbit/s, %.4f bpp, %v\n", out, frames, y.h.width, y.h.height,
		size, float64(8*size)/secs/1000, float64(8*size)/float64(frames*y.h.width*y.h.height), time.Since(start).Round(time.Millisecond))
	return nil
}

// endProgress ends the progress line before an error is printed.
func endProgress(stderr io.Writer, frames int) {
	if frames > 0 {
		fmt.Fprintln(stderr)
	}
}

// estimateFrames derives the frame count of a Y4M file from its size,
// assuming frame headers without parameters ("FRAME\n"); 0 if it does not
// fit, or if f is not a regular file (a pipe's size says nothing).
func estimateFrames(f *os.File, y *y4mReader) uint32 {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return 0
	}
	body := st.Size() - int64(y.headerLen)
	per := int64(y.h.frameSize()) + 6
	if body <= 0 || body%per != 0 {
		return 0
	}
	return uint32(body / per)
}

func decodeVideo(m *codec.Model, r io.Reader, in, out, chroma string, stdout, stderr io.Writer) error {
	d, err := codec.NewDecoder(r, m, codec.DecoderOptions{})
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	h := d.Header()
	start := time.Now()
	frames := 0
	err = writeAtomically(out, stdout, func(w io.Writer) error {
		if h.Color == container.Gray {
			chroma = "mono"
		}
		yw, err := newY4MWriter(w, y4mHeader{width: h.Width, height: h.Height, fpsNum: h.TimebaseDen, fpsDen: h.TimebaseNum,
			aspectNum: h.PixelAspectNum, aspectDen: h.PixelAspectDen, chroma: chroma})
		if err != nil {
			return err
		}
		for {
			f, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				endProgress(stderr, frames)
				return fmt.Errorf("%s: frame %d: %w", in, frames, err)
			}
			if err := yw.write(f.Image); err != nil {
				endProgress(stderr, frames)
				return err
			}
			frames++
			fmt.Fprintf(stderr, "\rframe %d", frames)
		}
		fmt.Fprintln(stderr)
		return yw.flush()
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s: %d frames %dx%d, decoded in %v\n", out, frames, h.Width, h.Height, time.Since(start).Round(time.Millisecond))
	return nil
}
