// The concierge's HTTP surface, end to end: the real `pinniped concierge` as a
// child process, real TLS on 127.0.0.1 and a scripted TokenReview webhook.
// Covers hostile input, the "authentication failed" rule, discovery, health,
// the success shape, logs, slow clients, graceful shutdown and keep-alive.
#include <catch2/catch.hpp>
#include <set>

#include "tests/support.hpp"

namespace {

using namespace std::chrono_literals;
using pinniped::HttpResponse;
using pinniped::Millis;
using pinniped::Steady;

const std::string kGoodToken = "good-token-5b1f0c9e";
const std::string kLoginGroup = "login.concierge.pinniped.dev";
const std::string kAuthGroup = "authentication.concierge.pinniped.dev";
const std::string kLoginVersion = kLoginGroup + "/v1alpha1";
const std::string kGroupPath = "/apis/" + kLoginGroup;
const std::string kVersionPath = kGroupPath + "/v1alpha1";
const std::string &kTcr = testing::kTcrPath;
const httplib::Headers kJson = {{"Content-Type", "application/json"}};

Millis scaled(Millis m) { return m * testing::slow_factor(); }

bool starts_with(const std::string &s, const std::string &prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

// ---------------------------------------------------------------------------
// A concierge with its webhook IDP

struct ConciergeOptions {
  std::vector<std::string> flags;
  bool signer = true;  // false: --signer-root at an empty folder (not ready)
  std::string suffix = "pinniped.dev";
};

// A concierge with a cluster signer and one WebhookAuthenticator, "my-idp",
// backed by a FakeIdp that knows alice (kGoodToken).
struct Env {
  testing::TempDir dir;
  testing::FakeIdp idp;
  std::unique_ptr<testing::ConciergeProcess> concierge;

  explicit Env(const ConciergeOptions &o = ConciergeOptions()) {
    idp.add_user(kGoodToken, {"alice", "", {"devs", "ops"}, {}});
    std::vector<std::string> args;
    if (o.signer) {
      auto s = testing::openssl_signer(dir, "signer", "ec", "/CN=k3s-client-ca");
      args = {"--signer-cert", s.cert_file, "--signer-key", s.key_file};
    } else {
      std::string root = dir.file("empty-root");
      ::mkdir(root.c_str(), 0700);
      args = {"--signer-root", root};
    }
    dir.write("auth.yaml", authenticators_yaml(o.suffix));
    args.insert(args.end(), {"--authenticators", dir.file("auth.yaml")});
    args.insert(args.end(), o.flags.begin(), o.flags.end());
    concierge = std::make_unique<testing::ConciergeProcess>(dir, args);
  }
  testing::ConciergeProcess &c() { return *concierge; }

 private:
  std::string authenticators_yaml(const std::string &suffix) {
    if (suffix == "pinniped.dev") return testing::authenticator_yaml("my-idp", idp.url(), idp.ca_data());
    // support.hpp's helper hard-codes the default group.
    return "apiVersion: authentication.concierge." + suffix +
           "/v1alpha1\nkind: WebhookAuthenticator\nmetadata:\n  name: my-idp\nspec:\n  endpoint: " + idp.url() +
           "\n  tls:\n    certificateAuthorityData: " + idp.ca_data() + "\n";
  }
};

// A TokenCredentialRequest body with every field chosen by the caller. An
// empty api_group is sent as null.
std::string tcr_json(const std::string &token, const std::string &name = "my-idp",
                     const std::string &api_group = kAuthGroup, const std::string &kind = "WebhookAuthenticator",
                     const std::string &api_version = kLoginVersion) {
  pinniped::TokenCredentialRequest r;
  r.api_version = api_version;
  r.token = token;
  r.authenticator = {api_group, kind, name};
  return r.to_json(true).serialize();
}

// ---------------------------------------------------------------------------
// JSON inspection

picojson::value parse_json(const std::string &body) {
  picojson::value v;
  std::string err = picojson::parse(v, body);
  if (!err.empty()) throw std::runtime_error("not JSON (" + err + "): " + body.substr(0, 300));
  return v;
}

// The value at a path of object keys; null when a step is missing.
const picojson::value &at(const picojson::value &v, std::initializer_list<std::string> path) {
  static const picojson::value null;
  const picojson::value *cur = &v;
  for (const auto &k : path) {
    if (!cur->is<picojson::object>()) return null;
    const auto &o = cur->get<picojson::object>();
    auto it = o.find(k);
    if (it == o.end()) return null;
    cur = &it->second;
  }
  return *cur;
}
// A string value, or the JSON of whatever is there instead, in <>.
std::string str(const picojson::value &v) {
  return v.is<std::string>() ? v.get<std::string>() : "<" + v.serialize() + ">";
}
int64_t num(const picojson::value &v) { return v.is<int64_t>() ? v.get<int64_t>() : -1; }
std::vector<std::string> strings(const picojson::value &v) {
  std::vector<std::string> out;
  if (v.is<picojson::array>())
    for (const auto &e : v.get<picojson::array>()) out.push_back(str(e));
  return out;
}

// Checks that `res` is a Kubernetes Status failure for `code` and `reason`.
void check_status(const HttpResponse &res, int code, const std::string &reason) {
  INFO("HTTP " << res.status << " body: " << res.body.substr(0, 400));
  CHECK(res.status == code);
  CHECK(starts_with(res.header("Content-Type"), "application/json"));
  picojson::value v;
  if (!picojson::parse(v, res.body).empty()) {
    FAIL_CHECK("the body is not JSON");
    return;
  }
  CHECK(str(at(v, {"kind"})) == "Status");
  CHECK(str(at(v, {"apiVersion"})) == "v1");
  CHECK(at(v, {"metadata"}).is<picojson::object>());
  CHECK(str(at(v, {"status"})) == "Failure");
  CHECK(str(at(v, {"reason"})) == reason);
  CHECK(num(at(v, {"code"})) == code);
  CHECK(!str(at(v, {"message"})).empty());
}

// Checks the 422 of an empty or missing token, cause included.
void check_token_required(const HttpResponse &res) {
  check_status(res, 422, "Invalid");
  picojson::value v;
  if (!picojson::parse(v, res.body).empty()) return;
  const auto &causes = at(v, {"details", "causes"});
  REQUIRE(causes.is<picojson::array>());
  REQUIRE(!causes.get<picojson::array>().empty());
  const auto &first = causes.get<picojson::array>()[0];
  CHECK(str(at(first, {"reason"})) == "FieldValueRequired");
  CHECK(str(at(first, {"field"})) == "spec.token.value");
  CHECK(str(at(first, {"message"})) == "Required value: token must be supplied");
}

// Checks a 201 whose status says "authentication failed" and carries nothing else.
void check_authentication_failed(const HttpResponse &res, const std::string &api_version = kLoginVersion) {
  INFO("HTTP " << res.status << " body: " << res.body.substr(0, 400));
  CHECK(res.status == 201);
  auto v = parse_json(res.body);
  CHECK(str(at(v, {"apiVersion"})) == api_version);
  CHECK(str(at(v, {"kind"})) == "TokenCredentialRequest");
  CHECK(str(at(v, {"status", "message"})) == "authentication failed");
  CHECK(at(v, {"status", "credential"}).is<picojson::null>());
  CHECK(at(v, {"spec"}).serialize() == "{}");
}

// ---------------------------------------------------------------------------
// Raw connections, for framings and timings HttpsClient never produces

// A blocking TCP connection to 127.0.0.1:port; -1 (errno set) on failure.
int connect_tcp(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

// True once the peer closed or reset `fd`; drains whatever it sent before.
bool peer_closed(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n == 0) return true;
    if (errno == EINTR) continue;
    return errno != EAGAIN && errno != EWOULDBLOCK;
  }
}

// Parses one HTTP/1.1 response from the front of `data`: nullopt until it
// is complete. Without Content-Length the body runs to the end (at EOF).
std::optional<HttpResponse> parse_response(const std::string &data, size_t *consumed = nullptr, bool eof = false) {
  auto head_end = data.find("\r\n\r\n");
  if (head_end == std::string::npos || !starts_with(data, "HTTP/1.")) return std::nullopt;
  HttpResponse r;
  std::istringstream lines(data.substr(0, head_end));
  std::string line;
  std::getline(lines, line);
  if (line.size() < 12) return std::nullopt;
  r.status = std::atoi(line.c_str() + 9);
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    r.headers.emplace(line.substr(0, colon), pinniped::detail::trim(line.substr(colon + 1)));
  }
  size_t start = head_end + 4;
  std::string cl = r.header("Content-Length");
  if (cl.empty() && !eof) return std::nullopt;
  size_t len = cl.empty() ? data.size() - start : std::stoul(cl);
  if (data.size() < start + len) return std::nullopt;
  r.body = data.substr(start, len);
  if (consumed) *consumed = start + len;
  return r;
}

std::vector<HttpResponse> parse_responses(const std::string &data) {
  std::vector<HttpResponse> out;
  size_t off = 0, used = 0;
  while (off < data.size()) {
    auto r = parse_response(data.substr(off), &used, true);
    if (!r) break;
    out.push_back(*r);
    off += used;
  }
  return out;
}

// A TLS connection to the concierge whose HTTP bytes the test writes by hand.
class RawTls {
 public:
  explicit RawTls(const testing::ConciergeProcess &c) {
    fd_ = connect_tcp(c.port());
    if (fd_ < 0) throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    pinniped::ClientTlsOptions o;
    o.ca_pem = c.ca_pem();
    auto cfg = pinniped::detail::make_client_config(o, "127.0.0.1");
    session_ = std::make_unique<pinniped::detail::TlsSession>(fd_, cfg, static_cast<int>(scaled(5s).count()));
    int ret = session_->handshake(Steady::now() + scaled(5s));
    if (ret != 0) throw std::runtime_error("TLS handshake: " + pinniped::detail::mbed_error(ret));
  }
  ~RawTls() {
    session_.reset();
    ::close(fd_);
  }
  RawTls(const RawTls &) = delete;
  RawTls &operator=(const RawTls &) = delete;
  int fd() const { return fd_; }

