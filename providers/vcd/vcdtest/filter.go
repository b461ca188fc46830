package vcdtest

import (
	"errors"
	"fmt"
	"strings"
)

// parseFilter compiles the FIQL subset VCD lists take: field==value terms, ';' for AND, ',' for OR,
// parentheses to group. Fields: id, name, type, owner.name.
func parseFilter(f string) (func(*token) bool, error) {
	p := &fiql{s: f}
	m, err := p.and()
	if err != nil {
		return nil, err
	}
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unexpected %q at %d", p.s[p.i], p.i)
	}
	return m, nil
}

type fiql struct {
	s string
	i int
}

func (p *fiql) and() (func(*token) bool, error) {
	var terms []func(*token) bool
	for {
		t, err := p.or()
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
		if p.i < len(p.s) && p.s[p.i] == ';' {
			p.i++
			continue
		}
		return func(tk *token) bool {
			for _, t := range terms {
				if !t(tk) {
					return false
				}
			}
			return true
		}, nil
	}
}

func (p *fiql) or() (func(*token) bool, error) {
	var terms []func(*token) bool
	for {
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		return func(tk *token) bool {
			for _, t := range terms {
				if t(tk) {
					return true
				}
			}
			return false
		}, nil
	}
}

func (p *fiql) term() (func(*token) bool, error) {
	if p.i < len(p.s) && p.s[p.i] == '(' {
		p.i++
		m, err := p.and()
		if err != nil {
			return nil, err
		}
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, errors.New("missing )")
		}
		p.i++
		return m, nil
	}
	end := p.i
	for end < len(p.s) && !strings.ContainsRune(";,()", rune(p.s[end])) {
		end++
	}
	field, value, ok := strings.Cut(p.s[p.i:end], "==")
	if !ok || value == "" {
		return nil, fmt.Errorf("term %q is not field==value", p.s[p.i:end])
	}
	p.i = end
	var get func(*token) string
	switch field {
	case "id":
		get = func(t *token) string { return t.ID }
	case "name":
		get = func(t *token) string { return t.Name }
	case "type":
		get = func(t *token) string { return t.Type }
	case "owner.name":
		get = func(t *token) string { return t.Owner }
	default:
		return nil, fmt.Errorf("filtering on %q is not supported", field)
	}
	return func(t *token) bool { return get(t) == value }, nil
}
