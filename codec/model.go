package codec

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/lvc-codec/lvc/entropy"
	"github.com/lvc-codec/lvc/nn"
)

// A model file (.lvcm) is "LVCM", a version byte, three zero bytes, then
// sections: a 4-byte tag, a little-endian uint32 length, the payload.
//
//	META  JSON: sizes, qualities, scale table (ModelInfo)
//	G_A , G_S , H_A , H_S   ONNX networks: analysis, synthesis, hyper-analysis, hyper-synthesis
//	GAIN  float32 gains: qualities x M for the encoder, then for the decoder
//	SCAL  (only with META scaler_layers) float32 (I)GDN input scalers:
//	      per quality, each layer's vector (N values, or META
//	      scaler_widths) for g_a, then the same for g_s
//	TABY  entropy tables of y, one per scale (entropy.TableSet); with META
//	      y_tables_per_quality, one set of them per quality
//	TABZ  entropy tables of z, one per channel; with META
//	      z_tables_per_quality, one set of them per quality
//	CTX   (only with META checkerboard) ONNX network of the checkerboard
//	      context, run in fixed point (checkerboard.go)
//	CTXA  (only with META anchor_context) ONNX network of the anchor
//	      context, run in fixed point (checkerboard.go)
//
// The model ID is the first 16 bytes of the SHA-256 of the whole file.
const modelMagic = "LVCM"

const maxModelChannels = 1024

// ModelInfo is the META section.
type ModelInfo struct {
	N            int                `json:"n"`
	M            int                `json:"m"`
	Qualities    int                `json:"qualities"`
	Stride       int                `json:"stride"`
	Family       string             `json:"family"`
	Scales       []float64          `json:"scales"`
	Lambdas      []float64          `json:"lambdas"`
	KMACPerPixel map[string]float64 `json:"kmac_per_pixel"`
	Step         int                `json:"step"`
	// ScalerLayers counts the per-quality (I)GDN input scalers of g_a and
	// g_s; the networks take them as inputs s0, s1, ... of shape [1, C, 1, 1],
	// C being the layer's width (N, or as ScalerWidths says).
	ScalerLayers []int `json:"scaler_layers,omitempty"`
	// ScalerWidths gives each of those layers' channel count, per network,
	// when one differs from N (a widened stage of g_s); absent, all are N.
	ScalerWidths [][]int `json:"scaler_widths,omitempty"`
	// YTablesPerQuality: TABY holds a set of len(Scales) tables for each
	// quality, fitted to what the model produces there (train/fit_tables.py),
	// instead of one Gaussian set for all.
	YTablesPerQuality bool `json:"y_tables_per_quality,omitempty"`
	// ZTablesPerQuality: TABZ holds a set of N tables for each quality,
	// fitted the same way.
	ZTablesPerQuality bool `json:"z_tables_per_quality,omitempty"`
	// Checkerboard is the hidden width of the CTX network; intra frames of
	// a model with one code y in two passes, three with an anchor context
	// (checkerboard.go). 0: one pass.
	Checkerboard int `json:"checkerboard,omitempty"`
	// AnchorContext is the hidden width of the CTXA network; the anchors of
	// a model with one are coded in two passes themselves (checkerboard.go).
	// It needs a checkerboard. 0: none.
	AnchorContext int `json:"anchor_context,omitempty"`
}

// maxScalerLayers bounds META scaler_layers; the shipped transforms have 3.
const maxScalerLayers = 16

