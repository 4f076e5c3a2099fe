package nn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The ONNX reader decodes only the protobuf fields the runtime uses, straight
// from the wire format. Every length is checked against the bytes that are
// left before anything is allocated, so memory stays proportional to the
// file: at most about 12 times its size (packed one-byte varints become
// int64s), plus the packed copy of conv weights (a Winograd conv's is 2x
// its float32 weights: 16 transformed values per 3x3 filter).

// Limits on what a model may declare.
const (
	maxRank      = 8
	maxNodes     = 1 << 14
	maxDimension = 1 << 24
	maxElements  = 1 << 28
)

type onnxModel struct {
	opset int64
	graph onnxGraph
}

type onnxGraph struct {
	nodes        []onnxNode
	initializers []namedTensor
	inputs       []Input
	outputs      []string
}

type onnxNode struct {
	name, opType, domain string
	inputs, outputs      []string
	attrs                map[string]attribute
}

type attribute struct {
	i    int64
	f    float32
	s    []byte
	ints []int64
	t    *Tensor
}

type namedTensor struct {
	name string
	t    *Tensor
}

// wireFields calls fn for every field of a protobuf message.
func wireFields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errors.New("bad protobuf tag")
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var u uint32
			u, n = protowire.ConsumeFixed32(b)
			x = uint64(u)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("bad protobuf field %d", num)
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// appendInts appends a repeated int64 field, packed or not, to dst.
func appendInts(dst []int64, typ protowire.Type, v []byte, x uint64) ([]int64, error) {
	if typ == protowire.VarintType {
		return append(dst, int64(x)), nil
	}
	for len(v) > 0 {
		u, n := protowire.ConsumeVarint(v)
		if n < 0 {
			return nil, errors.New("bad packed integers")
		}
		if len(dst) >= maxElements {
			return nil, errors.New("too many integers")
		}
		dst = append(dst, int64(u))
		v = v[n:]
	}
	return dst, nil
}

func appendFloats(dst []float32, typ protowire.Type, v []byte, x uint64) ([]float32, error) {
	if typ == protowire.Fixed32Type {
		return append(dst, math.Float32frombits(uint32(x))), nil
	}
	if len(v)%4 != 0 {
		return nil, errors.New("bad packed floats")
	}
	for i := 0; i < len(v); i += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(v[i:])))
	}
	return dst, nil
}

func parseModel(b []byte) (*onnxModel, error) {
	m := &onnxModel{opset: -1}
	var graph []byte
	err := wireFields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 7:
			graph = v
		case 8: // opset_import
			var domain string
			var version int64
			if err := wireFields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				switch num {
				case 1:
					domain = string(v)
				case 2:
					version = int64(x)
				}
				return nil
			}); err != nil {
				return err
			}
			if domain == "" || domain == "ai.onnx" {
				m.opset = version
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nn: onnx model: %w", err)
	}
	if graph == nil {
		return nil, errors.New("nn: onnx model has no graph")
	}
	if err := m.graph.parse(graph); err != nil {
		return nil, fmt.Errorf("nn: onnx graph: %w", err)
	}
	return m, nil
}

func (g *onnxGraph) parse(b []byte) error {
	return wireFields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1:
			if len(g.nodes) >= maxNodes {
				return fmt.Errorf("more than %d nodes", maxNodes)
			}
			n, err := parseNode(v)
			if err != nil {
				return fmt.Errorf("node %d (%s): %w", len(g.nodes), n.name, err)
			}
			g.nodes = append(g.nodes, n)
		case 5:
			t, name, err := parseTensor(v)
			if err != nil {
				return fmt.Errorf("initializer %q: %w", name, err)
			}
			g.initializers = append(g.initializers, namedTensor{name, t})
		case 11:
			in, err := parseInput(v)
			if err != nil {
				return fmt.Errorf("input %q: %w", in.Name, err)
			}
			g.inputs = append(g.inputs, in)
		case 12: // output: ValueInfoProto, of which only the name matters
			name, _, err := parseValueInfo(v)
			if err != nil {
				return err
			}
			g.outputs = append(g.outputs, name)
		case 15:
			return errors.New("sparse initializers are not supported")
		}
		return nil
	})
}

// parseValueInfo gives a ValueInfoProto's name and the bytes of its type.
func parseValueInfo(b []byte) (name string, typ []byte, err error) {
	err = wireFields(b, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 1:
			name = string(v)
		case 2:
			typ = v
		}
		return nil
	})
	return name, typ, err
}

// parseInput reads a graph input's name and the tensor shape its type
// declares (TypeProto.tensor_type.shape), if any.
func parseInput(b []byte) (Input, error) {
	name, typ, err := parseValueInfo(b)
	in := Input{Name: name}
	if err != nil || typ == nil {
		return in, err
	}
	var shape []byte
	err = wireFields(typ, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		if num == 1 { // tensor_type
			return wireFields(v, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				if num == 2 {
					shape = v
				}
				return nil
			})
		}
		return nil
	})
	if err != nil || shape == nil {
		return in, err
	}
	in.Shape = []int{}
	err = wireFields(shape, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		if num != 1 {
			return nil
		}
		if len(in.Shape) == maxRank {
			return fmt.Errorf("shape of more than %d dimensions", maxRank)
		}
		// A named or unnamed dimension is free; so is a negative one, which
		// some converters write for "unknown".
		size := -1
		err := wireFields(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
			if num == 1 && typ == protowire.VarintType && int64(x) >= 0 {
				if int64(x) > maxDimension {
					return fmt.Errorf("dimension %d out of range", int64(x))
				}
				size = int(x)
			}
			return nil
		})
		in.Shape = append(in.Shape, size)
		return err
	})
	return in, err
}

