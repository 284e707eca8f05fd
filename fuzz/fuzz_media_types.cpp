// Content-Type and Accept headers of the concierge's create handler.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string s = fuzz::text(data, size);
  fuzz::expect_error_only([&] {
    (void)pinniped::detail::is_json_media_type(s);
    (void)pinniped::detail::accepts_json(s);
  });
  return 0;
}
