// Wire types and the small parsers they rely on: JSON round trips, Status,
// durations, timestamps, media types, YAML scalars, log lines.
#include <catch2/catch.hpp>

#include "tests/support.hpp"

using namespace pinniped;

TEST_CASE("TokenCredentialRequest round-trips and never writes the token in answers") {
  TokenCredentialRequest r;
  r.api_version = "login.concierge.pinniped.dev/v1alpha1";
  r.token = "s3cr3t-token";
  r.authenticator = {"authentication.concierge.pinniped.dev", "WebhookAuthenticator", "idp"};
  auto back = TokenCredentialRequest::from_json(json::parse(r.to_json(true).serialize()));
  CHECK(back.token == "s3cr3t-token");
  CHECK(back.authenticator.api_group == "authentication.concierge.pinniped.dev");
  CHECK(back.authenticator.kind == "WebhookAuthenticator");
  CHECK(back.authenticator.name == "idp");
  CHECK(!back.credential);

  r.credential = ClusterCredential{"2026-11-28T20:15:00Z", "", "CERT", "KEY"};
  std::string answer = to_json_string(r.to_json(false));
  CHECK(answer.find("s3cr3t-token") == std::string::npos);
  CHECK(answer.find("\"spec\":{}") != std::string::npos);
  auto parsed = TokenCredentialRequest::from_json(json::parse(answer));
  REQUIRE(parsed.credential);
  CHECK(parsed.credential->expiration_timestamp == "2026-11-28T20:15:00Z");
  CHECK(parsed.credential->client_certificate_data == "CERT");
  CHECK(parsed.credential->client_key_data == "KEY");
  CHECK(answer.find("login.concierge.pinniped.dev/v1alpha1") != std::string::npos);  // '/' not escaped
}

TEST_CASE("wrong JSON types are BadRequests naming the field") {
  struct Row {
    std::string body, field;
  };
  std::vector<Row> rows = {
      {R"({"spec":{"token":5}})", "spec.token"},
      {R"({"spec":[]})", "spec"},
      {R"({"metadata":"x"})", "metadata"},
      {R"({"apiVersion":true})", "apiVersion"},
      {R"({"spec":{"authenticator":{"name":[1]}}})", "spec.authenticator.name"},
      {R"({"metadata":{"namespace":{}}})", "metadata.namespace"},
      {R"({"status":{"credential":"x"}})", "status.credential"},
  };
  for (const auto &r : rows) {
    INFO(r.body);
    try {
      TokenCredentialRequest::from_json(json::parse(r.body));
      FAIL("accepted");
    } catch (const Error &e) {
      CHECK(e.code == 400);
      CHECK(std::string(e.what()).find(r.field) == 0);
    }
  }
}

TEST_CASE("json::parse refuses garbage and absurd nesting") {
  std::vector<std::string> bad_inputs = {
      "", "{", "{\"a\":}", "[1,2", "nul", "{\"a\":1}x", std::string(100, '[') + std::string(100, ']')};
  for (const auto &bad : bad_inputs) {
    INFO(bad);
    CHECK_THROWS_AS(json::parse(bad), Error);
  }
  CHECK(json::parse(std::string(60, '[') + std::string(60, ']')).is<picojson::array>());
  CHECK(json::parse("\"[[[[\"").is<std::string>());  // brackets inside strings do not count
}

TEST_CASE("TokenReview round-trips user info for both API versions") {
  for (std::string v : {"authentication.k8s.io/v1", "authentication.k8s.io/v1beta1"}) {
    TokenReview t;
    t.api_version = v;
    t.token = "tok";
    t.authenticated = true;
    t.user = {"jane", "", {"a", "b,c", "d\"e"}, {}};
    auto back = TokenReview::from_json(json::parse(t.to_json(true).serialize()));
    CHECK(back.api_version == v);
    CHECK(back.token == "tok");
    CHECK(back.authenticated);
    CHECK(back.user.username == "jane");
    CHECK(back.user.groups == std::vector<std::string>{"a", "b,c", "d\"e"});
    CHECK(t.to_json(false).serialize().find("\"tok\"") == std::string::npos);
  }
  auto withExtra = TokenReview::from_json(json::parse(
      R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","status":{"authenticated":true,"user":{"username":"u","uid":"42","extra":{"k":["v1","v2"]}}}})"));
  CHECK(withExtra.user.uid == "42");
  CHECK(withExtra.user.extra.at("k") == std::vector<std::string>{"v1", "v2"});
  CHECK(certificate_user_problem(withExtra.user).find("uid") != std::string::npos);
  CHECK_THROWS_AS(TokenReview::from_json(json::parse(R"({"kind":"Other"})")), Error);
}

