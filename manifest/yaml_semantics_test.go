package manifest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// yamlCase is a YAML document and what kubectl's conversion,
// sigs.k8s.io/yaml.YAMLToJSON (go.yaml.in/yaml/v2, YAML 1.1), makes of it.
type yamlCase struct {
	name string
	yaml string
	// json is YAMLToJSON's output; err its error ("" for none).
	json, err string
}

// longString is 1,000 characters.
var longString = strings.Repeat("abcdefghij", 100)

// yamlCases are the tricky YAML whose meaning manifest.Parse must keep, as
// kubectl reads it: YAML 1.1
// booleans and nulls, numbers that are not decimal, anchors, merge keys,
// flow style, duplicate keys, quoting, long strings and keys, block and
// multi-line scalars, comments, tabs, line ends, indentation errors.
var yamlCases = []yamlCase{
	{name: "YAML 1.1 booleans", yaml: "a: y\nb: Y\nc: yes\nd: Yes\ne: YES\nf: on\ng: On\nh: ON\ni: true\nj: True\nk: TRUE\n", json: "{\"a\":true,\"b\":true,\"c\":true,\"d\":true,\"e\":true,\"f\":true,\"g\":true,\"h\":true,\"i\":true,\"j\":true,\"k\":true}", err: ""},
	{name: "YAML 1.1 false", yaml: "a: n\nb: N\nc: no\nd: No\ne: NO\nf: off\ng: Off\nh: OFF\ni: false\nj: False\nk: FALSE\n", json: "{\"a\":false,\"b\":false,\"c\":false,\"d\":false,\"e\":false,\"f\":false,\"g\":false,\"h\":false,\"i\":false,\"j\":false,\"k\":false}", err: ""},
	{name: "words that are not booleans", yaml: "a: yES\nb: oN\nc: nO\nd: tRUE\ne: yeah\nf: onward\ng: o\nh: t\ni: f\nj: Ok\n", json: "{\"a\":\"yES\",\"b\":\"oN\",\"c\":\"nO\",\"d\":\"tRUE\",\"e\":\"yeah\",\"f\":\"onward\",\"g\":\"o\",\"h\":\"t\",\"i\":\"f\",\"j\":\"Ok\"}", err: ""},
	{name: "nulls", yaml: "a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: nULL\ng: ~x\n", json: "{\"a\":null,\"b\":null,\"c\":null,\"d\":null,\"e\":null,\"f\":\"nULL\",\"g\":\"~x\"}", err: ""},
	{name: "booleans as keys", yaml: "on: 1\n", json: "{\"true\":1}", err: ""},
	{name: "null as key", yaml: "~: 1\n", json: "", err: "unsupported map key of type: %!s(<nil>), key: <nil>, value: 1"},
	{name: "a number as key", yaml: "1: a\n", json: "{\"1\":\"a\"}", err: ""},
	{name: "a quoted key that looks like a boolean", yaml: "'on': 1\n\"y\": 2\n", json: "{\"on\":1,\"y\":2}", err: ""},
	{name: "octal-looking numbers", yaml: "a: 0755\n", json: "{\"a\":493}", err: ""},
	{name: "0o octal", yaml: "a: 0o755\n", json: "{\"a\":493}", err: ""},
	{name: "hex", yaml: "a: 0x1F\n", json: "{\"a\":31}", err: ""},
	{name: "binary", yaml: "a: 0b101\n", json: "{\"a\":5}", err: ""},
	{name: "underscores", yaml: "a: 1_000\n", json: "{\"a\":1000}", err: ""},
	{name: "plain integers", yaml: "a: 0\nb: 7\nc: 3306\nd: 123456789012345678\n", json: "{\"a\":0,\"b\":7,\"c\":3306,\"d\":123456789012345678}", err: ""},
	{name: "an int64 past 18 digits", yaml: "a: 9223372036854775807\n", json: "{\"a\":9223372036854775807}", err: ""},
	{name: "past int64", yaml: "a: 9223372036854775808\n", json: "{\"a\":9223372036854775808}", err: ""},
	{name: "past uint64", yaml: "a: 99999999999999999999999\n", json: "{\"a\":1e+23}", err: ""},
	{name: "negative", yaml: "a: -1\n", json: "{\"a\":-1}", err: ""},
	{name: "floats", yaml: "a: 1e3\nb: 1.5\nc: .5\nd: 1.\ne: 6.02e+23\n", json: "{\"a\":1000,\"b\":1.5,\"c\":0.5,\"d\":1,\"e\":6.02e+23}", err: ""},
	{name: "special floats", yaml: "a: .inf\nb: -.Inf\nc: .NaN\n", json: "", err: "json: unsupported value: +Inf"},
	{name: "a timestamp", yaml: "a: 2024-01-02\nb: 2024-01-02T03:04:05Z\n", json: "{\"a\":\"2024-01-02\",\"b\":\"2024-01-02T03:04:05Z\"}", err: ""},
	{name: "quantities and versions are strings", yaml: "a: 1Gi\nb: 500m\nc: 10Gi\nd: 1.5Gi\ne: 8.4-alpine\nf: 1.2.3\n", json: "{\"a\":\"1Gi\",\"b\":\"500m\",\"c\":\"10Gi\",\"d\":\"1.5Gi\",\"e\":\"8.4-alpine\",\"f\":\"1.2.3\"}", err: ""},
	{name: "quantities", yaml: "a: 1Gi\nb: 500m\nc: 10Gi\nd: 1.5Gi\ne: 100Mi\nf: 2k\n", json: "{\"a\":\"1Gi\",\"b\":\"500m\",\"c\":\"10Gi\",\"d\":\"1.5Gi\",\"e\":\"100Mi\",\"f\":\"2k\"}", err: ""},
	{name: "quoted numbers and booleans are strings", yaml: "a: \"0755\"\nb: '1e3'\nc: \"yes\"\nd: 'null'\ne: \"\"\nf: ''\n", json: "{\"a\":\"0755\",\"b\":\"1e3\",\"c\":\"yes\",\"d\":\"null\",\"e\":\"\",\"f\":\"\"}", err: ""},
	{name: "single quotes", yaml: "a: 'it''s'\nb: '#not a comment'\nc: 'a: b'\n", json: "{\"a\":\"it's\",\"b\":\"#not a comment\",\"c\":\"a: b\"}", err: ""},
	{name: "double quotes with escapes", yaml: "a: \"tab\\tnew\\nline\"\nb: \"\\u00e9\"\n", json: "{\"a\":\"tab\\tnew\\nline\",\"b\":\"é\"}", err: ""},
	{name: "HTML characters", yaml: "a: x<b>&amp;</b>\nb: \"<\"\n", json: "{\"a\":\"x\\u003cb\\u003e\\u0026amp;\\u003c/b\\u003e\",\"b\":\"\\u003c\"}", err: ""},
	{name: "a plain scalar that starts with <", yaml: "a: <b>\n", json: "{\"a\":\"\\u003cb\\u003e\"}", err: ""},
	{name: "backslash and quote in a plain scalar", yaml: "a: C:\\dir\nb: say \"hi\"\n", json: "{\"a\":\"C:\\\\dir\",\"b\":\"say \\\"hi\\\"\"}", err: ""},
	{name: "anchors and aliases", yaml: "a: &x {b: 1}\nc: *x\n", json: "{\"a\":{\"b\":1},\"c\":{\"b\":1}}", err: ""},
	{name: "an anchor on a block mapping", yaml: "a: &x\n  b: 1\nc: *x\n", json: "{\"a\":{\"b\":1},\"c\":{\"b\":1}}", err: ""},
	{name: "merge keys", yaml: "base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", json: "{\"base\":{\"true\":2,\"x\":1},\"d\":{\"true\":3,\"x\":1}}", err: ""},
	{name: "flow style", yaml: "a: {b: c, d: [e, f, {g: h}], i: []}\nj: [1, 'k', \"l\", {}]\n", json: "{\"a\":{\"b\":\"c\",\"d\":[\"e\",\"f\",{\"g\":\"h\"}],\"i\":[]},\"j\":[1,\"k\",\"l\",{}]}", err: ""},
	{name: "flow style with spaces", yaml: "a: { b: c ,  d: e }\nf: [ g , h ]\n", json: "{\"a\":{\"b\":\"c\",\"d\":\"e\"},\"f\":[\"g\",\"h\"]}", err: ""},
	{name: "a flow mapping over lines", yaml: "a: {b: c,\n  d: e}\n", json: "{\"a\":{\"b\":\"c\",\"d\":\"e\"}}", err: ""},
	{name: "a trailing comma in flow", yaml: "a: [b, c,]\n", json: "{\"a\":[\"b\",\"c\"]}", err: ""},
	{name: "a colon without a space in flow", yaml: "a: {b:c}\n", json: "{\"a\":{\"b:c\":null}}", err: ""},
	{name: "duplicate keys: the last wins", yaml: "a: 1\nb: 2\na: 3\n", json: "{\"a\":3,\"b\":2}", err: ""},
	{name: "duplicate keys in flow", yaml: "a: {b: 1, b: 2}\n", json: "{\"a\":{\"b\":2}}", err: ""},
	{name: "keys sorted as encoding/json sorts them", yaml: "z: 1\nB: 2\na: 3\n_: 4\n/x: 5\nA b: 6\n", json: "{\"/x\":5,\"A b\":6,\"B\":2,\"_\":4,\"a\":3,\"z\":1}", err: ""},
	{name: "a very long string", yaml: "a: " + longString + "\n", json: "{\"a\":\"" + longString + "\"}", err: ""},
	{name: "a very long key", yaml: strings.Repeat(longString, 3) + ": 1\n", json: "", err: "yaml: mapping values are not allowed in this context"},
	{name: "a 600-character key", yaml: strings.Repeat("k", 600) + ": 1\n", json: "{\"" + strings.Repeat("k", 600) + "\":1}"},
	{name: "unquoted and quoted strings", yaml: "a: hello world\nb: 'hello world'\nc: \"hello world\"\nd: mysql:8.4\ne: http://x/y?z=1#f\n", json: "{\"a\":\"hello world\",\"b\":\"hello world\",\"c\":\"hello world\",\"d\":\"mysql:8.4\",\"e\":\"http://x/y?z=1#f\"}", err: ""},
	{name: "a string that starts with an indicator", yaml: "a: '*'\nb: \"@x\"\n", json: "{\"a\":\"*\",\"b\":\"@x\"}", err: ""},
	{name: "an alias-looking plain scalar", yaml: "a: *x\n", json: "", err: "yaml: unknown anchor 'x' referenced"},
	{name: "literal block scalar", yaml: "a: |\n  line 1\n  line 2\nb: c\n", json: "{\"a\":\"line 1\\nline 2\\n\",\"b\":\"c\"}", err: ""},
	{name: "folded block scalar", yaml: "a: >-\n  line 1\n  line 2\n", json: "{\"a\":\"line 1 line 2\"}", err: ""},
	{name: "a multi-line plain scalar", yaml: "a: line 1\n  line 2\nb: c\n", json: "{\"a\":\"line 1 line 2\",\"b\":\"c\"}", err: ""},
	{name: "a multi-line quoted scalar", yaml: "a: \"line 1\n  line 2\"\n", json: "{\"a\":\"line 1 line 2\"}", err: ""},
	{name: "comments", yaml: "# top\na: b # after\n  # indented\nc: # empty value\nd: 'e' # after quotes\nf: g#not a comment\nh: [i] # after flow\n", json: "{\"a\":\"b\",\"c\":null,\"d\":\"e\",\"f\":\"g#not a comment\",\"h\":[\"i\"]}", err: ""},
	{name: "tabs in a value", yaml: "a: b\tc\n", json: "{\"a\":\"b\\tc\"}", err: ""},
	{name: "a tab for indentation", yaml: "a:\n\tb: c\n", json: "", err: "yaml: line 2: found character that cannot start any token"},
	{name: "CRLF", yaml: "a: b\r\nc: d\r\n", json: "{\"a\":\"b\",\"c\":\"d\"}", err: ""},
	{name: "non-ASCII", yaml: "a: café\n", json: "{\"a\":\"café\"}", err: ""},
	{name: "block sequences", yaml: "a:\n- b\n- c: d\n  e: f\n-   g: h\n- [i]\nj:\n  - k\n  -  l\n", json: "{\"a\":[\"b\",{\"c\":\"d\",\"e\":\"f\"},{\"g\":\"h\"},[\"i\"]],\"j\":[\"k\",\"l\"]}", err: ""},
	{name: "a sequence in a sequence item's mapping at the key's column", yaml: "- a:\n  - x\n  b: y\n", json: "[{\"a\":[\"x\"],\"b\":true}]", err: ""},
	{name: "sequence item mapping with a sequence at its key's column", yaml: "s:\n- a:\n  - x\n  b: y\n- c\n", json: "{\"s\":[{\"a\":[\"x\"],\"b\":true},\"c\"]}", err: ""},
	{name: "a key with a null value then its siblings", yaml: "s:\n- a:\n  b: c\n- d:\n- e\n", json: "{\"s\":[{\"a\":null,\"b\":\"c\"},{\"d\":null},\"e\"]}", err: ""},
	{name: "nested mappings", yaml: "a:\n  b:\n    c: d\n  e: f\ng: h\n", json: "{\"a\":{\"b\":{\"c\":\"d\"},\"e\":\"f\"},\"g\":\"h\"}", err: ""},
	{name: "a deeper line after a scalar", yaml: "a: b\n    c: d\n", json: "", err: "yaml: line 2: mapping values are not allowed in this context"},
	{name: "bad indentation", yaml: "a:\n    b: 1\n  c: 2\n", json: "", err: "yaml: line 2: did not find expected key"},
	{name: "a mapping value in a plain scalar", yaml: "a: b: c\n", json: "", err: "yaml: mapping values are not allowed in this context"},
	{name: "tags", yaml: "a: !!str 1\nb: !!int \"2\"\n", json: "{\"a\":\"1\",\"b\":2}", err: ""},
	{name: "a top-level sequence", yaml: "- a\n- b\n", json: "[\"a\",\"b\"]", err: ""},
	{name: "a top-level scalar", yaml: "a\n", json: "\"a\"", err: ""},
	{name: "a root mapping indented", yaml: "  a: b\n  c: d\n", json: "{\"a\":\"b\",\"c\":\"d\"}", err: ""},
	{name: "an empty flow mapping and sequence", yaml: "a: {}\nb: []\n", json: "{\"a\":{},\"b\":[]}", err: ""},
	{name: "spaces before the colon", yaml: "a : b\n", json: "{\"a\":\"b\"}", err: ""},
	{name: "a key with spaces and dots", yaml: "app.kubernetes.io/name: x\nmy key: y\n", json: "{\"app.kubernetes.io/name\":\"x\",\"my key\":true}", err: ""},
	{name: "a plain scalar with flow indicators in block context", yaml: "a: b,c]d{e}\n", json: "{\"a\":\"b,c]d{e}\"}", err: ""},
	{name: "a question mark key", yaml: "? a\n: b\n", json: "{\"a\":\"b\"}", err: ""},
	{name: "a document end marker", yaml: "a: b\n...\n", json: "{\"a\":\"b\"}", err: ""},
	{name: "a directive", yaml: "%YAML 1.1\n---\na: b\n", json: "{\"a\":\"b\"}", err: ""},
	{name: "apiVersion and kind", yaml: "apiVersion: apps/v1\nkind: 'StatefulSet'\nmetadata: {name: a}\n", json: "{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"metadata\":{\"name\":\"a\"}}"},
	{name: "a kind that is no string", yaml: "apiVersion: v1\nkind: 1\n", json: "{\"apiVersion\":\"v1\",\"kind\":1}"},
	{name: "a kind that is a mapping", yaml: "apiVersion: v1\nkind:\n  a: b\n", json: "{\"apiVersion\":\"v1\",\"kind\":{\"a\":\"b\"}}"},
	{name: "a kind in flow style", yaml: "apiVersion: v1\nkind: {a: b}\n", json: "{\"apiVersion\":\"v1\",\"kind\":{\"a\":\"b\"}}"},
	{name: "a null kind", yaml: "apiVersion: v1\nkind:\n", json: "{\"apiVersion\":\"v1\",\"kind\":null}"},
	{name: "an empty kind", yaml: "apiVersion: v1\nkind: ''\n", json: "{\"apiVersion\":\"v1\",\"kind\":\"\"}"},
	{name: "kind in another case", yaml: "apiVersion: v1\nKind: Secret\n", json: "{\"Kind\":\"Secret\",\"apiVersion\":\"v1\"}"},
	{name: "apiVersion in another case", yaml: "APIVERSION: v1\nkind: Secret\n", json: "{\"APIVERSION\":\"v1\",\"kind\":\"Secret\"}"},
	{name: "items", yaml: "apiVersion: v1\nkind: List\nitems: []\n", json: "{\"apiVersion\":\"v1\",\"items\":[],\"kind\":\"List\"}"},
	{name: "kind deeper down", yaml: "apiVersion: v1\nkind: Secret\nmetadata:\n  kind: x\n  items: y\n", json: "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"items\":true,\"kind\":\"x\"}}"},
}

// TestKubectlYAMLSemantics pins what kubectl's YAML conversion, which Parse
// uses, makes of tricky YAML (YAML 1.1 booleans, octal-looking numbers,
// anchors, merge keys, flow style, duplicate keys, long strings, ...), so
// that a change of sigs.k8s.io/yaml or of how Parse calls it shows here.
func TestKubectlYAMLSemantics(t *testing.T) {
	for _, tc := range yamlCases {
		t.Run(tc.name, func(t *testing.T) {
			js, err := yaml.YAMLToJSON([]byte(tc.yaml))
			if tc.err != "" {
				assert.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.json, string(js))
		})
	}
}
