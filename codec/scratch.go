package codec

// A frameScratch lends a frame's decoding its working buffers (symbols,
// means, table indices, coding orders, context inputs) and takes them all
// back at the next frame's reset. The frames of a stream, and repeated
// decodes of one size, ask for the same sizes in the same order, so after
// the first frame decoding allocates little more than what it returns:
// fresh memory costs page faults, and garbage costs collections, that the
// reuse saves. A nil *frameScratch lends nothing: its users get new buffers,
// as the encoder's, whose buffers may outlive a frame, do.
type frameScratch struct {
	i32 scratchList[int32]
	i64 scratchList[int64]
	u16 scratchList[uint16]
}

// A scratchList hands out its buffers in order; used counts those lent
// since the last reset.
type scratchList[T any] struct {
	bufs [][]T
	used int
}

// get lends the next buffer, zeroed, n long (replacing it if too short).
func (l *scratchList[T]) get(n int) []T {
	if l.used == len(l.bufs) {
		l.bufs = append(l.bufs, nil)
	}
	b := l.bufs[l.used]
	if cap(b) < n {
		b = make([]T, n)
		l.bufs[l.used] = b
	}
	l.used++
	b = b[:n]
	clear(b)
	return b
}

// reset takes back every buffer lent so far.
func (s *frameScratch) reset() {
	s.i32.used, s.i64.used, s.u16.used = 0, 0, 0
}

func (s *frameScratch) int32s(n int) []int32 {
	if s == nil {
		return make([]int32, n)
	}
	return s.i32.get(n)
}

func (s *frameScratch) int64s(n int) []int64 {
	if s == nil {
		return make([]int64, n)
	}
	return s.i64.get(n)
}

func (s *frameScratch) uint16s(n int) []uint16 {
	if s == nil {
		return make([]uint16, n)
	}
	return s.u16.get(n)
}