// A Model holds everything both ends of the codec need. It is safe to share
// between goroutines: frames are coded one at a time (each already uses
// every core), because the networks reuse their buffers from run to run.
type Model struct {
	mu   sync.Mutex
	ID   [16]byte
	Info ModelInfo
	// The analysis networks are checked at load but kept only as ONNX
	// until the first encode: a decoder never runs them, and their
	// compiled weights are about 10 MB of a decode's peak memory.
	gA, hA         *nn.Graph
	gAONNX, hAONNX []byte
	inputsA        []nn.Input // g_a's inputs, checked against META
	gS             *nn.Graph
	gSONNX         []byte
	gSGrad         *nn.Graph // g_s with input gradients, loaded on first use (refinement)
	hS             *nn.FixedGraph
	ctx            *nn.FixedGraph // the checkerboard context; nil without one
	ctxAnchor      *nn.FixedGraph // the anchor context; nil without one
	gainEnc        [][]float32
	gainDec        [][]float32
	// Per quality, the (I)GDN input scalers of g_a and g_s, one layer's
	// vector after another (widthsA, widthsS); nil for models without them.
	scalersA, scalersS [][]float32
	widthsA, widthsS   []int
	tablesY            *entropy.TableSet
	tablesZ            *entropy.TableSet
	scaleIdx           *entropy.ScaleQuantizer
	decodeScratch      frameScratch // decodeLatents's buffers, under mu
	synthesisIn        []float32    // synthesisTensor's input buffer, under mu
}

// SynthesisONNX returns the synthesis network as ONNX, for running it in
// another runtime (the browser viewer uses onnxruntime-web). Its inputs are
// SynthesisInput's tensor (x) and, for models with scalers, SynthesisScalers
// (s0, s1, ...); its output is RGB in [0,1] at 16 times the size.
func (m *Model) SynthesisONNX() []byte { return m.gSONNX }

// SynthesisInput scales decoded latents by the decoder gain of the frame's
// quality: the [1, M, H/16, W/16] input of the synthesis network.
func (m *Model) SynthesisInput(f *Frame) []float32 {
	return m.synthesisInputInto(make([]float32, len(f.Latents.Data)), f)
}

// synthesisInputInto is SynthesisInput writing into out, len(f.Latents.Data) long.
func (m *Model) synthesisInputInto(out []float32, f *Frame) []float32 {
	gd := gain(m.gainDec, uint16(math.Round(f.Quality*256)))
	lat := f.Latents
	plane := lat.Height * lat.Width
	for c := range lat.Channels {
		for i := range plane {
			out[c*plane+i] = lat.Data[c*plane+i] * gd[c]
		}
	}
	return out
}

// SynthesisScalers returns the synthesis network's other inputs at the
// frame's quality: one vector per layer, of the layer's channel count C,
// fed as s0, s1, ... with shape [1, C, 1, 1]. It is nil for models without
// scalers.
func (m *Model) SynthesisScalers(f *Frame) [][]float32 {
	return layerScalers(m.scalersS, m.widthsS, uint16(math.Round(f.Quality*256)))
}

func layerScalers(set [][]float32, widths []int, q256 uint16) [][]float32 {
	if set == nil {
		return nil
	}
	all := gain(set, q256)
	out := make([][]float32, len(widths))
	for i, w := range widths {
		out[i], all = all[:w], all[w:]
	}
	return out
}

