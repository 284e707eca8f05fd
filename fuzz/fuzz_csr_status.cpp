// What the CSR API returns for the CSR strategy: a CertificateSigningRequest
// object (its status.certificate, base64 PEM, and its conditions), and the
// certificate in it, checked before it would be handed out.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const pinniped::ClientKey key = pinniped::ClientKey::generate();
  fuzz::expect_error_only([&] {
    auto obj = pinniped::json::parse(fuzz::text(data, size));
    auto outcome = pinniped::CsrIssuer::outcome_of(obj);
    if (outcome.cert_pem.empty()) return;
    pinniped::CertificateExpectation want;
    want.username = "alice";
    want.groups = {"devs", "", "ops"};
    want.spki_der = key.spki_der;
    want.lifetime = std::chrono::seconds(600);
    pinniped::IssuedCertificate out;
    (void)pinniped::check_issued_certificate(outcome.cert_pem, want, out);
  });
  return 0;
}