  // Sends all of `bytes`; false once the server stopped taking them.
  bool send(const std::string &bytes, Millis timeout = scaled(5s)) {
    session_->bio.deadline = Steady::now() + timeout;
    size_t off = 0;
    while (off < bytes.size()) {
      int r = mbedtls_ssl_write(&session_->ssl, reinterpret_cast<const unsigned char *>(bytes.data() + off),
                                bytes.size() - off);
      if (r > 0)
        off += static_cast<size_t>(r);
      else if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE)
        break;
    }
    session_->bio.deadline = Steady::time_point::max();
    return off == bytes.size();
  }
  // Appends what arrives to `out` until `done(out)`, the server closes
  // (true) or `timeout` passes (false).
  bool receive(std::string &out, Millis timeout, const std::function<bool(const std::string &)> &done = nullptr) {
    session_->bio.deadline = Steady::now() + timeout;
    bool closed = false;
    unsigned char buf[16384];
    while (!done || !done(out)) {
      int r = mbedtls_ssl_read(&session_->ssl, buf, sizeof buf);
      if (r > 0) {
        out.append(reinterpret_cast<char *>(buf), static_cast<size_t>(r));
        continue;
      }
      if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) continue;
      closed = r != MBEDTLS_ERR_SSL_TIMEOUT;
      break;
    }
    session_->bio.deadline = Steady::time_point::max();
    return closed;
  }
  // The next whole response, or nullopt when none came in `timeout`.
  std::optional<HttpResponse> response(Millis timeout = scaled(10s)) {
    std::string data;
    bool closed = receive(data, timeout, [](const std::string &d) { return parse_response(d).has_value(); });
    return parse_response(data, nullptr, closed);
  }

 private:
  int fd_ = -1;
  std::unique_ptr<pinniped::detail::TlsSession> session_;
};

// One request with exactly these headers (and Connection: close), framed
// with Content-Length or chunked.
std::string raw_request(const std::string &method, const std::string &path, const httplib::Headers &headers,
                        const std::string &body, bool chunked) {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto &h : headers) r += h.first + ": " + h.second + "\r\n";
  if (!chunked) return r + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  r += "Transfer-Encoding: chunked\r\n\r\n";
  for (size_t off = 0; off < body.size(); off += 8192) {
    std::string piece = body.substr(off, 8192);
    char len[24];
    std::snprintf(len, sizeof len, "%zx\r\n", piece.size());
    r += len + piece + "\r\n";
  }
  return r + "0\r\n\r\n";
}

// A TokenCredentialRequest without a token, padded with spaces to `size` bytes.
std::string padded_body(size_t size) {
  std::string head = R"({"apiVersion":")" + kLoginVersion + R"(","kind":"TokenCredentialRequest","spec":{})";
  return head + std::string(size - head.size() - 1, ' ') + "}";
}

// ---------------------------------------------------------------------------
// The table of malformed and hostile requests

enum class Via { client, raw, chunked };

struct BadRequest {
  std::string description;
  std::string method;
  std::string path;
  httplib::Headers headers;
  std::string body;
  int code;
  std::string reason;
  Via via = Via::client;
};

std::string nested(const std::string &open, const std::string &leaf, const std::string &close, int depth) {
  std::string s;
  for (int i = 0; i < depth; i++) s += open;
  s += leaf;
  for (int i = 0; i < depth; i++) s += close;
  return s;
}

std::vector<BadRequest> bad_requests() {
  const std::string valid = tcr_json("table-token");
  const std::string auth =
      R"("authenticator":{"apiGroup":")" + kAuthGroup + R"(","kind":"WebhookAuthenticator","name":"my-idp"})";
  // A TokenCredentialRequest with this spec (and extra top-level members).
  auto with_spec = [](const std::string &spec, const std::string &extra = "") {
    return R"({"apiVersion":")" + kLoginVersion + R"(","kind":"TokenCredentialRequest","metadata":{},"spec":)" + spec +
           extra + "}";
  };
  const std::string post = "POST";
  const httplib::Headers none;
  const httplib::Headers text = {{"Content-Type", "text/plain"}};
  const httplib::Headers yaml = {{"Content-Type", "application/yaml"}};
  const httplib::Headers protobuf = {{"Content-Type", "application/vnd.kubernetes.protobuf"}};
  const httplib::Headers patch = {{"Content-Type", "application/json-patch+json"}};
  const httplib::Headers accept_protobuf = {{"Content-Type", "application/json"},
                                            {"Accept", "application/vnd.kubernetes.protobuf"}};
  const httplib::Headers accept_html = {{"Content-Type", "application/json"}, {"Accept", "text/html"}};
  const std::string named = kTcr + "/some-name";
  const std::string namespaced = kVersionPath + "/namespaces/default/tokencredentialrequests";
  return {
      // Malformed JSON: 400.
      {"empty body", post, kTcr, kJson, "", 400, "BadRequest"},
      {"truncated in a string", post, kTcr, kJson, valid.substr(0, valid.size() / 2), 400, "BadRequest"},
      {"truncated after a key", post, kTcr, kJson, R"({"spec":)", 400, "BadRequest"},
      {"unclosed object", post, kTcr, kJson, valid.substr(0, valid.size() - 1), 400, "BadRequest"},
      {"trailing garbage", post, kTcr, kJson, valid + "garbage", 400, "BadRequest"},
      {"two objects", post, kTcr, kJson, valid + valid, 400, "BadRequest"},
      {"a string, not an object", post, kTcr, kJson, R"("TokenCredentialRequest")", 400, "BadRequest"},
      {"an empty array", post, kTcr, kJson, "[]", 400, "BadRequest"},
      {"the object inside an array", post, kTcr, kJson, "[" + valid + "]", 400, "BadRequest"},
      {"a number", post, kTcr, kJson, "42", 400, "BadRequest"},
      {"null", post, kTcr, kJson, "null", 400, "BadRequest"},
      {"true", post, kTcr, kJson, "true", 400, "BadRequest"},
      {"arrays nested 1000 deep", post, kTcr, kJson, nested("[", "", "]", 1000), 400, "BadRequest"},
      {"objects nested 1000 deep", post, kTcr, kJson, nested(R"({"a":)", "1", "}", 1000), 400, "BadRequest"},
      {"\\u escape with non-hex digits", post, kTcr, kJson, with_spec(R"({"token":"\uZZZZ",)" + auth + "}"), 400,
       "BadRequest"},
      {"lone high surrogate escape", post, kTcr, kJson, with_spec(R"({"token":"\ud800",)" + auth + "}"), 400,
       "BadRequest"},
      {"lone low surrogate escape", post, kTcr, kJson, with_spec(R"({"token":"\udc00x",)" + auth + "}"), 400,
       "BadRequest"},
      {"unknown escape", post, kTcr, kJson, with_spec(R"({"token":"\q",)" + auth + "}"), 400, "BadRequest"},
      {"raw control character in a string", post, kTcr, kJson, with_spec("{\"token\":\"a\x01z\"," + auth + "}"), 400,
       "BadRequest"},
      {"invalid UTF-8 byte outside a string", post, kTcr, kJson, "{\xff}", 400, "BadRequest"},
      {"single-quoted keys", post, kTcr, kJson, "{'spec':{}}", 400, "BadRequest"},
      {"unquoted keys", post, kTcr, kJson, "{spec:{}}", 400, "BadRequest"},
      // Well-formed JSON of the wrong shape: 400.
      {"kind WhoAmIRequest", post, kTcr, kJson,
       R"({"apiVersion":")" + kLoginVersion + R"(","kind":"WhoAmIRequest","spec":{"token":"t",)" + auth + "}}", 400,
       "BadRequest"},
      {"kind is a number", post, kTcr, kJson, R"({"kind":5,"spec":{"token":"t",)" + auth + "}}", 400, "BadRequest"},
      {"apiVersion v1 of the group", post, kTcr, kJson,
       tcr_json("t", "my-idp", kAuthGroup, "WebhookAuthenticator", kLoginGroup + "/v1"), 400, "BadRequest"},
      {"apiVersion v1", post, kTcr, kJson, tcr_json("t", "my-idp", kAuthGroup, "WebhookAuthenticator", "v1"), 400,
       "BadRequest"},
      {"apiVersion of another suffix", post, kTcr, kJson,
       tcr_json("t", "my-idp", kAuthGroup, "WebhookAuthenticator", "login.concierge.example.com/v1alpha1"), 400,
       "BadRequest"},
      {"spec.token is a number", post, kTcr, kJson, with_spec(R"({"token":12345,)" + auth + "}"), 400, "BadRequest"},
      {"spec.token is an object", post, kTcr, kJson, with_spec(R"({"token":{"value":"t"},)" + auth + "}"), 400,
       "BadRequest"},
      {"spec.token is an array", post, kTcr, kJson, with_spec(R"({"token":["t"],)" + auth + "}"), 400, "BadRequest"},
      {"spec.token is a boolean", post, kTcr, kJson, with_spec(R"({"token":true,)" + auth + "}"), 400, "BadRequest"},
      {"spec is a string", post, kTcr, kJson, with_spec(R"("token")"), 400, "BadRequest"},
      {"spec is an array", post, kTcr, kJson, with_spec(R"([{"token":"t"}])"), 400, "BadRequest"},
      {"spec.authenticator is a string", post, kTcr, kJson, with_spec(R"({"token":"t","authenticator":"my-idp"})"), 400,
       "BadRequest"},
      {"spec.authenticator.name is a number", post, kTcr, kJson,
       with_spec(R"({"token":"t","authenticator":{"apiGroup":")" + kAuthGroup +
                 R"(","kind":"WebhookAuthenticator","name":7}})"),
       400, "BadRequest"},
      {"metadata is a string", post, kTcr, kJson,
       R"({"apiVersion":")" + kLoginVersion +
           R"(","kind":"TokenCredentialRequest","metadata":"m","spec":{"token":"t",)" + auth + "}}",
       400, "BadRequest"},
      {"metadata.namespace is set", post, kTcr, kJson,
       R"({"apiVersion":")" + kLoginVersion +
           R"(","kind":"TokenCredentialRequest","metadata":{"namespace":"default"},"spec":{"token":"t",)" + auth + "}}",
       400, "BadRequest"},
      {"status is a string", post, kTcr, kJson, with_spec(R"({"token":"t",)" + auth + "}", R"(,"status":"ok")"), 400,
       "BadRequest"},
      // No token: 422 (the cause is checked separately).
      {"empty token", post, kTcr, kJson, with_spec(R"({"token":"",)" + auth + "}"), 422, "Invalid"},
      {"null token", post, kTcr, kJson, with_spec(R"({"token":null,)" + auth + "}"), 422, "Invalid"},
      {"missing token", post, kTcr, kJson, with_spec("{" + auth + "}"), 422, "Invalid"},
      {"missing spec", post, kTcr, kJson,
       R"({"apiVersion":")" + kLoginVersion + R"(","kind":"TokenCredentialRequest"})", 422, "Invalid"},
      {"an empty object", post, kTcr, kJson, "{}", 422, "Invalid"},
      {"a body of exactly 64 KiB is still read", post, kTcr, kJson, padded_body(64 * 1024), 422, "Invalid"},
      {"?dryRun=All", post, kTcr + "?dryRun=All", kJson, valid, 422, "Invalid"},
      // Media types.
      // kube-apiserver reads a body without Content-Type as JSON (kubectl
      // create --raw sends none): malformed JSON then is a 400.
      {"no Content-Type: read as JSON", post, kTcr, none, "{", 400, "BadRequest", Via::raw},
      {"Content-Type text/plain", post, kTcr, text, valid, 415, "UnsupportedMediaType"},
      {"Content-Type application/yaml", post, kTcr, yaml, valid, 415, "UnsupportedMediaType"},
      {"Content-Type protobuf", post, kTcr, protobuf, valid, 415, "UnsupportedMediaType"},
      {"Content-Type application/json-patch+json", post, kTcr, patch, valid, 415, "UnsupportedMediaType"},
      {"Accept protobuf only", post, kTcr, accept_protobuf, valid, 406, "NotAcceptable"},
      {"Accept text/html only", post, kTcr, accept_html, valid, 406, "NotAcceptable"},
      // Bodies over 64 KiB.
      {"Content-Length of 64 KiB + 1", post, kTcr, kJson, padded_body(64 * 1024 + 1), 413, "RequestEntityTooLarge"},
      {"Content-Length of 200 KiB", post, kTcr, kJson, padded_body(200 * 1024), 413, "RequestEntityTooLarge", Via::raw},
      {"chunked 70 KiB", post, kTcr, kJson, padded_body(70 * 1024), 413, "RequestEntityTooLarge", Via::chunked},
      {"chunked 200 KiB", post, kTcr, kJson, padded_body(200 * 1024), 413, "RequestEntityTooLarge", Via::chunked},
      // Paths that do not exist.
      {"unknown path", "GET", "/foo", none, "", 404, "NotFound"},
      {"the core API", "GET", "/api/v1", none, "", 404, "NotFound"},
      {"an empty group", "GET", "//apis", none, "", 404, "NotFound"},
      {"discovery of another group", "GET", "/apis/login.concierge.example.com", none, "", 404, "NotFound"},
      {"POST to the collection of another group", post,
       "/apis/authentication.concierge.pinniped.dev/v1alpha1/tokencredentialrequests", kJson, valid, 404, "NotFound"},
      {"discovery of another version", "GET", kGroupPath + "/v1", none, "", 404, "NotFound"},
      {"POST to another version", post, kGroupPath + "/v1beta1/tokencredentialrequests", kJson, valid, 404, "NotFound"},
      {"POST to another resource", post, kVersionPath + "/whoamirequests", kJson, valid, 404, "NotFound"},
      // Methods and scopes the resource does not have.
      {"GET the collection", "GET", kTcr, none, "", 405, "MethodNotAllowed"},
      {"PUT the collection", "PUT", kTcr, kJson, valid, 405, "MethodNotAllowed"},
      {"DELETE the collection", "DELETE", kTcr, none, "", 405, "MethodNotAllowed"},
      {"PATCH the collection", "PATCH", kTcr, kJson, valid, 405, "MethodNotAllowed"},
      {"POST to a named object", post, named, kJson, valid, 405, "MethodNotAllowed"},
      {"POST to a named subresource", post, named + "/status", kJson, valid, 405, "MethodNotAllowed"},
      {"POST to discovery", post, "/apis", kJson, valid, 405, "MethodNotAllowed"},
      {"POST to /healthz", post, "/healthz", kJson, valid, 405, "MethodNotAllowed"},
      {"GET the namespaced collection", "GET", namespaced, none, "", 405, "MethodNotAllowed"},
      {"POST to the namespaced collection", post, namespaced, kJson, valid, 400, "BadRequest"},
  };
}