TEST_CASE("Status carries code, reason and causes") {
  Error e(422, "Invalid", "bad", {{"FieldValueRequired", "spec.token.value", "Required value"}});
  auto v = json::parse(to_json_string(Status::from_error(e).to_json()));
  CHECK(json::get_string(v, "kind", "") == "Status");
  CHECK(json::get_string(v, "apiVersion", "") == "v1");
  CHECK(json::get_string(v, "status", "") == "Failure");
  CHECK(json::get_string(v, "reason", "") == "Invalid");
  CHECK(json::field(v, "code")->get<int64_t>() == 422);
  const auto &cause = json::field(*json::field(v, "details"), "causes")->get<picojson::array>().at(0);
  CHECK(json::get_string(cause, "field", "") == "spec.token.value");
  auto back = Status::from_body(to_json_string(Status::from_error(e).to_json()));
  REQUIRE(back);
  CHECK(back->code == 422);
  CHECK(!Status::from_body("{\"kind\":\"Pod\"}"));
  CHECK(reason_for_code(413) == "RequestEntityTooLarge");
  CHECK(reason_for_code(415) == "UnsupportedMediaType");
}

TEST_CASE("durations parse like Go's") {
  CHECK(parse_duration("10s")->count() == 10000);
  CHECK(parse_duration("500ms")->count() == 500);
  CHECK(parse_duration("1h30m")->count() == 5400000);
  CHECK(parse_duration("2m3.5s")->count() == 123500);
  for (const char *bad : {"", "10", "s", "10x", "-5s", "1e9h", "ten seconds"}) {
    INFO(bad);
    CHECK(!parse_duration(bad));
  }
}

TEST_CASE("RFC 3339 timestamps format and parse") {
  auto t = Clock::from_time_t(1795897943);
  CHECK(format_rfc3339(t) == "2026-11-28T20:32:23Z");
  CHECK(parse_rfc3339("2026-11-28T20:32:23Z") == t);
  CHECK(parse_rfc3339("2026-11-28T21:32:23+01:00") == t);
  CHECK(parse_rfc3339("2026-11-28T20:32:23.123456Z") == t);
  CHECK(!parse_rfc3339("yesterday"));
  CHECK(!parse_rfc3339("2026-11-28T20:32:23"));
}

TEST_CASE("media types: JSON bodies and acceptable answers") {
  CHECK(detail::is_json_media_type("application/json"));
  CHECK(detail::is_json_media_type("Application/JSON; charset=utf-8"));
  CHECK(!detail::is_json_media_type("application/vnd.kubernetes.protobuf"));
  CHECK(!detail::is_json_media_type("text/json"));
  CHECK(detail::accepts_json(""));
  CHECK(detail::accepts_json("*/*"));
  CHECK(detail::accepts_json("application/vnd.kubernetes.protobuf, application/json"));
  CHECK(detail::accepts_json("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"));
  CHECK(!detail::accepts_json("application/vnd.kubernetes.protobuf"));
  CHECK(!detail::accepts_json("application/json;as=Table;v=v1;g=meta.k8s.io"));
  CHECK(!detail::accepts_json("application/json;q=0"));
}

TEST_CASE("YAML documents become JSON values with Kubernetes' scalar rules") {
  auto docs = parse_yaml_documents("a: 1\nb: true\nc: \"true\"\nd: ~\ne: 1.5\nf: [x, 'y']\n---\nk: v\n");
  REQUIRE(docs.size() == 2);
  const auto &d = docs[0];
  CHECK(json::field(d, "a")->get<int64_t>() == 1);
  CHECK(json::field(d, "b")->get<bool>());
  CHECK(json::field(d, "c")->get<std::string>() == "true");
  CHECK(!json::field(d, "d"));
  CHECK(json::field(d, "e")->get<double>() == 1.5);
  CHECK(json::get_string_list(d, "f", "f") == std::vector<std::string>{"x", "y"});
  CHECK(json::get_string(docs[1], "k", "k") == "v");
  CHECK_THROWS_AS(parse_yaml_documents("a: &x [1]\nb: *x\n"), Error);
  try {
    parse_yaml_documents("a: [1,\nb: 2\n");
    FAIL("accepted");
  } catch (const Error &e) {
    CHECK(std::string(e.what()).find("line") != std::string::npos);
  }
}

