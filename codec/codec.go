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
	"slices"

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
	// PixelAspectNum:PixelAspectDen is the shape of a pixel, width to height
	// (Y4M's A tag), kept in the header for players; 0:0 leaves it unsaid.
	PixelAspectNum, PixelAspectDen uint32
	// IntraPeriod is the distance between intra frames in a sequence; the
	// frames between are inter frames, coded against the frame before. 0 or
	// 1 codes every frame intra.
	IntraPeriod int
	// RefineSteps, if positive, refines each intra frame's latents by this
	// many steps of gradient descent on its rate-distortion cost (refine.go):
	// fewer bits at the same quality, for about three and a half synthesis
	// runs per step (40 steps: 4.8% fewer bits on Kodak for about 40 times
	// the encoding time, measured on an older model, BENCHMARKS.md). The
	// decoder is unaffected.
	RefineSteps int
	// NoSkip turns off skipped blocks in inter frames (inter.go), which cost
	// the encoder a synthesis of every frame: of an intra frame that precedes
	// an inter frame to keep its pixels, of an inter frame to judge its
	// blocks, and a second of an inter frame whose blocks would be skipped.
	NoSkip bool
}

// Latents are the quantized representation of one frame, as the decoder
// reconstructs it: y_hat with shape [M, Hp/16, Wp/16] (before the decoder
// gain), Hp and Wp being the frame's size padded to a multiple of 64, for
// pipelines that work on latents instead of pixels.
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

// hyperParams runs the fixed-point hyper-synthesis on z and returns the
// means and scales (fixed point) and table indices of every element of y.
// The means and scales are the two halves of one buffer, h_s's output.
func (m *Model) hyperParams(z []int32, zw, zh int, s *frameScratch) (means, scales []int32, tables []uint16, err error) {
	in := s.int32s(len(z))
	for i, v := range z {
		in[i] = min(max(v, -maxZ), maxZ) << nn.FixedFracBits
	}
	out, shape, err := m.hS.Run(in, m.Info.N, zh, zw)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("codec: hyper-synthesis: %w", err)
	}
	if shape != [3]int{2 * m.Info.M, zh * 4, zw * 4} {
		return nil, nil, nil, fmt.Errorf("codec: hyper-synthesis gives %v, want [%d %d %d]", shape, 2*m.Info.M, zh*4, zw*4)
	}
	n := len(out) / 2
	means, scales = out[:n], out[n:]
	tables = s.uint16s(n)
	for i, v := range scales {
		tables[i] = m.scaleIdx.Index(int64(v))
	}
	return means, scales, tables, nil
}

// zTables gives each element of z its table: its channel's, in the set of
// the frame's quality when the model has a set per quality.
func (m *Model) zTables(plane int, q256 uint16) []uint16 {
	base := 0
	if m.Info.ZTablesPerQuality {
		base = m.nearestQuality(q256) * m.Info.N
	}
	idx := make([]uint16, m.Info.N*plane)
	for c := range m.Info.N {
		for i := range plane {
			idx[c*plane+i] = uint16(base + c)
		}
	}
	return idx
}

// A reference is a decoded frame's ŷ in fixed point (16 fraction bits),
// exact on both ends: what an inter frame is coded against.
type reference struct {
	q256 uint16
	yhat []int64
	z    []int32 // the hyper-latents the frame was coded with
	// pixels is the frame as g_s draws it ([1,3,ph,pw]), kept only by an
	// encoder that may skip blocks of the next frame (inter.go).
	pixels *nn.Tensor
}

