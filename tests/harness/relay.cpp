// Recording loopback relay: accept, connect to the target, copy both directions while keeping a copy.
#include "tests/harness/relay.hpp"

#include "bench/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace pgsluice::test {

namespace {

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    return addr;
}

[[noreturn]] void fail(const std::string& what) {
    throw bench::stack_error("relay: " + what + ": " + std::strerror(errno));
}

// Writes all of `data` (blocking socket).
bool send_all(int fd, const std::uint8_t* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

} // namespace

recording_relay::recording_relay(std::uint16_t target_port) : target_port_(target_port) {
    if (::pipe2(wake_pipe_, O_CLOEXEC) != 0)
        fail("pipe2");
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0)
        fail("socket");
    auto addr = loopback(0);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 16) != 0)
        fail("bind/listen");
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop_(); });
}

recording_relay::~recording_relay() {
    const char byte = 'x';
    (void)!::write(wake_pipe_[1], &byte, 1); // never read: every poll() sees it readable
    if (acceptor_.joinable())
        acceptor_.join();
    for (auto& t : threads_)
        t.join();
    ::close(listen_fd_);
    ::close(wake_pipe_[0]);
    ::close(wake_pipe_[1]);
}

void recording_relay::accept_loop_() {
    for (;;) {
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (fds[1].revents)
            return;
        const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0)
            continue;
        const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        auto addr = loopback(target_port_);
        if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            if (server >= 0)
                ::close(server);
            ::close(client);
            continue;
        }
        const int one = 1;
        ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::lock_guard lock(mutex_);
        sessions_.push_back(std::make_unique<session>());
        session& s = *sessions_.back();
        threads_.emplace_back([this, client, server, &s] { pump_(client, server, s); });
    }
}

void recording_relay::pump_(int client, int server, session& s) {
    // Half-close semantics: when one side ends, the other is told (shutdown SHUT_WR) and
    // still read to its own end, so nothing in flight is lost from the capture.
    bool client_open = true;
    bool server_open = true;
    std::uint8_t buf[65536];
    while (client_open || server_open) {
        pollfd fds[3] = {{client_open ? client : -1, POLLIN, 0},
                         {server_open ? server : -1, POLLIN, 0},
                         {wake_pipe_[0], POLLIN, 0}};
        if (::poll(fds, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[2].revents)
            break;
        for (int side = 0; side < 2; ++side) {
            if (!fds[side].revents)
                continue;
            const int from = side == 0 ? client : server;
            const int to = side == 0 ? server : client;
            const ssize_t n = ::recv(from, buf, sizeof buf, 0);
            if (n > 0) {
                {
                    std::lock_guard lock(mutex_);
                    auto& out = side == 0 ? s.capture.from_client : s.capture.from_server;
                    out.insert(out.end(), buf, buf + n);
                }
                if (!send_all(to, buf, static_cast<std::size_t>(n)))
                    (side == 0 ? server_open : client_open) = false;
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                (side == 0 ? client_open : server_open) = false;
                ::shutdown(to, SHUT_WR);
            }
        }
    }
    ::close(client);
    ::close(server);
    std::lock_guard lock(mutex_);
    s.done = true;
    changed_.notify_all();
}

std::vector<relay_capture> recording_relay::wait_for_connections(std::size_t count, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    const bool ok = changed_.wait_for(lock, timeout, [&] {
        std::size_t done = 0;
        for (const auto& s : sessions_)
            done += s->done ? 1 : 0;
        return done >= count;
    });
    if (!ok)
        throw bench::stack_error("relay: fewer than " + std::to_string(count) + " connections ended within " +
                                 std::to_string(timeout.count()) + " ms");
    std::vector<relay_capture> out;
    for (const auto& s : sessions_)
        out.push_back(s->capture);
    return out;
}

} // namespace pgsluice::test
