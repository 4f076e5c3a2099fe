package entropy

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// FuzzDecode feeds arbitrary streams to the decoder. The first two bytes pick
// the symbol count, so short inputs reach the end-of-stream paths too.
func FuzzDecode(f *testing.F) {
	ts := fixtureTables(f, "gaussian16.lvct", Gaussian, 16)
	tablesFor := func(n int) []uint16 {
		tables := make([]uint16, n)
		for i := range tables {
			tables[i] = uint16(i*13) % uint16(ts.NumTables())
		}
		return tables
	}
	// Seeds that decode cleanly under the body's tables, escapes included,
	// so the mutations start where the success checks run.
	var e Encoder
	vals, _ := sampleWorkload(ts, 300, 11)
	vals[7], vals[150] = 5000, -MaxMagnitude
	good, err := e.Encode(nil, vals, tablesFor(300), ts)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append([]byte{44, 1}, good...))
	empty, _ := e.Encode(nil, nil, nil, ts)
	f.Add(append([]byte{0, 0}, empty...))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		n := int(binary.LittleEndian.Uint16(data)) % 2048
		out := make([]int32, n)
		tables := tablesFor(n)
		// The same stream decoded in two parts, split where the count's
		// high bits say, must give the same values and the same verdict.
		parts := make([]int32, n)
		cut := int(data[1]>>3) * n / 31
		partsErr := errors.New("no decoder")
		if d, err := NewDecoder(data[2:]); err == nil {
			if partsErr = d.Decode(parts[:cut], tables[:cut], ts); partsErr == nil {
				if partsErr = d.Decode(parts[cut:], tables[cut:], ts); partsErr == nil {
					partsErr = d.Close()
				}
			}
		}
		err := Decode(data[2:], out, tables, ts)
		if (err == nil) != (partsErr == nil) {
			t.Fatalf("one Decode says %v, two parts say %v", err, partsErr)
		}
		if err == nil && !slices.Equal(out, parts) {
			t.Fatal("two parts decode other values than one Decode")
		}
		if err == nil {
			// Whatever decodes cleanly must re-encode to the same bytes.
			again, err := e.Encode(nil, out, tables, ts)
			if err != nil || string(again) != string(data[2:]) {
				t.Fatalf("clean decode does not re-encode to its input (err %v)", err)
			}
		}
		for _, v := range out {
			if v > MaxMagnitude || v < -MaxMagnitude {
				t.Fatalf("decoded value %d out of range", v)
			}
		}
	})
}

func FuzzUnmarshalTableSet(f *testing.F) {
	ts, err := FactorizedTables([][]float64{{0.2, 0.5, 0.3}, {0.9, 0.1}}, []int32{-1, 0}, 12)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := ts.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := UnmarshalTableSet(data)
		if err != nil {
			return
		}
		vals := []int32{0, 1, -1, 5000, -5000}
		idx := make([]uint16, len(vals))
		for i := range idx {
			idx[i] = uint16(i % ts.NumTables())
		}
		var e Encoder
		buf, err := e.Encode(nil, vals, idx, ts)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]int32, len(vals))
		if err := Decode(buf, got, idx, ts); err != nil {
			t.Fatal(err)
		}
		for i := range vals {
			if got[i] != vals[i] {
				t.Fatalf("loaded table does not round-trip %d", vals[i])
			}
		}
	})
}
