// Package codec is lvc's public API: it encodes images (and, frame by frame,
// video) into .lvc files and decodes them, wiring the neural networks (nn),
// the entropy coder (entropy) and the file format (container) together.
package codec

import (
	"errors"
	"fmt"
	"image"
	"io"
	"math"

	"github.com/lvc-codec/lvc/container"
	"github.com/lvc-codec/lvc/entropy"
	"github.com/lvc-codec/lvc/nn"
)

// Options control encoding.
type Options struct {
	// Quality is the quality index, 0 (smallest) to Qualities-1 (best).
	// Fractions interpolate between the learned gain vectors, in 1/256 steps.
	Quality float64
	// TimebaseNum/TimebaseDen is the duration of one frame in seconds
	// (default 1/25). Frame i gets presentation time i.
	TimebaseNum, TimebaseDen uint32
	// FrameCount goes into the header when known in advance (0: unknown).
	FrameCount uint32
}

// Latents are the quantized representation of one frame, as the decoder
// reconstructs it: y_hat with shape [M, H/16, W/16] (before the decoder
// gain), for pipelines that work on latents instead of pixels.
type Latents struct {
	Channels, Height, Width int
	Data                    []float32
}

// Frame is one decoded frame.
type Frame struct {
	Type    container.FrameType
	PTS     int64
	Quality float64
	Image   image.Image // nil when the decoder was asked for latents only
	Latents *Latents
	Bytes   int // coded size of the frame's payload
}

// quantizeQuality maps an option to the 1/256 steps the container stores.
func (m *Model) quantizeQuality(q float64) (uint16, error) {
	if math.IsNaN(q) || q < 0 || q > float64(m.Info.Qualities-1) {
		return 0, fmt.Errorf("codec: quality %v outside 0..%d", q, m.Info.Qualities-1)
	}
	return uint16(math.Round(q * 256)), nil
}

// gain interpolates a gain vector geometrically between learned qualities.
func gain(set [][]float32, q256 uint16) []float32 {
	lo := int(q256 >> 8)
	t := float64(q256&255) / 256
	out := make([]float32, len(set[0]))
	if lo >= len(set)-1 {
		copy(out, set[len(set)-1])
		return out
	}
	for c := range out {
		a, b := math.Log(float64(set[lo][c])), math.Log(float64(set[lo+1][c]))
		out[c] = float32(math.Exp((1-t)*a + t*b))
	}
	return out
}

// latentGeometry gives the padded size and the sizes of y and z.
func (m *Model) latentGeometry(w, h int) (pw, ph, yw, yh, zw, zh int) {
	s := m.Info.Stride
	pw, ph = (w+s-1)/s*s, (h+s-1)/s*s
	return pw, ph, pw / 16, ph / 16, pw / 64, ph / 64
}

// maxZ bounds z so that z·2^16 fits int32 (FORMAT.md §2).
const maxZ = 1<<(31-nn.FixedFracBits) - 1

// hyperParams runs the fixed-point hyper-synthesis on z and returns the means
// (fixed point) and table indices of every element of y.
func (m *Model) hyperParams(z []int32, zw, zh int) (means []int32, tables []uint16, err error) {
	in := make([]int32, len(z))
	for i, v := range z {
		in[i] = min(max(v, -maxZ), maxZ) << nn.FixedFracBits
	}
	out, shape, err := m.hS.Run(in, m.Info.N, zh, zw)
	if err != nil {
		return nil, nil, fmt.Errorf("codec: hyper-synthesis: %w", err)
	}
	if shape != [3]int{2 * m.Info.M, zh * 4, zw * 4} {
		return nil, nil, fmt.Errorf("codec: hyper-synthesis gives %v, want [%d %d %d]", shape, 2*m.Info.M, zh*4, zw*4)
	}
	n := len(out) / 2
	means = out[:n]
	tables = make([]uint16, n)
	for i, s := range out[n:] {
		tables[i] = m.scaleIdx.Index(int64(s))
	}
	return means, tables, nil
}

func channelIndex(channels, plane int) []uint16 {
	idx := make([]uint16, channels*plane)
	for c := range channels {
		for i := range plane {
			idx[c*plane+i] = uint16(c)
		}
	}
	return idx
}

