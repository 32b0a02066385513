package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSyncSandboxTwice runs the README's main command twice in a fresh
// directory: the second run reads only what full-refresh streams re-read.
func TestSyncSandboxTwice(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	total := regexp.MustCompile(`(\d+) records in (\d+) streams into sqlite:outreach.db`)
	counts := []int{}
	for run := range 2 {
		out, _, err := runCommand(t, "", "sync", "--sandbox", "--sandbox-prospects", "300", "--log-level", "warn")
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out)
		}
		m := total.FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "prospects") {
			t.Fatalf("run %d: no summary:\n%s", run, out)
		}
		n, _ := strconv.Atoi(m[1])
		counts = append(counts, n)
	}
	if counts[0] < 2000 || counts[1] >= counts[0]/10 {
		t.Errorf("records per run = %v: want a full first run and a small incremental second", counts)
	}
	for _, f := range []string{"outreach.db", "outreach.key"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s not created: %v", f, err)
		}
	}
	out, _, err := runCommand(t, "", "sync", "--sandbox", "--sandbox-prospects", "50", "--to", "jsonl:export", "--log-level", "warn")
	if err != nil || !strings.Contains(out, "jsonl:export") {
		t.Fatalf("sync to jsonl: %v\n%s", err, out)
	}
	if b, err := os.ReadFile("export/prospects.jsonl"); err != nil || strings.Count(string(b), "\n") != 50 {
		t.Errorf("export/prospects.jsonl: %v, %d lines", err, strings.Count(string(b), "\n"))
	}
	if _, _, err := runCommand(t, "", "sync", "--to", "ftp:x"); err == nil {
		t.Error("an unknown destination was accepted")
	}
}
