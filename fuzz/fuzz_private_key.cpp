// A private key (SEC1, PKCS#1, PKCS#8; PEM or DER).
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only([&] {
    auto key = pinniped::PrivateKey::parse(fuzz::text(data, size));
    (void)key->describe();
    (void)key->public_der();
  });
  return 0;
}
