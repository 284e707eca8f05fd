// The cluster signer: certificate bundle, a 0 byte, then the key.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto in = fuzz::split_at_nul(fuzz::text(data, size));  // certificates, key
  fuzz::expect_error_only([&] {
    auto s = pinniped::Signer::from_pem(in.first, in.second);
    (void)s->subject();
  });
  return 0;
}