// encodeFrame codes one image into the sub-streams of an intra frame. It
// also returns the latents exactly as the decoder will reconstruct them.
func (m *Model) encodeFrame(img image.Image, q256 uint16, enc *entropy.Encoder) ([][]byte, *Latents, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := img.Bounds()
	pw, ph, yw, yh, zw, zh := m.latentGeometry(b.Dx(), b.Dy())
	x := imageToTensor(img, pw, ph)
	y, err := m.gA.Run(x)
	if err != nil {
		return nil, nil, fmt.Errorf("codec: analysis: %w", err)
	}
	if !shapeIs(y, m.Info.M, yh, yw) {
		return nil, nil, fmt.Errorf("codec: analysis gives %v, want [1 %d %d %d]", y.Shape, m.Info.M, yh, yw)
	}
	ge := gain(m.gainEnc, q256)
	plane := yw * yh
	for c := range m.Info.M {
		for i := range plane {
			y.Data[c*plane+i] *= ge[c]
		}
	}
	zf, err := m.hA.Run(y)
	if err != nil {
		return nil, nil, fmt.Errorf("codec: hyper-analysis: %w", err)
	}
	if !shapeIs(zf, m.Info.N, zh, zw) {
		return nil, nil, fmt.Errorf("codec: hyper-analysis gives %v, want [1 %d %d %d]", zf.Shape, m.Info.N, zh, zw)
	}
	z := make([]int32, len(zf.Data))
	for i, v := range zf.Data {
		z[i] = min(max(clampSymbol(v), -maxZ), maxZ)
	}
	zBytes, err := enc.Encode(nil, z, channelIndex(m.Info.N, zw*zh), m.tablesZ)
	if err != nil {
		return nil, nil, err
	}
	means, tables, err := m.hyperParams(z, zw, zh)
	if err != nil {
		return nil, nil, err
	}
	sym := make([]int32, len(y.Data))
	for i, v := range y.Data {
		sym[i] = clampSymbol(v - float32(means[i])/(1<<nn.FixedFracBits))
	}
	yBytes, err := enc.Encode(nil, sym, tables, m.tablesY)
	if err != nil {
		return nil, nil, err
	}
	return [][]byte{zBytes, yBytes}, m.reconstruct(sym, means, yw, yh), nil
}

func clampSymbol(v float32) int32 {
	r := math.Round(float64(v))
	return int32(min(max(r, -entropy.MaxMagnitude), entropy.MaxMagnitude))
}

func shapeIs(t *nn.Tensor, c, h, w int) bool {
	return len(t.Shape) == 4 && t.Shape[0] == 1 && t.Shape[1] == c && t.Shape[2] == h && t.Shape[3] == w
}

// decodeLatents entropy-decodes an intra frame into y_hat.
func (m *Model) decodeLatents(streams [][]byte, w, h int) (*Latents, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(streams) != 2 {
		return nil, fmt.Errorf("codec: intra frame has %d sub-streams, want 2", len(streams))
	}
	_, _, yw, yh, zw, zh := m.latentGeometry(w, h)
	z := make([]int32, m.Info.N*zw*zh)
	if err := entropy.Decode(streams[0], z, channelIndex(m.Info.N, zw*zh), m.tablesZ); err != nil {
		return nil, fmt.Errorf("codec: hyper-latents: %w", err)
	}
	means, tables, err := m.hyperParams(z, zw, zh)
	if err != nil {
		return nil, err
	}
	sym := make([]int32, len(means))
	if err := entropy.Decode(streams[1], sym, tables, m.tablesY); err != nil {
		return nil, fmt.Errorf("codec: latents: %w", err)
	}
	return m.reconstruct(sym, means, yw, yh), nil
}

// reconstruct computes y_hat = symbol + mean, the same way on both ends.
func (m *Model) reconstruct(sym, means []int32, yw, yh int) *Latents {
	lat := &Latents{Channels: m.Info.M, Height: yh, Width: yw, Data: make([]float32, len(sym))}
	for i, s := range sym {
		lat.Data[i] = float32(s) + float32(means[i])/(1<<nn.FixedFracBits)
	}
	return lat
}

// synthesize turns latents into an image of the frame's size.
func (m *Model) synthesize(lat *Latents, q256 uint16, w, h int, color container.ColorFormat) (image.Image, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &nn.Tensor{Shape: []int{1, lat.Channels, lat.Height, lat.Width},
		Data: m.SynthesisInput(&Frame{Quality: float64(q256) / 256, Latents: lat})}
	x, err := m.gS.Run(t)
	if err != nil {
		return nil, fmt.Errorf("codec: synthesis: %w", err)
	}
	if !shapeIs(x, 3, lat.Height*16, lat.Width*16) {
		return nil, fmt.Errorf("codec: synthesis gives %v", x.Shape)
	}
	return tensorToImage(x, w, h, color), nil
}

var errModelMismatch = errors.New("codec: the file was encoded with another model")

// EncodeImage writes img as a one-frame .lvc file.
func EncodeImage(w io.Writer, m *Model, img image.Image, opts Options) error {
	b := img.Bounds()
	opts.FrameCount = 1
	e, err := NewEncoder(w, m, b.Dx(), b.Dy(), colorFormatOf(img), opts)
	if err != nil {
		return err
	}
	if err := e.WriteImage(img); err != nil {
		return err
	}
	return e.Close()
}

// An Encoder writes a sequence of frames of one size.
type Encoder struct {
	m       *Model
	cw      *container.Writer
	w, h    int
	q256    uint16
	pts     int64
	opts    Options
	enc     entropy.Encoder
	started bool
	out     io.Writer
	color   container.ColorFormat
}

