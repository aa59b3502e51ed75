// Local server processes: free ports, the service user, fork/exec with a held pid, bounded stops.
#include "bench/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace pgsluice::bench {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string errno_text(int err) { return std::strerror(err); }

// RAII for a raw file descriptor used only around fork/exec.
struct unique_fd {
    int fd = -1;
    explicit unique_fd(int f = -1) : fd(f) {}
    ~unique_fd() {
        if (fd >= 0)
            ::close(fd);
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
};

bool is_executable(const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

} // namespace

fs::path find_program(std::string_view program, std::string_view package) {
    const fs::path name{program};
    if (name.is_absolute()) {
        if (is_executable(name))
            return name;
    } else {
        std::vector<fs::path> dirs;
        if (const char* path = std::getenv("PATH")) {
            std::stringstream ss{path};
            std::string dir;
            while (std::getline(ss, dir, ':'))
                if (!dir.empty())
                    dirs.emplace_back(dir);
        }
        for (const char* extra : {"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/lib/postgresql/15/bin"})
            dirs.emplace_back(extra);
        for (const auto& dir : dirs)
            if (is_executable(dir / name))
                return dir / name;
    }
    throw missing_dependency("required program '" + std::string(program) + "' not found (install the Debian package '" +
                             std::string(package) + "', e.g. with scripts/install.sh)");
}

std::uint16_t pick_free_port() {
    unique_fd sock{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (sock.fd < 0)
        throw stack_error("socket(): " + errno_text(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(sock.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw stack_error("bind(127.0.0.1:0): " + errno_text(errno));
    socklen_t len = sizeof addr;
    if (::getsockname(sock.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        throw stack_error("getsockname(): " + errno_text(errno));
    return ntohs(addr.sin_port);
}

bool is_address_in_use(std::string_view log_text) {
    return log_text.find("Address already in use") != std::string_view::npos ||
           log_text.find("could not bind") != std::string_view::npos;
}

service_user resolve_service_user(const std::string& name) {
    service_user user;
    const bool root = ::geteuid() == 0;
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    const int rc = root ? ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found)
                        : ::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found);
    if (rc != 0 || found == nullptr) {
        if (root)
            throw missing_dependency("OS user '" + name +
                                     "' not found: servers refuse to run as root and run as that user "
                                     "(install the Debian package 'postgresql-15')");
        throw stack_error("cannot look up the current user");
    }
    user.name = pw.pw_name;
    user.uid = pw.pw_uid;
    user.gid = pw.pw_gid;
    user.home = pw.pw_dir;
    user.switch_needed = root && pw.pw_uid != 0;
    int ngroups = 64;
    std::vector<gid_t> groups(static_cast<std::size_t>(ngroups));
    if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &ngroups) < 0) {
        groups.resize(static_cast<std::size_t>(ngroups));
        ::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &ngroups);
    }
    groups.resize(static_cast<std::size_t>(ngroups));
    user.groups = std::move(groups);
    return user;
}

void make_service_dir(const fs::path& dir, const service_user& user, mode_t mode) {
    std::vector<fs::path> created;
    for (fs::path p = dir; !p.empty() && !fs::exists(p); p = p.parent_path()) {
        created.push_back(p);
        if (p == p.parent_path())
            break;
    }
    for (auto it = created.rbegin(); it != created.rend(); ++it) {
        if (::mkdir(it->c_str(), mode) != 0 && errno != EEXIST)
            throw stack_error("mkdir " + it->string() + ": " + errno_text(errno));
        ::chmod(it->c_str(), mode); // mkdir applies the umask
        if (user.switch_needed && ::chown(it->c_str(), user.uid, user.gid) != 0)
            throw stack_error("chown " + it->string() + ": " + errno_text(errno));
    }
    if (created.empty() && user.switch_needed) {
        struct stat st{};
        if (::stat(dir.c_str(), &st) == 0 && st.st_uid != user.uid && ::chown(dir.c_str(), user.uid, user.gid) != 0)
            throw stack_error("chown " + dir.string() + ": " + errno_text(errno));
    }
}

fs::path make_temp_dir(std::string_view prefix, const service_user& user) {
    std::string templ = "/tmp/" + std::string(prefix) + "XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr)
        throw stack_error("mkdtemp " + templ + ": " + errno_text(errno));
    if (user.switch_needed && ::chown(templ.c_str(), user.uid, user.gid) != 0)
        throw stack_error("chown " + templ + ": " + errno_text(errno));
    return templ;
}

void write_service_file(const fs::path& file, std::string_view content, const service_user& user, mode_t mode) {
    unique_fd fd{::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)};
    if (fd.fd < 0)
        throw stack_error("open " + file.string() + ": " + errno_text(errno));
    std::size_t done = 0;
    while (done < content.size()) {
        const ssize_t n = ::write(fd.fd, content.data() + done, content.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw stack_error("write " + file.string() + ": " + errno_text(errno));
        }
        done += static_cast<std::size_t>(n);
    }
    ::fchmod(fd.fd, mode);
    if (user.switch_needed && ::fchown(fd.fd, user.uid, user.gid) != 0)
        throw stack_error("chown " + file.string() + ": " + errno_text(errno));
}

std::string read_file_text(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string read_file_tail(const fs::path& file, std::size_t max_bytes, std::uintmax_t from_offset) {
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    if (!in)
        return {};
    const auto size = static_cast<std::uintmax_t>(in.tellg());
    std::uintmax_t start = from_offset > size ? size : from_offset;
    if (size - start > max_bytes)
        start = size - max_bytes;
    in.seekg(static_cast<std::streamoff>(start));
    std::string text(static_cast<std::size_t>(size - start), '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    return text;
}

std::optional<process_identity> identify_process(pid_t pid) {
    if (pid <= 0)
        return std::nullopt;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!std::getline(in, stat))
        return std::nullopt;
    // Field 2 (comm) is parenthesised and may contain spaces: parse after the last ')'.
    const auto close = stat.rfind(')');
    if (close == std::string::npos)
        return std::nullopt;
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    std::string state;
    fields >> state; // field 3
    if (state == "Z" || state == "X")
        return std::nullopt;
    // Fields 4..21 come before starttime (field 22).
    for (int i = 4; i <= 21; ++i)
        fields >> field;
    std::uint64_t start_time = 0;
    if (!(fields >> start_time))
        return std::nullopt;
    return process_identity{pid, start_time};
}

bool is_alive(const process_identity& id) {
    const auto now = identify_process(id.pid);
    return now && now->start_time == id.start_time;
}

// ---------------------------------------------------------------------------------------
// child_process

child_process::~child_process() {
    if (id_.pid > 0)
        stop();
}

child_process::child_process(child_process&& other) noexcept
    : id_(other.id_), stop_signal_(other.stop_signal_), is_our_child_(other.is_our_child_),
      exit_status_(other.exit_status_) {
    other.reset_();
}

child_process& child_process::operator=(child_process&& other) noexcept {
    if (this != &other) {
        if (id_.pid > 0)
            stop();
        id_ = other.id_;
        stop_signal_ = other.stop_signal_;
        is_our_child_ = other.is_our_child_;
        exit_status_ = other.exit_status_;
        other.reset_();
    }
    return *this;
}

void child_process::reset_() noexcept {
    id_ = {};
    is_our_child_ = false;
}

child_process child_process::spawn(const spawn_options& options, int stop_signal) {
    if (options.argv.empty())
        throw stack_error("spawn: empty command");
    if (options.log_file.empty())
        throw stack_error("spawn: no log file for " + options.argv[0]);
    const fs::path program = find_program(options.argv[0], options.argv[0]);

    // Everything the child needs is prepared here: after fork() only async-signal-safe
    // calls are allowed (we may be one thread of many).
    std::vector<std::string> args = options.argv;
    args[0] = program.string();
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);

    std::vector<std::string> env_strings;
    auto overridden = [&](std::string_view key) {
        for (const auto& [k, v] : options.env)
            if (k == key)
                return true;
        if (options.user && options.user->switch_needed)
            return key == "HOME" || key == "USER" || key == "LOGNAME";
        return false;
    };
    for (char** e = environ; e && *e; ++e) {
        std::string_view entry{*e};
        const auto key = entry.substr(0, entry.find('='));
        // PG* variables of whoever runs us (PGHOST, PGPORT, PGDATA...) must not redirect our servers.
        if (key.starts_with("PG") || overridden(key))
            continue;
        env_strings.emplace_back(entry);
    }
    if (options.user && options.user->switch_needed) {
        env_strings.push_back("HOME=" + options.user->home.string());
        env_strings.push_back("USER=" + options.user->name);
        env_strings.push_back("LOGNAME=" + options.user->name);
    }
    for (const auto& [k, v] : options.env)
        env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env_strings)
        envp.push_back(e.data());
    envp.push_back(nullptr);

