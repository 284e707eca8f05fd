// An error body from kube-apiserver or the concierge (kube_error,
// exchange_token): anything that is not a Status reads as nullopt.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only([&] { (void)pinniped::Status::from_body(fuzz::text(data, size)); });
  return 0;
}