// MaxPixels bounds the frames the codec accepts (16 megapixels): the
// synthesis transform holds whole-frame activations, about 1 GB at this size.
const MaxPixels = 1 << 24

// NewEncoder prepares to write frames of width x height.
func NewEncoder(w io.Writer, m *Model, width, height int, color container.ColorFormat, opts Options) (*Encoder, error) {
	q, err := m.quantizeQuality(opts.Quality)
	if err != nil {
		return nil, err
	}
	if width < 1 || height < 1 || width > container.MaxDimension || height > container.MaxDimension || width*height > MaxPixels {
		return nil, fmt.Errorf("codec: image size %dx%d outside 1..%d per side", width, height, container.MaxDimension)
	}
	if opts.TimebaseNum == 0 || opts.TimebaseDen == 0 {
		opts.TimebaseNum, opts.TimebaseDen = 1, 25
	}
	return &Encoder{m: m, w: width, h: height, q256: q, out: w, color: color, opts: opts}, nil
}

// WriteImage encodes one frame.
func (e *Encoder) WriteImage(img image.Image) error {
	b := img.Bounds()
	if b.Dx() != e.w || b.Dy() != e.h {
		return fmt.Errorf("codec: frame is %dx%d, stream is %dx%d", b.Dx(), b.Dy(), e.w, e.h)
	}
	if !e.started {
		h := container.Header{ModelID: e.m.ID, Width: e.w, Height: e.h, Color: e.color,
			TimebaseNum: e.opts.TimebaseNum, TimebaseDen: e.opts.TimebaseDen, FrameCount: e.opts.FrameCount, Indexed: true}
		cw, err := container.NewWriter(e.out, h)
		if err != nil {
			return err
		}
		e.cw, e.started = cw, true
	}
	streams, _, err := e.m.encodeFrame(img, e.q256, &e.enc)
	if err != nil {
		return err
	}
	err = e.cw.WriteFrame(&container.Frame{Type: container.Intra, Quality: e.q256, PTS: e.pts, Streams: streams})
	e.pts++
	return err
}

// Close finishes the file.
func (e *Encoder) Close() error {
	if !e.started {
		return errors.New("codec: no frame written")
	}
	return e.cw.Close()
}

// DecoderOptions control decoding.
type DecoderOptions struct {
	// LatentsOnly skips the synthesis transform: frames carry Latents and
	// no Image. It is for perception pipelines that read latents directly.
	LatentsOnly bool
}

// A Decoder reads frames from an .lvc stream.
type Decoder struct {
	m    *Model
	r    *container.Reader
	opts DecoderOptions
}

// NewDecoder reads the header and checks that the file was made with m.
func NewDecoder(r io.Reader, m *Model, opts DecoderOptions) (*Decoder, error) {
	cr, err := container.NewReader(r)
	if err != nil {
		return nil, err
	}
	h := cr.Header()
	if h.ModelID != m.ID {
		return nil, fmt.Errorf("%w (file model %x, decoder model %s)", errModelMismatch, h.ModelID, m.IDString())
	}
	if h.Width*h.Height > MaxPixels {
		return nil, fmt.Errorf("codec: image size %dx%d too large", h.Width, h.Height)
	}
	return &Decoder{m: m, r: cr, opts: opts}, nil
}

// Header returns the file header.
func (d *Decoder) Header() container.Header { return d.r.Header() }

// Next decodes the next frame; it returns io.EOF after the last.
func (d *Decoder) Next() (*Frame, error) {
	f, err := d.r.Next()
	if err != nil {
		return nil, err
	}
	h := d.r.Header()
	if f.Type != container.Intra {
		return nil, fmt.Errorf("codec: %v frames are not supported by this decoder", f.Type)
	}
	if int(f.Quality) > (d.m.Info.Qualities-1)*256 {
		return nil, fmt.Errorf("codec: frame quality %v beyond the model's %d", float64(f.Quality)/256, d.m.Info.Qualities-1)
	}
	lat, err := d.m.decodeLatents(f.Streams, h.Width, h.Height)
	if err != nil {
		return nil, err
	}
	out := &Frame{Type: f.Type, PTS: f.PTS, Quality: float64(f.Quality) / 256, Latents: lat}
	for _, s := range f.Streams {
		out.Bytes += len(s)
	}
	if !d.opts.LatentsOnly {
		if out.Image, err = d.m.synthesize(lat, f.Quality, h.Width, h.Height, h.Color); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DecodeImage decodes the first frame of an .lvc file and checks that no
// data follows it.
func DecodeImage(r io.Reader, m *Model) (image.Image, error) {
	d, err := NewDecoder(r, m, DecoderOptions{})
	if err != nil {
		return nil, err
	}
	f, err := d.Next()
	if err == io.EOF {
		return nil, errors.New("codec: file has no frames")
	}
	if err != nil {
		return nil, err
	}
	if _, err := d.Next(); err != io.EOF {
		if err == nil {
			err = errors.New("codec: file has more than one frame; decode it as video")
		}
		return nil, err
	}
	return f.Image, nil
}