// runScaled runs g_a or g_s on x with the scalers of quality q256.
func (m *Model) runScaled(g *nn.Graph, x *nn.Tensor, set [][]float32, widths []int, q256 uint16) (*nn.Tensor, error) {
	if set == nil {
		return g.Run(x)
	}
	in := map[string]*nn.Tensor{"x": x}
	for i, s := range layerScalers(set, widths, q256) {
		in[scalerInput(i)] = &nn.Tensor{Shape: []int{1, len(s), 1, 1}, Data: s}
	}
	out, err := g.RunNamed(in)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func scalerInput(i int) string { return fmt.Sprintf("s%d", i) }

// checkInputs makes sure a network takes x, of xChannels channels, and one
// scaler input of each width META gives, in the shapes runScaled feeds them
// (a file that declares no shape is checked when it runs). x must leave
// height and width free: frames come in every size.
func checkInputs(name string, got []nn.Input, xChannels int, widths []int) error {
	want := map[string][]int{"x": {1, xChannels, -1, -1}}
	for i, w := range widths {
		want[scalerInput(i)] = []int{1, w, 1, 1}
	}
	names := slices.Sorted(maps.Keys(want))
	gotNames := make([]string, len(got))
	for i, in := range got {
		gotNames[i] = in.Name
	}
	if !slices.Equal(gotNames, names) {
		return fmt.Errorf("codec: model %s takes inputs %v, META says %v", name, gotNames, names)
	}
	for _, in := range got {
		if in.Shape == nil {
			continue
		}
		if !nn.ShapesAgree(want[in.Name], in.Shape) {
			return fmt.Errorf("codec: model %s input %s has shape %s, the codec feeds it %s",
				name, in.Name, nn.ShapeString(in.Shape), nn.ShapeString(want[in.Name]))
		}
		if in.Name == "x" && (in.Shape[2] >= 0 || in.Shape[3] >= 0) {
			return fmt.Errorf("codec: model %s input x has shape %s: it must leave height and width free (exported without dynamic axes?)",
				name, nn.ShapeString(in.Shape))
		}
	}
	return nil
}

// IDString is the model ID in hex.
func (m *Model) IDString() string { return hex.EncodeToString(m.ID[:]) }

// LoadModel parses and checks a model file.
func LoadModel(b []byte) (*Model, error) {
	if len(b) < 8 || string(b[:4]) != modelMagic {
		return nil, errors.New("codec: not an lvc model file (bad magic)")
	}
	if b[4] != 1 {
		return nil, fmt.Errorf("codec: model format version %d, want 1", b[4])
	}
	if b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return nil, fmt.Errorf("codec: model header bytes 5-7 are %x, want zero (corrupt file)", b[5:8])
	}
	sections := map[string][]byte{}
	for rest := b[8:]; len(rest) > 0; {
		if len(rest) < 8 {
			return nil, errors.New("codec: model file truncated in a section header")
		}
		tag := string(rest[:4])
		n := binary.LittleEndian.Uint32(rest[4:])
		if uint64(n) > uint64(len(rest)-8) {
			return nil, fmt.Errorf("codec: model section %q truncated", tag)
		}
		if _, dup := sections[tag]; dup {
			return nil, fmt.Errorf("codec: model section %q repeated", tag)
		}
		sections[tag] = rest[8 : 8+n]
		rest = rest[8+n:]
	}
	for _, tag := range []string{"META", "G_A ", "G_S ", "H_A ", "H_S ", "GAIN", "TABY", "TABZ"} {
		if sections[tag] == nil {
			return nil, fmt.Errorf("codec: model lacks section %q", tag)
		}
	}
	m := &Model{}
	sum := sha256.Sum256(b)
	copy(m.ID[:], sum[:16])
	dec := json.NewDecoder(bytes.NewReader(sections["META"]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m.Info); err != nil {
		return nil, fmt.Errorf("codec: model META: %w", err)
	}
	in := &m.Info
	if in.N < 1 || in.M < 1 || in.N > maxModelChannels || in.M > maxModelChannels || in.Qualities < 1 || in.Qualities > 64 || in.Stride != 64 {
		return nil, fmt.Errorf("codec: model META out of range: n=%d m=%d qualities=%d stride=%d", in.N, in.M, in.Qualities, in.Stride)
	}
	if _, err := familyOf(in.Family); err != nil {
		return nil, err
	}
	if in.Checkerboard < 0 || in.Checkerboard > maxModelChannels || (in.Checkerboard > 0) != (sections["CTX "] != nil) {
		return nil, fmt.Errorf("codec: model META checkerboard %d does not match its CTX section", in.Checkerboard)
	}
	if in.AnchorContext < 0 || in.AnchorContext > maxModelChannels || (in.AnchorContext > 0) != (sections["CTXA"] != nil) {
		return nil, fmt.Errorf("codec: model META anchor_context %d does not match its CTXA section", in.AnchorContext)
	}
	if in.AnchorContext > 0 && in.Checkerboard == 0 {
		return nil, errors.New("codec: model META anchor_context without a checkerboard: it splits the checkerboard's anchors")
	}
	// g_a and h_a are only checked here: a decoder never needs them, and
	// the first encode compiles them (loadAnalysis).
	var err error
	if m.inputsA, err = nn.Check(sections["G_A "]); err != nil {
		return nil, fmt.Errorf("codec: model g_a: %w", err)
	}
	if m.gS, err = nn.Load(sections["G_S "]); err != nil {
		return nil, fmt.Errorf("codec: model g_s: %w", err)
	}
	m.gSONNX = sections["G_S "]
	if _, err = nn.Check(sections["H_A "]); err != nil {
		return nil, fmt.Errorf("codec: model h_a: %w", err)
	}
	if m.hS, err = nn.LoadFixed(sections["H_S "]); err != nil {
		return nil, fmt.Errorf("codec: model h_s: %w", err)
	}
	if in.Checkerboard > 0 {
		if m.ctx, err = loadContext(sections["CTX "], in.M, in.Checkerboard, "checkerboard context", "META checkerboard", "CTX"); err != nil {
			return nil, err
		}
	}
	if in.AnchorContext > 0 {
		if m.ctxAnchor, err = loadContext(sections["CTXA"], in.M, in.AnchorContext, "anchor context", "META anchor_context", "CTXA"); err != nil {
			return nil, err
		}
	}
	gains := sections["GAIN"]
	if len(gains) != 2*4*in.Qualities*in.M {
		return nil, fmt.Errorf("codec: model GAIN has %d bytes, want %d", len(gains), 2*4*in.Qualities*in.M)
	}
	if m.gainEnc, err = readVectors(gains[:len(gains)/2], in.Qualities, in.M, "gain"); err != nil {
		return nil, err
	}
	if m.gainDec, err = readVectors(gains[len(gains)/2:], in.Qualities, in.M, "gain"); err != nil {
		return nil, err
	}
	if err := m.loadScalers(sections["SCAL"]); err != nil {
		return nil, err
	}
	if m.tablesY, err = entropy.UnmarshalTableSet(sections["TABY"]); err != nil {
		return nil, fmt.Errorf("codec: model TABY: %w", err)
	}
	if m.tablesZ, err = entropy.UnmarshalTableSet(sections["TABZ"]); err != nil {
		return nil, fmt.Errorf("codec: model TABZ: %w", err)
	}
	setsY, setsZ := 1, 1
	if in.YTablesPerQuality {
		setsY = in.Qualities
	}
	if in.ZTablesPerQuality {
		setsZ = in.Qualities
	}
	if m.tablesY.NumTables() != setsY*len(in.Scales) || m.tablesZ.NumTables() != setsZ*in.N {
		return nil, fmt.Errorf("codec: model has %d y tables for %d sets of %d scales and %d z tables for %d sets of %d channels",
			m.tablesY.NumTables(), setsY, len(in.Scales), m.tablesZ.NumTables(), setsZ, in.N)
	}
	if m.scaleIdx, err = entropy.NewScaleQuantizer(in.Scales); err != nil {
		return nil, fmt.Errorf("codec: model scales: %w", err)
	}
	m.gAONNX, m.hAONNX = sections["G_A "], sections["H_A "]
	return m, nil
}

// loadAnalysis compiles g_a and h_a, which LoadModel only checked, on a
// model's first encode; the caller holds m.mu.
func (m *Model) loadAnalysis() error {
	if m.gA != nil {
		return nil
	}
	gA, err := nn.Load(m.gAONNX)
	if err != nil {
		return fmt.Errorf("codec: model g_a: %w", err)
	}
	hA, err := nn.Load(m.hAONNX)
	if err != nil {
		return fmt.Errorf("codec: model h_a: %w", err)
	}
	m.gA, m.hA = gA, hA
	return nil
}

// loadScalers reads the SCAL section that META scaler_layers announces and
// checks that g_a and g_s take the inputs it feeds.
func (m *Model) loadScalers(b []byte) error {
	in := &m.Info
	layers := in.ScalerLayers
	switch {
	case layers == nil && b == nil:
		return m.checkNetworkInputs(nil, nil)
	case layers == nil || b == nil:
		return errors.New("codec: model SCAL section and META scaler_layers must come together")
	case len(layers) != 2 || layers[0] < 0 || layers[1] < 0 || layers[0] > maxScalerLayers || layers[1] > maxScalerLayers:
		return fmt.Errorf("codec: model META scaler_layers %v, want two counts up to %d", layers, maxScalerLayers)
	}
	widths, err := scalerWidths(in)
	if err != nil {
		return err
	}
	if err := m.checkNetworkInputs(widths[0], widths[1]); err != nil {
		return err
	}
	m.widthsA, m.widthsS = widths[0], widths[1]
	perA, perS := sum(m.widthsA), sum(m.widthsS)
	if len(b) != 4*in.Qualities*(perA+perS) {
		return fmt.Errorf("codec: model SCAL has %d bytes, want %d", len(b), 4*in.Qualities*(perA+perS))
	}
	split := 4 * in.Qualities * perA
	if m.scalersA, err = readVectors(b[:split], in.Qualities, perA, "scaler"); err != nil {
		return err
	}
	m.scalersS, err = readVectors(b[split:], in.Qualities, perS, "scaler")
	return err
}

// checkNetworkInputs checks g_a's and g_s's inputs against META: RGB
// into g_a, M latent channels into g_s, and the scalers of each.
func (m *Model) checkNetworkInputs(widthsA, widthsS []int) error {
	return errors.Join(checkInputs("g_a", m.inputsA, 3, widthsA), checkInputs("g_s", m.gS.Inputs(), m.Info.M, widthsS))
}

// scalerWidths gives the channel count of every scaled layer of g_a and
// g_s: META scaler_widths, or N for each of META scaler_layers.
func scalerWidths(in *ModelInfo) ([2][]int, error) {
	var widths [2][]int
	if in.ScalerWidths == nil {
		for i, layers := range in.ScalerLayers {
			widths[i] = slices.Repeat([]int{in.N}, layers)
		}
		return widths, nil
	}
	if len(in.ScalerWidths) != 2 {
		return widths, fmt.Errorf("codec: model META scaler_widths has %d networks, want 2", len(in.ScalerWidths))
	}
	for i, ws := range in.ScalerWidths {
		if len(ws) != in.ScalerLayers[i] {
			return widths, fmt.Errorf("codec: model META scaler_widths gives %d layers where scaler_layers says %d",
				len(ws), in.ScalerLayers[i])
		}
		for _, w := range ws {
			if w < 1 || w > maxModelChannels {
				return widths, fmt.Errorf("codec: model META scaler width %d, want 1..%d", w, maxModelChannels)
			}
		}
		widths[i] = ws
	}
	return widths, nil
}

func sum(v []int) int {
	t := 0
	for _, x := range v {
		t += x
	}
	return t
}

// readVectors reads qualities vectors of n positive float32 values.
func readVectors(b []byte, qualities, n int, what string) ([][]float32, error) {
	g := make([][]float32, qualities)
	for q := range g {
		g[q] = make([]float32, n)
		for c := range g[q] {
			v := math.Float32frombits(binary.LittleEndian.Uint32(b[4*(q*n+c):]))
			if !(v > 1e-6 && v < 1e6) {
				return nil, fmt.Errorf("codec: model %s %v out of range", what, v)
			}
			g[q][c] = v
		}
	}
	return g, nil
}

// loadContext loads a context network (CTX or CTXA) and checks it: the codec
// runs it on chunks of positions, which only a pointwise network allows
// (FORMAT.md §2.3), mapping 6M values to 2M through hidden channels.
func loadContext(section []byte, m, hidden int, name, meta, tag string) (*nn.FixedGraph, error) {
	g, err := nn.LoadFixed(section)
	if err != nil {
		return nil, fmt.Errorf("codec: model %s: %w", name, err)
	}
	if !g.Pointwise() {
		return nil, fmt.Errorf("codec: model %s is not pointwise (1x1 convolutions and Relu only)", name)
	}
	if _, shape, err := g.Run(make([]int32, 6*m), 6*m, 1, 1); err != nil || shape != [3]int{2 * m, 1, 1} {
		return nil, fmt.Errorf("codec: model %s does not map %d channels to %d (%v, %v)", name, 6*m, 2*m, shape, err)
	}
	if widths := g.ConvWidths(); len(widths) < 2 || widths[0] != hidden {
		return nil, fmt.Errorf("codec: model %s %d is not the hidden width of its %s network (convolutions of %v channels)", meta, hidden, tag, widths)
	}
	return g, nil
}

// bundleParams is params.json as train/export.py writes it.
type bundleParams struct {
	ModelInfo
	GainEnc [][]float64 `json:"gain_enc"`
	GainDec [][]float64 `json:"gain_dec"`
	// Per network ("g_a", "g_s"): qualities x layers x the layer's width.
	FeatureScalers map[string][][][]float64 `json:"feature_scalers"`
	ZPMFs          []pmfJSON                `json:"z_pmfs"`
	// Optional (train/fit_tables.py): per quality, per scale, the y table,
	// and per quality, per channel, the z table.
	YPMFs           [][]pmfJSON `json:"y_pmfs"`
	ZPMFsPerQuality [][]pmfJSON `json:"z_pmfs_per_quality"`
}

type pmfJSON struct {
	Offset int32     `json:"offset"`
	PMF    []float64 `json:"pmf"`
}

// TablePrecision is the frequency precision of packed entropy tables. On
// hyperprior statistics 16 bits code about 4.6% smaller than 12 (see
// docs/BENCHMARKS.md).
const TablePrecision = 16

// PackModel builds a model file from a directory written by
// train/export.py: the four ONNX files and params.json. The entropy tables
// are computed here, once, and stored as integers, so that no decoder ever
// evaluates erfc or exp (whose last bits differ between platforms).
func PackModel(dir string) ([]byte, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "params.json"))
	if err != nil {
		return nil, err
	}
	var p bundleParams
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("codec: params.json: %w", err)
	}
	family, err := familyOf(p.Family)
	if err != nil {
		return nil, err
	}
	ty, err := yTables(&p, family)
	if err != nil {
		return nil, err
	}
	tz, err := zTables(&p)
	if err != nil {
		return nil, err
	}
	var gains []byte
	for _, set := range [][][]float64{p.GainEnc, p.GainDec} {
		if len(set) != p.Qualities {
			return nil, fmt.Errorf("codec: %d gain vectors for %d qualities", len(set), p.Qualities)
		}
		for _, g := range set {
			if len(g) != p.M {
				return nil, fmt.Errorf("codec: gain vector of %d for M=%d", len(g), p.M)
			}
			for _, v := range g {
				gains = binary.LittleEndian.AppendUint32(gains, math.Float32bits(float32(v)))
			}
		}
	}
	scalers, err := packScalers(&p)
	if err != nil {
		return nil, err
	}
	meta, err := json.Marshal(p.ModelInfo)
	if err != nil {
		return nil, err
	}
	out := []byte{'L', 'V', 'C', 'M', 1, 0, 0, 0}
	add := func(tag string, b []byte) {
		out = append(out, tag...)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	add("META", meta)
	addONNX := func(tag, file string) error {
		b, err := os.ReadFile(filepath.Join(dir, file+".onnx"))
		if err == nil {
			add(tag, b)
		}
		return err
	}
	for _, n := range []struct{ tag, file string }{{"G_A ", "g_a"}, {"G_S ", "g_s"}, {"H_A ", "h_a"}, {"H_S ", "h_s"}} {
		if err := addONNX(n.tag, n.file); err != nil {
			return nil, err
		}
	}
	add("GAIN", gains)
	if scalers != nil {
		add("SCAL", scalers)
	}
	if p.Checkerboard > 0 {
		if err := addONNX("CTX ", "ctx"); err != nil {
			return nil, err
		}
	}
	if p.AnchorContext > 0 {
		if err := addONNX("CTXA", "ctx_anchor"); err != nil {
			return nil, err
		}
	}
	for _, t := range []struct {
		tag string
		ts  *entropy.TableSet
	}{{"TABY", ty}, {"TABZ", tz}} {
		b, err := t.ts.MarshalBinary()
		if err != nil {
			return nil, err
		}
		add(t.tag, b)
	}
	if _, err := LoadModel(out); err != nil {
		return nil, fmt.Errorf("codec: packed model does not load: %w", err)
	}
	return out, nil
}