HttpResponse send_bad_request(const testing::ConciergeProcess &c, const BadRequest &row) {
  if (row.via == Via::client) return c.request(row.method, row.path, row.body, row.headers);
  RawTls raw(c);
  // The server may stop reading an oversize body before it is all sent;
  // its answer is what counts.
  raw.send(raw_request(row.method, row.path, row.headers, row.body, row.via == Via::chunked));
  auto res = raw.response();
  return res ? *res : HttpResponse();
}

void check_still_serving(const testing::ConciergeProcess &c) {
  try {
    auto h = c.request("GET", "/healthz", "", {});
    CHECK(h.status == 200);
    CHECK(h.body == "ok");
  } catch (const std::exception &e) {
    FAIL_CHECK("the concierge stopped answering /healthz: " << e.what());
  }
}

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("malformed and hostile requests get the right Kubernetes Status and the server keeps serving") {
  Env env;
  auto &c = env.c();
  auto rows = bad_requests();
  REQUIRE(rows.size() >= 35);
  for (const auto &row : rows) {
    INFO("row: " << row.description << " (" << row.method << " " << row.path.substr(0, 100) << ")");
    try {
      auto res = send_bad_request(c, row);
      if (row.code == 422 && row.path == kTcr)
        check_token_required(res);
      else
        check_status(res, row.code, row.reason);
    } catch (const std::exception &e) {
      FAIL_CHECK("request failed: " << e.what());
    }
    check_still_serving(c);
  }
  // None of the rows reached the webhook: they were all refused first.
  CHECK(env.idp.requests() == 0);
}

TEST_CASE("a refused oversize body is not read as further requests on the same connection") {
  Env env;
  auto &c = env.c();
  // The tail of a body the server gave up on must not be parsed as a
  // request: it would answer requests the client never made.
  std::string smuggled = "GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  std::string body = std::string(100 * 1024, 'x') + "\r\n\r\n" + smuggled;
  RawTls raw(c);
  raw.send("POST " + kTcr + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(200 * 1024) + "\r\n\r\n" + body);
  std::string data;
  bool closed = raw.receive(data, scaled(3s));
  auto responses = parse_responses(data);
  INFO("received: " << data.substr(0, 600));
  REQUIRE(!responses.empty());
  check_status(responses[0], 413, "RequestEntityTooLarge");
  CHECK(responses.size() == 1);
  CHECK(closed);
  check_still_serving(c);
}

TEST_CASE("a Status for malformed JSON does not echo the request text, which may hold the token") {
  Env env;
  auto &c = env.c();
  struct Row {
    std::string description, body, token;
  };
  std::vector<Row> rows = {
      {"syntax error before the token", R"({"apiVersion": nope, "spec":{"token":"echo-token-1a2b"}})",
       "echo-token-1a2b"},
      {"bad escape before the token", R"({"kind":"\x", "spec":{"token":"echo-token-3c4d"}})", "echo-token-3c4d"},
      {"garbage after a complete object", R"({} {"spec":{"token":"echo-token-5e6f"}})", "echo-token-5e6f"},
  };
  for (const auto &row : rows) {
    INFO("row: " << row.description);
    auto res = c.request("POST", kTcr, row.body);
    check_status(res, 400, "BadRequest");
    CHECK(!contains(res.body, row.token));
  }
}

TEST_CASE("an authentication that does not succeed is a 201 saying only \"authentication failed\"") {
  Env env;
  auto &c = env.c();
  env.idp.add_user("uid-token-77aa", {"bob", "uid-1234", {}, {}});
  env.idp.add_user("nameless-token-88bb", {"", "", {"devs"}, {}});
  struct Row {
    std::string description, token, name, api_group, kind;
    bool reaches_webhook;
  };
  std::vector<Row> rows = {
      {"unknown authenticator name", "unknown-name-token-11aa", "no-such-idp", kAuthGroup, "WebhookAuthenticator",
       false},
      {"authenticator apiGroup of another suffix", "wrong-group-token-22bb", "my-idp",
       "authentication.concierge.example.com", "WebhookAuthenticator", false},
      {"authenticator without apiGroup", "no-group-token-33cc", "my-idp", "", "WebhookAuthenticator", false},
      {"authenticator kind JWTAuthenticator", "jwt-kind-token-44dd", "my-idp", kAuthGroup, "JWTAuthenticator", false},
      {"webhook says authenticated: false", "rejected-token-55ee", "my-idp", kAuthGroup, "WebhookAuthenticator", true},
      {"webhook vouches for a user with a uid", "uid-token-77aa", "my-idp", kAuthGroup, "WebhookAuthenticator", true},
      {"webhook vouches for an empty username", "nameless-token-88bb", "my-idp", kAuthGroup, "WebhookAuthenticator",
       true},
  };
  for (const auto &row : rows) {
    INFO("row: " << row.description);
    int before = env.idp.requests();
    auto res = c.request("POST", kTcr, tcr_json(row.token, row.name, row.api_group, row.kind));
    check_authentication_failed(res);
    CHECK(!contains(res.body, row.token));
    // The token goes to the named webhook only.
    CHECK(env.idp.requests() - before == (row.reaches_webhook ? 1 : 0));
  }
  std::string log = c.log();
  for (const auto &row : rows) {
    INFO("row: " << row.description);
    CHECK(!contains(log, row.token));
  }
  // The reasons went to the log instead, one line per refusal.
  size_t failed_lines = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);)
    if (contains(line, R"("msg":"exchange")") && contains(line, R"("outcome":"failed")")) failed_lines++;
  CHECK(failed_lines == rows.size());
}

