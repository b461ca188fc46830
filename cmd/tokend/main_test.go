package main

import (
	"os"
	"testing"

	"github.com/tokend/tokend/cmd/tokend/tokendtest"
)

// TestMain deletes the tokend binary the end-to-end tests built (tokendtest.Binary) once they ran.
func TestMain(m *testing.M) {
	code := m.Run()
	tokendtest.RemoveBinary()
	os.Exit(code)
}