// encodeFrame codes one image. With a reference of the same quality it codes
// an inter frame: each channel of y is coded around either the hyperprior's
// mean or the reference's ŷ (with a narrower table), whichever the frame's
// tables say is cheaper (the channel's mode), may reuse the reference's z,
// and, when the reference keeps its pixels, may skip blocks (inter.go). A
// model with a checkerboard context codes intra frames in its passes
// (checkerboard.go).
// It returns the frame type, and the latents and reference exactly as the
// decoder will reconstruct them; keepPixels adds the synthesized frame to
// the reference, for the next frame's skip decisions.
func (m *Model) encodeFrame(img image.Image, q256 uint16, enc *entropy.Encoder, ref *reference, refineSteps int, keepPixels bool) ([][]byte, container.FrameType, *Latents, *reference, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.loadAnalysis(); err != nil {
		return nil, 0, nil, nil, err
	}
	b := img.Bounds()
	pw, ph, yw, yh, zw, zh := m.latentGeometry(b.Dx(), b.Dy())
	x := imageToTensor(img, pw, ph)
	y, err := m.runScaled(m.gA, x, m.scalersA, m.widthsA, q256)
	if err != nil {
		return nil, 0, nil, nil, fmt.Errorf("codec: analysis: %w", err)
	}
	if !shapeIs(y, m.Info.M, yh, yw) {
		return nil, 0, nil, nil, fmt.Errorf("codec: analysis gives %v, want [1 %d %d %d]", y.Shape, m.Info.M, yh, yw)
	}
	ge := gain(m.gainEnc, q256)
	plane := yw * yh
	for c := range m.Info.M {
		for i := range plane {
			y.Data[c*plane+i] *= ge[c]
		}
	}
	if hasNaN(y.Data) {
		return nil, 0, nil, nil, errors.New("codec: the analysis transform gave NaN latents (a broken model?)")
	}
	zf, err := m.hA.Run(y)
	if err != nil {
		return nil, 0, nil, nil, fmt.Errorf("codec: hyper-analysis: %w", err)
	}
	if !shapeIs(zf, m.Info.N, zh, zw) {
		return nil, 0, nil, nil, fmt.Errorf("codec: hyper-analysis gives %v, want [1 %d %d %d]", zf.Shape, m.Info.N, zh, zw)
	}
	if hasNaN(zf.Data) {
		return nil, 0, nil, nil, errors.New("codec: the hyper-analysis gave NaN latents (a broken model?)")
	}
	z := make([]int32, len(zf.Data))
	for i, v := range zf.Data {
		z[i] = min(max(clampSymbol(v), -maxZ), maxZ)
	}
	zBytes, err := enc.Encode(nil, z, m.zTables(zw*zh, q256), m.tablesZ)
	if err != nil {
		return nil, 0, nil, nil, err
	}
	means, scales, tables, err := m.hyperParams(z, zw, zh, nil)
	if err != nil {
		return nil, 0, nil, nil, err
	}
	if ref != nil && ref.q256 == q256 && len(ref.yhat) == len(y.Data) {
		hyper, reused, err := m.chooseHyper(y.Data, &hyperOutput{means: means, scales: scales, tables: tables}, ref, 8*len(zBytes), zw, zh, plane, q256)
		if err != nil {
			return nil, 0, nil, nil, err
		}
		if reused {
			z, zBytes = ref.z, []byte{}
		}
		f := &interFrame{x: x, w: b.Dx(), h: b.Dy(), y: y.Data, yw: yw, yh: yh, q256: q256, zBytes: zBytes}
		streams, c, err := m.encodeInterFrame(enc, f, hyper, ref, keepPixels)
		if err != nil {
			return nil, 0, nil, nil, err
		}
		c.next.z = z
		return streams, container.Inter, c.lat, c.next, nil
	}
	if refineSteps > 0 {
		if err := m.refineLatents(y.Data, x, b.Dx(), b.Dy(), means, scales, tables, q256, refineSteps); err != nil {
			return nil, 0, nil, nil, err
		}
	}
	mean := m.applyModes(means, tables, nil, nil, plane, nil)
	sym := make([]int32, len(y.Data))
	for i, v := range y.Data {
		sym[i] = symbolAround(v, mean[i])
	}
	order, err := m.codeInPasses(y.Data, sym, mean, scales, tables, yw, yh)
	if err != nil {
		return nil, 0, nil, nil, err
	}
	m.toTableSet(tables, q256)
	yBytes, err := enc.EncodeParts(nil, entropy.Part{Values: permute(sym, order), Tables: permute(tables, order), Set: m.tablesY})
	if err != nil {
		return nil, 0, nil, nil, err
	}
	lat, next := m.reconstruct(sym, mean, q256, yw, yh)
	next.z = z
	if keepPixels {
		if next.pixels, err = m.framePixels(lat, q256); err != nil {
			return nil, 0, nil, nil, err
		}
	}
	return [][]byte{zBytes, yBytes}, container.Intra, lat, next, nil
}