TEST_CASE("discovery serves the login group, its version and the tokencredentialrequests resource") {
  Env env;
  auto &c = env.c();

  auto res = c.request("GET", "/apis", "", {});
  REQUIRE(res.status == 200);
  CHECK(starts_with(res.header("Content-Type"), "application/json"));
  auto list = parse_json(res.body);
  CHECK(str(at(list, {"kind"})) == "APIGroupList");
  CHECK(str(at(list, {"apiVersion"})) == "v1");
  REQUIRE(at(list, {"groups"}).is<picojson::array>());
  const picojson::value *login = nullptr;
  for (const auto &g : at(list, {"groups"}).get<picojson::array>())
    if (str(at(g, {"name"})) == kLoginGroup) login = &g;
  REQUIRE(login != nullptr);
  CHECK(str(at(*login, {"preferredVersion", "groupVersion"})) == kLoginVersion);
  CHECK(str(at(*login, {"preferredVersion", "version"})) == "v1alpha1");
  REQUIRE(at(*login, {"versions"}).is<picojson::array>());
  CHECK(at(*login, {"versions"}).get<picojson::array>().size() == 1);

  // kube-apiserver asks for aggregated discovery first; plain JSON makes it fall back.
  auto aggregated = c.request(
      "GET", "/apis", "",
      {{"Accept", "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"}});
  CHECK(aggregated.status == 200);
  CHECK(str(at(parse_json(aggregated.body), {"kind"})) == "APIGroupList");

  res = c.request("GET", kGroupPath, "", {});
  REQUIRE(res.status == 200);
  auto group = parse_json(res.body);
  CHECK(str(at(group, {"kind"})) == "APIGroup");
  CHECK(str(at(group, {"apiVersion"})) == "v1");
  CHECK(str(at(group, {"name"})) == kLoginGroup);
  CHECK(str(at(group, {"preferredVersion", "groupVersion"})) == kLoginVersion);
  REQUIRE(at(group, {"versions"}).is<picojson::array>());
  REQUIRE(at(group, {"versions"}).get<picojson::array>().size() == 1);
  CHECK(str(at(at(group, {"versions"}).get<picojson::array>()[0], {"version"})) == "v1alpha1");

  res = c.request("GET", kVersionPath, "", {});
  REQUIRE(res.status == 200);
  auto resources = parse_json(res.body);
  CHECK(str(at(resources, {"kind"})) == "APIResourceList");
  CHECK(str(at(resources, {"apiVersion"})) == "v1");
  CHECK(str(at(resources, {"groupVersion"})) == kLoginVersion);
  REQUIRE(at(resources, {"resources"}).is<picojson::array>());
  const auto &items = at(resources, {"resources"}).get<picojson::array>();
  REQUIRE(items.size() == 1);
  const auto &tcr = items[0];
  CHECK(str(at(tcr, {"name"})) == "tokencredentialrequests");
  CHECK(str(at(tcr, {"singularName"})) == "tokencredentialrequest");
  CHECK(str(at(tcr, {"kind"})) == "TokenCredentialRequest");
  CHECK(at(tcr, {"namespaced"}).is<bool>());
  CHECK(at(tcr, {"namespaced"}).evaluate_as_boolean() == false);
  CHECK(strings(at(tcr, {"verbs"})) == std::vector<std::string>{"create"});
  CHECK(strings(at(tcr, {"categories"})) == std::vector<std::string>{"pinniped"});

  // A trailing slash names the same resource.
  CHECK(c.request("GET", kVersionPath + "/", "", {}).body == res.body);
}

TEST_CASE("--api-group-suffix renames every group and the exchange works under the new names") {
  Env env({{"--api-group-suffix", "example.com"}, true, "example.com"});
  auto &c = env.c();
  const std::string login = "login.concierge.example.com", version = login + "/v1alpha1";
  const std::string auth = "authentication.concierge.example.com";
  const std::string path = "/apis/" + version + "/tokencredentialrequests";

  auto list = parse_json(c.request("GET", "/apis", "", {}).body);
  REQUIRE(at(list, {"groups"}).is<picojson::array>());
  bool login_listed = false;
  for (const auto &g : at(list, {"groups"}).get<picojson::array>()) {
    std::string name = str(at(g, {"name"}));
    INFO("group " << name);
    CHECK(ends_with(name, ".concierge.example.com"));
    CHECK(starts_with(str(at(g, {"preferredVersion", "groupVersion"})), name + "/"));
    if (name == login) {
      login_listed = true;
      CHECK(str(at(g, {"preferredVersion", "groupVersion"})) == version);
    }
  }
  CHECK(login_listed);

  auto group = c.request("GET", "/apis/" + login, "", {});
  CHECK(group.status == 200);
  CHECK(str(at(parse_json(group.body), {"name"})) == login);
  auto resources = c.request("GET", "/apis/" + version, "", {});
  CHECK(resources.status == 200);
  CHECK(str(at(parse_json(resources.body), {"groupVersion"})) == version);

  // The default names are gone.
  check_status(c.request("GET", kGroupPath, "", {}), 404, "NotFound");
  check_status(c.request("GET", kVersionPath, "", {}), 404, "NotFound");
  check_status(c.request("POST", kTcr, tcr_json(kGoodToken)), 404, "NotFound");

  auto ok = c.request("POST", path, tcr_json(kGoodToken, "my-idp", auth, "WebhookAuthenticator", version));
  REQUIRE(ok.status == 201);
  auto out = parse_json(ok.body);
  CHECK(str(at(out, {"apiVersion"})) == version);
  CHECK(starts_with(str(at(out, {"status", "credential", "clientCertificateData"})), "-----BEGIN CERTIFICATE-----"));

  // The authenticator must be named in the renamed group too.
  check_authentication_failed(
      c.request("POST", path, tcr_json(kGoodToken, "my-idp", kAuthGroup, "WebhookAuthenticator", version)), version);
  check_status(c.request("POST", path, tcr_json(kGoodToken, "my-idp", auth)), 400, "BadRequest");
  auto invalid = c.request("POST", path, tcr_json("", "my-idp", auth, "WebhookAuthenticator", version));
  check_token_required(invalid);
  CHECK(contains(invalid.body, login));
}

TEST_CASE("health endpoints answer 200 when a signer is loaded") {
  Env env;
  auto &c = env.c();
  for (const std::string path : {"/healthz", "/livez", "/readyz"}) {
    INFO(path);
    auto res = c.request("GET", path, "", {});
    CHECK(res.status == 200);
    CHECK(res.body == "ok");
  }
}

TEST_CASE("without a signer /readyz is 500 while /healthz stays 200 and exchanges fail as authentication failed") {
  Env env({{}, false});
  auto &c = env.c();
  auto ready = c.request("GET", "/readyz", "", {});
  CHECK(ready.status == 500);
  CHECK(contains(ready.body, "not ready"));
  CHECK(c.request("GET", "/healthz", "", {}).status == 200);
  CHECK(c.request("GET", "/livez", "", {}).status == 200);
  // The webhook vouches for alice, but no certificate can be signed.
  auto res = c.request("POST", kTcr, tcr_json(kGoodToken));
  check_authentication_failed(res);
  CHECK(env.idp.requests() == 1);
}

TEST_CASE("a successful exchange answers 201 with a fresh credential and no token") {
  Env env;
  auto &c = env.c();
  auto res = c.request("POST", kTcr, tcr_json(kGoodToken), {{"Content-Type", "application/json; charset=utf-8"}});
  auto now = pinniped::Clock::now();
  INFO("body: " << res.body.substr(0, 400));
  REQUIRE(res.status == 201);
  CHECK(res.header("Cache-Control") == "no-store");
  CHECK(starts_with(res.header("Content-Type"), "application/json"));
  CHECK(!contains(res.body, kGoodToken));

  auto v = parse_json(res.body);
  CHECK(str(at(v, {"apiVersion"})) == kLoginVersion);
  CHECK(str(at(v, {"kind"})) == "TokenCredentialRequest");
  CHECK(at(v, {"spec"}).serialize() == "{}");
  CHECK(at(v, {"status", "message"}).is<picojson::null>());

  std::string expiration = str(at(v, {"status", "credential", "expirationTimestamp"}));
  auto expires = pinniped::parse_rfc3339(expiration);
  REQUIRE(expires);
  CHECK(pinniped::format_rfc3339(*expires) == expiration);  // RFC 3339 UTC, second precision
  auto ahead = std::chrono::duration_cast<std::chrono::seconds>(*expires - now).count();
  CHECK(ahead >= 5 * 60 - 15 * testing::slow_factor());
  CHECK(ahead <= 5 * 60 + 2);

  std::string cert = str(at(v, {"status", "credential", "clientCertificateData"}));
  std::string key = str(at(v, {"status", "credential", "clientKeyData"}));
  CHECK(starts_with(cert, "-----BEGIN CERTIFICATE-----"));
  CHECK(starts_with(key, "-----BEGIN PRIVATE KEY-----"));
  auto chain = pinniped::CertificateChain::parse(cert);
  CHECK(pinniped::detail::common_name(&chain->get()->subject) == "alice");
  CHECK(pinniped::detail::organizations(&chain->get()->subject) == std::vector<std::string>{"devs", "ops"});
  auto pk = pinniped::PrivateKey::parse(key);
  CHECK(mbedtls_pk_check_pair(&chain->get()->pk, pk->get()) == 0);
}

TEST_CASE("the key pool's metrics: keys and presignatures ready for an EC signer, and exchanges spend them") {
  Env env({{"--key-pool", "3"}});
  auto &c = env.c();
  auto metrics = [&] { return c.request("GET", "/metrics", "", {}).body; };
  const std::string keys = "pinniped_key_pool_ready{kind=\"key\"}",
                    pres = "pinniped_key_pool_ready{kind=\"presignature\"}",
                    pre_miss = "pinniped_key_pool_misses_total{kind=\"presignature\"}";
  auto full = [&] {
    auto m = metrics();
    return testing::metric_sample(m, keys) == 3 && testing::metric_sample(m, pres) == 3;
  };
  bool filled = false;
  for (int i = 0; i < 200 && !(filled = full()); i++) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(filled);
  auto before = metrics();
  CHECK(contains(before, "# TYPE pinniped_key_pool_misses_total counter\n"));
  // Six exchanges in a row, more than are ready: every certificate verifies
  // against the signer, whichever way its signature was made.
  auto signer = pinniped::read_file(env.dir.file("signer.crt"));
  for (int i = 0; i < 6; i++) {
    auto res = c.request("POST", kTcr, tcr_json(kGoodToken));
    REQUIRE(res.status == 201);
    auto cert = str(at(parse_json(res.body), {"status", "credential", "clientCertificateData"}));
    auto chain = pinniped::CertificateChain::parse(cert), ca = pinniped::CertificateChain::parse(signer);
    uint32_t flags = 0;
    CHECK(mbedtls_x509_crt_verify(const_cast<mbedtls_x509_crt *>(chain->get()),
                                  const_cast<mbedtls_x509_crt *>(ca->get()), nullptr, nullptr, &flags, nullptr,
                                  nullptr) == 0);
  }
  auto after = metrics();
  // The refill thread races the exchanges: at most one miss each.
  double misses = testing::metric_sample(after, pre_miss) - testing::metric_sample(before, pre_miss);
  CHECK(misses >= 0);
  CHECK(misses <= 6);
  CHECK(testing::metric_sample(after, "pinniped_certificates_issued_total") == 6);
  filled = false;
  for (int i = 0; i < 200 && !(filled = full()); i++) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(filled);  // refilled
}

