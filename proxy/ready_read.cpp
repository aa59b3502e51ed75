#include "proxy/ready_read.hpp"

#include <boost/asio/detail/epoll_reactor.hpp>

namespace pgsluice::proxy {

namespace {

// The reactor's per-socket flag "an attempt may find bytes" is private to Asio; an explicit
// instantiation may name it (access is not checked there), and hands out its address.
using descriptor_state = asio::detail::epoll_reactor::descriptor_state;
using speculative_flags = bool (descriptor_state::*)[asio::detail::epoll_reactor::max_ops];

speculative_flags try_speculative_member();

template <speculative_flags M>
struct expose_flags {
  friend speculative_flags try_speculative_member() { return M; }
};
template struct expose_flags<&descriptor_state::try_speculative_>;

}  // namespace

bool may_have_input(tcp::socket& s) {
  auto& impl = ready_read_detail::socket_access<tcp::socket>::impl(s).get_implementation();
  descriptor_state* d = impl.reactor_data_;
  if (d == nullptr) return true;
  return (d->*try_speculative_member())[asio::detail::epoll_reactor::read_op];
}

}  // namespace pgsluice::proxy
