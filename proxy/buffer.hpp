// Byte buffers of the relay: a growable read buffer, and the list of pieces of one batched write.
//
// The relay reads whatever the socket has into a byte_buffer, frames the complete messages in
// it, and describes what to send as a gather_list: runs of the read buffer forwarded untouched
// (no copy) interleaved with bytes the proxy wrote itself (rewritten or injected messages,
// synthesized replies). One gather write then sends the whole batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace pgsluice::proxy {

class byte_buffer {
 public:
  // Nothing is allocated until the first prepare(); storage is not zero-filled, so only the
  // pages a read touches count towards the process's memory (10,000 idle clients cost little).
  // Storage of exactly pool_block_size bytes (the relay's buffers) is borrowed from a free list
  // of the thread and given back when released: a client that goes idle keeps no buffer, and
  // the next read does not need malloc.
  static constexpr std::size_t pool_block_size = 4096;
  explicit byte_buffer(std::size_t initial_capacity = pool_block_size) : initial_(initial_capacity) {}
  ~byte_buffer();
  byte_buffer(const byte_buffer&) = delete;
  byte_buffer& operator=(const byte_buffer&) = delete;

  std::span<const std::uint8_t> data() const noexcept { return {data_.get() + begin_, end_ - begin_}; }
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }
  std::size_t capacity() const noexcept { return capacity_; }

  // A writable area of at least `min_bytes` after the data (moving the data to the front or
  // growing the storage when needed); as much as is free when larger.
  std::span<std::uint8_t> prepare(std::size_t min_bytes);
  void commit(std::size_t n) noexcept { end_ += n; }
  void consume(std::size_t n) noexcept;
  // Gives memory back after a large message passed through, once the buffer is empty.
  void shrink_if_empty(std::size_t keep);
  // Frees the storage when empty (a client going idle); the next prepare() allocates again.
  void release_if_empty() noexcept;
  // Blocks of pool_block_size kept on this thread's free list (for tests and diagnostics).
  static std::size_t pooled_blocks() noexcept;

 private:
  std::unique_ptr<std::uint8_t[]> data_;
  std::size_t capacity_ = 0;
  std::size_t initial_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

class gather_list {
 public:
  struct piece {
    std::span<const std::uint8_t> bytes;
  };

  // Forward `len` bytes of the read buffer starting at `p` (merged with the previous run when contiguous).
  void add_input(const std::uint8_t* p, std::size_t len);
  // Copy `bytes` into the list's own storage.
  void add_owned(std::span<const std::uint8_t> bytes);
  // Direct access for writers that build a message in place: call begin_owned(), append to the
  // returned vector, then end_owned().
  std::vector<std::uint8_t>& begin_owned() noexcept {
    owned_mark_ = owned_.size();
    return owned_;
  }
  void end_owned();

  bool empty() const noexcept { return runs_.empty(); }
  std::size_t bytes() const noexcept { return total_; }
  void clear() noexcept;

  // Writes as much of the list as the socket `fd` takes now, without waiting (one sendmsg per
  // 64 pieces, MSG_DONTWAIT | MSG_NOSIGNAL). Returns the bytes written; `err` is set to the
  // errno of a failure other than a full socket buffer. The relay's common case: the whole
  // batch goes out here and the coroutine never suspends for the write.
  std::size_t send_now(int fd, int& err) const;
  // Appends the bytes from `offset` on (what send_now left over) to `out`.
  void copy_tail(std::size_t offset, std::vector<std::uint8_t>& out) const;
  // The pieces in order. Valid until the next change (owned bytes may move when they grow).
  template <class F>
  void for_each(F&& f) const {
    for (const auto& r : runs_) {
      f(r.owned ? std::span<const std::uint8_t>(owned_.data() + r.offset, r.len)
                : std::span<const std::uint8_t>(r.ptr, r.len));
    }
  }

 private:
  struct run {
    bool owned;
    const std::uint8_t* ptr;  // input runs
    std::size_t offset;       // owned runs
    std::size_t len;
  };
  std::vector<run> runs_;
  std::vector<std::uint8_t> owned_;
  std::size_t owned_mark_ = 0;
  std::size_t total_ = 0;
};

}  // namespace pgsluice::proxy
