// What tests read from outside a pooler: its server connections as PostgreSQL counts them, and socket queues as the kernel shows them.
//
// Tests must not trust a pooler's own account (or its log) of what it holds, and must not
// synchronise with sleeps. PostgreSQL's pg_stat_activity lists every server connection with
// the client port it came from; /proc tells which process owns the socket on that port and
// how many bytes wait unread in each socket. Together they say "process P holds N server
// connections now" and "the peer has read everything this client sent", both on loopback.
// https://www.postgresql.org/docs/15/monitoring-stats.html#MONITORING-PG-STAT-ACTIVITY-VIEW
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace pgsluice::test {

// One TCP socket of this network namespace, as /proc/net/tcp and /proc/net/tcp6 list it.
struct tcp_socket {
    std::uint16_t local_port = 0;
    std::uint16_t remote_port = 0;
    std::uint64_t tx_queue = 0; // sent, not yet acknowledged by the peer's kernel
    std::uint64_t rx_queue = 0; // received, not yet read by the owning process
    std::uint64_t inode = 0;
};
std::vector<tcp_socket> tcp_sockets();

// Local ports of the TCP sockets process `pid` holds open to `remote_port`.
std::set<std::uint16_t> tcp_ports_of(pid_t pid, std::uint16_t remote_port);

// True once every byte written on the connected loopback socket `fd` has reached the
// process at the other end and that process has read it (nothing in flight, nothing
// queued on its side). False while either is pending, or when the sockets are not found.
bool peer_has_read_all(int fd);

// Client backends of node `node` of the test cluster whose connection comes from process
// `pid`: that process's server connections, counted by PostgreSQL. Opens a connection of its
// own over the unix socket (never counted).
int server_connections_of(pid_t pid, std::size_t node);

// Samples server_connections_of(pid, node) over and over, on its own connection, from
// construction until finish(): the most server connections that process held at once while
// the test ran its load.
class server_connection_sampler {
public:
    server_connection_sampler(pid_t pid, std::size_t node);
    ~server_connection_sampler();
    server_connection_sampler(const server_connection_sampler&) = delete;
    server_connection_sampler& operator=(const server_connection_sampler&) = delete;

    struct result {
        int samples = 0;   // how many times it looked
        int most = 0;      // the most seen in one look
        std::string error; // why sampling stopped early ("" when it did not)
    };
    // Stops sampling (after one last look) and returns what was seen.
    result finish();

private:
    void run_();

    pid_t pid_;
    std::size_t node_;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    result result_;
    std::thread thread_;
};

// GoogleTest checks on what a sampler saw while a load ran through a pooler: it looked, it
// saw at least one server connection (or the bound proves nothing), and never more than
// `pool_size` at once.
void expect_within_pool(const server_connection_sampler::result& seen, int pool_size);

} // namespace pgsluice::test
