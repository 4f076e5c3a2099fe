package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/lvc-codec/lvc/codec"
	"github.com/lvc-codec/lvc/container"
)

// Y4M (YUV4MPEG2) video: a text header line, then frames of "FRAME" plus
// parameters and a newline, then the planes. lvc reads 8-bit 4:2:0, 4:4:4
// and mono, and converts with BT.601, which is what Y4M files in practice
// carry. Colour is in the limited (video) range unless XCOLORRANGE=FULL
// says otherwise; mono is full range unless XCOLORRANGE=LIMITED does, as
// ffmpeg treats gray. 4:2:0 chroma is upsampled bilinearly from where the
// header says it is sited: centred (420jpeg, and 420 without a siting),
// co-sited with the left luma column (420mpeg2, which ffmpeg writes for
// H.264 sources), or with the top-left luma sample (420paldv, which is
// strictly Cb and Cr on alternate lines; ffmpeg reads it so too). lvc writes
// 4:2:0 with JPEG siting, or mono. The pixel aspect (A) travels through the
// .lvc header, so anamorphic video plays back at its shape.

const maxY4MHeader = 1024

type y4mHeader struct {
	width, height  int
	fpsNum, fpsDen uint32
	// The pixel aspect, width to height; 0:0 when the file does not say.
	aspectNum, aspectDen uint32
	chroma               string // "420", "444" or "mono"
	fullRange            bool
	// Where 4:2:0 chroma samples sit: beside their luma pixels (false:
	// between them, half a pixel right or down), by axis.
	cositedX, cositedY bool
}

// highBitDepth matches ffmpeg's colour spaces of more than 8 bits: C420p10, Cmono16...
var highBitDepth = regexp.MustCompile(`^(4[0-9]{2}p[0-9]+|mono[0-9]+)$`)

// errTruncatedFrame is the reader's error for a frame cut short, as at the
// end of an interrupted capture.
var errTruncatedFrame = errors.New("y4m: frame truncated")

func (h *y4mHeader) frameSize() int {
	luma := h.width * h.height
	switch h.chroma {
	case "444":
		return 3 * luma
	case "mono":
		return luma
	}
	return luma + 2*((h.width+1)/2)*((h.height+1)/2)
}

type y4mReader struct {
	r         *bufio.Reader
	h         y4mHeader
	headerLen int // bytes, newline included
	buf       []byte
}

func readLine(r *bufio.Reader, what string) (string, error) {
	var line []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if b == '\n' {
			return string(line), nil
		}
		if len(line) >= maxY4MHeader {
			return "", fmt.Errorf("%s line longer than %d bytes", what, maxY4MHeader)
		}
		line = append(line, b)
	}
}

// parseRatio reads Y4M's "n:d".
func parseRatio(val string) (num, den uint32, err error) {
	n, d, ok := strings.Cut(val, ":")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not of the form n:d", val)
	}
	nn, err := strconv.ParseUint(n, 10, 32)
	if err != nil {
		return 0, 0, err
	}
	dd, err := strconv.ParseUint(d, 10, 32)
	return uint32(nn), uint32(dd), err
}

func newY4MReader(r io.Reader) (*y4mReader, error) {
	br := bufio.NewReader(r)
	line, err := readLine(br, "header")
	if err != nil {
		return nil, fmt.Errorf("y4m: reading header: %w", err)
	}
	fields := strings.Fields(line)
	rangeTag := ""
	if len(fields) == 0 || fields[0] != "YUV4MPEG2" {
		return nil, errors.New("y4m: not a YUV4MPEG2 file")
	}
	h := y4mHeader{fpsNum: 25, fpsDen: 1, chroma: "420"}
	for _, f := range fields[1:] {
		key, val := f[0], f[1:]
		switch key {
		case 'W':
			h.width, err = strconv.Atoi(val)
		case 'H':
			h.height, err = strconv.Atoi(val)
		case 'F':
			h.fpsNum, h.fpsDen, err = parseRatio(val)
			if err == nil && (h.fpsNum == 0 || h.fpsDen == 0) {
				err = fmt.Errorf("bad frame rate %q", val)
			}
		case 'A':
			h.aspectNum, h.aspectDen, err = parseRatio(val)
			if err == nil && (h.aspectNum == 0) != (h.aspectDen == 0) {
				err = fmt.Errorf("bad pixel aspect %q (A0:0 means unknown)", val)
			}
		case 'C':
			switch val {
			case "420", "420jpeg", "420mpeg2", "420paldv":
				h.chroma = "420"
				h.cositedX, h.cositedY = val != "420" && val != "420jpeg", val == "420paldv"
			case "444":
				h.chroma = "444"
			case "mono":
				h.chroma = "mono"
			default:
				if highBitDepth.MatchString(val) {
					err = fmt.Errorf("colour space C%s: only 8-bit Y4M is supported", val)
				} else {
					err = fmt.Errorf("colour space C%s is not supported (420, 444 or mono)", val)
				}
			}
		case 'I':
			if val != "p" && val != "?" {
				err = fmt.Errorf("interlaced video (I%s) is not supported", val)
			}
		case 'X':
			switch val {
			case "COLORRANGE=FULL":
				rangeTag = "full"
			case "COLORRANGE=LIMITED":
				rangeTag = "limited"
			}
		}
		if err != nil {
			return nil, fmt.Errorf("y4m: header field %q: %w", f, err)
		}
	}
	if h.width < 1 || h.height < 1 || h.width > container.MaxDimension || h.height > container.MaxDimension ||
		h.width*h.height > codec.MaxPixels {
		return nil, fmt.Errorf("y4m: frame size %dx%d outside the supported size (%d per side, %d pixels)",
			h.width, h.height, container.MaxDimension, codec.MaxPixels)
	}
	h.fullRange = rangeTag == "full" || rangeTag == "" && h.chroma == "mono"
	return &y4mReader{r: br, h: h, headerLen: len(line) + 1, buf: make([]byte, h.frameSize())}, nil
}

