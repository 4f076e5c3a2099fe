// Package models holds the shipped models, embedded so that a fresh clone or
// `go install` encodes without any download.
package models

import _ "embed"

// Default is the default image model (see docs/BENCHMARKS.md for its
// rate-distortion and train/runs/ for how it was trained).
//
//go:embed default.lvcm
var Default []byte
