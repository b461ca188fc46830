package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults filled by Parse when the file leaves the key out.
const (
	DefaultListen    = "127.0.0.1:9464"
	DefaultPerToken  = "auto"
	DefaultLogLevel  = "info"
	DefaultLogFormat = "auto"
	DefaultRedisURL  = "redis://127.0.0.1:6379/0"
	DefaultKeyPrefix = "tokend"
)

// maxDecodeErrors caps the problems one Parse reports, so a hostile or badly broken file cannot produce an
// unbounded error.
const maxDecodeErrors = 100

// decodeBudget caps how many YAML nodes one Parse visits beyond those written in the file. Aliases and merge
// keys can make a small file expand to many nodes; a real config's anchors add a few hundred. The nodes
// written in the file are not capped: a config of 100,000 tokens has about 1.5 million.
const decodeBudget = 200_000

// Load reads and parses the config file at path (see Parse). The returned config has Path set.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes a config strictly: every unknown key, duplicate key and badly typed or unparsable value is
// reported at once, one per line of the joined error, each as "key.path: problem (line N)". On success the
// defaults are filled in (listen, log, redis url and key_prefix, instance_id from the host name), Index is
// set on every provider and token, and Path is set to path. Parse does not validate the values; call
// Validate. Messages do not name the file; the caller knows it. A file that is empty, holds only comments,
// holds more than one YAML document, or whose top level is not a mapping is an error.
func Parse(data []byte, path string) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config is empty")
		}
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("parsing YAML: %w", err)
		}
		return nil, fmt.Errorf("config holds more than one YAML document (line %d)", extra.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, errors.New("config is empty")
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == nullTag {
		return nil, errors.New("config is empty")
	}
	if root.Kind == yaml.AliasNode && root.Alias != nil {
		root = root.Alias
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config must be a mapping of keys at the top level, not %s (line %d)", kindName(root), root.Line)
	}

	c := &Config{}
	d := &decoder{budget: decodeBudget + written(root), merging: map[*yaml.Node]bool{}}
	d.decode(root, reflect.ValueOf(c).Elem(), "")
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}

	c.Path = path
	for i := range c.Providers {
		c.Providers[i].Index = i
	}
	for i := range c.Tokens {
		c.Tokens[i].Index = i
	}
	if err := c.fillDefaults(); err != nil {
		return nil, err
	}
	return c, nil
}

// fillDefaults sets the built-in values of the keys the file left out.
func (c *Config) fillDefaults() error {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	if c.Metrics.PerToken == "" {
		c.Metrics.PerToken = DefaultPerToken
	}
	if c.Redis.URL == "" && c.Redis.Sentinel == nil && c.Redis.Cluster == nil {
		c.Redis.URL = DefaultRedisURL
	}
	if c.Redis.KeyPrefix == "" {
		c.Redis.KeyPrefix = DefaultKeyPrefix
	}
	if c.InstanceID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return fmt.Errorf("instance_id: not set, and the host name is unknown: %v", err)
		}
		c.InstanceID = h
	}
	return nil
}

const (
	nullTag  = "!!null"
	mergeTag = "!!merge"
)

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	providerType    = reflect.TypeFor[Provider]()
	tokenType       = reflect.TypeFor[Token]()
)

// decoder walks a yaml.Node tree against the Go types of the schema, collecting every problem instead of
// stopping at the first as yaml.v3 does (a custom unmarshaler's error aborts its decoding, without a line).
type decoder struct {
	errs    []error
	budget  int
	merging map[*yaml.Node]bool // mappings being merged now, to stop "<<" cycles
}

func (d *decoder) fail(path string, n *yaml.Node, format string, args ...any) {
	if len(d.errs) == maxDecodeErrors {
		d.errs = append(d.errs, fmt.Errorf("too many problems; stopped after %d", maxDecodeErrors))
	}
	if len(d.errs) > maxDecodeErrors {
		return
	}
	if path == "" {
		path = "(top level)"
	}
	d.errs = append(d.errs, fmt.Errorf("%s: %s (line %d)", path, fmt.Sprintf(format, args...), n.Line))
}

// written counts the nodes of the tree under n as the file writes them: an alias is one node, whatever it
// refers to.
func written(n *yaml.Node) int {
	count, stack := 0, []*yaml.Node{n}
	for len(stack) > 0 {
		n, stack = stack[len(stack)-1], stack[:len(stack)-1]
		count++
		stack = append(stack, n.Content...)
	}
	return count
}

// spend counts one visited node; it reports false once the budget is gone.
func (d *decoder) spend(path string, n *yaml.Node) bool {
	d.budget--
	if d.budget == 0 {
		d.fail(path, n, "config too complex: aliases expand to more than %d values beyond the file's own", decodeBudget)
	}
	return d.budget > 0
}

// resolve follows aliases. Anchors are always defined before their aliases, so the chain is finite, but
// it is bounded anyway.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == nullTag
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "an empty document"
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode sets v from n. v is settable.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(path, n) {
		return
	}
	n = resolve(n)
	if n.Kind == yaml.AliasNode { // an alias chain too long or broken
		d.fail(path, n, "unresolvable alias")
		return
	}

	if v.Kind() == reflect.Pointer {
		if isNull(n) {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		if d.decodeInto(n, p.Elem(), path) {
			v.Set(p)
		}
		return
	}
	d.decodeInto(n, v, path)
}

