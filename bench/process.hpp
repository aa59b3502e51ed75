// Local server processes: free loopback ports, the `postgres` OS user, spawning, identifying and stopping children.
//
// Everything the local stacks (bench) and the integration-test harness start goes through
// here, so that the rules hold in one place: servers never run as root (PostgreSQL,
// PgBouncer and Pgpool-II refuse it), we hold the real pid of every server we start, and
// we signal only processes we started, identified by pid *and* kernel start time so a
// recycled pid is never mistaken for ours.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgsluice::bench {

// Thrown when a local stack cannot be brought up or controlled; the message says what
// failed and, where there is one, quotes the tail of the server's log.
class stack_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Thrown when a program the stack needs (initdb, pgbouncer, pgpool, ...) is not installed.
// Tests must fail, never skip, when this happens: the message names the program and the
// package to install.
class missing_dependency : public stack_error {
public:
    using stack_error::stack_error;
};

// Path of `program`: an absolute path is checked as is; otherwise PATH, then /usr/sbin,
// /usr/lib/postgresql/15/bin. Throws missing_dependency naming `program` and `package`.
std::filesystem::path find_program(std::string_view program, std::string_view package);

// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close).
// Another process may take it before our server binds it: servers started by this module
// retry with a fresh port when their log says "Address already in use".
std::uint16_t pick_free_port();

// True when `log_text` shows a failed bind because the port was taken.
bool is_address_in_use(std::string_view log_text);

// The OS user servers run as. When we are root this is `postgres` (the servers refuse
// root); otherwise it is the current user and no switch happens.
struct service_user {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
    std::filesystem::path home;
    std::vector<gid_t> groups;  // supplementary groups, resolved before fork
    bool switch_needed = false; // true when we are root and must drop to this user
};

// Resolves the user servers run as: `name` (default "postgres") when we are root, else
// ourselves. Throws missing_dependency when running as root and `name` does not exist.
service_user resolve_service_user(const std::string& name = "postgres");

// mkdir -p, then (when switching users) chown every created level and the leaf to `user`.
void make_service_dir(const std::filesystem::path& dir, const service_user& user, mode_t mode = 0700);

// A fresh directory /tmp/<prefix>XXXXXX (mkdtemp), mode 0700, owned by `user`.
std::filesystem::path make_temp_dir(std::string_view prefix, const service_user& user);

// Writes `content` to `file` (truncating), mode `mode`, owned by `user`.
void write_service_file(const std::filesystem::path& file, std::string_view content, const service_user& user,
                        mode_t mode = 0600);

// Whole file, or its last `max_bytes` (for error messages quoting a server log).
std::string read_file_text(const std::filesystem::path& file);
std::string read_file_tail(const std::filesystem::path& file, std::size_t max_bytes = 4000,
                           std::uintmax_t from_offset = 0);

// A process as the kernel knows it: pid plus its start time (field 22 of /proc/<pid>/stat,
// clock ticks since boot). Two processes never share both.
struct process_identity {
    pid_t pid = 0;
    std::uint64_t start_time = 0;

    friend bool operator==(const process_identity&, const process_identity&) = default;
};

// Identity of a live process, or nullopt when `pid` does not exist (or is a zombie).
std::optional<process_identity> identify_process(pid_t pid);

// True when the process recorded in `id` still runs (same pid, same start time).
bool is_alive(const process_identity& id);

// What to run and how.
struct spawn_options {
    std::vector<std::string> argv;         // argv[0] is resolved with find_program
    std::filesystem::path log_file;        // stdout and stderr are appended here (required)
    std::filesystem::path working_dir;     // empty: the log file's directory
    const service_user* user = nullptr;    // null: run as ourselves
    // Open-files limit for the child (`runuser` would reset it to 1024; many-client runs
    // need more). Raised as far as our privileges allow.
    std::uint64_t max_open_files = 20000;
    std::vector<std::pair<std::string, std::string>> env; // set on top of our environment minus PG*
    // Signal the kernel sends the child when the thread that started it dies (prctl
    // PR_SET_PDEATHSIG), so a crashed test does not leave servers behind. 0 = none, for
    // stacks that must outlive the command that started them.
    int parent_death_signal = 0;
};

// A child process in its own session (setsid: a terminal's Ctrl-C does not reach it and
// the whole group can be killed). Move-only. The destructor stops a still-owned process
// with its stop signal; release() hands it over (persistent stacks) so nothing is stopped.
class child_process {
public:
    child_process() = default;
    ~child_process();
    child_process(child_process&& other) noexcept;
    child_process& operator=(child_process&& other) noexcept;
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    // Starts `options.argv`. `stop_signal` is what stop() sends first: servers differ in
    // which signal means "fast shutdown" (PostgreSQL SIGINT, PgBouncer SIGTERM, Pgpool-II
    // SIGINT). Throws stack_error (missing_dependency for an unknown program) if the exec
    // itself fails.
    static child_process spawn(const spawn_options& options, int stop_signal = SIGTERM);

    // A process we started earlier (pid and start time read back from a state file).
    // Returns an empty child_process when that process is gone or the pid now belongs to
    // another process: we never adopt, and so never signal, a stranger.
    static child_process adopt(const process_identity& id, int stop_signal);

    explicit operator bool() const { return id_.pid > 0; }
    const process_identity& identity() const { return id_; }
    pid_t pid() const { return id_.pid; }
    int stop_signal() const { return stop_signal_; }

    // Still running? Reaps the child when it has exited (then exit_status() is set).
    bool running();

    // Waits up to `timeout` for the process to exit; true when it has.
    bool wait_exit(std::chrono::milliseconds timeout);

    // Exit code (or 128 + signal) once the process has been reaped; adopted processes
    // are not our children, so theirs is unknown.
    std::optional<int> exit_status() const { return exit_status_; }

    // Sends the stop signal, waits up to `grace`, then SIGKILLs the process group and
    // waits again. True when the process is gone.
    bool stop(std::chrono::milliseconds grace = std::chrono::seconds(20));

    // SIGKILL now (failover tests), then reap.
    void kill_now();

    // Sends `signal` (e.g. SIGHUP to reload) if the process still runs.
    void signal(int signal);

    // Forget the process without stopping it (it keeps running after we exit).
    process_identity release();

private:
    void reset_() noexcept;

    process_identity id_{};
    int stop_signal_ = SIGTERM;
    bool is_our_child_ = false;
    std::optional<int> exit_status_;
};

// Runs a program to completion (initdb, pg_basebackup, ...), output appended to
// `options.log_file`. Throws stack_error with the output tail when it exits non-zero or
// runs longer than `timeout` (then it is killed).
void run_to_completion(const spawn_options& options, std::chrono::milliseconds timeout);

// Polls `ready` every `interval` until it returns true or `timeout` passes; returns the
// last answer. For readiness checks against real servers, never as a blind sleep.
template <class Predicate>
bool poll_until(std::chrono::milliseconds timeout, std::chrono::milliseconds interval, Predicate ready);

} // namespace pgsluice::bench

#include <thread>

namespace pgsluice::bench {

template <class Predicate>
bool poll_until(std::chrono::milliseconds timeout, std::chrono::milliseconds interval, Predicate ready) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (ready())
            return true;
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(interval);
    }
}

} // namespace pgsluice::bench
