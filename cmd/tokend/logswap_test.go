package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestSwitchHandlerChangesFormatUnderDerivedLoggers(t *testing.T) {
	var jsonOut, textOut bytes.Buffer
	sw := newSwitchHandler(slog.NewJSONHandler(&jsonOut, nil))
	root := slog.New(sw)
	derived := root.With("provider", "vcd").WithGroup("g").With("k", "v")

	derived.Info("before")
	sw.Set(slog.NewTextHandler(&textOut, nil))
	derived.Info("after")
	root.Info("root after")

	if got := jsonOut.String(); !strings.Contains(got, `"provider":"vcd","g":{"k":"v"}`) || !strings.Contains(got, `"msg":"before"`) || strings.Contains(got, "after") {
		t.Errorf("JSON output = %q, want only the record before the switch, with its attributes and group", got)
	}
	text := textOut.String()
	if !strings.Contains(text, "msg=after provider=vcd g.k=v") || !strings.Contains(text, `msg="root after"`) || strings.Contains(text, "before") {
		t.Errorf("text output = %q, want the records after the switch, with the derived logger's attributes and group", text)
	}
}