func parseNode(b []byte) (onnxNode, error) {
	n := onnxNode{attrs: map[string]attribute{}}
	err := wireFields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1:
			n.inputs = append(n.inputs, string(v))
		case 2:
			n.outputs = append(n.outputs, string(v))
		case 3:
			n.name = string(v)
		case 4:
			n.opType = string(v)
		case 7:
			n.domain = string(v)
		case 5:
			name, a, err := parseAttribute(v)
			if err != nil {
				return fmt.Errorf("attribute %q: %w", name, err)
			}
			n.attrs[name] = a
		}
		return nil
	})
	return n, err
}

func parseAttribute(b []byte) (string, attribute, error) {
	var name string
	var a attribute
	err := wireFields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			name = string(v)
		case 2:
			a.f = math.Float32frombits(uint32(x))
		case 3:
			a.i = int64(x)
		case 4:
			a.s = v
		case 5:
			a.t, _, err = parseTensor(v)
		case 8:
			a.ints, err = appendInts(a.ints, typ, v, x)
		case 6, 10, 11:
			err = errors.New("graph and tensor-list attributes are not supported")
		}
		return err
	})
	return name, a, err
}

// ONNX tensor element types the reader accepts.
const (
	onnxFloat   = 1
	onnxInt32   = 6
	onnxInt64   = 7
	onnxFloat16 = 10
	onnxDouble  = 11
)

// parseTensor reads a TensorProto into a float32 tensor. Integer tensors
// (shapes for Reshape) are converted too; they are small and exact.
func parseTensor(b []byte) (*Tensor, string, error) {
	var name string
	var dims, ints []int64
	var floats []float32
	var raw []byte
	dataType := int64(-1)
	err := wireFields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			dims, err = appendInts(dims, typ, v, x)
			if len(dims) > maxRank {
				err = fmt.Errorf("rank above %d", maxRank)
			}
		case 2:
			dataType = int64(x)
		case 4:
			floats, err = appendFloats(floats, typ, v, x)
		case 5, 7:
			ints, err = appendInts(ints, typ, v, x)
		case 8:
			name = string(v)
		case 9:
			raw = v
		case 13, 14:
			if num == 14 && x == 0 {
				return nil
			}
			err = errors.New("external data is not supported")
		case 10:
			err = errors.New("double data is not supported")
		}
		return err
	})
	if err != nil {
		return nil, name, err
	}
	shape := make([]int, len(dims))
	count := 1
	for i, d := range dims {
		if d < 0 || d > maxDimension {
			return nil, name, fmt.Errorf("dimension %d out of range", d)
		}
		shape[i] = int(d)
		count *= int(d)
		if count > maxElements {
			return nil, name, errors.New("too many elements")
		}
	}
	t := &Tensor{Shape: shape}
	switch {
	case raw != nil:
		size := map[int64]int{onnxFloat: 4, onnxInt32: 4, onnxInt64: 8, onnxFloat16: 2, onnxDouble: 8}[dataType]
		if size == 0 {
			return nil, name, fmt.Errorf("element type %d is not supported", dataType)
		}
		if len(raw) != count*size {
			return nil, name, fmt.Errorf("raw data has %d bytes, shape needs %d", len(raw), count*size)
		}
		t.Data = make([]float32, count)
		for i := range t.Data {
			switch dataType {
			case onnxFloat:
				t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			case onnxInt32:
				t.Data[i] = float32(int32(binary.LittleEndian.Uint32(raw[4*i:])))
			case onnxInt64:
				t.Data[i] = float32(int64(binary.LittleEndian.Uint64(raw[8*i:])))
			case onnxFloat16:
				t.Data[i] = halfToFloat(binary.LittleEndian.Uint16(raw[2*i:]))
			case onnxDouble:
				t.Data[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
			}
		}
	case dataType == onnxFloat:
		if len(floats) != count {
			return nil, name, fmt.Errorf("%d floats, shape needs %d", len(floats), count)
		}
		t.Data = floats
	case dataType == onnxInt32 || dataType == onnxInt64:
		if len(ints) != count {
			return nil, name, fmt.Errorf("%d integers, shape needs %d", len(ints), count)
		}
		t.Data = make([]float32, count)
		for i, v := range ints {
			t.Data[i] = float32(v)
		}
	default:
		return nil, name, fmt.Errorf("element type %d without data", dataType)
	}
	return t, name, nil
}

// halfToFloat converts an IEEE 754 binary16 value.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(frac) / (1 << 24)
		if sign != 0 {
			return -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// UnmarshalTensor decodes a serialized ONNX TensorProto (as
// onnx.numpy_helper.from_array(...).SerializeToString() writes it) into a
// float32 tensor.
func UnmarshalTensor(b []byte) (*Tensor, error) {
	t, name, err := parseTensor(b)
	if err != nil {
		return nil, fmt.Errorf("nn: tensor %q: %w", name, err)
	}
	return t, nil
}
