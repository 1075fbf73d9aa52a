//go:build !unix

package testscripts

import "github.com/rogpeppe/go-internal/testscript"

func cmdMkfifo(ts *testscript.TestScript, neg bool, args []string) {
	ts.Fatalf("mkfifo: named pipes need a unix system; guard the line with [unix]")
}
