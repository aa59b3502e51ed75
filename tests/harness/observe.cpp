// Server connections of a process as PostgreSQL counts them, and loopback socket queues, read from pg_stat_activity and /proc.
#include "tests/harness/observe.hpp"

#include "tests/harness/harness.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pgsluice::test {
namespace fs = std::filesystem;

namespace {

// "0100007F:1F90" (IPv4) or 32 hex digits ":1F90" (IPv6): the port after the colon.
std::uint16_t port_of(const std::string& address) {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos)
        return 0;
    return static_cast<std::uint16_t>(std::stoul(address.substr(colon + 1), nullptr, 16));
}

void read_table(const char* file, std::vector<tcp_socket>& out) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line); // header
    while (std::getline(in, line)) {
        // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
        std::istringstream fields(line);
        std::string sl, local, remote, st, queues, timer, retransmits, uid, timeout;
        std::uint64_t inode = 0;
        if (!(fields >> sl >> local >> remote >> st >> queues >> timer >> retransmits >> uid >> timeout >> inode))
            continue;
        const auto colon = queues.find(':');
        if (colon == std::string::npos)
            continue;
        tcp_socket s;
        s.local_port = port_of(local);
        s.remote_port = port_of(remote);
        s.tx_queue = std::stoull(queues.substr(0, colon), nullptr, 16);
        s.rx_queue = std::stoull(queues.substr(colon + 1), nullptr, 16);
        s.inode = inode;
        out.push_back(s);
    }
}

// Inodes of the sockets among process `pid`'s open files.
std::set<std::uint64_t> socket_inodes_of(pid_t pid) {
    std::set<std::uint64_t> inodes;
    std::error_code ec;
    for (fs::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code link_ec;
        const std::string target = fs::read_symlink(it->path(), link_ec).string();
        if (!link_ec && target.starts_with("socket:[") && target.ends_with("]"))
            inodes.insert(std::stoull(target.substr(8, target.size() - 9)));
    }
    return inodes;
}

std::uint16_t port_of_end(int fd, bool peer) {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    const int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len)
                        : ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    if (rc != 0)
        return 0;
    if (a.ss_family == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
    if (a.ss_family == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
    return 0;
}

// The server connections `pid` holds to `port`, counted on `conn` (pg_stat_activity first,
// then the process's sockets: a connection counts only when both show it, so a look taken
// while one opens or closes may miss it but never counts one that is not there).
int count_on(pq_connection& conn, pid_t pid, std::uint16_t port) {
    const auto rows = conn.query("SELECT client_port FROM pg_stat_activity "
                                 "WHERE backend_type = 'client backend' AND client_port IS NOT NULL");
    const auto ports = tcp_ports_of(pid, port);
    int n = 0;
    for (const auto& row : rows)
        if (row.at(0) && ports.count(static_cast<std::uint16_t>(std::stoi(*row.at(0)))) != 0)
            ++n;
    return n;
}

} // namespace

std::vector<tcp_socket> tcp_sockets() {
    std::vector<tcp_socket> out;
    read_table("/proc/net/tcp", out);
    read_table("/proc/net/tcp6", out);
    return out;
}

std::set<std::uint16_t> tcp_ports_of(pid_t pid, std::uint16_t remote_port) {
    const auto inodes = socket_inodes_of(pid);
    std::set<std::uint16_t> ports;
    for (const auto& s : tcp_sockets())
        if (s.remote_port == remote_port && s.inode != 0 && inodes.count(s.inode) != 0)
            ports.insert(s.local_port);
    return ports;
}

bool peer_has_read_all(int fd) {
    const std::uint16_t mine = port_of_end(fd, false), theirs = port_of_end(fd, true);
    if (mine == 0 || theirs == 0)
        return false;
    bool sent = false, read = false;
    for (const auto& s : tcp_sockets()) {
        if (s.local_port == mine && s.remote_port == theirs)
            sent = s.tx_queue == 0;
        if (s.local_port == theirs && s.remote_port == mine)
            read = s.rx_queue == 0;
    }
    return sent && read;
}

int server_connections_of(pid_t pid, std::size_t node) {
    auto& c = cluster();
    auto conn = connect(c.local_conninfo(node));
    return count_on(conn, pid, c.port(node));
}

server_connection_sampler::server_connection_sampler(pid_t pid, std::size_t node) : pid_(pid), node_(node) {
    thread_ = std::thread([this] { run_(); });
}

server_connection_sampler::~server_connection_sampler() {
    if (thread_.joinable())
        finish();
}

void server_connection_sampler::run_() {
    try {
        auto& c = cluster();
        auto conn = connect(c.local_conninfo(node_));
        const auto port = c.port(node_);
        for (bool last = false; !last;) {
            last = stop_.load();
            const int n = count_on(conn, pid_, port);
            {
                std::lock_guard lock(mutex_);
                ++result_.samples;
                result_.most = std::max(result_.most, n);
            }
            // A polling interval, not a synchronisation: the load runs meanwhile.
            if (!last)
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    } catch (const std::exception& e) {
        std::lock_guard lock(mutex_);
        result_.error = e.what();
    }
}

server_connection_sampler::result server_connection_sampler::finish() {
    stop_ = true;
    if (thread_.joinable())
        thread_.join();
    std::lock_guard lock(mutex_);
    return result_;
}

void expect_within_pool(const server_connection_sampler::result& seen, int pool_size) {
    EXPECT_EQ(seen.error, "") << "sampling stopped early";
    EXPECT_GT(seen.samples, 0);
    EXPECT_GT(seen.most, 0) << "no server connection of the pooler seen during the run";
    EXPECT_LE(seen.most, pool_size) << "server connections at the peak (" << seen.samples << " samples)";
    testing::Test::RecordProperty("most_server_connections", seen.most);
}

} // namespace pgsluice::test
