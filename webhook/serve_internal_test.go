package webhook

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
)

// readAll reads what io.ReadAll reads, whatever the size hint says.
func TestReadAll(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 3000)
	boom := errors.New("boom")
	for _, n := range []int{0, 1, 511, 512, 4096, len(data)} {
		for _, hint := range []int64{-1, 0, 1, int64(n) - 1, int64(n), int64(n) + 1, 2 * int64(n), maxRequestSize} {
			for name, r := range map[string]func() io.Reader{
				"whole":    func() io.Reader { return bytes.NewReader(data[:n]) },
				"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:n])) },
				"error":    func() io.Reader { return io.MultiReader(bytes.NewReader(data[:n]), iotest.ErrReader(boom)) },
			} {
				want, wantErr := io.ReadAll(r())
				got, err := readAll(r(), hint)
				assert.Equal(t, wantErr, err, "%s, %d bytes, hint %d", name, n, hint)
				assert.Equal(t, want, got, "%s, %d bytes, hint %d", name, n, hint)
			}
		}
	}
}
