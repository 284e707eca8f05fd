// KUBERNETES_EXEC_INFO, what client-go hands the exec plugin.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only([&] { (void)pinniped::ExecCredentialRequest::parse(fuzz::text(data, size)); });
  return 0;
}