TEST_CASE("with --key-pool 0 nothing is made ahead and every exchange counts a miss of each kind") {
  Env env({{"--key-pool", "0"}});
  auto &c = env.c();
  for (int i = 0; i < 4; i++) REQUIRE(c.request("POST", kTcr, tcr_json(kGoodToken)).status == 201);
  auto m = c.request("GET", "/metrics", "", {}).body;
  CHECK(testing::metric_sample(m, "pinniped_key_pool_ready{kind=\"key\"}") == 0);
  CHECK(testing::metric_sample(m, "pinniped_key_pool_ready{kind=\"presignature\"}") == 0);
  CHECK(testing::metric_sample(m, "pinniped_key_pool_misses_total{kind=\"key\"}") == 4);
  CHECK(testing::metric_sample(m, "pinniped_key_pool_misses_total{kind=\"presignature\"}") == 4);
}

TEST_CASE("every log line is one JSON object and none carries a token or a private key") {
  Env env({{"--log-level", "debug"}});
  auto &c = env.c();
  std::vector<std::string> tokens = {kGoodToken,
                                     "rejected-log-token-1a",
                                     "unknown-idp-log-token-2b",
                                     "malformed-log-token-3c",
                                     "namespaced-log-token-4d",
                                     "yaml-log-token-5e"};
  CHECK(c.request("POST", kTcr, tcr_json(tokens[0])).status == 201);
  CHECK(c.request("POST", kTcr, tcr_json(tokens[1])).status == 201);
  CHECK(c.request("POST", kTcr, tcr_json(tokens[2], "no-such-idp")).status == 201);
  CHECK(c.request("POST", kTcr, R"({"spec": {"authenticator": x, "token":")" + tokens[3] + "\"}}").status == 400);
  CHECK(
      c.request("POST", kTcr, R"({"metadata":{"namespace":"default"},"spec":{"token":")" + tokens[4] + "\"}}").status ==
      400);
  CHECK(c.request("POST", kTcr, "spec:\n  token: " + tokens[5] + "\n", {{"Content-Type", "application/yaml"}}).status ==
        415);
  // Stop the server so every line is written before the log is read.
  c.process().signal(SIGTERM);
  REQUIRE(c.process().wait(scaled(10s)) == 0);

  std::string log = c.log();
  std::istringstream lines(log);
  size_t count = 0, successes = 0, failures = 0, requests = 0;
  for (std::string line; std::getline(lines, line);) {
    INFO("log line: " << line);
    count++;
    picojson::value v;
    try {
      v = pinniped::json::parse(line);
    } catch (const pinniped::Error &e) {
      FAIL_CHECK("not JSON: " << e.what());
      continue;
    }
    REQUIRE(v.is<picojson::object>());
    CHECK(pinniped::parse_rfc3339(str(at(v, {"ts"}))).has_value());
    std::string level = str(at(v, {"level"}));
    CHECK((level == "debug" || level == "info" || level == "warn" || level == "error"));
    CHECK(at(v, {"msg"}).is<std::string>());
    for (const auto &t : tokens) CHECK(!contains(line, t));
    CHECK(!contains(line, "PRIVATE KEY"));
    if (str(at(v, {"msg"})) == "exchange") {
      if (str(at(v, {"outcome"})) == "success") {
        successes++;
        CHECK(str(at(v, {"user"})) == "alice");
      } else {
        failures++;
      }
    }
    if (str(at(v, {"msg"})) == "request") requests++;
  }
  // The checks above looked at real lines.
  CHECK(count >= 8);
  CHECK(successes == 1);
  CHECK(failures == 2);
  CHECK(requests == 6);
  CHECK(contains(log, R"("msg":"stopped")"));
}

TEST_CASE("slow or silent clients are cut off and cannot starve a normal client") {
  const Millis request_timeout = 1s;
  Env env({{"--threads", "2", "--max-queue", "2", "--request-timeout", "1s"}});
  auto &c = env.c();

  struct Slow {
    std::string kind;
    int fd = -1;
    std::unique_ptr<RawTls> tls;  // set when the handshake was done first
    std::string dribble;          // bytes sent one at a time
    size_t sent = 0;
    Steady::time_point opened;
    std::optional<Steady::time_point> closed;
  };
  std::vector<Slow> slow;
  auto send_next = [](Slow &s) {
    if (s.sent >= s.dribble.size()) return;
    std::string byte = s.dribble.substr(s.sent++, 1);
    if (s.tls)
      s.tls->send(byte, 100ms);
    else
      (void)::send(s.fd, byte.data(), 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  };
  // Two requests dribbled over finished handshakes take both workers...
  for (int i = 0; i < 2; i++) {
    Slow s;
    s.kind = "HTTP request line byte by byte";
    s.tls = std::make_unique<RawTls>(c);
    s.fd = s.tls->fd();
    s.dribble = "POST " + kTcr + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\r\n";
    s.opened = Steady::now();
    send_next(s);
    slow.push_back(std::move(s));
  }
  // ...two dribbled TLS handshakes queue for them (a ClientHello record
  // header announcing 512 bytes, then a byte at a time)...
  for (int i = 0; i < 2; i++) {
    Slow s;
    s.kind = "TLS handshake byte by byte";
    s.fd = connect_tcp(c.port());
    REQUIRE(s.fd >= 0);
    s.dribble = std::string("\x16\x03\x01\x02\x00", 5) + std::string(512, '\x01');
    s.opened = Steady::now();
    send_next(s);
    slow.push_back(std::move(s));
  }
  // ...and silent connections find the queue full.
  for (int i = 0; i < 6; i++) {
    Slow s;
    s.kind = "silent TCP connection";
    s.fd = connect_tcp(c.port());
    REQUIRE(s.fd >= 0);
    s.opened = Steady::now();
    slow.push_back(std::move(s));
  }

  // A normal client retries while the server is saturated.
  std::atomic<bool> answered{false};
  std::atomic<int64_t> answered_after_ms{-1};
  std::thread normal([&] {
    auto start = Steady::now();
    while (Steady::now() - start < scaled(8s)) {
      try {
        auto res = c.client()->request("POST", kTcr, kJson, tcr_json(kGoodToken), scaled(3s));
        if (res.status == 201) {
          answered_after_ms = std::chrono::duration_cast<Millis>(Steady::now() - start).count();
          answered = true;
          return;
        }
      } catch (const pinniped::Error &) {
        // refused while the queue is full: try again
      }
      std::this_thread::sleep_for(100ms);
    }
  });

  // A queued connection may wait one request timeout for a worker, then
  // has one request timeout of its own.
  const Millis limit = request_timeout * 2 + scaled(1500ms);
  auto start = Steady::now();
  for (;;) {
    bool open = false;
    for (auto &s : slow) {
      if (s.closed) continue;
      if (peer_closed(s.fd)) {
        s.closed = Steady::now();
        continue;
      }
      open = true;
      send_next(s);
    }
    if (!open || Steady::now() - start > limit + 1s) break;
    std::this_thread::sleep_for(100ms);
  }
  normal.join();

  for (const auto &s : slow) {
    INFO(s.kind);
    REQUIRE(s.closed);
    CHECK(std::chrono::duration_cast<Millis>(*s.closed - s.opened).count() <= limit.count());
  }
  for (auto &s : slow)
    if (!s.tls) ::close(s.fd);
  INFO("normal client answered after " << answered_after_ms.load() << " ms");
  CHECK(answered);
  CHECK(answered_after_ms.load() <= scaled(5s).count());
  check_still_serving(c);
}

TEST_CASE("SIGTERM lets an in-flight exchange finish, refuses new connections and exits 0") {
  Env env;
  auto &c = env.c();
  env.idp.set_handler([&env](const httplib::Request &req, httplib::Response &res) {
    std::this_thread::sleep_for(1s);
    env.idp.default_handler(req, res);
  });
  std::atomic<bool> done{false};
  HttpResponse inflight;
  std::string error;
  std::thread t([&] {
    try {
      inflight = c.request("POST", kTcr, tcr_json(kGoodToken));
    } catch (const std::exception &e) {
      error = e.what();
    }
    done = true;
  });
  // Wait until the exchange is inside the webhook call.
  auto until = Steady::now() + scaled(5s);
  while (env.idp.requests() == 0 && Steady::now() < until) std::this_thread::sleep_for(5ms);
  bool in_webhook = env.idp.requests() == 1;
  c.process().signal(SIGTERM);

  bool refused = false;
  until = Steady::now() + scaled(1s);
  while (!refused && Steady::now() < until) {
    int fd = connect_tcp(c.port());
    if (fd < 0)
      refused = errno == ECONNREFUSED;
    else
      ::close(fd);
    if (!refused) std::this_thread::sleep_for(5ms);
  }
  bool refused_while_in_flight = refused && !done;
  t.join();

  REQUIRE(in_webhook);
  CHECK(refused);
  CHECK(refused_while_in_flight);
  INFO("error: " << error << "; body: " << inflight.body.substr(0, 300));
  REQUIRE(inflight.status == 201);
  auto v = parse_json(inflight.body);
  CHECK(starts_with(str(at(v, {"status", "credential", "clientCertificateData"})), "-----BEGIN CERTIFICATE-----"));
  CHECK(c.process().wait(scaled(5s)) == 0);
  int fd = connect_tcp(c.port());
  CHECK(fd < 0);
  if (fd >= 0) ::close(fd);
}

TEST_CASE("with --shutdown-delay, SIGTERM first fails /readyz while exchanges still succeed, then exits 0") {
  ConciergeOptions o;
  o.flags = {"--shutdown-delay", "1500ms"};
  Env env(o);
  auto &c = env.c();
  REQUIRE(c.request("GET", "/readyz", "", {}).status == 200);
  auto signalled = Steady::now();
  c.process().signal(SIGTERM);
  // Within the delay: not ready ("shutting down"), alive, and exchanging.
  HttpResponse ready;
  bool draining = testing::eventually(
      [&] {
        ready = c.request("GET", "/readyz", "", {});
        return ready.status == 500;
      },
      scaled(1000ms));
  auto seen_after = std::chrono::duration_cast<Millis>(Steady::now() - signalled);
  REQUIRE(draining);
  CHECK(ready.body.find("shutting down") != std::string::npos);
  CHECK(c.request("GET", "/healthz", "", {}).status == 200);
  auto ex = c.request("POST", kTcr, tcr_json(kGoodToken));
  CHECK(ex.status == 201);
  CHECK(ex.body.find("clientCertificateData") != std::string::npos);
  INFO("readyz failed after " << seen_after.count() << " ms");
  CHECK(c.process().wait(scaled(5s)) == 0);
  auto waited = std::chrono::duration_cast<Millis>(Steady::now() - signalled);
  CHECK(waited >= 1500ms);  // the listener stayed open for the whole delay
  CHECK(c.log().find("\"msg\":\"shutting down\"") != std::string::npos);
}

namespace {
// Local ports of this machine's established IPv4 connections to 127.0.0.1:port.
std::set<int> client_ports_connected_to(int port) {
  std::set<int> out;
  std::ifstream f("/proc/net/tcp");
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string slot, local, remote, state;
    in >> slot >> local >> remote >> state;
    auto colon = remote.find(':');
    if (state != "01" || colon == std::string::npos) continue;
    if (remote.substr(0, colon) != "0100007F" || std::stoi(remote.substr(colon + 1), nullptr, 16) != port) continue;
    out.insert(std::stoi(local.substr(local.find(':') + 1), nullptr, 16));
  }
  return out;
}
}  // namespace

