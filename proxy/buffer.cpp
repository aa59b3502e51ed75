// Read buffer and gather list of the relay (see buffer.hpp).
#include "proxy/buffer.hpp"

#include <algorithm>
#include <cstring>

namespace pgsluice::proxy {

std::span<std::uint8_t> byte_buffer::prepare(std::size_t min_bytes) {
  if (data_.size() - end_ < min_bytes) {
    const std::size_t used = end_ - begin_;
    if (begin_ > 0) {
      if (used > 0) std::memmove(data_.data(), data_.data() + begin_, used);
      begin_ = 0;
      end_ = used;
    }
    if (data_.size() - end_ < min_bytes) data_.resize(std::max(data_.size() * 2, end_ + min_bytes));
  }
  return {data_.data() + end_, data_.size() - end_};
}

void byte_buffer::consume(std::size_t n) noexcept {
  begin_ += n;
  if (begin_ >= end_) begin_ = end_ = 0;
}

void byte_buffer::shrink_if_empty(std::size_t keep) {
  if (empty() && data_.size() > keep) {
    std::vector<std::uint8_t> fresh(keep);
    data_.swap(fresh);
    begin_ = end_ = 0;
  }
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

void gather_list::clear() noexcept {
  runs_.clear();
  owned_.clear();
  owned_mark_ = 0;
  total_ = 0;
}

}  // namespace pgsluice::proxy
