// A certificate bundle (PEM) or one DER certificate: CAs of kubeconfigs,
// webhooks, the request-header ConfigMap, the signer's file.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::expect_error_only([&] {
    auto chain = pinniped::CertificateChain::parse(fuzz::text(data, size));
    (void)chain->size();
    (void)chain->pem();
  });
  return 0;
}