TEST_CASE("one kept-alive connection serves many requests, error answers included") {
  Env env;
  auto &c = env.c();
  struct Step {
    std::string method, path, body;
    int want;
  };
  const std::vector<Step> steps = {{"POST", kTcr, tcr_json(kGoodToken), 201},
                                   {"GET", "/healthz", "", 200},
                                   {"GET", kVersionPath, "", 200},
                                   {"POST", kTcr, tcr_json(""), 422},
                                   {"GET", "/nope", "", 404}};
  auto client = c.client();
  std::set<int> ports;
  for (int i = 0; i < 40; i++) {
    const auto &step = steps[i % steps.size()];
    INFO("request " << i << ": " << step.method << " " << step.path);
    auto res =
        client->request(step.method, step.path, step.body.empty() ? httplib::Headers() : kJson, step.body, scaled(10s));
    CHECK(res.status == step.want);
    auto now = client_ports_connected_to(c.port());
    CHECK(now.size() == 1);
    ports.insert(now.begin(), now.end());
  }
  // One TCP connection (one client port) carried all of them.
  CHECK(ports.size() == 1);
  CHECK(env.idp.requests() == 8);
}

// ---------------------------------------------------------------------------
// The direct frontend: the exchange for clients that reach the concierge
// itself (clusters whose kube-apiserver refuses anonymous requests).

namespace {

// The direct frontend's port, from the "serving" log line.
int direct_port_of(testing::ConciergeProcess &c) {
  int port = 0;
  testing::eventually(
      [&] {
        std::istringstream in(c.log());
        for (std::string l; std::getline(in, l);) {
          if (!contains(l, "\"msg\":\"serving\"")) continue;
          auto v = parse_json(l);
          port = static_cast<int>(num(at(v, {"directPort"})));
        }
        return port > 0;
      },
      scaled(10s));
  return port;
}

struct DirectEnv : Env {
  int direct_port = 0;
  explicit DirectEnv(std::vector<std::string> extra = {})
      : Env(ConciergeOptions{[&] {
          std::vector<std::string> f = {"--direct-listen", "127.0.0.1:0", "--direct-san", "concierge.edge.example"};
          f.insert(f.end(), extra.begin(), extra.end());
          return f;
        }()}) {
    direct_port = direct_port_of(c());
    if (direct_port <= 0) throw std::runtime_error("no direct port; log:\n" + c().log());
  }
  std::string direct_base() const { return "https://127.0.0.1:" + std::to_string(direct_port); }
  HttpResponse direct(const std::string &method, const std::string &path, const std::string &body,
                      httplib::Headers headers = kJson, pinniped::ClientTlsOptions tls = {}) {
    tls.ca_pem = concierge->ca_pem();
    pinniped::HttpsClient client(direct_base(), tls);
    return client.request(method, path, headers, body, scaled(30s));
  }
};

const std::string kWhoAmIPath = "/apis/identity.concierge.pinniped.dev/v1alpha1/whoamirequests";
const std::string kWhoAmIBody =
    R"({"apiVersion":"identity.concierge.pinniped.dev/v1alpha1","kind":"WhoAmIRequest","spec":{}})";

picojson::value whoami_user(const HttpResponse &res) {
  INFO(res.body.substr(0, 300));
  REQUIRE(res.status == 201);
  return at(parse_json(res.body), {"status", "kubernetesUserInfo", "user"});
}

}  // namespace

TEST_CASE("the direct frontend exchanges tokens with a certificate valid for its addresses and names") {
  DirectEnv env;
  // Verified by IP (127.0.0.1 is a SAN) against the published serving CA.
  auto res = env.direct("POST", kTcr, tcr_json(kGoodToken));
  INFO(res.body.substr(0, 300));
  REQUIRE(res.status == 201);
  auto cert = str(at(parse_json(res.body), {"status", "credential", "clientCertificateData"}));
  auto chain = pinniped::CertificateChain::parse(cert);
  CHECK(pinniped::detail::common_name(&chain->get()->subject) == "alice");
  // ...and by name, for --direct-san.
  pinniped::ClientTlsOptions by_name;
  by_name.server_name = "concierge.edge.example";
  CHECK(env.direct("GET", "/healthz", "", {}, by_name).status == 200);
  pinniped::ClientTlsOptions wrong_name;
  wrong_name.server_name = "elsewhere.example";
  CHECK_THROWS(env.direct("GET", "/healthz", "", {}, wrong_name));
  // Bad input gets the same Status answers as on the aggregated port.
  CHECK(env.direct("POST", kTcr, tcr_json("")).status == 422);
  CHECK(env.direct("GET", "/nope", "", {}).status == 404);
  // Metrics stay off the frontend that faces people outside the cluster.
  CHECK(env.direct("GET", "/metrics", "", {}).status == 404);
  CHECK(env.c().request("GET", "/metrics", "", {}).status == 200);
  CHECK(contains(env.c().log(), "\"frontend\":\"direct\""));
}

TEST_CASE("with the direct frontend on, SIGTERM drains both listeners and exits 0, again and again") {
  for (int round = 0; round < 3; round++) {
    INFO("round " << round);
    DirectEnv env({"--shutdown-delay", round == 2 ? "300ms" : "0"});
    CHECK(env.direct("GET", "/healthz", "").status == 200);
    env.c().process().signal(SIGTERM);
    CHECK(env.c().process().wait(scaled(10s)) == 0);
    CHECK(contains(env.c().log(), R"("msg":"stopped")"));
  }
}

TEST_CASE("WhoAmIRequest on the direct frontend trusts a cluster-signed client certificate and never headers") {
  DirectEnv env;
  httplib::Headers forged = {
      {"Content-Type", "application/json"}, {"X-Remote-User", "system:admin"}, {"X-Remote-Group", "system:masters"}};
  // No certificate: anonymous, whatever the headers say.
  auto anon = whoami_user(env.direct("POST", kWhoAmIPath, kWhoAmIBody, forged));
  CHECK(str(at(anon, {"username"})) == "system:anonymous");
  CHECK(strings(at(anon, {"groups"})) == std::vector<std::string>{"system:unauthenticated"});
  // The certificate the exchange issued (signed by the cluster signer).
  auto res = env.direct("POST", kTcr, tcr_json(kGoodToken));
  REQUIRE(res.status == 201);
  auto cred = parse_json(res.body);
  pinniped::ClientTlsOptions tls;
  tls.client_cert_pem = str(at(cred, {"status", "credential", "clientCertificateData"}));
  tls.client_key_pem = str(at(cred, {"status", "credential", "clientKeyData"}));
  auto alice = whoami_user(env.direct("POST", kWhoAmIPath, kWhoAmIBody, forged, tls));
  CHECK(str(at(alice, {"username"})) == "alice");
  CHECK(strings(at(alice, {"groups"})) == std::vector<std::string>{"devs", "ops", "system:authenticated"});
  // A client certificate from any other CA is nobody.
  auto other = pinniped::make_self_signed_ca("not-the-cluster-signer", std::chrono::hours(1));
  auto mallory = testing::client_cert(other, "system:admin", {"system:masters"});
  pinniped::ClientTlsOptions foreign;
  foreign.client_cert_pem = mallory.cert_pem;
  foreign.client_key_pem = mallory.key_pem;
  auto who = whoami_user(env.direct("POST", kWhoAmIPath, kWhoAmIBody, forged, foreign));
  CHECK(str(at(who, {"username"})) == "system:anonymous");
}

TEST_CASE("failed exchanges on the direct frontend are limited per client address; the IDP is not asked") {
  DirectEnv env({"--direct-failure-limit", "3"});
  int idp_before = env.idp.requests();
  for (int i = 0; i < 3; i++)
    check_authentication_failed(env.direct("POST", kTcr, tcr_json("wrong-" + std::to_string(i))));
  CHECK(env.idp.requests() == idp_before + 3);
  // Over the budget: refused, a good token too, and the IDP is not called.
  int refused = 0;
  for (int i = 0; i < 5; i++) {
    auto res = env.direct("POST", kTcr, tcr_json(i == 4 ? kGoodToken : "wrong-more"));
    check_authentication_failed(res);
    refused++;
  }
  CHECK(env.idp.requests() == idp_before + 3);
  auto metrics = env.c().request("GET", "/metrics", "", {}).body;
  CHECK(contains(metrics, "pinniped_direct_rate_limited_total " + std::to_string(refused) + "\n"));
  CHECK(contains(env.c().log(), "too many failed exchanges from this address"));
  // The aggregated port (kube-apiserver in front, one address for everyone)
  // is not limited.
  auto res = env.c().request("POST", kTcr, tcr_json(kGoodToken));
  CHECK(res.status == 201);
  CHECK(contains(res.body, "clientCertificateData"));
}

TEST_CASE("the failure limit refills over a minute, keys IPv6 clients by /64 and remembers a bounded number") {
  using pinniped::FailureLimiter;
  auto t0 = Steady::now();
  FailureLimiter l(2, 3);
  CHECK(l.allow("10.0.0.1", t0));
  l.failed("10.0.0.1", t0);
  l.failed("10.0.0.1", t0);
  CHECK_FALSE(l.allow("10.0.0.1", t0));
  CHECK(l.allow("10.0.0.2", t0));              // another address has its own budget
  CHECK_FALSE(l.allow("10.0.0.1", t0 + 29s));  // half a token back
  CHECK(l.allow("10.0.0.1", t0 + 31s));        // a whole one
  CHECK(FailureLimiter::key("2001:db8:1:2:aaaa::1") == FailureLimiter::key("2001:db8:1:2:bbbb::9"));
  CHECK(FailureLimiter::key("2001:db8:1:2::1") != FailureLimiter::key("2001:db8:1:3::1"));
  CHECK(FailureLimiter::key("::ffff:10.0.0.1") == "10.0.0.1");
  for (int i = 0; i < 100; i++) l.failed("192.0.2." + std::to_string(i), t0);
  CHECK(l.tracked() == 3);
  FailureLimiter off(0);
  off.failed("10.0.0.1", t0);
  CHECK(off.allow("10.0.0.1", t0));
}

