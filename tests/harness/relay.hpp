// A recording TCP relay for tests: sits between a client and a server on loopback and keeps every byte of both directions.
//
// Plain sockets and one thread per connection (no Asio): the bytes recorded are exactly
// those libpq and the server exchanged, for golden tests of the protocol codec.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace pgsluice::test {

// Both directions of one relayed connection, in the order they were accepted.
struct relay_capture {
    std::vector<std::uint8_t> from_client;
    std::vector<std::uint8_t> from_server;
};

class recording_relay {
public:
    // Listens on 127.0.0.1 (free port) and forwards each connection to 127.0.0.1:target_port.
    explicit recording_relay(std::uint16_t target_port);
    ~recording_relay(); // closes everything, joins the threads
    recording_relay(const recording_relay&) = delete;
    recording_relay& operator=(const recording_relay&) = delete;

    std::uint16_t port() const { return port_; }

    // Waits until `count` connections have been accepted and have ended on both sides (the
    // client closed and the server closed after it); returns the captures of all accepted
    // connections so far, in accept order. Throws on timeout.
    std::vector<relay_capture> wait_for_connections(std::size_t count, std::chrono::milliseconds timeout);

private:
    struct session {
        relay_capture capture;
        bool done = false;
    };
    void accept_loop_();
    void pump_(int client, int server, session& s);

    std::uint16_t target_port_;
    std::uint16_t port_ = 0;
    int listen_fd_ = -1;
    int wake_pipe_[2] = {-1, -1}; // written to on shutdown to wake every poll()
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::unique_ptr<session>> sessions_;
    std::vector<std::thread> threads_;
    std::thread acceptor_;
};

} // namespace pgsluice::test
