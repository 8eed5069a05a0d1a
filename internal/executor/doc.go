// Package executor runs one service to completion on this machine and
// reports its exit status and bounded, redacted output.
//
// Guarantees, for every run:
//   - Fresh directory: the run gets a new directory under Config.WorkRoot
//     (mode 0700) holding a full copy of the checked-out source (regular
//     files, directories, and symlinks that resolve inside the source; other
//     symlinks and special files are skipped and logged). It is the process's
//     HOME, its working directory is Service.WorkingDir inside it, and it is
//     removed when the run ends. WorkingDir, Filename and Requirements must
//     resolve inside it, symlinks included.
//   - No shell: argv is built by the executor and started with exec directly.
//     Inputs reach python-script and executable services as sorted
//     "--key value" pairs after Service.Args, except Job.SensitiveInputs,
//     which never appear in argv; every type gets them all as a 0600 JSON
//     file named by AUTOGATE_INPUTS_FILE.
//   - Scrubbed environment: nothing of the host's environment leaks. The
//     process sees PATH (Config.PathEnv), HOME, LANG=C.UTF-8,
//     AUTOGATE_EXECUTION_ID, AUTOGATE_INPUTS_FILE, the variables its type
//     needs (ANSIBLE_* or TF_*), Service.Env, and its secret bindings: as
//     variables, or as 0600 files under .secrets/ whose paths are in
//     AUTOGATE_SECRET_FILE_<NAME>. Service.Env overrides the type's
//     variables; secret bindings and AUTOGATE_* override Service.Env.
//   - Process-group kill: the service runs in its own process group. On
//     timeout (Service.Timeout) or cancellation of the context the whole
//     group gets SIGTERM, then SIGKILL after Config.KillGrace; when the entry
//     process exits on its own, whatever it left behind in its group is
//     terminated the same way, so no grandchild outlives the run (unless it
//     left the group with setsid).
//   - Dies with its supervisor (Linux, with Config.ShimPath): the service
//     never outlives the process running the executor, however that process
//     dies (kill -9 included). Each process starts under a shim (RunShim, the
//     binary re-executed under another name) that leads the group, is a
//     sub-reaper (PR_SET_CHILD_SUBREAPER: whatever the service orphans,
//     setsid or not, is reparented to the shim, not to init) and has a
//     parent-death signal (PR_SET_PDEATHSIG). On that signal it SIGKILLs
//     every process of its group and below it, then exits; otherwise it
//     exits the way the service did, so exit codes and signals read as
//     before. The parent-death signal fires when the forking *thread* exits,
//     so the goroutine that starts a process stays locked to its OS thread
//     until the process is reaped (golang.org/issue/27505). Chosen over a
//     cgroup because it needs no privileges or cgroup delegation, which ECS
//     tasks and Lambda do not give; chosen over a PID namespace for the same
//     reason. Without a shim the leader alone gets SIGKILL as its
//     parent-death signal. In practice the shim runs once per Executor, as
//     a long-lived reaper (reaper_linux.go) that starts every service and
//     reports its exit: the same guarantees (each service leads its own
//     group below the reaper, the reaper is the sub-reaper and dies with its
//     supervisor, taking everything below it), without a Go process start
//     per run. A dead reaper takes its services' leaders with it (their own
//     parent-death signal) and fails their runs; the next run starts a new
//     one. A request too big for the reaper's one message runs under a shim
//     of its own.
//   - Bounded, redacted output: stdout and stderr are each kept up to
//     Config.OutputLimit bytes. Every secret value and sensitive input of
//     resource.MinRedactBytes or more, and its base64, hex and URL-encoded
//     forms and long enough lines (see redactPatterns), is replaced by
//     "[REDACTED]" while streaming, before the cut, including across read
//     boundaries; a cut stream ends with a marker line and has
//     Output.Truncated set.
//
// python-script services with requirements run in a virtualenv cached under
// Config.CacheDir/venvs by the hash of the requirements file, the interpreter
// and the pip settings; pip is given its index settings explicitly
// (PIP_CONFIG_FILE=/dev/null, no host PIP_* variables). One build runs per
// hash, also across processes sharing CacheDir; the venv is published by an
// atomic rename. The hash covers the requirements file's bytes only: files it
// includes (-r, -c, local paths) are not hashed.
//
// Not guaranteed: isolation from the host. The service runs with the
// executor's user, file system and network; the scrubbing above keeps the
// executor's own configuration and credentials out of its reach, it is not
// a sandbox. Setting up (copying, building a venv) is bounded by the context,
// not by the service timeout.
package executor
