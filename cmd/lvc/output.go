package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
)

// Outputs are written through a temporary file beside the target and
// renamed over it, so a failed or interrupted run never leaves a partial
// file. "-" is standard output, and a target that exists but is not a
// regular file (a device, a FIFO) is written in place.

// pending holds the temporary files being written, for the signal handler.
var pending sync.Map

var catchSignals = sync.OnceFunc(func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-ch
		pending.Range(func(name, _ any) bool {
			os.Remove(name.(string))
			return true
		})
		// Die of the signal, so that a shell running lvc in a loop stops
		// too; exit 128+n if it does not kill.
		signal.Reset(sig)
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			p.Signal(sig)
		}
		if s, ok := sig.(syscall.Signal); ok {
			os.Exit(128 + int(s))
		}
		os.Exit(1)
	}()
})

// outputTarget resolves the file an output name stands for: "-" as is,
// symbolic links followed to their target, existing or not. It refuses a
// directory, before any work is done.
func outputTarget(path string) (string, error) {
	if path == "-" {
		return path, nil
	}
	for range 40 {
		st, err := os.Lstat(path)
		if err != nil || st.Mode()&os.ModeSymlink == 0 {
			if err == nil && st.IsDir() {
				return "", fmt.Errorf("%s is a directory", path)
			}
			return path, nil
		}
		link, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

func writeAtomically(path string, stdout io.Writer, write func(io.Writer) error) error {
	path, err := outputTarget(path)
	if err != nil {
		return err
	}
	if path == "-" {
		return write(stdout)
	}
	mode, existing := os.FileMode(0o666), false // a new file's mode, less the umask OpenFile applies
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			if err := write(f); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}
		mode, existing = st.Mode().Perm(), true
	}
	catchSignals()
	f, err := createTemp(path, mode)
	if err != nil {
		return err
	}
	defer func() {
		os.Remove(f.Name())
		pending.Delete(f.Name())
	}()
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if existing { // keep the replaced file's mode, which the umask may have narrowed
		if err := f.Chmod(mode); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// createTemp is os.CreateTemp with a chosen mode (CreateTemp's 0600 would
// outlive the rename), registered with the signal handler before it exists.
func createTemp(path string, mode os.FileMode) (*os.File, error) {
	dir, base := filepath.Split(path)
	for range 100 {
		name := filepath.Join(dir, fmt.Sprintf(".%s.tmp%d", base, rand.Uint32()))
		pending.Store(name, nil)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
		if err == nil {
			return f, nil
		}
		pending.Delete(name)
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s: could not create a temporary file beside it", path)
}
