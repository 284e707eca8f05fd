// A WebhookAuthenticator object as the API server (or a file) gives it.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only(
      [&] { (void)pinniped::WebhookAuthenticatorObject::from_json(pinniped::json::parse(fuzz::text(data, size))); });
  return 0;
}
