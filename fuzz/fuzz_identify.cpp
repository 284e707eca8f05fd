// The request-header identity: headers a verified front proxy sends
// (X-Remote-User, X-Remote-Group, X-Remote-Extra-*). Input: "Name: value"
// lines.
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace pinniped;
  static const PeerCertificate peer{true, true, "front-proxy-client", {}};
  static const RequestHeaderConfig config = [] {
    RequestHeaderConfig c;
    c.client_ca_pem = "-----BEGIN CERTIFICATE-----\n";  // only "set" matters to identify()
    c.username_headers = {"X-Remote-User", "X-Other-User"};
    c.extra_prefixes = {"X-Remote-Extra-", "X-Extra-"};
    return c;
  }();
  httplib::Request req;
  for (const auto &line : detail::split(fuzz::text(data, size), '\n')) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    req.headers.emplace(line.substr(0, colon), detail::trim(line.substr(colon + 1)));
  }
  fuzz::expect_error_only([&] { (void)to_json_string(identify(req, peer, config).to_json()); });
  return 0;
}