TEST_CASE("log lines are single JSON objects, control characters escaped") {
  std::vector<std::string> lines;
  Logger log(Logger::Level::info, [&](const std::string &l) { lines.push_back(l); });
  log.info("multi\nline \"quoted\"", {{"path", jv("/apis/x")}, {"n", jv(3)}});
  log.debug("hidden");
  REQUIRE(lines.size() == 1);
  CHECK(std::count(lines[0].begin(), lines[0].end(), '\n') == 1);
  auto v = json::parse(lines[0]);
  CHECK(json::get_string(v, "msg", "") == "multi\nline \"quoted\"");
  CHECK(json::get_string(v, "level", "") == "info");
  CHECK(json::get_string(v, "path", "") == "/apis/x");
  CHECK(lines[0].find("\"/apis/x\"") != std::string::npos);
}

TEST_CASE("UTF-8 validation refuses overlongs, surrogates and truncation") {
  CHECK(detail::valid_utf8("J\xc3\xbcrgen"));
  CHECK(detail::valid_utf8("\xe7\x94\xa8\xe6\x88\xb7"));
  CHECK(detail::valid_utf8("\xf0\x9f\xa6\xad"));
  CHECK(!detail::valid_utf8("\xc0\xaf"));
  CHECK(!detail::valid_utf8("\xed\xa0\x80"));
  CHECK(!detail::valid_utf8("\xe7\x94"));
  CHECK(!detail::valid_utf8("\xff"));
}

TEST_CASE("timestamps outside system_clock's range saturate instead of wrapping") {
  // RFC 5280's "no expiry" and dates before 1678 or after 2262.
  auto far = parse_rfc3339("9999-12-31T23:59:59Z");
  REQUIRE(far);
  CHECK(*far > *parse_rfc3339("2262-01-01T00:00:00Z"));
  auto ancient = parse_rfc3339("1050-01-01T00:00:00Z");
  REQUIRE(ancient);
  CHECK(*ancient < *parse_rfc3339("1700-01-01T00:00:00Z"));
  auto later = parse_rfc3339("2700-06-01T00:00:00Z");
  REQUIRE(later);
  CHECK(*later > Clock::now());
  CHECK(clock_from_time_t(std::numeric_limits<int64_t>::max()) == clock_from_time_t(int64_t(253402300799) * 1000));
  // 64-bit civil time, also where time_t has 32 bits (armhf): known instants.
  CHECK(utc_seconds(1970, 1, 1, 0, 0, 0) == 0);
  CHECK(utc_seconds(2026, 11, 28, 20, 32, 23) == 1795897943);
  CHECK(utc_seconds(2000, 2, 29, 0, 0, 0) == 951782400);
  CHECK(utc_seconds(9999, 12, 31, 23, 59, 59) == int64_t(253402300799));
  CHECK(utc_seconds(1969, 12, 31, 23, 59, 59) == -1);
  // A signer certificate whose notAfter is 99991231235959Z is valid, not expired.
  mbedtls_x509_time t{9999, 12, 31, 23, 59, 59};
  CHECK(detail::from_x509_time(t) > Clock::now());
}

TEST_CASE("RFC 3339 offsets and fields out of range are refused, never thrown") {
  for (const char *bad :
       {"2026-01-01T00:00:00+ab:00", "2026-01-01T00:00:00+01:xy", "2026-01-01T00:00:00+24:00", "2026-13-01T00:00:00Z",
        "2026-01-01T25:00:00Z", "2026-01-01T00:-1:00Z", "2026-01-01T00:00:00+1:000"}) {
    INFO(bad);
    CHECK_NOTHROW(parse_rfc3339(bad));
    CHECK(!parse_rfc3339(bad));
  }
  CHECK(parse_rfc3339("2026-01-01T01:30:00+01:30") == parse_rfc3339("2026-01-01T00:00:00Z"));
}

