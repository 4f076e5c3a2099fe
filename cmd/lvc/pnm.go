package main

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"

	"github.com/lvc-codec/lvc/codec"
	"github.com/lvc-codec/lvc/container"
)

// Binary PPM (P6) and PGM (P5) with 8-bit samples, the formats lvc decode
// writes and cjpeg reads, registered with the image package.
func init() {
	image.RegisterFormat("ppm", "P6", decodePNM, decodePNMConfig)
	image.RegisterFormat("pgm", "P5", decodePNM, decodePNMConfig)
}

func pnmHeader(r *bufio.Reader) (magic string, w, h int, err error) {
	var fields [4]int
	m := make([]byte, 2)
	if _, err := io.ReadFull(r, m); err != nil {
		return "", 0, 0, err
	}
	magic = string(m)
	if magic != "P6" && magic != "P5" {
		return "", 0, 0, errors.New("pnm: not a binary PPM or PGM")
	}
	for i := 1; i < 4; i++ {
		// Skip white space and comments, then read a decimal number.
		c, err := r.ReadByte()
		for err == nil && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '#') {
			if c == '#' {
				for err == nil && c != '\n' {
					c, err = r.ReadByte()
				}
			}
			c, err = r.ReadByte()
		}
		n, digits := 0, 0
		for err == nil && c >= '0' && c <= '9' {
			if n > 1<<20 {
				return "", 0, 0, errors.New("pnm: number too large")
			}
			n, digits = n*10+int(c-'0'), digits+1
			c, err = r.ReadByte()
		}
		if err != nil || digits == 0 {
			return "", 0, 0, errors.New("pnm: bad header")
		}
		fields[i] = n // the byte after the number is its single separator
	}
	if fields[3] != 255 {
		return "", 0, 0, fmt.Errorf("pnm: maximum value %d (only 255 is supported)", fields[3])
	}
	return magic, fields[1], fields[2], nil
}

func decodePNMConfig(r io.Reader) (image.Config, error) {
	magic, w, h, err := pnmHeader(bufio.NewReader(r))
	if err != nil {
		return image.Config{}, err
	}
	model := color.RGBAModel
	if magic == "P5" {
		model = color.GrayModel
	}
	return image.Config{ColorModel: model, Width: w, Height: h}, nil
}

func decodePNM(r io.Reader) (image.Image, error) {
	br := bufio.NewReader(r)
	magic, w, h, err := pnmHeader(br)
	if err != nil {
		return nil, err
	}
	if w < 1 || h < 1 || w > container.MaxDimension || h > container.MaxDimension || w*h > codec.MaxPixels {
		return nil, fmt.Errorf("pnm: size %dx%d not supported", w, h)
	}
	if magic == "P5" {
		g := image.NewGray(image.Rect(0, 0, w, h))
		if _, err := io.ReadFull(br, g.Pix); err != nil {
			return nil, errors.New("pnm: pixel data truncated")
		}
		return g, nil
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	row := make([]byte, 3*w)
	for y := range h {
		if _, err := io.ReadFull(br, row); err != nil {
			return nil, errors.New("pnm: pixel data truncated")
		}
		p := img.Pix[y*img.Stride:]
		for x := range w {
			p[4*x], p[4*x+1], p[4*x+2], p[4*x+3] = row[3*x], row[3*x+1], row[3*x+2], 255
		}
	}
	return img, nil
}
