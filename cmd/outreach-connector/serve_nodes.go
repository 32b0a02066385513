package main

import (
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/ratebudget"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// Environment switches of serve for tests of several nodes.
const (
	// SharedBudgetEnv=off makes each node pace Outreach users alone, as
	// before the shared budget: only to show in tests what it prevents.
	SharedBudgetEnv = "OUTREACH_CONNECTOR_SHARED_BUDGET"
	// TimeScaleEnv=N runs schedules N times faster (tests only).
	TimeScaleEnv = "OUTREACH_CONNECTOR_TEST_TIME_SCALE"
)

// nodeFlags are serve's flags for running as one of several nodes.
type nodeFlags struct {
	id                      string
	runTimeout, rescueAfter time.Duration
}

func (n *nodeFlags) register(f *pflag.FlagSet) {
	f.StringVar(&n.id, "node-id", "", "this node's name among the nodes sharing the app database (default: host name and process id)")
	f.DurationVar(&n.runTimeout, "run-timeout", jobs.DefaultRunTimeout,
		"one time slice of a run: a run still going then continues at once as a new slice, from its committed state")
	f.DurationVar(&n.rescueAfter, "rescue-after", 0,
		"how long a run may stay running before another node takes its node for dead and resumes it (default: --run-timeout + 1m; must be longer than --run-timeout)")
}

// options checks the flags and returns them as queue options.
func (n *nodeFlags) options() (jobs.Options, error) {
	o := jobs.Options{ID: n.id, RunTimeout: n.runTimeout, RescueAfter: n.rescueAfter, NodeGone: defaultNodeGone}
	if o.ID == "" {
		o.ID = defaultNodeID()
	}
	if n.runTimeout <= 0 {
		return o, fmt.Errorf("--run-timeout %s: give a positive duration such as 5m", n.runTimeout)
	}
	if n.rescueAfter != 0 && n.rescueAfter <= n.runTimeout {
		return o, fmt.Errorf("--rescue-after %s must be longer than --run-timeout %s, or live runs would be taken for dead and run twice", n.rescueAfter, n.runTimeout)
	}
	scale, err := testTimeScale()
	o.TimeScale = scale
	return o, err
}

// testTimeScale reads TimeScaleEnv; 0 when unset.
func testTimeScale() (int, error) {
	v := os.Getenv(TimeScaleEnv)
	if v == "" {
		return 0, nil
	}
	scale, err := strconv.Atoi(v)
	if err != nil || scale < 1 {
		return 0, fmt.Errorf("%s=%q: give a whole number, at least 1", TimeScaleEnv, v)
	}
	return scale, nil
}

// sharedBudget is the Outreach users' rate budget kept in the app
// database, shared by every node (and process) using it; nil when
// switched off.
func sharedBudget(st credential.Store, log *slog.Logger) outreach.SharedBudget {
	if os.Getenv(SharedBudgetEnv) == "off" {
		log.Warn("the rate budget is not shared with other nodes (" + SharedBudgetEnv + "=off)")
		return nil
	}
	db, ok := st.(interface{ DB() *sql.DB })
	if !ok {
		return nil
	}
	return ratebudget.New(db.DB(), nil)
}

// defaultNodeID names this process among the nodes: host name and process
// id.
func defaultNodeID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// defaultNodeGone reports whether a node named as defaultNodeID names
// them is a process of this host that no longer runs: the run it left
// "running" is retried at once (jobs.Options.NodeGone). Other names, and
// processes of other hosts, are left to the rescuer.
func defaultNodeGone(id string) bool {
	host, _ := os.Hostname()
	pidText, ok := strings.CutPrefix(id, host+"-")
	pid, err := strconv.Atoi(pidText)
	return ok && err == nil && pid > 0 && pid != os.Getpid() && !connection.ProcessAlive(pid)
}
