// Byte buffers of the relay: a growable read buffer, and the list of pieces of one batched write.
//
// The relay reads whatever the socket has into a byte_buffer, frames the complete messages in
// it, and describes what to send as a gather_list: runs of the read buffer forwarded untouched
// (no copy) interleaved with bytes the proxy wrote itself (rewritten or injected messages,
// synthesized replies). One gather write then sends the whole batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace pgsluice::proxy {

class byte_buffer {
 public:
  explicit byte_buffer(std::size_t initial_capacity = 16 * 1024) : data_(initial_capacity) {}

  std::span<const std::uint8_t> data() const noexcept { return {data_.data() + begin_, end_ - begin_}; }
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }

  // A writable area of at least `min_bytes` after the data (moving the data to the front or
  // growing the storage when needed); as much as is free when larger.
  std::span<std::uint8_t> prepare(std::size_t min_bytes);
  void commit(std::size_t n) noexcept { end_ += n; }
  void consume(std::size_t n) noexcept;
  // Gives memory back after a large message passed through, once the buffer is empty.
  void shrink_if_empty(std::size_t keep) ;

 private:
  std::vector<std::uint8_t> data_;
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