namespace {
// A stand-in for kube-apiserver answering every request with `code`.
struct ScriptedApiServer {
  pinniped::CertificateAndKey ca = pinniped::make_self_signed_ca("scripted-apiserver-ca", std::chrono::hours(1));
  pinniped::TlsServer server;
  std::thread thread;
  int port = 0;
  std::atomic<int> code{401};
  std::string last_authorization;
  ScriptedApiServer() {
    auto leaf = testing::serving_cert(ca, {"127.0.0.1"});
    server.set_credentials({leaf.cert_pem, leaf.key_pem, ""});
    pinniped::route_everything(server, [this](const httplib::Request &req, httplib::Response &res) {
      last_authorization = req.get_header_value("Authorization");
      int c = code.load();
      if (c == 422) {
        pinniped::send_status(res, pinniped::Error(422, "Invalid", "spec.token.value: Required value"));
      } else {
        pinniped::send_status(res,
                              pinniped::Error(c, pinniped::reason_for_code(c), pinniped::detail::http_reason_phrase(c)));
      }
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
    while (!server.is_running()) std::this_thread::sleep_for(Millis(1));
  }
  ~ScriptedApiServer() {
    server.shutdown();
    thread.join();
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port); }
};
}  // namespace

TEST_CASE("the anonymous probe tells a refusing kube-apiserver from one that lets exchanges through") {
  ScriptedApiServer api;
  pinniped::KubeConfig kc;
  kc.server = api.url();
  kc.tls.ca_pem = api.ca.cert_pem;
  kc.token = "the-concierge-service-account-token";
  struct Row {
    int code;
    pinniped::AnonymousAccess want;
  };
  for (auto row : {Row{401, pinniped::AnonymousAccess::unauthorized}, Row{403, pinniped::AnonymousAccess::forbidden},
                   Row{422, pinniped::AnonymousAccess::open}, Row{503, pinniped::AnonymousAccess::unknown},
                   Row{500, pinniped::AnonymousAccess::unknown}}) {
    INFO("HTTP " << row.code);
    api.code = row.code;
    std::string seen;
    CHECK(pinniped::probe_anonymous_exchange(kc, "pinniped.dev", scaled(5s), &seen) == row.want);
    CHECK(seen == "HTTP " + std::to_string(row.code));
    CHECK(api.last_authorization.empty());  // anonymous: the concierge's own token is never sent
  }
  // Nobody listening: unknown, not refused.
  kc.server = "https://127.0.0.1:1";
  CHECK(pinniped::probe_anonymous_exchange(kc, "pinniped.dev", scaled(2s)) == pinniped::AnonymousAccess::unknown);
}

TEST_CASE("a 401 or 403 from kube-apiserver is reported as a refused anonymous login, never as authentication failed") {
  ScriptedApiServer api;
  pinniped::ExchangeOptions o;
  o.endpoint = api.url();
  o.tls.ca_pem = api.ca.cert_pem;
  o.authenticator_name = "my-idp";
  for (int code : {401, 403}) {
    INFO("HTTP " << code);
    api.code = code;
    try {
      pinniped::exchange_token(o, "some-token-value");
      FAIL("no error");
    } catch (const pinniped::Error &e) {
      std::string msg = e.what();
      CHECK(e.code == code);
      CHECK(contains(msg, "refused the anonymous login request (HTTP " + std::to_string(code)));
      CHECK(contains(msg, "docs/k3s.md#unauthorized"));
      CHECK(!contains(msg, "authentication failed"));
      CHECK(!contains(msg, "some-token-value"));
      CHECK(msg.find('\n') == std::string::npos);
    }
  }
}

// ---------------------------------------------------------------------------
// Deadlines, answers that must arrive whole, and probes during an IDP outage.

TEST_CASE("an exchange that succeeds after the request timeout still gets its whole answer") {
  // Reading takes no time; the IDP answers after 2 s, past the 1 s request
  // timeout: the answer must still be written whole.
  Env env({{"--request-timeout", "1s", "--webhook-timeout", "10s"}});
  env.idp.set_handler([&env](const httplib::Request &req, httplib::Response &res) {
    std::this_thread::sleep_for(2s);
    env.idp.default_handler(req, res);
  });
  auto res = env.c().request("POST", kTcr, tcr_json(kGoodToken));
  INFO(res.body.substr(0, 200));
  REQUIRE(res.status == 201);
  CHECK(contains(res.body, "clientCertificateData"));
  CHECK(parse_json(res.body).is<picojson::object>());
  // A webhook timeout answers whole too ("authentication failed").
  env.idp.set_handler([](const httplib::Request &, httplib::Response &res) {
    std::this_thread::sleep_for(4s);
    res.status = 500;
  });
  Env slow({{"--request-timeout", "1s", "--webhook-timeout", "2s", "--webhook-attempts", "1"}});
  slow.idp.set_handler([](const httplib::Request &, httplib::Response &res) {
    std::this_thread::sleep_for(3s);
    res.status = 500;
  });
  auto failed = slow.c().request("POST", kTcr, tcr_json(kGoodToken));
  check_authentication_failed(failed);
}

TEST_CASE("a request that lies about its Content-Length gets a whole 400 Status after the request timeout") {
  Env env({{"--request-timeout", "1s"}});
  RawTls raw(env.c());
  std::string head = "POST " + kTcr +
                     " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100\r\n\r\n";
  REQUIRE(raw.send(head + R"({"spec":)"));
  auto res = raw.response(scaled(5s));
  REQUIRE(res);
  INFO(res->body);
  CHECK(res->status == 400);
  CHECK(contains(res->body, "\"kind\":\"Status\""));
  CHECK(res->body.size() == std::stoul(res->header("Content-Length")));
}

TEST_CASE("a 1 MiB body is answered 413 every time, never a connection reset") {
  Env env;
  std::string body = padded_body(1024 * 1024);
  for (int i = 0; i < 6; i++) {
    INFO("try " << i);
    RawTls raw(env.c());
    raw.send(raw_request("POST", kTcr, {{"Content-Type", "application/json"}}, body, i % 2 == 1), scaled(5s));
    auto res = raw.response(scaled(5s));
    REQUIRE(res);
    CHECK(res->status == 413);
    CHECK(contains(res->body, "RequestEntityTooLarge"));
  }
  check_still_serving(env.c());
}

TEST_CASE("health probes, metrics and discovery answer at once while every exchange waits on a hung IDP") {
  Env env({{"--threads", "8", "--webhook-timeout", "6s", "--webhook-attempts", "1"}});
  std::atomic<bool> release{false};
  env.idp.set_handler([&](const httplib::Request &req, httplib::Response &res) {
    auto until = Steady::now() + 6s;
    while (!release && Steady::now() < until) std::this_thread::sleep_for(10ms);
    env.idp.default_handler(req, res);
  });
  std::vector<std::thread> clients;
  std::atomic<int> refused{0}, waited{0};
  for (int i = 0; i < 12; i++)
    clients.emplace_back([&] {
      try {
        auto res = env.c().request("POST", kTcr, tcr_json(kGoodToken));
        (res.status == 429 ? refused : waited)++;
      } catch (const std::exception &) {
      }
    });
  // Every worker an exchange may have is now waiting on the IDP (and, without
  // the reserve, every worker there is).
  REQUIRE(testing::eventually([&] { return env.idp.requests() >= 4; }, scaled(10s)));
  std::this_thread::sleep_for(scaled(500ms));
  for (const std::string &path : std::vector<std::string>{"/healthz", "/readyz", "/metrics", kVersionPath}) {
    INFO(path);
    auto t0 = Steady::now();
    auto res = env.c().request("GET", path, "", {});
    auto took = std::chrono::duration_cast<Millis>(Steady::now() - t0);
    CHECK(res.status == 200);
    CHECK(took < scaled(1s));
  }
  release = true;
  for (auto &t : clients) t.join();
  // 8 workers less the reserve of 4: 4 exchanges waited, the rest were told to retry.
  CHECK(waited == 4);
  CHECK(refused == 8);
  CHECK(contains(env.c().request("GET", "/metrics", "", {}).body,
                 "pinniped_exchanges_total{outcome=\"refused\",reason=\"too_many_in_flight\"} 8"));
}

TEST_CASE("an empty group is dropped from the certificate and the log says so") {
  Env env;
  env.idp.add_user("empty-groups-token", {"carol", "", {"devs", "", "ops", ""}, {}});
  auto res = env.c().request("POST", kTcr, tcr_json("empty-groups-token"));
  REQUIRE(res.status == 201);
  auto chain = pinniped::CertificateChain::parse(
      str(at(parse_json(res.body), {"status", "credential", "clientCertificateData"})));
  CHECK(pinniped::detail::organizations(&chain->get()->subject) == std::vector<std::string>{"devs", "ops"});
  CHECK(contains(env.c().log(), "\"msg\":\"empty group names dropped from the certificate\""));
  CHECK(contains(env.c().log(), "\"dropped\":2"));
}

namespace {
// The last request the IDP of `env` received (its default answers go on).
struct LastIdpRequest {
  std::mutex mu;
  httplib::Request req;
  explicit LastIdpRequest(Env &env) {
    env.idp.set_handler([this, &env](const httplib::Request &r, httplib::Response &res) {
      {
        std::lock_guard<std::mutex> lk(mu);
        req = r;
      }
      env.idp.default_handler(r, res);
    });
  }
};
}  // namespace

TEST_CASE("a token with invalid UTF-8 reaches the IDP as valid JSON, each bad byte as U+FFFD") {
  Env env;
  LastIdpRequest last(env);
  std::string body = R"({"apiVersion":"login.concierge.pinniped.dev/v1alpha1","kind":"TokenCredentialRequest",)"
                     R"("spec":{"token":"ab)" +
                     std::string("\xff\xc3", 2) + R"(cd","authenticator":{"apiGroup":")" + kAuthGroup +
                     R"(","kind":"WebhookAuthenticator","name":"my-idp"}}})";
  check_authentication_failed(env.c().request("POST", kTcr, body));
  std::lock_guard<std::mutex> lk(last.mu);
  std::string seen = last.req.body;
  REQUIRE(!seen.empty());
  CHECK(pinniped::detail::valid_utf8(seen));
  auto review = parse_json(seen);
  CHECK(str(at(review, {"spec", "token"})) ==
        "ab\xef\xbf\xbd\xef\xbf\xbd"
        "cd");
}