// yTables builds the y tables: fitted ones per quality when params.json
// has them, else the family's, one per scale.
func yTables(p *bundleParams, family entropy.Family) (*entropy.TableSet, error) {
	p.YTablesPerQuality = p.YPMFs != nil
	if p.YPMFs == nil {
		return entropy.ConditionalTables(family, p.Scales, TablePrecision)
	}
	return tablesPerQuality(p.YPMFs, p.Qualities, len(p.Scales), "y")
}

// zTables builds the z tables from the prior's pmfs, one per channel, or
// from fitted ones per quality when params.json has them.
func zTables(p *bundleParams) (*entropy.TableSet, error) {
	p.ZTablesPerQuality = p.ZPMFsPerQuality != nil
	if p.ZPMFsPerQuality != nil {
		return tablesPerQuality(p.ZPMFsPerQuality, p.Qualities, p.N, "z")
	}
	return tablesPerQuality([][]pmfJSON{p.ZPMFs}, 1, p.N, "z")
}

// tablesPerQuality builds sets of tables, quality after quality.
func tablesPerQuality(sets [][]pmfJSON, qualities, perSet int, what string) (*entropy.TableSet, error) {
	if len(sets) != qualities {
		return nil, fmt.Errorf("codec: %s tables for %d qualities, want %d", what, len(sets), qualities)
	}
	var pmfs [][]float64
	var offsets []int32
	for q, set := range sets {
		if len(set) != perSet {
			return nil, fmt.Errorf("codec: quality %d has %d %s tables, want %d", q, len(set), what, perSet)
		}
		for _, t := range set {
			pmfs, offsets = append(pmfs, t.PMF), append(offsets, t.Offset)
		}
	}
	return entropy.FactorizedTables(pmfs, offsets, TablePrecision)
}

