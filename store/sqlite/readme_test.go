package sqlite_test

import (
	"os"
	"strings"
	"testing"
)

// README.md's "A taste" must be Example_taste as it runs.
func TestREADMETasteIsTheExample(t *testing.T) {
	src, err := os.ReadFile("example_taste_test.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	i := strings.Index(s, "type Deposited")
	if i < 0 {
		t.Fatal("example_taste_test.go has no type Deposited")
	}
	want := "## A taste\n\n```go\n" + strings.TrimRight(s[i:], "\n") + "\n```\n"
	if !strings.Contains(string(readme), want) {
		t.Fatalf("README.md's \"A taste\" differs from example_taste_test.go; copy the file from \"type Deposited\" to its end into the section")
	}
}
