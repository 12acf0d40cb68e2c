package harness

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

// fakeM is a testing.M that records that the tests ran.
type fakeM struct {
	code int
	ran  *[]string
}

func (m fakeM) Run() int {
	*m.ran = append(*m.ran, "tests")
	return m.code
}

// step is an Option that records when it is applied and undone, and fails
// when err is set.
func step(name string, err error, log *[]string) Option {
	return func(s *suite) error {
		*log = append(*log, "start "+name)
		if err != nil {
			return err
		}
		s.onStop(name, func() error {
			*log = append(*log, "stop "+name)
			return errors.New("stop errors are printed, not returned")
		})
		return nil
	}
}

func TestMainAppliesOptionsInOrderAndUndoesThemInReverse(t *testing.T) {
	failed := errors.New("no control plane")
	cases := []struct {
		name     string
		testCode int
		fail     string // the step that fails
		want     []string
		wantCode int
	}{
		{"tests pass", 0, "", []string{"start a", "start b", "tests", "stop b", "stop a"}, 0},
		{"tests fail", 1, "", []string{"start a", "start b", "tests", "stop b", "stop a"}, 1},
		{"the second option fails", 0, "b", []string{"start a", "start b", "stop a"}, 1},
		{"the first option fails", 0, "a", []string{"start a"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var log []string
			errFor := func(name string) error {
				if name == tc.fail {
					return failed
				}
				return nil
			}
			code := run(fakeM{code: tc.testCode, ran: &log}, step("a", errFor("a"), &log), step("b", errFor("b"), &log))
			assert.Equal(t, tc.wantCode, code)
			assert.Equal(t, tc.want, log)
		})
	}
}

func TestWithServerNeedsAControlPlane(t *testing.T) {
	var srv *InProcess
	var log []string
	code := run(fakeM{ran: &log}, WithServer(&srv))
	assert.Equal(t, 1, code)
	assert.Empty(t, log, "no test runs")
	assert.Nil(t, srv)
}