// nearestQuality is the whole quality nearest to q256, whose table sets a
// frame uses.
func (m *Model) nearestQuality(q256 uint16) int {
	return min((int(q256)+128)/256, m.Info.Qualities-1)
}

// yTableBase is the first y table of the set that frames of quality q256
// use, when the model has a set per quality.
func (m *Model) yTableBase(q256 uint16) uint16 {
	if !m.Info.YTablesPerQuality {
		return 0
	}
	return uint16(m.nearestQuality(q256) * len(m.Info.Scales))
}

// packScalers lays out params.json's feature scalers as the SCAL section and
// sets META scaler_layers; a model without them gets neither.
func packScalers(p *bundleParams) ([]byte, error) {
	if p.FeatureScalers == nil {
		return nil, nil
	}
	var out []byte
	p.ScalerLayers, p.ScalerWidths = nil, nil
	widths := make([][]int, 0, 2)
	for _, net := range []string{"g_a", "g_s"} {
		set := p.FeatureScalers[net]
		if len(set) != p.Qualities {
			return nil, fmt.Errorf("codec: %s has scalers for %d qualities, want %d", net, len(set), p.Qualities)
		}
		for _, layers := range set {
			if len(layers) != len(set[0]) {
				return nil, fmt.Errorf("codec: %s scaler layer counts differ between qualities", net)
			}
			for i, v := range layers {
				if len(v) != len(set[0][i]) || len(v) < 1 || len(v) > maxModelChannels {
					return nil, fmt.Errorf("codec: %s scaler layer %d has %d values at one quality, %d at another",
						net, i, len(v), len(set[0][i]))
				}
				for _, x := range v {
					out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(x)))
				}
			}
		}
		p.ScalerLayers = append(p.ScalerLayers, len(set[0]))
		var ws []int
		if len(set) > 0 {
			for _, v := range set[0] {
				ws = append(ws, len(v))
			}
		}
		widths = append(widths, ws)
	}
	// Only a model with a layer of another width than N says so, which
	// keeps older models' files, and IDs, as they were.
	for _, ws := range widths {
		for _, w := range ws {
			if w != p.N {
				p.ScalerWidths = widths
			}
		}
	}
	return out, nil
}

// familyOf maps the model file's "family" to the distribution its y tables
// were built for.
func familyOf(name string) (entropy.Family, error) {
	switch name {
	case "gaussian":
		return entropy.Gaussian, nil
	case "laplace":
		return entropy.Laplace, nil
	}
	return 0, fmt.Errorf("codec: model family %q is not supported (gaussian or laplace)", name)
}