// next returns the next frame as an image, or io.EOF after the last.
func (y *y4mReader) next() (image.Image, error) {
	line, err := readLine(y.r, "frame")
	if err == io.EOF {
		return nil, io.EOF
	}
	if err == io.ErrUnexpectedEOF {
		return nil, errTruncatedFrame
	}
	if err != nil {
		return nil, fmt.Errorf("y4m: %w", err)
	}
	if !strings.HasPrefix(line, "FRAME") {
		return nil, errors.New("y4m: frame marker missing (corrupt file)")
	}
	if _, err := io.ReadFull(y.r, y.buf); err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil, errTruncatedFrame
	} else if err != nil {
		return nil, fmt.Errorf("y4m: %w", err)
	}
	return yuvToRGB(&y.h, y.buf), nil
}

// yuvToRGB converts one frame with BT.601 coefficients.
func yuvToRGB(h *y4mHeader, buf []byte) image.Image {
	w, ht := h.width, h.height
	if h.chroma == "mono" {
		g := image.NewGray(image.Rect(0, 0, w, ht))
		for i, v := range buf[:w*ht] {
			g.Pix[i] = lumaToFull(v, h.fullRange)
		}
		return g
	}
	cw, ch := w, ht
	if h.chroma == "420" {
		cw, ch = (w+1)/2, (ht+1)/2
	}
	yp, up, vp := buf[:w*ht], buf[w*ht:w*ht+cw*ch], buf[w*ht+cw*ch:]
	img := image.NewNRGBA(image.Rect(0, 0, w, ht))
	ys, cs := 255.0/219, 255.0/224
	if h.fullRange {
		ys, cs = 1, 1
	}
	chromaAt := func(plane []byte, x, y int) float64 { return float64(plane[x+y*cw]) }
	if h.chroma == "420" {
		across, down := chromaTaps(w, cw, h.cositedX), chromaTaps(ht, ch, h.cositedY)
		chromaAt = func(plane []byte, x, y int) float64 {
			a, d := across[x], down[y]
			top := float64(plane[a.lo+d.lo*cw])*(1-a.hiWeight) + float64(plane[a.hi+d.lo*cw])*a.hiWeight
			bottom := float64(plane[a.lo+d.hi*cw])*(1-a.hiWeight) + float64(plane[a.hi+d.hi*cw])*a.hiWeight
			return top*(1-d.hiWeight) + bottom*d.hiWeight
		}
	}
	for y := range ht {
		for x := range w {
			luma := float64(yp[y*w+x])
			if !h.fullRange {
				luma -= 16
			}
			luma *= ys
			cb, cr := (chromaAt(up, x, y)-128)*cs, (chromaAt(vp, x, y)-128)*cs
			p := img.Pix[y*img.Stride+4*x:]
			p[0] = clamp8(luma + 1.402*cr)
			p[1] = clamp8(luma - 0.344136*cb - 0.714136*cr)
			p[2] = clamp8(luma + 1.772*cb)
			p[3] = 255
		}
	}
	return img
}

// chromaTap is, for one luma position on one axis, the two chroma samples
// either side of it and the weight of the second.
type chromaTap struct {
	lo, hi   int
	hiWeight float64
}