TEST_CASE("numbers beyond a double are BadRequests in JSON and plain strings in YAML") {
  for (const char *doc : {R"({"spec":{"token":1e999}})", R"([-1e999])", R"({"a":1e400})"}) {
    INFO(doc);
    try {
      json::parse(doc);
      FAIL("accepted");
    } catch (const Error &e) {
      CHECK(e.code == 400);
      CHECK(std::string(e.what()).find("out of range") != std::string::npos);
    }
  }
  auto docs = parse_yaml_documents("a: -inf\nb: 1e999\nc: -nan\nd: .inf\ne: 2.5\n");
  REQUIRE(docs.size() == 1);
  for (const char *k : {"a", "b", "c", "d"}) {
    INFO(k);
    REQUIRE(json::field(docs[0], k));
    CHECK(json::field(docs[0], k)->is<std::string>());
  }
  CHECK(json::field(docs[0], "e")->get<double>() == 2.5);
  // A file of authenticators with such a number is refused by type, with a message.
  auto objs = parse_authenticators(
      "apiVersion: authentication.concierge.pinniped.dev/v1alpha1\n"
      "kind: WebhookAuthenticator\nmetadata: {name: my-idp}\n"
      "spec: {endpoint: 1e999}\n",
      "pinniped.dev");
  REQUIRE(objs.size() == 1);
  CHECK(objs[0].spec.endpoint == "1e999");
  CHECK_THROWS_AS(WebhookAuthenticator("my-idp", objs[0].spec, WebhookOptions()), Error);
}

TEST_CASE("found by fuzzing: RFC 3339 is parsed strictly, a Status body with a huge number is no Status") {
  for (const char *bad : {"2026-+1-01T00:00:00Z", "112-1-1T0:30:0+00:00", "2026-02-31T00:00:00Z", "2026-1-01T00:00:00Z",
                          "2026-01-01 00:00:00Z", "2026-01-01T00:00:0Z"}) {
    INFO(bad);
    CHECK(!parse_rfc3339(bad));
  }
  CHECK(parse_rfc3339("2026-02-28t23:59:59Z"));
  CHECK(!Status::from_body("1e999"));
  CHECK(!Status::from_body(R"({"kind":"Status","code":5e557})"));
}

TEST_CASE("percent-encoding, forms and reason phrases (the helpers the OIDC login and the proxy headers use)") {
  using testing::form_decode;
  using pinniped::detail::form_encode;
  using pinniped::detail::percent_decode;
  using pinniped::detail::percent_encode;
  std::string every_byte;
  for (int c = 0; c < 256; c++) every_byte += static_cast<char>(c);
  std::string enc = percent_encode(every_byte);
  CHECK(enc.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%") ==
        std::string::npos);
  CHECK(enc.size() == 66 + 3 * 190);  // 66 unreserved bytes kept, 190 escaped
  CHECK(percent_decode(enc) == every_byte);
  CHECK(percent_encode("a b&c=d/é") == "a%20b%26c%3Dd%2F%C3%A9");
  // A form's "+" is a space; elsewhere (a header name) it stays.
  CHECK(percent_decode("a+b%2Bc") == "a+b+c");
  CHECK(percent_decode("a+b%2Bc", true) == "a b+c");
  // Escapes that are not two hex digits stay as they are.
  CHECK(percent_decode("100%") == "100%");
  CHECK(percent_decode("%4") == "%4");
  CHECK(percent_decode("%zz%41") == "%zzA");
  std::multimap<std::string, std::string> form = {{"redirect_uri", "http://127.0.0.1:1234/callback"},
                                                  {"scope", "openid offline_access"},
                                                  {"k&=", "v&=+"},
                                                  {"scope", "twice"},
                                                  {"empty", ""}};
  std::string body = form_encode(form);
  CHECK(body ==
        "empty=&k%26%3D=v%26%3D%2B&redirect_uri=http%3A%2F%2F127.0.0.1%3A1234%2Fcallback&scope=openid%20offline_access&"
        "scope=twice");
  CHECK(form_decode(body) == form);
  CHECK(form_decode("a=1&&b&c=x+y") == std::multimap<std::string, std::string>{{"a", "1"}, {"b", ""}, {"c", "x y"}});
  CHECK(form_encode({}).empty());
  CHECK(std::string(pinniped::detail::http_reason_phrase(404)) == "Not Found");
  CHECK(std::string(pinniped::detail::http_reason_phrase(431)) == "Request Header Fields Too Large");
  CHECK(std::string(pinniped::detail::http_reason_phrase(299)).empty());
}
