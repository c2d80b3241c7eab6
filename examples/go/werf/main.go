// SPDX-License-Identifier: MIT
// Command werf is werf's telemetry kept knob for knob with tel's Go
// binding: the Go version of examples/werf.  README.md beside it maps each
// line of werf's telemetry page to the call that keeps it.
//
//	werf [--repo REPO] [--env ENV] converge|build|fail
//
// --repo may also come from WERF_REPO, --env from WERF_ENV: the events say
// which way each option was given, never its value.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"tel.dev/tel"
)

const version = "dev"

// UnknownCommand is the error of a command werf does not know: its type
// is the class recorded ("UnknownCommand"), and its message does not hold
// what the user typed.
type UnknownCommand struct{}

func (UnknownCommand) Error() string { return "unknown command" }

func openTelemetry() *tel.Tel {
	t, _ := tel.Open("werf", &tel.Options{
		AppVersion: version,
		// Opt-in for now: off until the user sets WERF_TELEMETRY=1 (or
		// turns it on through tel); WERF_TELEMETRY=0 is the user's opt-out.
		DefaultOff: true,
		Env: []tel.EnvVar{
			{Name: "WERF_TELEMETRY", Meaning: tel.EnvOnOff},
			{Name: "WERF_TELEMETRY_LOG_FILE", Meaning: tel.EnvLogFile},
		},
		// projectID: SHA-256 of the git origin URL, unsalted as werf
		// computes it (so linkable across products, as werf's is).
		ProjectLinkable: true,
	})
	return t // usable even when it could not open: it then records nothing
}

func main() {
	fs := flag.NewFlagSet("werf", flag.ContinueOnError)
	repo := fs.String("repo", "", "the image repository")
	env := fs.String("env", "", "the environment")
	if err := fs.Parse(os.Args[1:]); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: werf [--repo REPO] [--env ENV] converge|build|fail")
		os.Exit(2)
	}
	// The names of the options used, and how: on the command line or
	// through the environment.  Never their values.
	var cli, fromEnv []string
	var commandOptions []map[string]any
	for _, o := range []struct{ name, value, envName string }{
		{"repo", *repo, "WERF_REPO"}, {"env", *env, "WERF_ENV"},
	} {
		asCli, asEnv := o.value != "", o.value == "" && os.Getenv(o.envName) != ""
		if asCli {
			cli = append(cli, o.name)
		} else if asEnv {
			fromEnv = append(fromEnv, o.name)
		}
		count := 0
		if asCli || asEnv {
			count = 1
		}
		commandOptions = append(commandOptions, map[string]any{"name": o.name, "asCli": asCli, "asEnv": asEnv, "count": count})
	}
	// Only a command from werf's own list is named: what the user typed in
	// its place may be anything (a path, a token): "werf unknown".
	command := "werf unknown"
	switch fs.Arg(0) {
	case "converge", "build", "fail":
		command = "werf " + fs.Arg(0)
	}

	t := openTelemetry()
	defer t.Close()
	// CommandStarted and CommandExited, with the exit code and running time.
	err := t.Run(command, cli, fromEnv, func() error {
		// The attributes tel's context does not already carry (os, arch,
		// version, ci and ciName are in every event's context).
		_ = t.Emit("attributes", map[string]any{"trdl_group_channel": "2 stable"})
		// eventData.commandOptions as the page shows it: every option of the
		// command, how it was given and how often, never its value.
		_ = t.Emit("command.options", map[string]any{"commandOptions": commandOptions})
		switch command {
		case "werf converge", "werf build":
			fmt.Printf("%s: done\n", command)
			return nil
		case "werf fail":
			return fmt.Errorf("%s: failed", command)
		}
		return UnknownCommand{}
	})
	_, _ = t.SpawnSync(0)
	if errors.As(err, new(UnknownCommand)) {
		// The user is told what was typed; the telemetry only got the class.
		err = fmt.Errorf("werf: unknown command %q", fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		t.Close()
		os.Exit(1)
	}
}