// decodeInto decodes a non-pointer value; it reports whether it succeeded, so a pointer is only set to a
// value that decoded.
func (d *decoder) decodeInto(n *yaml.Node, v reflect.Value, path string) bool {
	before := len(d.errs)
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.fail(path, n, "must be a single value, not %s", kindName(n))
			return false
		}
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.fail(path, n, "%s", err.Error())
			return false
		}
		if tooLong(n.Value) {
			d.fail(path, n, "duration %q is too long", n.Value)
			return false
		}
		return true
	}

	switch v.Kind() {
	case reflect.Struct:
		if isNull(n) {
			return true // "log:" with nothing under it leaves the defaults
		}
		if n.Kind != yaml.MappingNode {
			d.fail(path, n, "must be a mapping, not %s", kindName(n))
			return false
		}
		d.decodeMapping(n, v, path, map[string]int{})
	case reflect.Slice:
		if isNull(n) {
			v.SetZero()
			return true
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(path, n, "must be a list, not %s", kindName(n))
			return false
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		named := v.Type().Elem() == providerType || v.Type().Elem() == tokenType
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if named {
				if name := mappingName(e); name != "" {
					p += " (" + name + ")"
				}
			}
			d.decode(e, s.Index(i), p)
		}
		v.Set(s)
	case reflect.String:
		if isNull(n) {
			v.SetString("")
			return true
		}
		if n.Kind != yaml.ScalarNode {
			d.fail(path, n, "must be a string, not %s", kindName(n))
			return false
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			d.fail(path, n, "must be true or false, not %s", kindName(n))
			return false
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		var i int64
		// yaml.v3 would truncate 1.5 into 1; only an integer is an integer.
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.fail(path, n, "must be an integer, not %s", kindName(n))
			return false
		}
		v.SetInt(i)
	case reflect.Float64, reflect.Float32:
		var f float64
		if n.Kind != yaml.ScalarNode || n.Decode(&f) != nil {
			d.fail(path, n, "must be a number, not %s", kindName(n))
			return false
		}
		v.SetFloat(f)
	default:
		// Not reachable with the schema's types; a new field of another kind needs a case above.
		d.fail(path, n, "cannot decode into %s", v.Type())
		return false
	}
	return len(d.errs) == before
}

// mappingName returns the scalar value of the "name" key of a mapping node, for error paths.
func mappingName(n *yaml.Node) string {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind == yaml.ScalarNode && k.Value == "name" && val.Kind == yaml.ScalarNode && !isNull(val) {
			return val.Value
		}
	}
	return ""
}

// decodeMapping decodes the keys of mapping n into struct v. Merge keys ("<<: *anchor") are applied first,
// so the mapping's own keys win, as in YAML; seen holds the lines of the keys already set explicitly, to
// report duplicates.
func (d *decoder) decodeMapping(n *yaml.Node, v reflect.Value, path string, seen map[string]int) {
	fields := fieldsOf(v.Type())
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := resolve(n.Content[i]); k.Kind == yaml.ScalarNode && k.ShortTag() == mergeTag {
			merges = append(merges, n.Content[i+1])
		}
	}
	for _, m := range merges {
		d.merge(m, v, path)
	}

	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.fail(path, k, "keys must be plain names, not %s", kindName(k))
			continue
		}
		if k.ShortTag() == mergeTag {
			continue
		}
		kp := joinKey(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.fail(kp, k, "duplicate key (first set on line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(kp, k, "unknown key")
			continue
		}
		d.decode(val, v.FieldByIndex(idx), kp)
	}
}

// merge applies the value of a "<<" key: a mapping, or a list of mappings where earlier ones win.
func (d *decoder) merge(m *yaml.Node, v reflect.Value, path string) {
	m = resolve(m)
	switch m.Kind {
	case yaml.MappingNode:
		if d.merging[m] {
			d.fail(path, m, "merge key includes the mapping itself")
			return
		}
		d.merging[m] = true
		d.decodeMapping(m, v, path, map[string]int{})
		delete(d.merging, m)
	case yaml.SequenceNode:
		for i := len(m.Content) - 1; i >= 0; i-- {
			e := resolve(m.Content[i])
			if e.Kind != yaml.MappingNode {
				d.fail(path, e, "merge key (<<) takes a mapping or a list of mappings, not %s", kindName(e))
				continue
			}
			if !d.spend(path, e) {
				return
			}
			d.merge(e, v, path)
		}
	default:
		d.fail(path, m, "merge key (<<) takes a mapping or a list of mappings, not %s", kindName(m))
	}
}

var fieldCache sync.Map // reflect.Type -> map[string][]int

// fieldsOf maps the yaml keys of struct type t to field index paths, descending into ",inline" fields.
func fieldsOf(t reflect.Type) map[string][]int {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string][]int)
	}
	out := map[string][]int{}
	collectFields(t, nil, out)
	fieldCache.Store(t, out)
	return out
}

func collectFields(t reflect.Type, prefix []int, out map[string][]int) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		idx := append(append([]int(nil), prefix...), i)
		if strings.Contains(","+opts+",", ",inline,") {
			collectFields(f.Type, idx, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = idx
	}
}

// tooLong reports whether s is a duration with a day count ("300000d") that ParseDuration would multiply
// past the range of time.Duration, wrapping it to a wrong value instead of failing.
func tooLong(s string) bool {
	s = strings.TrimSpace(s)
	i := strings.IndexByte(s, 'd')
	if i <= 0 {
		return false
	}
	days, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return false
	}
	const maxDays = uint64(math.MaxInt64 / int64(24*time.Hour))
	if days > maxDays {
		return true
	}
	var rest time.Duration
	if r := s[i+1:]; r != "" {
		if rest, err = time.ParseDuration(r); err != nil {
			return false
		}
	}
	return rest > 0 && rest > time.Duration(math.MaxInt64)-time.Duration(days)*24*time.Hour
}