    const fs::path cwd = options.working_dir.empty() ? options.log_file.parent_path() : options.working_dir;
    unique_fd log{::open(options.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)};
    if (log.fd < 0)
        throw stack_error("open " + options.log_file.string() + ": " + errno_text(errno));
    const bool switch_user = options.user && options.user->switch_needed;
    if (switch_user)
        (void)::fchown(log.fd, options.user->uid, options.user->gid);
    unique_fd devnull{::open("/dev/null", O_RDONLY | O_CLOEXEC)};
    int status_pipe[2];
    if (::pipe2(status_pipe, O_CLOEXEC) != 0)
        throw stack_error("pipe2: " + errno_text(errno));
    unique_fd status_read{status_pipe[0]};
    unique_fd status_write{status_pipe[1]};

    rlimit nofile{};
    ::getrlimit(RLIMIT_NOFILE, &nofile);
    if (::geteuid() == 0) {
        if (nofile.rlim_max < options.max_open_files)
            nofile.rlim_max = options.max_open_files;
        nofile.rlim_cur = std::max<rlim_t>(nofile.rlim_cur, std::min<rlim_t>(options.max_open_files, nofile.rlim_max));
    } else {
        nofile.rlim_cur = std::max<rlim_t>(nofile.rlim_cur, std::min<rlim_t>(options.max_open_files, nofile.rlim_max));
    }
    const pid_t parent = ::getpid();
    const int death_signal = options.parent_death_signal;
    const service_user* user = options.user;

