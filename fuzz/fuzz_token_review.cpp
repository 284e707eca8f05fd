// A TokenReview: what a webhook IDP answers (WebhookAuthenticator) and what
// the local-user-authenticator is asked.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only([&] {
    auto r = pinniped::TokenReview::from_json(pinniped::json::parse(fuzz::text(data, size)));
    (void)pinniped::to_json_string(r.to_json(false));
  });
  return 0;
}
