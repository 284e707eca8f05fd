// Temporary smoke suite, replaced by the section suites.
#include <catch2/catch.hpp>

#include "tests/support.hpp"

TEST_CASE("a concierge exchanges a token for a certificate") {
  testing::TempDir dir;
  testing::FakeIdp idp;
  idp.add_user("good-token", {"alice", "", {"devs", "ops"}, {}});
  auto signer = testing::openssl_signer(dir, "signer", "ec", "/CN=k3s-client-ca");
  dir.write("auth.yaml", testing::authenticator_yaml("my-idp", idp.url(), idp.ca_data()));
  testing::ConciergeProcess c(dir, {"--signer-cert", signer.cert_file, "--signer-key", signer.key_file,
                                    "--authenticators", dir.file("auth.yaml")});
  auto res = c.request("POST", testing::kTcrPath, testing::tcr_body("good-token"));
  REQUIRE(res.status == 201);
  auto out = pinniped::TokenCredentialRequest::from_json(pinniped::json::parse(res.body));
  REQUIRE(out.credential);
  CHECK(out.credential->client_certificate_data.find("BEGIN CERTIFICATE") != std::string::npos);
  CHECK(res.body.find("good-token") == std::string::npos);
}
