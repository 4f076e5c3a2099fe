package main

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/lvc-codec/lvc/codec"
	"github.com/lvc-codec/lvc/container"
)

// Netpbm input, registered with the image package: PBM, PGM and PPM in
// their plain (P1-P3) and raw (P4-P6) forms, and PAM (P7) with the tuple
// types BLACKANDWHITE, GRAYSCALE and RGB, with or without _ALPHA. Samples
// of any maximum value up to 65535 are scaled, rounded, to 8 bits: the
// codec's input precision.
func init() {
	for _, f := range []struct{ name, magic string }{
		{"pbm", "P1"}, {"pgm", "P2"}, {"ppm", "P3"},
		{"pbm", "P4"}, {"pgm", "P5"}, {"ppm", "P6"}, {"pam", "P7"},
	} {
		image.RegisterFormat(f.name, f.magic, decodePNM, decodePNMConfig)
	}
}

type pnmHeader struct {
	width, height int
	depth         int // samples per pixel: 1 gray, 2 gray+alpha, 3 RGB, 4 RGB+alpha
	maxval        int
	plain         bool // samples are decimal text
	bitmap        bool // PBM: one bit per pixel, 1 is black
}

const (
	maxPNMNumber = 1 << 20 // larger than any side or maximum value we accept
	maxPAMLine   = 1024
	maxPAMHeader = 64 << 10
)

func readPNMHeader(r *bufio.Reader) (pnmHeader, error) {
	var m [2]byte
	if _, err := io.ReadFull(r, m[:]); err != nil || m[0] != 'P' || m[1] < '1' || m[1] > '7' {
		return pnmHeader{}, errors.New("pnm: not a Netpbm file")
	}
	kind := m[1] - '0'
	if kind == 7 {
		return readPAMHeader(r)
	}
	h := pnmHeader{plain: kind <= 3, bitmap: kind == 1 || kind == 4, depth: 1, maxval: 1}
	if kind == 3 || kind == 6 {
		h.depth = 3
	}
	var err error
	if h.width, err = pnmNumber(r); err == nil {
		h.height, err = pnmNumber(r)
	}
	if err == nil && !h.bitmap {
		h.maxval, err = pnmNumber(r)
	}
	if err != nil {
		return pnmHeader{}, fmt.Errorf("pnm: bad header: %w", err)
	}
	// pnmNumber consumed the single white-space byte that ends the header.
	return h, h.check()
}

// nextPNMToken returns the first byte after white space and comments.
func nextPNMToken(r *bufio.Reader) (byte, error) {
	c, err := r.ReadByte()
	for err == nil && (isPNMSpace(c) || c == '#') {
		if c == '#' {
			for err == nil && c != '\n' && c != '\r' {
				c, err = r.ReadByte()
			}
		}
		c, err = r.ReadByte()
	}
	return c, err
}

// pnmNumber skips white space and comments, then reads a decimal number and
// the white-space byte after it.
func pnmNumber(r *bufio.Reader) (int, error) {
	c, err := nextPNMToken(r)
	n, digits := 0, 0
	for err == nil && c >= '0' && c <= '9' {
		if n > maxPNMNumber {
			return 0, errors.New("number too large")
		}
		n, digits = n*10+int(c-'0'), digits+1
		c, err = r.ReadByte()
	}
	switch {
	case digits == 0 && err != nil:
		return 0, io.ErrUnexpectedEOF
	case digits == 0:
		return 0, fmt.Errorf("%q where a number should be", c)
	case err == nil && c == '#':
		// A comment right after a number ends with the line, whose end is
		// the white space after the number (as in libnetpbm).
		for err == nil && c != '\n' && c != '\r' {
			c, err = r.ReadByte()
		}
	case err == nil && !isPNMSpace(c):
		return 0, fmt.Errorf("%q after a number", c)
	}
	return n, nil // a number at the very end of the file is complete; the pixels will be missing
}

func isPNMSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// readPAMHeader reads the lines after "P7" up to ENDHDR.
func readPAMHeader(r *bufio.Reader) (pnmHeader, error) {
	if c, err := r.ReadByte(); err != nil || c != '\n' {
		return pnmHeader{}, errors.New("pam: P7 is not alone on its line (an XV thumbnail?)")
	}
	h := pnmHeader{width: -1, height: -1, depth: -1, maxval: -1}
	var tupleType []string
	for read := 0; ; {
		line, err := r.ReadSlice('\n')
		read += len(line)
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxPAMLine || read > maxPAMHeader {
			return pnmHeader{}, errors.New("pam: header line or header too long")
		}
		if err != nil {
			return pnmHeader{}, errors.New("pam: header ends before ENDHDR")
		}
		fields := strings.Fields(string(line))
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		key := fields[0]
		if key == "ENDHDR" {
			break
		}
		if key == "TUPLTYPE" {
			tupleType = append(tupleType, fields[1:]...)
			continue
		}
		field := map[string]*int{"WIDTH": &h.width, "HEIGHT": &h.height, "DEPTH": &h.depth, "MAXVAL": &h.maxval}[key]
		if field == nil {
			return pnmHeader{}, fmt.Errorf("pam: unknown header field %.20q", key)
		}
		if len(fields) != 2 {
			return pnmHeader{}, fmt.Errorf("pam: %s needs one value", key)
		}
		if *field != -1 {
			return pnmHeader{}, fmt.Errorf("pam: %s given twice", key)
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil || n < 0 || n > maxPNMNumber {
			return pnmHeader{}, fmt.Errorf("pam: %s %.20q is not a valid number", key, fields[1])
		}
		*field = n
	}
	if h.width < 0 || h.height < 0 || h.depth < 0 || h.maxval < 0 {
		return pnmHeader{}, errors.New("pam: WIDTH, HEIGHT, DEPTH and MAXVAL are all required")
	}
	// Without a tuple type, the depth says what the samples are.
	depthOf := map[string]int{
		"BLACKANDWHITE": 1, "GRAYSCALE": 1, "RGB": 3,
		"BLACKANDWHITE_ALPHA": 2, "GRAYSCALE_ALPHA": 2, "RGB_ALPHA": 4,
	}
	if tt := strings.Join(tupleType, " "); tt != "" {
		want, ok := depthOf[tt]
		if !ok {
			return pnmHeader{}, fmt.Errorf("pam: tuple type %.40q is not supported (only BLACKANDWHITE, GRAYSCALE and RGB, with or without _ALPHA)", tt)
		}
		if want != h.depth {
			return pnmHeader{}, fmt.Errorf("pam: TUPLTYPE %s needs DEPTH %d; the header says %d", tt, want, h.depth)
		}
	} else if h.depth < 1 || h.depth > 4 {
		return pnmHeader{}, fmt.Errorf("pam: depth %d without a tuple type", h.depth)
	}
	return h, h.check()
}

func (h pnmHeader) check() error {
	if h.maxval < 1 || h.maxval > 65535 {
		return fmt.Errorf("pnm: maximum value %d (1 to 65535 are valid)", h.maxval)
	}
	if h.width < 1 || h.height < 1 {
		return fmt.Errorf("pnm: size %dx%d", h.width, h.height)
	}
	return nil
}

func (h pnmHeader) colorModel() color.Model {
	if h.depth == 1 {
		return color.GrayModel
	}
	return color.NRGBAModel
}

func decodePNMConfig(r io.Reader) (image.Config, error) {
	h, err := readPNMHeader(bufio.NewReader(r))
	if err != nil {
		return image.Config{}, err
	}
	return image.Config{ColorModel: h.colorModel(), Width: h.width, Height: h.height}, nil
}

// decodePNM returns a *image.Gray for one sample per pixel and a
// *image.NRGBA otherwise; gray with alpha becomes colour, as in image/png.
// The pixels grow with the rows read, so that a short file claiming a
// large size fails before it costs the whole image's memory.
func decodePNM(r io.Reader) (image.Image, error) {
	br := bufio.NewReader(r)
	h, err := readPNMHeader(br)
	if err != nil {
		return nil, err
	}
	if h.width > container.MaxDimension || h.height > container.MaxDimension || h.width*h.height > codec.MaxPixels {
		return nil, fmt.Errorf("pnm: %dx%d is outside the supported size (%d per side, %d pixels)",
			h.width, h.height, container.MaxDimension, codec.MaxPixels)
	}
	row := make([]uint16, h.width*h.depth)
	readRow := h.rowReader(br)
	to8 := func(v uint16) uint8 { return uint8((uint32(v)*255 + uint32(h.maxval)/2) / uint32(h.maxval)) }
	stride := 4 * h.width
	if h.depth == 1 {
		stride = h.width
	}
	var pix []byte
	for range h.height {
		if err := readRow(row); err != nil {
			return nil, err
		}
		if cap(pix)-len(pix) < stride { // double, but never past the whole image
			pix = slices.Grow(pix, min(max(len(pix), stride), stride*h.height-len(pix)))
		}
		p := pix[len(pix) : len(pix)+stride]
		pix = pix[:len(pix)+stride]
		for x := range h.width {
			s := row[x*h.depth : (x+1)*h.depth]
			switch h.depth {
			case 1:
				p[x] = to8(s[0])
			case 2:
				v := to8(s[0])
				p[4*x], p[4*x+1], p[4*x+2], p[4*x+3] = v, v, v, to8(s[1])
			case 3:
				p[4*x], p[4*x+1], p[4*x+2], p[4*x+3] = to8(s[0]), to8(s[1]), to8(s[2]), 255
			case 4:
				p[4*x], p[4*x+1], p[4*x+2], p[4*x+3] = to8(s[0]), to8(s[1]), to8(s[2]), to8(s[3])
			}
		}
	}
	rect := image.Rect(0, 0, h.width, h.height)
	if h.depth == 1 {
		return &image.Gray{Pix: pix, Stride: stride, Rect: rect}, nil
	}
	return &image.NRGBA{Pix: pix, Stride: stride, Rect: rect}, nil
}

// rowReader returns a function that reads the next row's samples, checked
// against the maximum value.
func (h pnmHeader) rowReader(r *bufio.Reader) func(row []uint16) error {
	truncated := errors.New("pnm: pixel data truncated")
	switch {
	case h.bitmap && h.plain:
		return func(row []uint16) error {
			for i := range row {
				c, err := nextPNMToken(r)
				if err != nil {
					return truncated
				}
				if c != '0' && c != '1' {
					return fmt.Errorf("pbm: %q in a plain bitmap", c)
				}
				row[i] = uint16('1' - c) // 1 is black
			}
			return nil
		}
	case h.bitmap:
		packed := make([]byte, (h.width+7)/8)
		return func(row []uint16) error {
			if _, err := io.ReadFull(r, packed); err != nil {
				return truncated
			}
			for i := range row {
				row[i] = uint16(^packed[i/8]>>(7-i%8)) & 1
			}
			return nil
		}
	case h.plain:
		return func(row []uint16) error {
			for i := range row {
				v, err := pnmNumber(r)
				if err == io.ErrUnexpectedEOF {
					return truncated
				}
				if err != nil {
					return fmt.Errorf("pnm: bad sample: %w", err)
				}
				if v > h.maxval {
					return fmt.Errorf("pnm: sample %d is above the maximum value %d", v, h.maxval)
				}
				row[i] = uint16(v)
			}
			return nil
		}
	}
	bytesPerSample := 1
	if h.maxval > 255 {
		bytesPerSample = 2 // most significant byte first
	}
	raw := make([]byte, h.width*h.depth*bytesPerSample)
	return func(row []uint16) error {
		if _, err := io.ReadFull(r, raw); err != nil {
			return truncated
		}
		for i := range row {
			if bytesPerSample == 2 {
				row[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
			} else {
				row[i] = uint16(raw[i])
			}
			if int(row[i]) > h.maxval {
				return fmt.Errorf("pnm: sample %d is above the maximum value %d", row[i], h.maxval)
			}
		}
		return nil
	}
}
