// Client sessions, the in-flight read retry: a read-only batch whose server fails before any byte of its reply reached the client runs again on another backend.
//
// Only what can be run again without the client noticing is kept: a batch that starts a
// transaction routed as a read (an autocommit SELECT, or the first statement of a read-only
// transaction with its held BEGIN), made of simple Query or unnamed/already-known extended
// messages ending in Sync or Query, with no reply the proxy answered itself. From the first
// byte of the result forwarded to the client it is dropped: from then on the client has seen
// part of it, and a failure is reported as PostgreSQL would (08006), never replayed. The
// reply's prelude (ParseComplete, BindComplete, descriptions) is the same from every server:
// the client may have it already; the second server's copy is then swallowed.
#include <spdlog/spdlog.h>

#include "protocol/codec.hpp"
#include "protocol/fields.hpp"
#include "protocol/framing.hpp"
#include "proxy/client_session.hpp"
#include "proxy/cluster.hpp"
#include "proxy/pool.hpp"
#include "proxy/relay_detail.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_connection.hpp"

namespace pgsluice::proxy {

using namespace relay_detail;

namespace {

// Larger batches are not kept (a bulk statement is rarely a read worth the copy).
constexpr std::size_t retry_batch_limit = 64 * 1024;
// Each kept batch runs at most this many more times (every backend it failed on is avoided once).
constexpr std::uint8_t max_retries = 2;

}  // namespace

void client_session::arm_read_retry(std::span<const std::uint8_t> batch, const std::vector<std::uint8_t>& begin) {
  retry_batch_.clear();
  retries_ = 0;
  retry_on_close_ = false;
  retry_prelude_sent_ = 0;
  retry_prelude_skip_ = 0;
  if (batch.empty() || batch.size() > retry_batch_limit || machine_.pinned() || frames_.empty()) return;
  const char last = frames_.back().tag;
  if (last != 'S' && last != 'Q') return;
  for (const auto& f : frames_) {
    switch (f.tag) {
      case 'Q': case 'B': case 'D': case 'E': case 'S': case 'H':
        break;
      case 'P': {
        // A named Parse registers the client's statement: sending it twice would be 42P05.
        const auto p = protocol::read_parse(body_of(batch, f.offset, f.size));
        if (!p || !p->name.empty()) return;
        break;
      }
      default:
        return;  // Close forgets a statement, COPY data and function calls are not reads
    }
  }
  retry_batch_.assign(batch.begin(), batch.end());
  retry_begin_ = begin;
}

bool client_session::read_retry_possible() const noexcept {
  return read_retry_armed() && retries_ < max_retries && client_reading_ && !retrying_ && !machine_.ending() &&
         !machine_.server_writing() && machine_.streams_idle() && capture_bytes_ == nullptr && held_ready_.empty() &&
         transaction_mode_ && routing_;
}

awaitable<bool> client_session::retry_read(std::string_view why) {
  retrying_ = true;
  ++retries_;
  retry_on_close_ = false;
  cluster::backend* failed = counted_backend_;
  spdlog::info("{} read_retry server={} backend={} attempt={} reason=\"{}\"", name_,
               server_ ? server_->name() : std::string("-"),
               failed != nullptr ? failed->cfg.host + ":" + std::to_string(failed->cfg.port) : std::string("-"), retries_, why);
  rt_.stats().add(counter::read_retries);
  // The failed server is closed, not pooled; nothing of it is kept.
  auto s = std::move(server_);
  set_cancel_target(nullptr);
  tracker_.clear();
  machine_.detached();
  if (counted_backend_ != nullptr) counted_backend_->active.fetch_sub(1, std::memory_order_relaxed);
  counted_backend_ = nullptr;
  if (s) pool_->release(std::move(s), false);
  sbuf_.consume(sbuf_.data().size());
  held_begin_ = retry_begin_;
  // What the client has of the reply's prelude is not sent again.
  retry_prelude_skip_ = retry_prelude_sent_;
  retry_prelude_sent_ = 0;
  // The batch again, framed as the client pump frames it.
  frames_.clear();
  std::span<const std::uint8_t> data(retry_batch_);
  for (std::size_t at = 0; at < data.size();) {
    const auto r = protocol::next_frame(data.subspan(at), max_message_size_);
    if (!r.is_frame()) break;
    frames_.push_back(client_frame{r.f.tag, static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(r.f.size)});
    at += r.f.size;
  }
  class_frame_ = ~std::size_t{0};
  retry_avoid_ = failed;
  const bool attached = machine_.needs_server() && (attach_now() || (!machine_.ending() && co_await attach_server()));
  retry_avoid_ = nullptr;
  bool ok = attached && !machine_.ending();
  if (ok) {
    emit_target_ = &client_emit_;
    ok = process_client(data);
    tracker_.emit_ready(*this);
    if (ok && !client_emit_.empty()) ok = co_await write_client(client_emit_);
    if (ok && !to_server_.empty() && server_) ok = co_await send_batch();
    to_server_.clear();
  }
  retrying_ = false;
  write_done_.cancel();  // a client pump waiting for the retry goes on
  co_return ok && !machine_.ending();
}

}  // namespace pgsluice::proxy
