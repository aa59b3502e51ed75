// Internal to proxy/ (the relay only): a socket read that makes no attempt bound to fail and
// borrows its buffer only once bytes are there.
//
// Asio's async_read_some tries the read at once and only then waits, so every relay read of a
// query or a reply not arrived yet cost a recv returning EAGAIN; and the buffer it reads into
// is held the whole time the client is idle. async_read_into() differs in two ways:
//  - a read that comes back short (the kernel's buffer emptied) and ends where the peer waits
//    for an answer (`settled`: a ReadyForQuery from a server, a Query or Sync from a client)
//    tells the event loop the socket is exhausted (Asio's done_and_exhausted): the next read
//    on that socket is queued without an attempt until an event says bytes arrived. An event
//    that comes while nothing is queued re-enables the attempt, so nothing is missed. A short
//    read is not enough on its own: bytes and the peer's close can arrive as one event (a
//    server's FATAL, then its close), and the close would never wake a read queued without
//    an attempt; after any other last message the next read tries first, as Asio's does.
//  - the byte_buffer is prepared inside the attempt; an attempt that finds nothing gives an
//    empty buffer back at once, so a waiting client holds none.
// Requires a socket whose io_context one thread runs (a worker): the attempt runs on that
// thread between handlers, never while the session's coroutines are running.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>

#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>

#include "proxy/asio.hpp"
#include "proxy/buffer.hpp"

namespace pgsluice::proxy {

// Whether the bytes read so far end where the peer waits for this side (see above).
using settled_fn = bool (*)(std::span<const std::uint8_t> bytes) noexcept;

// A server's reply ends with ReadyForQuery ('Z', length 5, status). A message whose payload
// happens to end the same way can only make a later close wait for the next write.
inline bool ends_with_ready_for_query(std::span<const std::uint8_t> b) noexcept {
  if (b.size() < 6) return false;
  const std::uint8_t* z = b.data() + b.size() - 6;
  return z[0] == 'Z' && z[1] == 0 && z[2] == 0 && z[3] == 0 && z[4] == 5 && (z[5] == 'I' || z[5] == 'T' || z[5] == 'E');
}

// A client's batch ends with a message it then waits on (Query, Sync, Flush, FunctionCall),
// on a message boundary (walked from the start: a client's buffer holds one batch).
inline bool ends_awaiting_reply(std::span<const std::uint8_t> b) noexcept {
  std::size_t at = 0;
  std::uint8_t last = 0;
  while (at + 5 <= b.size()) {
    const std::uint32_t len = (std::uint32_t{b[at + 1]} << 24) | (std::uint32_t{b[at + 2]} << 16) |
                              (std::uint32_t{b[at + 3]} << 8) | std::uint32_t{b[at + 4]};
    if (len < 4 || len > b.size() - at - 1) return false;
    last = b[at];
    at += 1 + std::size_t{len};
  }
  return at == b.size() && (last == 'Q' || last == 'S' || last == 'H' || last == 'F');
}

namespace ready_read_detail {

// basic_socket keeps its service implementation (descriptor, reactor registration) protected.
template <class Socket>
struct socket_access : Socket {
  static auto& impl(Socket& s) noexcept { return s.*(&socket_access::impl_); }
};

// The event loop's reactor (one per io_context), looked up once per thread.
template <class Socket>
asio::detail::reactor& reactor_of(Socket& s) {
  thread_local asio::execution_context* context = nullptr;
  thread_local asio::detail::reactor* reactor = nullptr;
  auto& c = asio::query(s.get_executor(), asio::execution::context);
  if (&c != context) {
    reactor = &asio::use_service<asio::detail::reactor>(c);
    context = &c;
  }
  return *reactor;
}

template <class Handler, class IoExecutor>
class read_op : public asio::detail::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(read_op);

