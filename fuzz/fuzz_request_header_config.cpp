// The kube-system/extension-apiserver-authentication ConfigMap (its list
// values are JSON inside strings).
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only(
      [&] { (void)pinniped::RequestHeaderConfig::from_configmap(pinniped::json::parse(fuzz::text(data, size))); });
  return 0;
}
