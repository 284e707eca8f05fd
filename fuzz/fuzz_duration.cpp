// Go-style durations (spec.timeout, flags): never negative, never above 1e12 ms.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only([&] {
    auto d = pinniped::parse_duration(fuzz::text(data, size));
    if (d && (d->count() < 0 || d->count() > 1000000000000LL)) __builtin_trap();
  });
  return 0;
}