// chromaTaps maps each of n luma positions to the chroma samples (of
// chromaN at half resolution) to interpolate, clamping at the edges.
func chromaTaps(n, chromaN int, cosited bool) []chromaTap {
	taps := make([]chromaTap, n)
	for i := range taps {
		// Position in chroma samples: a centred sample k sits at luma 2k+0.5.
		pos := float64(i) / 2
		if !cosited {
			pos -= 0.25
		}
		pos = min(max(pos, 0), float64(chromaN-1))
		k := int(pos)
		taps[i] = chromaTap{lo: k, hi: min(k+1, chromaN-1), hiWeight: pos - float64(k)}
	}
	return taps
}

func lumaToFull(v byte, full bool) byte {
	if full {
		return v
	}
	return clamp8((float64(v) - 16) * 255 / 219)
}

func clamp8(v float64) byte {
	v += 0.5
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return byte(v)
}

// y4mWriter writes limited-range BT.601 frames, 4:2:0 or 4:4:4, or
// full-range mono for gray.
type y4mWriter struct {
	w      *bufio.Writer
	chroma string       // "420", "444" or "mono", as in y4mHeader
	frame  bytes.Buffer // one frame's bytes, kept across frames
}

// newY4MWriter writes h's size, frame rate, pixel aspect and chroma format;
// its range and siting fields are ignored (see y4mWriter).
func newY4MWriter(w io.Writer, h y4mHeader) (*y4mWriter, error) {
	tags := map[string]string{
		"420":  "C420jpeg XCOLORRANGE=LIMITED",
		"444":  "C444 XCOLORRANGE=LIMITED",
		"mono": "Cmono XCOLORRANGE=FULL",
	}
	c, ok := tags[h.chroma]
	if !ok {
		return nil, fmt.Errorf("y4m: no chroma format %q", h.chroma)
	}
	bw := bufio.NewWriter(w)
	_, err := fmt.Fprintf(bw, "YUV4MPEG2 W%d H%d F%d:%d Ip A%d:%d %s\n", h.width, h.height, h.fpsNum, h.fpsDen,
		h.aspectNum, h.aspectDen, c)
	return &y4mWriter{w: bw, chroma: h.chroma}, err
}

func (y *y4mWriter) write(img image.Image) error {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := &y.frame
	out.Reset()
	out.WriteString("FRAME\n")
	rgb := pixelReader(img)
	scale, offset := 219.0/255, 16.0
	if y.chroma == "mono" {
		scale, offset = 1, 0
	}
	for yy := range h {
		for x := range w {
			r, g, bl := rgb(x, yy)
			out.WriteByte(clamp8(offset + (0.299*r+0.587*g+0.114*bl)*scale))
		}
	}
	if y.chroma == "mono" {
		_, err := y.w.Write(out.Bytes())
		return err
	}
	// Each chroma sample averages the pixels it covers: 2x2 in 4:2:0, one in 4:4:4.
	step := 2
	if y.chroma == "444" {
		step = 1
	}
	cw, ch := (w+step-1)/step, (h+step-1)/step
	cb, cr := make([]byte, cw*ch), make([]byte, cw*ch)
	for cy := range ch {
		for cx := range cw {
			var sb, sr, n float64
			for dy := 0; dy < step && step*cy+dy < h; dy++ {
				for dx := 0; dx < step && step*cx+dx < w; dx++ {
					r, g, bl := rgb(step*cx+dx, step*cy+dy)
					sb += -0.168736*r - 0.331264*g + 0.5*bl
					sr += 0.5*r - 0.418688*g - 0.081312*bl
					n++
				}
			}
			cb[cy*cw+cx] = clamp8(128 + sb/n*224/255)
			cr[cy*cw+cx] = clamp8(128 + sr/n*224/255)
		}
	}
	out.Write(cb)
	out.Write(cr)
	_, err := y.w.Write(out.Bytes())
	return err
}

func (y *y4mWriter) flush() error { return y.w.Flush() }

// pixelReader gives the 8-bit R, G and B at (x, y) from the bounds' origin.
// The decoder's *image.RGBA and *image.Gray are read from Pix: At boxes each
// RGBA pixel into an interface value, an allocation per call and two calls
// per pixel.
// Both paths give what At(...).RGBA()>>8 gives.
func pixelReader(img image.Image) func(x, y int) (float64, float64, float64) {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.RGBA:
		return func(x, y int) (float64, float64, float64) {
			p := m.Pix[m.PixOffset(b.Min.X+x, b.Min.Y+y):]
			return float64(p[0]), float64(p[1]), float64(p[2])
		}
	case *image.Gray:
		return func(x, y int) (float64, float64, float64) {
			v := float64(m.Pix[m.PixOffset(b.Min.X+x, b.Min.Y+y)])
			return v, v, v
		}
	}
	return func(x, y int) (float64, float64, float64) {
		r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
		return float64(r >> 8), float64(g >> 8), float64(bl >> 8)
	}
}
