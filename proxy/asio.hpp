// Internal to proxy/: the Boost.Asio pieces the I/O code uses, in one place (never included by tests or other modules).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace pgsluice::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
// Server connections: TCP or a Unix-domain socket (a backend whose host is a directory) behind
// one socket type. A generic stream socket is the same reactive socket as tcp::socket (the
// protocol is a runtime family/protocol pair, nothing virtual), so the relay has one code path.
using stream_socket = asio::generic::stream_protocol::socket;
using stream_endpoint = asio::generic::stream_protocol::endpoint;
template <class T = void>
using awaitable = asio::awaitable<T>;

// Completion token that reports errors as values ([ec, n] = co_await ...), never as exceptions:
// the relay treats a failed read or write as an event, not as a bug.
inline constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

}  // namespace pgsluice::proxy
