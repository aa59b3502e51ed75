// The relay's state machine (see relay_machine.hpp).
#include "proxy/relay_machine.hpp"

#include <algorithm>

namespace pgsluice::proxy {

const char* to_string(relay_state s) noexcept {
  switch (s) {
    case relay_state::login: return "login";
    case relay_state::idle: return "idle";
    case relay_state::waiting: return "waiting";
    case relay_state::active: return "active";
    case relay_state::releasing: return "releasing";
    case relay_state::ending: return "ending";
    case relay_state::closing: return "closing";
    case relay_state::closed: return "closed";
  }
  return "?";
}

client_state gauge_of(relay_state s) noexcept {
  switch (s) {
    case relay_state::login: return client_state::login;
    case relay_state::idle: return client_state::idle;
    case relay_state::waiting: return client_state::waiting;
    case relay_state::active:
    case relay_state::releasing:
    case relay_state::ending: return client_state::active;
    case relay_state::closing: return client_state::closing;
    case relay_state::closed: return client_state::closed;
  }
  return client_state::closed;
}

void relay_machine::set_state(relay_state s) noexcept {
  if (s == state_) return;
  const relay_state from = state_;
  state_ = s;
  if (obs_ != nullptr) obs_->state_changed(from, s);
}

void relay_machine::logged_in() noexcept {
  if (state_ != relay_state::login) return;
  set_state(attached_ ? relay_state::active : relay_state::idle);
}

bool relay_machine::needs_server() noexcept {
  if (ending()) return false;
  if (attached_) {
    // The client goes on before a release due after a write happened: the server stays.
    if (state_ == relay_state::releasing) set_state(relay_state::active);
    return false;
  }
  set_state(relay_state::waiting);
  return true;
}

void relay_machine::attached(bool for_login) noexcept {
  if (ending()) return;
  attached_ = true;
  set_state(for_login ? relay_state::login : relay_state::active);
}

void relay_machine::attach_failed() noexcept {
  if (state_ == relay_state::waiting) set_state(relay_state::idle);
}

relay_machine::release_action relay_machine::between_requests(bool may_release) noexcept {
  if (!attached_ || ending() || !may_release || !streams_idle()) return release_action::keep;
  if (server_writing_) {
    set_state(relay_state::releasing);
    return release_action::release_after_write;
  }
  return release_action::release_now;
}

void relay_machine::detached() noexcept {
  attached_ = false;
  server_fatal_ = false;
  if (state_ == relay_state::active || state_ == relay_state::releasing || state_ == relay_state::waiting)
    set_state(relay_state::idle);
}

bool relay_machine::server_write_finished() noexcept {
  server_writing_ = false;
  return state_ == relay_state::releasing && attached_;
}

bool relay_machine::end(end_reason r) noexcept {
  if (ending()) return false;
  reason_ = r;
  set_state(relay_state::ending);
  return true;
}

void relay_machine::client_stream(std::size_t left) noexcept { client_left_ = left; }

std::size_t relay_machine::client_streamed(std::size_t n) noexcept {
  const std::size_t k = std::min(n, client_left_);
  client_left_ -= k;
  return k;
}

void relay_machine::server_stream(std::size_t left, bool forward) noexcept {
  server_left_ = left;
  server_forward_ = forward;
}

std::size_t relay_machine::server_streamed(std::size_t n) noexcept {
  const std::size_t k = std::min(n, server_left_);
  server_left_ -= k;
  return k;
}

bool relay_machine::pin() noexcept {
  if (pinned_) return false;
  pinned_ = true;
  return true;
}

}  // namespace pgsluice::proxy
