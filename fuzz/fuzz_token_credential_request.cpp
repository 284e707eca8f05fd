// POST body of a TokenCredentialRequest (the concierge's create handler), and
// the exchange's answer read back by the client (exchange_token).
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only([&] {
    auto r = pinniped::TokenCredentialRequest::from_json(pinniped::json::parse(fuzz::text(data, size)));
    (void)pinniped::to_json_string(r.to_json(true));
  });
  return 0;
}
