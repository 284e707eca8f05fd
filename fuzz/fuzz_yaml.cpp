// The YAML reader under every file this project reads; what it builds must
// serialise as JSON.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only([&] {
    for (const auto &doc : pinniped::parse_yaml_documents(fuzz::text(data, size))) (void)pinniped::to_json_string(doc);
  });
  return 0;
}