// toTableSet moves scale indices into the frame's set of y tables.
func (m *Model) toTableSet(tables []uint16, q256 uint16) {
	if base := m.yTableBase(q256); base != 0 {
		for i := range tables {
			tables[i] += base
		}
	}
}

// symbolAround is the symbol that codes y around a fixed-point mean.
func symbolAround(y float32, mean int64) int32 {
	return clampSymbol(float32(float64(y) - float64(mean)/(1<<nn.FixedFracBits)))
}

// hasNaN reports a NaN, which clampSymbol would turn into a symbol that
// depends on the platform (int32(NaN) is undefined).
func hasNaN(v []float32) bool {
	for _, x := range v {
		if x != x {
			return true
		}
	}
	return false
}

func clampSymbol(v float32) int32 {
	r := math.Round(float64(v))
	return int32(min(max(r, -entropy.MaxMagnitude), entropy.MaxMagnitude))
}

func shapeIs(t *nn.Tensor, c, h, w int) bool {
	return len(t.Shape) == 4 && t.Shape[0] == 1 && t.Shape[1] == c && t.Shape[2] == h && t.Shape[3] == w
}

// decodeLatents entropy-decodes a frame into ŷ; inter frames need the
// previous frame's reference.
func (m *Model) decodeLatents(typ container.FrameType, streams [][]byte, w, h int, q256 uint16, ref *reference) (*Latents, *reference, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &m.decodeScratch
	s.reset()
	want := 2
	if typ == container.Inter {
		want = 4
		if len(streams) == 3 { // version 1's first form: raw modes, no skip map
			want = 3
		}
		if ref == nil {
			return nil, nil, errors.New("codec: inter frame without a decoded frame before it to refer to (a stream cut before its intra frame, or the frame before failed)")
		}
		if ref.q256 != q256 {
			return nil, nil, fmt.Errorf("codec: inter frame at quality %v, its reference at %v (corrupt file)", float64(q256)/256, float64(ref.q256)/256)
		}
	}
	if len(streams) != want {
		return nil, nil, fmt.Errorf("codec: %v frame has %d sub-streams, want %d", typ, len(streams), want)
	}
	_, _, yw, yh, zw, zh := m.latentGeometry(w, h)
	z := make([]int32, m.Info.N*zw*zh)
	if want == 4 && len(streams[0]) == 0 {
		if len(ref.z) != len(z) {
			return nil, nil, errors.New("codec: inter frame reuses hyper-latents its reference lacks (corrupt file)")
		}
		copy(z, ref.z)
	} else if err := entropy.Decode(streams[0], z, m.zTables(zw*zh, q256), m.tablesZ); err != nil {
		return nil, nil, fmt.Errorf("codec: hyper-latents: %w", err)
	}
	means, scales, tables, err := m.hyperParams(z, zw, zh, s)
	if err != nil {
		return nil, nil, err
	}
	defer m.hS.Recycle(means[:cap(means)])
	var modes []byte
	var skip []bool
	var d *entropy.Decoder // the four-stream form's one stream: modes, skip flags, y
	if typ == container.Inter {
		if len(ref.yhat) != len(means) {
			return nil, nil, errors.New("codec: reference frame of another size")
		}
		if want == 3 {
			modes, err = rawModes(streams[2], m.Info.M)
		} else {
			modes, skip, d, err = decodeSideInfo(streams, m.Info.M, yw*yh)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	mean := m.applyModes(means, tables, modes, ref, yw*yh, s)
	sym := s.int32s(len(means))
	switch {
	case d != nil:
		var order []int32
		if skip != nil {
			applySkips(skip, mean, sym, ref)
			order = codedElements(skip, m.Info.M)
		}
		if err = m.decodeInto(d, sym, tables, order, q256, s); err == nil {
			err = d.Close()
		}
	case m.ctx != nil && typ == container.Intra:
		err = m.decodePasses(streams[1], sym, mean, scales, tables, q256, yw, yh, s)
	default:
		m.toTableSet(tables, q256)
		err = entropy.Decode(streams[1], sym, tables, m.tablesY)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("codec: latents: %w", err)
	}
	lat, next := m.reconstruct(sym, mean, q256, yw, yh)
	next.z = z
	return lat, next, nil
}

// codeInPasses takes the symbols of y (already taken around the
// hyper-synthesis's means) again pass by pass for a model with a checkerboard
// context: each later pass's around the means its context derives from the
// passes before it, correcting mean and tables in place. It returns the
// elements' coding order; nil (raster order) without a context.
func (m *Model) codeInPasses(y []float32, sym []int32, mean []int64, scales []int32, tables []uint16, yw, yh int) ([]int32, error) {
	if m.ctx == nil {
		return nil, nil
	}
	first, passes := m.contextPasses(yw, yh)
	plane := yw * yh
	order := inEveryChannel(first, m.Info.M, plane, nil)
	for _, pass := range passes {
		if err := m.applyContext(pass, sym, mean, scales, tables, yw, yh, nil); err != nil {
			return nil, err
		}
		elements := inEveryChannel(pass.targets, m.Info.M, plane, nil)
		for _, i := range elements {
			sym[i] = symbolAround(y[i], mean[i])
		}
		order = append(order, elements...)
	}
	return order, nil
}

// decodePasses decodes y coded with the checkerboard context: the positions
// coded with the hyper-synthesis's tables alone, then each pass with the
// tables its context derives from the passes before it.
func (m *Model) decodePasses(stream []byte, sym []int32, mean []int64, scales []int32, tables []uint16, q256 uint16, yw, yh int, s *frameScratch) error {
	first, passes := m.contextPasses(yw, yh)
	d, err := entropy.NewDecoder(stream)
	if err != nil {
		return err
	}
	plane := yw * yh
	if err := m.decodeInto(d, sym, tables, inEveryChannel(first, m.Info.M, plane, s), q256, s); err != nil {
		return err
	}
	for _, pass := range passes {
		if err := m.applyContext(pass, sym, mean, scales, tables, yw, yh, s); err != nil {
			return err
		}
		if err := m.decodeInto(d, sym, tables, inEveryChannel(pass.targets, m.Info.M, plane, s), q256, s); err != nil {
			return err
		}
	}
	return d.Close()
}

// decodeInto decodes the y symbols of the elements order lists (nil: all, in
// place) from d, with their scale indices in tables.
func (m *Model) decodeInto(d *entropy.Decoder, sym []int32, tables []uint16, order []int32, q256 uint16, s *frameScratch) error {
	if order == nil {
		tab := s.uint16s(len(tables))
		copy(tab, tables)
		m.toTableSet(tab, q256)
		return d.Decode(sym, tab, m.tablesY)
	}
	part, tab := s.int32s(len(order)), s.uint16s(len(order))
	for j, i := range order {
		tab[j] = tables[i]
	}
	m.toTableSet(tab, q256)
	if err := d.Decode(part, tab, m.tablesY); err != nil {
		return err
	}
	for j, i := range order {
		sym[i] = part[j]
	}
	return nil
}

// permute returns v's elements in the given order; nil order keeps v.
func permute[T any](v []T, order []int32) []T {
	if order == nil {
		return v
	}
	out := make([]T, len(order))
	for j, i := range order {
		out[j] = v[i]
	}
	return out
}

// reconstruct computes ŷ = symbol + mean in fixed point, the same way on
// both ends, and returns it as latents and as the next frame's reference.
func (m *Model) reconstruct(sym []int32, mean []int64, q256 uint16, yw, yh int) (*Latents, *reference) {
	ref := &reference{q256: q256, yhat: make([]int64, len(sym))}
	lat := &Latents{Channels: m.Info.M, Height: yh, Width: yw, Data: make([]float32, len(sym))}
	for i, s := range sym {
		v := int64(s)<<nn.FixedFracBits + mean[i]
		ref.yhat[i] = v
		lat.Data[i] = float32(float64(v) / (1 << nn.FixedFracBits))
	}
	return lat, ref
}

// synthesize turns latents into an image of the frame's size.
func (m *Model) synthesize(lat *Latents, q256 uint16, w, h int, color container.ColorFormat) (image.Image, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, err := m.synthesisTensor(lat, q256)
	if err != nil {
		return nil, err
	}
	return tensorToImage(x, w, h, color), nil
}

// synthesisTensor runs g_s on latents: the padded frame, [1,3,16·H,16·W].
// The caller holds m.mu.
func (m *Model) synthesisTensor(lat *Latents, q256 uint16) (*nn.Tensor, error) {
	if cap(m.synthesisIn) < len(lat.Data) {
		m.synthesisIn = make([]float32, len(lat.Data))
	}
	in := m.synthesisInputInto(m.synthesisIn[:len(lat.Data)], &Frame{Quality: float64(q256) / 256, Latents: lat})
	t := &nn.Tensor{Shape: []int{1, lat.Channels, lat.Height, lat.Width}, Data: in}
	x, err := m.runScaled(m.gS, t, m.scalersS, m.widthsS, q256)
	if err != nil {
		return nil, fmt.Errorf("codec: synthesis: %w", err)
	}
	if !shapeIs(x, 3, lat.Height*16, lat.Width*16) {
		return nil, fmt.Errorf("codec: synthesis gives %v, want [1 3 %d %d]", x.Shape, lat.Height*16, lat.Width*16)
	}
	return x, nil
}

// framePixels is the frame as g_s draws it, in a tensor of its own: the
// graph reuses its output buffer on the next run.
func (m *Model) framePixels(lat *Latents, q256 uint16) (*nn.Tensor, error) {
	px, err := m.synthesisTensor(lat, q256)
	if err != nil {
		return nil, err
	}
	return &nn.Tensor{Shape: slices.Clone(px.Shape), Data: slices.Clone(px.Data)}, nil
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
	ref     *reference
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
	if width < 1 || height < 1 || width > container.MaxDimension || height > container.MaxDimension {
		return nil, fmt.Errorf("codec: image size %dx%d outside 1..%d per side", width, height, container.MaxDimension)
	}
	if width*height > MaxPixels {
		return nil, fmt.Errorf("codec: image size %dx%d is over the limit of %d pixels", width, height, MaxPixels)
	}
	if opts.RefineSteps < 0 || opts.RefineSteps > MaxRefineSteps {
		return nil, fmt.Errorf("codec: %d refinement steps outside 0..%d", opts.RefineSteps, MaxRefineSteps)
	}
	if opts.TimebaseNum == 0 || opts.TimebaseDen == 0 {
		opts.TimebaseNum, opts.TimebaseDen = 1, 25
	}
	if (opts.PixelAspectNum == 0) != (opts.PixelAspectDen == 0) {
		return nil, fmt.Errorf("codec: pixel aspect %d:%d has one zero term (0:0 leaves it unsaid)", opts.PixelAspectNum, opts.PixelAspectDen)
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
		// A still image has nothing to seek to: the header's frame count
		// already exposes a cut file, and the index would cost 44 bytes,
		// 1% of a small image at the lowest qualities.
		h := container.Header{ModelID: e.m.ID, Width: e.w, Height: e.h, Color: e.color,
			TimebaseNum: e.opts.TimebaseNum, TimebaseDen: e.opts.TimebaseDen, FrameCount: e.opts.FrameCount,
			Indexed: e.opts.FrameCount != 1, PixelAspectNum: e.opts.PixelAspectNum, PixelAspectDen: e.opts.PixelAspectDen}
		cw, err := container.NewWriter(e.out, h)
		if err != nil {
			return err
		}
		e.cw, e.started = cw, true
	}
	ref := e.ref
	if e.opts.IntraPeriod <= 1 || e.pts%int64(e.opts.IntraPeriod) == 0 {
		ref = nil
	}
	streams, typ, _, next, err := e.m.encodeFrame(img, e.q256, &e.enc, ref, e.opts.RefineSteps, e.nextIsInter() && !e.opts.NoSkip)
	if err != nil {
		return err
	}
	e.ref = next
	err = e.cw.WriteFrame(&container.Frame{Type: typ, Quality: e.q256, PTS: e.pts, Streams: streams})
	e.pts++
	return err
}

// nextIsInter says whether the frame after the one being written will be
// coded against it. A FrameCount that is too low (the CLI's is an estimate
// from the file size) only costs compression: the frame after the count is
// coded without skipped blocks.
func (e *Encoder) nextIsInter() bool {
	next := e.pts + 1
	if e.opts.FrameCount != 0 && next >= int64(e.opts.FrameCount) {
		return false
	}
	return e.opts.IntraPeriod > 1 && next%int64(e.opts.IntraPeriod) != 0
}

// Size is the number of bytes of the stream written so far; after Close,
// the file's size.
func (e *Encoder) Size() int64 {
	if !e.started {
		return 0
	}
	return e.cw.Size()
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
	ref  *reference
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
		return nil, fmt.Errorf("codec: image size %dx%d is over the limit of %d pixels", h.Width, h.Height, MaxPixels)
	}
	return &Decoder{m: m, r: cr, opts: opts}, nil
}

// Header returns the file header.
func (d *Decoder) Header() container.Header { return d.r.Header() }

// Next decodes the next frame; it returns io.EOF after the last. After a
// frame that fails (container.ErrChecksum among others) a caller may go on:
// the inter frames that follow are errors until the next intra frame, since
// their reference is lost.
func (d *Decoder) Next() (*Frame, error) {
	f, err := d.next()
	if err != nil && err != io.EOF {
		d.ref = nil
	}
	return f, err
}

func (d *Decoder) next() (*Frame, error) {
	f, err := d.r.Next()
	if err != nil {
		return nil, err
	}
	h := d.r.Header()
	if f.Type != container.Intra && f.Type != container.Inter {
		return nil, fmt.Errorf("codec: %v frames are not supported by this decoder", f.Type)
	}
	if int(f.Quality) > (d.m.Info.Qualities-1)*256 {
		return nil, fmt.Errorf("codec: frame quality %v beyond the model's %d", float64(f.Quality)/256, d.m.Info.Qualities-1)
	}
	lat, next, err := d.m.decodeLatents(f.Type, f.Streams, h.Width, h.Height, f.Quality, d.ref)
	if err != nil {
		return nil, err
	}
	d.ref = next
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

// ErrVideo is DecodeImage's error for a file of several frames.
var ErrVideo = errors.New("codec: file has more than one frame; decode it as video")

// ErrNoFrames is the error for a file that ends after its header.
var ErrNoFrames = errors.New("codec: file has no frames")

// DecodeImage decodes the first frame of an .lvc file and checks that no
// data follows it.
func DecodeImage(r io.Reader, m *Model) (image.Image, error) {
	d, err := NewDecoder(r, m, DecoderOptions{})
	if err != nil {
		return nil, err
	}
	f, err := d.Next()
	if err == io.EOF {
		return nil, ErrNoFrames
	}
	if err != nil {
		return nil, err
	}
	if _, err := d.Next(); err != io.EOF {
		if err == nil {
			err = ErrVideo
		}
		return nil, err
	}
	return f.Image, nil
}