TEST_CASE("a client that accepts no JSON gets 406 from discovery and OpenAPI, as k8s.io/apiserver answers") {
  Env env;
  auto &c = env.c();
  struct Row {
    std::string path, accept;
    int want;
  };
  for (const auto &row : std::vector<Row>{
           {"/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf", 406},
           {"/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf, application/json", 200},
           {"/apis", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", 406},
           {"/apis", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json", 200},
           {kVersionPath, "application/vnd.kubernetes.protobuf", 406},
           {"/version", "application/yaml", 406},
           {"/healthz", "application/vnd.kubernetes.protobuf", 200},
           {"/metrics", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5", 200}}) {
    INFO(row.path << " Accept: " << row.accept);
    auto res = c.request("GET", row.path, "", {{"Accept", row.accept}});
    CHECK(res.status == row.want);
    if (row.want == 406) {
      CHECK(contains(res.body, "\"reason\":\"NotAcceptable\""));
      CHECK(starts_with(res.header("Content-Type"), "application/json"));
    }
  }
}

TEST_CASE("--requestheader-allowed-names limits whose X-Remote-* headers a standalone concierge trusts") {
  testing::TempDir pki;
  auto proxy_ca = pinniped::make_self_signed_ca("front-proxy-ca", std::chrono::hours(1));
  pki.write("front-proxy-ca.pem", proxy_ca.cert_pem);
  Env env({{"--client-ca", pki.file("front-proxy-ca.pem"), "--requestheader-allowed-names", "front-proxy-client"}});
  httplib::Headers h = {{"Content-Type", "application/json"}, {"X-Remote-User", "dave"}, {"X-Remote-Group", "g"}};
  auto who = [&](const std::string &cn) {
    auto cert = testing::client_cert(proxy_ca, cn);
    pinniped::ClientTlsOptions tls;
    tls.ca_pem = env.c().ca_pem();
    tls.client_cert_pem = cert.cert_pem;
    tls.client_key_pem = cert.key_pem;
    pinniped::HttpsClient client(env.c().base(), tls);
    auto res = client.request("POST", kWhoAmIPath, h, kWhoAmIBody, scaled(10s));
    return str(at(whoami_user(res), {"username"}));
  };
  CHECK(who("front-proxy-client") == "dave");
  CHECK(who("someone-else") == "system:anonymous");  // the right CA, a CN not allowed
}

TEST_CASE("SIGTERM does not wait for the rest of a request that is only half sent") {
  Env env({{"--request-timeout", "30s"}});
  RawTls raw(env.c());
  REQUIRE(raw.send("POST " + kTcr + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 500\r\n\r\n{\"spec\":"));
  std::this_thread::sleep_for(scaled(300ms));
  auto t0 = Steady::now();
  env.c().process().signal(SIGTERM);
  int rc = env.c().process().wait(scaled(10s));
  auto took = std::chrono::duration_cast<Millis>(Steady::now() - t0);
  CHECK(rc == 0);
  CHECK(took < scaled(3s));  // not the 30 s request timeout
}

TEST_CASE("Range headers never reach cpp-httplib's regex: long ones neither crash nor multiply an answer") {
  Env env;
  auto &c = env.c();
  auto whole = c.request("GET", "/openapi/v2", "", {});
  REQUIRE(whole.status == 200);
  std::string deep = "bytes=";
  for (int i = 0; i < 1999; i++) deep += "0-,";
  deep += "0-";
  std::string wide = "bytes=-";
  for (int i = 0; i < 4085; i++) wide += ",-";
  for (const auto &range : {deep, wide, std::string("bytes=0-10")}) {
    INFO(range.substr(0, 20) << "... (" << range.size() << " bytes)");
    auto res = c.request("GET", "/openapi/v2", "", {{"Range", range}});
    CHECK(res.status == 200);  // ranges are not served: the whole document, once
    CHECK(res.body == whole.body);
  }
  check_still_serving(c);
}

TEST_CASE("one audit line per exchange: outcome, user and groups, authenticator, token ID, client, certificate") {
  Env env;
  auto &c = env.c();
  auto ok = c.request("POST", kTcr, tcr_json(kGoodToken),
                      {{"Content-Type", "application/json"}, {"User-Agent", "kubectl-audit-test/1.0"}});
  REQUIRE(ok.status == 201);
  auto cred = parse_json(ok.body);
  auto chain = pinniped::CertificateChain::parse(str(at(cred, {"status", "credential", "clientCertificateData"})));
  std::string serial = pinniped::detail::hex(
      std::string(reinterpret_cast<const char *>(chain->get()->serial.p), chain->get()->serial.len));
  while (serial.size() > 2 && serial.compare(0, 2, "00") == 0) serial = serial.substr(2);
  check_authentication_failed(c.request("POST", kTcr, tcr_json("a-wrong-token-9d2f")));
  std::vector<picojson::value> lines;
  REQUIRE(testing::eventually(
      [&] {
        lines.clear();
        std::istringstream in(c.log());
        for (std::string l; std::getline(in, l);)
          if (contains(l, "\"msg\":\"exchange\"")) lines.push_back(parse_json(l));
        return lines.size() == 2;
      },
      scaled(5s)));
  const auto &s = lines[0];
  CHECK(str(at(s, {"outcome"})) == "success");
  CHECK(str(at(s, {"user"})) == "alice");
  CHECK(strings(at(s, {"groups"})) == std::vector<std::string>{"devs", "ops"});
  CHECK(str(at(s, {"authenticator"})) == "WebhookAuthenticator/my-idp");
  CHECK(str(at(s, {"tokenID"})) == pinniped::detail::hex(pinniped::detail::sha256(kGoodToken)).substr(0, 12));
  CHECK(str(at(s, {"client"})) == "127.0.0.1");
  CHECK(str(at(s, {"userAgent"})) == "kubectl-audit-test/1.0");
  CHECK(str(at(s, {"serial"})) == serial);
  CHECK(str(at(s, {"notAfter"})) == str(at(cred, {"status", "credential", "expirationTimestamp"})));
  const auto &f = lines[1];
  CHECK(str(at(f, {"outcome"})) == "failed");
  CHECK(str(at(f, {"reasonClass"})) == "rejected");
  CHECK(str(at(f, {"tokenID"})) == pinniped::detail::hex(pinniped::detail::sha256("a-wrong-token-9d2f")).substr(0, 12));
  CHECK(!contains(c.log(), "a-wrong-token-9d2f"));
  CHECK(!contains(c.log(), kGoodToken));
}

TEST_CASE("the IDP is told the exchange's client address in X-Forwarded-For") {
  Env env;
  LastIdpRequest last(env);
  REQUIRE(env.c().request("POST", kTcr, tcr_json(kGoodToken)).status == 201);
  std::lock_guard<std::mutex> lk(last.mu);
  CHECK(last.req.get_header_value("X-Forwarded-For") == "127.0.0.1");
}

TEST_CASE("silent connections, idle keep-alive clients and bursts hold no worker: a normal client is served at once") {
  Env env({{"--threads", "4", "--max-queue", "8", "--request-timeout", "10s"}});
  auto &c = env.c();
  // 80 TCP connections that send nothing (no TLS at all).
  std::vector<int> silent;
  for (int i = 0; i < 80; i++) {
    int fd = connect_tcp(c.port());
    REQUIRE(fd >= 0);
    silent.push_back(fd);
  }
  // 32 keep-alive clients, each done with one request and now idle.
  std::vector<std::unique_ptr<pinniped::HttpsClient>> idle;
  for (int i = 0; i < 32; i++) {
    idle.push_back(c.client());
    REQUIRE(idle.back()->request("GET", "/healthz", {}, "", scaled(5s)).status == 200);
  }
  std::this_thread::sleep_for(300ms);
  // A normal client is served at once, four workers notwithstanding.
  auto t0 = Steady::now();
  auto res = c.request("POST", kTcr, tcr_json(kGoodToken));
  auto took = std::chrono::duration_cast<Millis>(Steady::now() - t0);
  CHECK(res.status == 201);
  CHECK(took < scaled(1s));
  // Every idle keep-alive client sends again: none loses its request.
  int failed = 0;
  for (auto &cl : idle) {
    try {
      if (cl->request("POST", kTcr, kJson, tcr_json(kGoodToken), scaled(10s)).status != 201) failed++;
    } catch (const pinniped::Error &) {
      failed++;
    }
  }
  CHECK(failed == 0);
  // A burst of 100 clients at once: all served (the kernel's backlog holds them).
  std::atomic<int> ok{0};
  std::vector<std::thread> burst;
  for (int i = 0; i < 100; i++)
    burst.emplace_back([&] {
      try {
        if (c.request("GET", "/healthz", "", {}).status == 200) ok++;
      } catch (const std::exception &) {
      }
    });
  for (auto &t : burst) t.join();
  CHECK(ok == 100);
  for (int fd : silent) ::close(fd);
  check_still_serving(c);
}

TEST_CASE("clients that dribble their TLS handshake hold no worker: a normal client is served at once") {
  Env env({{"--threads", "2", "--request-timeout", "10s"}});
  auto &c = env.c();
  // A ClientHello record header announcing 512 bytes, then a byte at a time.
  std::vector<int> fds;
  for (int i = 0; i < 8; i++) {
    int fd = connect_tcp(c.port());
    REQUIRE(fd >= 0);
    (void)::send(fd, "\x16\x03\x01\x02\x00", 5, MSG_NOSIGNAL);
    fds.push_back(fd);
  }
  std::atomic<bool> stop{false};
  std::thread dribble([&] {
    while (!stop) {
      for (int fd : fds) (void)::send(fd, "\x01", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      std::this_thread::sleep_for(100ms);
    }
  });
  std::this_thread::sleep_for(500ms);
  auto t0 = Steady::now();
  auto res = c.request("POST", kTcr, tcr_json(kGoodToken));
  auto took = std::chrono::duration_cast<Millis>(Steady::now() - t0);
  stop = true;
  dribble.join();
  for (int fd : fds) ::close(fd);
  CHECK(res.status == 201);
  CHECK(took < scaled(1s));
  check_still_serving(c);
}
