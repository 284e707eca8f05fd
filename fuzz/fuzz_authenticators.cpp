// The authenticators file (--authenticators): YAML documents or a List.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only([&] { (void)pinniped::parse_authenticators(fuzz::text(data, size), "pinniped.dev"); });
  return 0;
}
