// Endpoint URLs (webhooks, kubeconfig servers): what parses has a host and a
// port, and base() parses back to the same host and port.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only([&] {
    auto u = pinniped::Url::parse(fuzz::text(data, size));
    if (u.host.empty() || u.port < 1 || u.port > 65535 || u.path.empty() || u.path[0] != '/') __builtin_trap();
    auto again = pinniped::Url::parse(u.base());
    if (again.host != u.host || again.port != u.port) __builtin_trap();
  });
  return 0;
}
