// POST body of a WhoAmIRequest: the checks Concierge::create makes before it
// answers (object, apiVersion, kind, metadata).
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace pinniped;
  fuzz::expect_error_only([&] {
    picojson::value body = json::parse(fuzz::text(data, size));
    if (!body.is<picojson::object>()) return;
    (void)json::get_string(body, "apiVersion", "apiVersion");
    (void)json::get_string(body, "kind", "kind");
    if (const auto *m = json::get_object(body, "metadata", "metadata")) (void)ObjectMeta::from_json(*m).to_json();
  });
  return 0;
}