  read_op(int fd, byte_buffer& into, std::size_t min_bytes, settled_fn settled, Handler& h, const IoExecutor& ex)
      : reactor_op(boost::system::error_code(), &do_perform, &do_complete),
        fd_(fd),
        into_(into),
        min_bytes_(min_bytes),
        settled_(settled),
        handler_(static_cast<Handler&&>(h)),
        work_(handler_, ex) {}

 private:
  static status do_perform(reactor_op* base) {
    auto* o = static_cast<read_op*>(base);
    const auto space = o->into_.prepare(o->min_bytes_);
    for (;;) {
      const ssize_t n = ::recv(o->fd_, space.data(), space.size(), MSG_DONTWAIT);
      if (n > 0) {
        const auto got = static_cast<std::size_t>(n);
        o->bytes_transferred_ = got;
        // prepare() put the free space right behind the data: the bytes so far are contiguous.
        const auto now = std::span<const std::uint8_t>(space.data() - o->into_.size(), o->into_.size() + got);
        return got < space.size() && o->settled_(now) ? done_and_exhausted : done;
      }
      if (n == 0) {
        o->ec_ = asio::error::eof;
        return done;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        o->into_.release_if_empty();
        return not_done;
      }
      o->ec_ = boost::system::error_code(errno, asio::error::get_system_category());
      return done;
    }
  }

  // As Asio's own reactor operations complete: the memory goes back before the upcall.
  static void do_complete(void* owner, asio::detail::operation* base, const boost::system::error_code&, std::size_t) {
    auto* o = static_cast<read_op*>(base);
    ptr p = {asio::detail::addressof(o->handler_), o, o};
    asio::detail::handler_work<Handler, IoExecutor> w(static_cast<asio::detail::handler_work<Handler, IoExecutor>&&>(o->work_));
    asio::detail::binder2<Handler, boost::system::error_code, std::size_t> handler(o->handler_, o->ec_, o->bytes_transferred_);
    p.h = asio::detail::addressof(handler.handler_);
    p.reset();
    if (owner != nullptr) {
      asio::detail::fenced_block b(asio::detail::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

  int fd_;
  byte_buffer& into_;
  std::size_t min_bytes_;
  settled_fn settled_;
  Handler handler_;
  asio::detail::handler_work<Handler, IoExecutor> work_;
};

}  // namespace ready_read_detail

// Reads once into the free space of `into` (at least `min_bytes`, prepared when bytes are
// there) and completes with [ec, n]; the caller commits n. ec = eof at the end of the stream.
// `settled` judges a short read (above): ends_with_ready_for_query for servers,
// ends_awaiting_reply for clients.
// `into` must not be touched until the read completes. Cancelled (operation_aborted) by the
// socket's cancel() and close(), like any Asio operation.
template <class Socket, class Token>
auto async_read_into(Socket& s, byte_buffer& into, std::size_t min_bytes, settled_fn settled, Token&& token) {
  return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      [](auto handler, Socket* s, byte_buffer* into, std::size_t min_bytes, settled_fn settled) {
        using op = ready_read_detail::read_op<decltype(handler), typename Socket::executor_type>;
        auto& impl = ready_read_detail::socket_access<Socket>::impl(*s).get_implementation();
        typename op::ptr p = {asio::detail::addressof(handler), op::ptr::allocate(handler), 0};
        p.p = new (p.v) op(impl.socket_, *into, min_bytes, settled, handler, s->get_executor());
        op* started = p.p;
        p.v = p.p = 0;
        into->release_if_empty();  // until bytes are there, the buffer is not this socket's
        ready_read_detail::reactor_of(*s).start_op(asio::detail::reactor::read_op, impl.socket_, impl.reactor_data_,
                                                   started, false, true);
      },
      token, &s, &into, min_bytes, settled);
}

// False when the event loop has seen nothing arrive on `s` since a read on it last came back
// short: the peer sent nothing (or nothing the loop has seen yet), so a look costs a system
// call for nothing. True when it may have (or when unknown). Call on the socket's own thread.
bool may_have_input(tcp::socket& s);

}  // namespace pgsluice::proxy
