// RFC 3339 times (expirationTimestamp, the cache): what parses formats, and
// the formatted text parses back to the same second.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only([&] {
    auto t = pinniped::parse_rfc3339(fuzz::text(data, size));
    if (!t) return;
    std::string s = pinniped::format_rfc3339(*t);
    auto back = pinniped::parse_rfc3339(s);
    if (!back || *back != *t) __builtin_trap();
  });
  return 0;
}
