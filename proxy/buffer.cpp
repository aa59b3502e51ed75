// Read buffer and gather list of the relay (see buffer.hpp).
#include "proxy/buffer.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace pgsluice::proxy {

namespace {

// The thread's free blocks of byte_buffer::pool_block_size bytes. Bounded, so that a burst of
// busy clients leaves at most this much behind once they are idle again.
constexpr std::size_t pool_keep = 256;

struct block_pool {
  std::vector<std::unique_ptr<std::uint8_t[]>> free;
};
thread_local block_pool pool;

std::unique_ptr<std::uint8_t[]> take_block(std::size_t size) {
  if (size == byte_buffer::pool_block_size && !pool.free.empty()) {
    auto b = std::move(pool.free.back());
    pool.free.pop_back();
    return b;
  }
  return std::make_unique_for_overwrite<std::uint8_t[]>(size);
}

void give_block(std::unique_ptr<std::uint8_t[]> b, std::size_t size) noexcept {
  if (!b || size != byte_buffer::pool_block_size || pool.free.size() >= pool_keep) return;
  try {
    pool.free.push_back(std::move(b));
  } catch (...) {  // no room to keep it: freed instead
  }
}

}  // namespace

byte_buffer::~byte_buffer() { give_block(std::move(data_), capacity_); }

std::size_t byte_buffer::pooled_blocks() noexcept { return pool.free.size(); }

std::span<std::uint8_t> byte_buffer::prepare(std::size_t min_bytes) {
  if (capacity_ - end_ < min_bytes) {
    const std::size_t used = end_ - begin_;
    if (begin_ > 0) {
      if (used > 0) std::memmove(data_.get(), data_.get() + begin_, used);
      begin_ = 0;
      end_ = used;
    }
    if (capacity_ - end_ < min_bytes) {
      const std::size_t grown = std::max({capacity_ * 2, end_ + min_bytes, initial_});
      auto fresh = take_block(grown);
      if (used > 0) std::memcpy(fresh.get(), data_.get(), used);
      give_block(std::exchange(data_, std::move(fresh)), capacity_);
      capacity_ = grown;
    }
  }
  return {data_.get() + end_, capacity_ - end_};
}

void byte_buffer::consume(std::size_t n) noexcept {
  begin_ += n;
  if (begin_ >= end_) begin_ = end_ = 0;
}

void byte_buffer::shrink_if_empty(std::size_t keep) {
  if (empty() && capacity_ > keep) {
    give_block(std::exchange(data_, take_block(keep)), capacity_);
    capacity_ = keep;
    begin_ = end_ = 0;
  }
}

void byte_buffer::release_if_empty() noexcept {
  if (!empty()) return;
  give_block(std::move(data_), capacity_);
  capacity_ = 0;
  begin_ = end_ = 0;
}

void gather_list::add_input(const std::uint8_t* p, std::size_t len) {
  if (len == 0) return;
  total_ += len;
  if (!runs_.empty()) {
    auto& last = runs_.back();
    if (!last.owned && last.ptr + last.len == p) {
      last.len += len;
      return;
    }
  }
  runs_.push_back(run{false, p, 0, len});
}

void gather_list::add_owned(std::span<const std::uint8_t> bytes) {
  auto& out = begin_owned();
  out.insert(out.end(), bytes.begin(), bytes.end());
  end_owned();
}

void gather_list::end_owned() {
  const std::size_t len = owned_.size() - owned_mark_;
  if (len == 0) return;
  total_ += len;
  if (!runs_.empty()) {
    auto& last = runs_.back();
    if (last.owned && last.offset + last.len == owned_mark_) {
      last.len += len;
      return;
    }
  }
  runs_.push_back(run{true, nullptr, owned_mark_, len});
}

std::size_t gather_list::send_now(int fd, int& err) const {
  err = 0;
  constexpr std::size_t max_iov = 64;
  iovec iov[max_iov];
  std::size_t sent = 0;
  std::size_t next = 0;  // first run not yet handed to the kernel
  while (next < runs_.size()) {
    std::size_t count = 0;
    std::size_t batch = 0;
    for (std::size_t i = next; i < runs_.size() && count < max_iov; ++i, ++count) {
      const run& r = runs_[i];
      iov[count].iov_base = const_cast<std::uint8_t*>(r.owned ? owned_.data() + r.offset : r.ptr);
      iov[count].iov_len = r.len;
      batch += r.len;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    ssize_t n;
    do {
      // One piece (a forwarded query or reply, the common case): send(), which spares the
      // kernel importing a message header and an iovec array.
      n = count == 1 ? ::send(fd, iov[0].iov_base, iov[0].iov_len, MSG_DONTWAIT | MSG_NOSIGNAL)
                     : ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      return sent;
    }
    sent += static_cast<std::size_t>(n);
    if (static_cast<std::size_t>(n) < batch) return sent;  // the socket buffer is full
    next += count;
  }
  return sent;
}

void gather_list::copy_tail(std::size_t offset, std::vector<std::uint8_t>& out) const {
  for_each([&](std::span<const std::uint8_t> s) {
    if (offset >= s.size()) {
      offset -= s.size();
      return;
    }
    out.insert(out.end(), s.begin() + static_cast<std::ptrdiff_t>(offset), s.end());
    offset = 0;
  });
}

void gather_list::clear() noexcept {
  runs_.clear();
  owned_.clear();
  owned_mark_ = 0;
  total_ = 0;
}

}  // namespace pgsluice::proxy