    const pid_t pid = ::fork();
    if (pid < 0)
        throw stack_error("fork: " + errno_text(errno));
    if (pid == 0) {
        // Child: report the failing step's errno through the pipe, then _exit.
        auto fail = [&](int step) {
            int payload[2] = {step, errno};
            (void)!::write(status_write.fd, payload, sizeof payload);
            ::_exit(127);
        };
        if (::setsid() < 0)
            fail(1);
        if (::dup2(devnull.fd, 0) < 0 || ::dup2(log.fd, 1) < 0 || ::dup2(log.fd, 2) < 0)
            fail(2);
        (void)::setrlimit(RLIMIT_NOFILE, &nofile);
        if (switch_user) {
            if (::setgroups(user->groups.size(), user->groups.data()) != 0)
                fail(3);
            if (::setgid(user->gid) != 0)
                fail(4);
            if (::setuid(user->uid) != 0)
                fail(5);
        }
        // After the credential change: changing credentials clears the death signal.
        if (death_signal != 0) {
            if (::prctl(PR_SET_PDEATHSIG, death_signal) != 0)
                fail(6);
            if (::getppid() != parent) // the parent died before prctl took effect
                ::_exit(1);
        }
        if (::chdir(cwd.c_str()) != 0)
            fail(7);
        ::execve(argv[0], argv.data(), envp.data());
        fail(8);
    }

    ::close(status_write.fd);
    status_write.fd = -1;
    int payload[2] = {0, 0};
    ssize_t n;
    do {
        n = ::read(status_read.fd, payload, sizeof payload);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        static const char* const steps[] = {"", "setsid", "redirect output", "setgroups", "setgid",
                                            "setuid", "prctl", "chdir", "execve"};
        const int step = payload[0] >= 1 && payload[0] <= 8 ? payload[0] : 8;
        throw stack_error("cannot start " + program.string() + ": " + steps[step] + " failed: " +
                          errno_text(payload[1]) + (step == 7 ? " (" + cwd.string() + ")" : ""));
    }

    child_process child;
    child.id_.pid = pid;
    // The exec succeeded, so /proc shows the new image; read its start time for identity.
    const auto id = identify_process(pid);
    child.id_.start_time = id ? id->start_time : 0;
    child.stop_signal_ = stop_signal;
    child.is_our_child_ = true;
    return child;
}

child_process child_process::adopt(const process_identity& id, int stop_signal) {
    child_process child;
    if (!is_alive(id))
        return child;
    child.id_ = id;
    child.stop_signal_ = stop_signal;
    child.is_our_child_ = false;
    return child;
}

bool child_process::running() {
    if (id_.pid <= 0)
        return false;
    if (is_our_child_) {
        int status = 0;
        const pid_t r = ::waitpid(id_.pid, &status, WNOHANG);
        if (r == 0)
            return true;
        if (r == id_.pid) {
            exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            reset_();
        }
        // ECHILD would mean someone else reaped it: treat it as gone.
        if (r < 0)
            reset_();
        return false;
    }
    if (is_alive(id_))
        return true;
    reset_();
    return false;
}

bool child_process::wait_exit(std::chrono::milliseconds timeout) {
    return poll_until(timeout, 10ms, [&] { return !running(); });
}

void child_process::signal(int sig) {
    if (running())
        ::kill(id_.pid, sig);
}

bool child_process::stop(std::chrono::milliseconds grace) {
    if (!running())
        return true;
    ::kill(id_.pid, stop_signal_);
    if (wait_exit(grace))
        return true;
    // The process group is the one setsid() made for this child: it holds only processes
    // it started (PostgreSQL backends even leave it for their own sessions).
    if (id_.pid > 0)
        ::kill(-id_.pid, SIGKILL);
    ::kill(id_.pid, SIGKILL);
    return wait_exit(10s);
}

void child_process::kill_now() {
    if (!running())
        return;
    ::kill(id_.pid, SIGKILL);
    wait_exit(10s);
}

process_identity child_process::release() {
    const auto id = id_;
    reset_();
    return id;
}

void run_to_completion(const spawn_options& options, std::chrono::milliseconds timeout) {
    std::error_code ec;
    const auto before = fs::exists(options.log_file, ec) ? fs::file_size(options.log_file, ec) : 0;
    auto child = child_process::spawn(options);
    const std::string what = fs::path(options.argv[0]).filename().string();
    if (!child.wait_exit(timeout)) {
        child.kill_now();
        throw stack_error(what + " did not finish within " + std::to_string(timeout.count()) + " ms; output:\n" +
                          read_file_tail(options.log_file, 4000, before));
    }
    if (child.exit_status().value_or(-1) != 0)
        throw stack_error(what + " failed (exit status " + std::to_string(child.exit_status().value_or(-1)) +
                          "); output:\n" + read_file_tail(options.log_file, 4000, before));
}

} // namespace pgsluice::bench
