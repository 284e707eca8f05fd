// The local-user-authenticator's users file.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only([&] {
    for (const auto &u : pinniped::parse_users_file(fuzz::text(data, size))) (void)pinniped::users_file_line(u);
  });
  return 0;
}
