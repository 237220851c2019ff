// Fuzz target: one message of the source/server split as a server receives it from NATS
// (core/src/net/wire.cpp). decode() must never throw, crash or read past the end; a message it
// accepts must encode back to the same bytes' meaning (kind, interval, meta, payload).
#include <cstdlib>
#include <variant>

#include <oneadapt/error.hpp>

#include "net/wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace oneadapt::net;
  oneadapt::net::Limits limits;
  limits.max_payload = 1 << 20;
  auto r = decode(data, size, limits);
  if (auto* m = std::get_if<Message>(&r)) {
    std::vector<std::uint8_t> again;
    try {
      again = encode(*m, limits);
    } catch (const oneadapt::Error&) {
      return 0;  // re-dumped meta can grow (1e9 -> 1000000000.0) past the limit: refused, fine
    }
    auto back = decode(again.data(), again.size(), limits);
    const auto* n = std::get_if<Message>(&back);
    if (n == nullptr || n->kind != m->kind || n->interval != m->interval || n->meta != m->meta ||
        n->payload != m->payload)
      std::abort();
  }
  return 0;
}
