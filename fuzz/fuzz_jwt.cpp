// An ID token and a JWK set, both untrusted. Input: a token, optionally a 0
// byte and a JWKS. The token is verified against fixed keys (the RSA and
// P-256 keys of RFC 7515's examples A.2 and A.3) and, when the JWKS parses,
// against it; the token's bytes also go through the claims checks as a
// payload, the discovery parser, the issuer URL check and the base64url
// decoder.
#include "fuzz/fuzz.hpp"

namespace {

const char *kFixedKeys = R"({"keys":[
  {"kty":"RSA","kid":"rfc7515-a2","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB"},
  {"kty":"EC","kid":"rfc7515-a3","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})";

// A verdict and its reason agree, a refused token leaves nothing to use,
// and no reason repeats a token longer than the longest quote.
void check(const std::string &token, const pinniped::JsonWebKeySet &keys) {
  pinniped::JwtRules rules;
  rules.issuer = "joe";
  rules.audience = "bob";
  auto c = pinniped::verify_jwt(token, keys, rules, pinniped::clock_from_time_t(1300819000));
  if (c.ok != c.reason.empty()) std::abort();
  if (!c.ok && (!c.claims.empty() || !c.user.username.empty())) std::abort();
  if (token.size() > 80 && c.reason.find(token) != std::string::npos) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const auto fixed = pinniped::JsonWebKeySet::parse(kFixedKeys);
  auto in = fuzz::split_at_nul(fuzz::text(data, size));  // token, JWKS
  check(in.first, *fixed);
  fuzz::expect_error_only([&] { check(in.first, *pinniped::JsonWebKeySet::parse(in.second)); });
  fuzz::expect_error_only([&] {
    auto v = pinniped::json::parse(in.first);
    pinniped::JwtRules rules;
    rules.issuer = "joe";
    rules.audience = "bob";
    pinniped::JwtCheck c;
    if (v.is<picojson::object>())
      (void)pinniped::detail::check_claims(v.get<picojson::object>(), rules, pinniped::Clock::now(), c);
  });
  fuzz::expect_error_only([&] { (void)pinniped::parse_oidc_discovery(in.first, "https://idp.example.com"); });
  (void)pinniped::validate_issuer_url(in.first);
  // The decoder takes one spelling per value: what it decodes encodes back
  // to the same text.
  if (auto raw = pinniped::detail::base64url_decode(in.first))
    if (pinniped::detail::base64url_encode(*raw) != in.first) std::abort();
  return 0;
}
