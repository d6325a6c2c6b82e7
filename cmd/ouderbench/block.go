package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A report file holds generated blocks, each between a begin and an end
// marker of its own (the suite's, the search benchmarks'); the text around
// them is written by hand and kept.

// readBlockFile returns the file at path ("" when it does not exist),
// checked for usable markers: none, or one begin followed by one end.
func readBlockFile(path, begin, end string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read report: %w", err)
	}
	s := string(b)
	nb, ne := strings.Count(s, begin), strings.Count(s, end)
	if nb != ne || nb > 1 || (nb == 1 && strings.Index(s, begin) > strings.Index(s, end)) {
		return "", fmt.Errorf("report %s: want one %s followed by one %s (or neither); fix the markers by hand", path, begin, end)
	}
	return s, nil
}

// mergeBlock returns old with the block between begin and end replaced by
// gen: between the markers when old has them, appended to old when it has
// none, after head when old is empty.
func mergeBlock(old, begin, end, gen, head string) string {
	block := begin + "\n" + strings.TrimRight(gen, "\n") + "\n" + end
	if i := strings.Index(old, begin); i >= 0 {
		j := strings.Index(old, end)
		return old[:i] + block + old[j+len(end):]
	}
	if strings.TrimSpace(old) == "" {
		return head + block + "\n"
	}
	return strings.TrimRight(old, "\n") + "\n\n" + block + "\n"
}

// writeBlockFile merges gen into the file at path between begin and end,
// reading it again so that notes written meanwhile are kept, and replaces
// the file atomically, creating its directory when needed.
func writeBlockFile(path, begin, end, gen string) error {
	old, err := readBlockFile(path, begin, end)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(mergeBlock(old, begin, end, gen, newReportHead)), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
