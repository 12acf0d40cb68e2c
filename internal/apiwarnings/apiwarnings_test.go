package apiwarnings

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/client-go/rest"
)

func TestRecorder(t *testing.T) {
	cases := []struct {
		name   string
		sent   []string
		printT bool
	}{
		{"nothing", nil, false},
		{"in order, passed on", []string{"first", "second"}, true},
		{"kept without Next", []string{"only"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var printed bytes.Buffer
			r := &Recorder{}
			if tc.printT {
				r.Next = rest.NewWarningWriter(&printed, rest.WarningWriterOptions{})
			}
			for _, w := range tc.sent {
				r.HandleWarningHeaderWithContext(context.Background(), 299, "-", w)
			}
			assert.Equal(t, tc.sent, r.Take())
			assert.Empty(t, r.Take(), "Take forgets what it returned")
			if tc.printT {
				assert.Equal(t, "Warning: first\nWarning: second\n", printed.String())
			}
		})
	}
}
