// Section 7: the local-user-authenticator. bcrypt through libcrypt, the
// users file and user Secrets, the brute-force brake, the HTTPS surface of
// the real binary (file mode, Secret mode against a scripted API server),
// add-user, and the concierge exchanging user:password end to end.
#include <catch2/catch.hpp>

#include "tests/support.hpp"

using namespace testing;

namespace {

const std::string kV1 = "authentication.k8s.io/v1";
const std::string kV1beta1 = "authentication.k8s.io/v1beta1";

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string review_body(const std::string &token, const std::string &api_version = kV1beta1) {
  TokenReview r;
  r.api_version = api_version;
  r.token = token;
  return r.to_json(true).serialize();
}

std::string b64(const std::string &s) { return detail::base64_encode(s); }

// The real `pinniped local-user-authenticator` on 127.0.0.1:<any>.
class LuaProcess {
 public:
  LuaProcess(const TempDir &dir, const std::vector<std::string> &extra, const std::string &server_name = "")
      : server_name_(server_name) {
    std::remove(dir.file("lua-port").c_str());
    std::vector<std::string> argv = {
        pinniped_bin(), "local-user-authenticator", "--listen",         "127.0.0.1:0",
        "--port-file",  dir.file("lua-port"),       "--serving-ca-out", dir.file("lua-ca.pem")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Process>(argv, dir.file("lua.log"));
    port_ = wait_for_port_file(*proc_, dir.file("lua-port"), std::chrono::seconds(20 * slow_factor()));
    if (port_ <= 0) throw std::runtime_error("local-user-authenticator did not start; log:\n" + proc_->log());
    ca_pem_ = dir.read("lua-ca.pem");
  }
  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/authenticate"; }
  const std::string &ca_pem() const { return ca_pem_; }
  std::string log() const { return proc_->log(); }
  Process &process() { return *proc_; }

  HttpResponse request(const std::string &method, const std::string &path, const std::string &body,
                       const httplib::Headers &headers) const {
    ClientTlsOptions t;
    t.ca_pem = ca_pem_;
    t.server_name = server_name_;
    HttpsClient c("https://127.0.0.1:" + std::to_string(port_), t);
    return c.request(method, path, headers, body, std::chrono::seconds(30 * slow_factor()));
  }
  HttpResponse post(const std::string &body) const {
    return request("POST", "/authenticate", body,
                   {{"Content-Type", "application/json"}, {"Accept", "application/json"}});
  }
  // The answer to `token`: the TokenReview, after checking HTTP 200.
  TokenReview review(const std::string &token, const std::string &api_version = kV1beta1) const {
    auto res = post(review_body(token, api_version));
    INFO(res.body);
    REQUIRE(res.status == 200);
    auto out = TokenReview::from_json(json::parse(res.body));
    CHECK(out.api_version == api_version);
    return out;
  }

 private:
  std::string server_name_;
  std::unique_ptr<Process> proc_;
  int port_ = 0;
  std::string ca_pem_;
};

// A scripted kube-apiserver holding the Secrets of one namespace: list (with
// a name field selector), get, create, update, and watches that stream the
// changes after a resourceVersion for one second, then end.
class FakeApi {
 public:
  explicit FakeApi(std::string ns = kLocalUserNamespace) : ns_(std::move(ns)) {
    ca_ = make_self_signed_ca("api-ca", std::chrono::hours(1));
    auto leaf = serving_cert(ca_, {"127.0.0.1"});
    server_.set_credentials({leaf.cert_pem, leaf.key_pem, ""});
    std::string base = "/api/v1/namespaces/" + ns_ + "/secrets";
    server_.Get(base, [this](const httplib::Request &req, httplib::Response &res) {
      std::string only;
      if (req.has_param("fieldSelector")) {
        only = req.get_param_value("fieldSelector");
        only = only.substr(only.find('=') + 1);
      }
      if (req.has_param("watch")) return watch(req, res, only);
      std::lock_guard<std::mutex> lk(mu_);
      picojson::array items;
      for (const auto &kv : secrets_)
        if (only.empty() || kv.first == only) items.push_back(kv.second);
      picojson::object list, meta;
      meta["resourceVersion"] = jv(std::to_string(rv_));
      list["kind"] = jv("SecretList");
      list["metadata"] = picojson::value(meta);
      list["items"] = picojson::value(items);
      res.set_content(picojson::value(list).serialize(), "application/json");
    });
    server_.Get(base + "/([^/]+)", [this](const httplib::Request &req, httplib::Response &res) {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = secrets_.find(req.matches[1]);
      if (it == secrets_.end()) return not_found(res);
      res.set_content(it->second.serialize(), "application/json");
    });
    server_.Post(base, [this](const httplib::Request &req, httplib::Response &res) {
      auto obj = json::parse(req.body);
      std::string name = json::get_string(*json::field(obj, "metadata"), "name", "name");
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (secrets_.count(name)) {
          res.status = 409;
          res.set_content(R"({"kind":"Status","code":409,"reason":"AlreadyExists"})", "application/json");
          return;
        }
      }
      res.status = 201;
      res.set_content(put("ADDED", obj).serialize(), "application/json");
    });
    server_.Put(base + "/([^/]+)", [this](const httplib::Request &req, httplib::Response &res) {
      res.set_content(put("MODIFIED", json::parse(req.body)).serialize(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(Millis(1));
  }
  ~FakeApi() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    server_.shutdown();
    thread_.join();
  }

  // A kubeconfig for this server, written to `dir`.
  std::string kubeconfig(const TempDir &dir) const {
    return dir.write("kubeconfig",
                     "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n"
                     "    server: https://127.0.0.1:" +
                         std::to_string(port_) + "\n    certificate-authority-data: " + b64(ca_.cert_pem) +
                         "\nusers:\n- name: u\n  user:\n    token: fake-api-token\n"
                         "contexts:\n- name: c\n  context: {cluster: k, user: u}\n");
  }

  // Stores (ADDED/MODIFIED) an object with a fresh resourceVersion.
  picojson::value put(const std::string &type, picojson::value obj) {
    std::lock_guard<std::mutex> lk(mu_);
    auto &meta = obj.get<picojson::object>()["metadata"].get<picojson::object>();
    meta["namespace"] = jv(ns_);
    meta["resourceVersion"] = jv(std::to_string(++rv_));
    std::string name = meta["name"].get<std::string>();
    secrets_[name] = obj;
    events_.push_back({rv_, name, "{\"type\":\"" + type + "\",\"object\":" + obj.serialize() + "}\n"});
    cv_.notify_all();
    return obj;
  }
  void remove(const std::string &name) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = secrets_.find(name);
    if (it == secrets_.end()) return;
    picojson::value obj = it->second;
    obj.get<picojson::object>()["metadata"].get<picojson::object>()["resourceVersion"] = jv(std::to_string(++rv_));
    secrets_.erase(it);
    events_.push_back({rv_, name, "{\"type\":\"DELETED\",\"object\":" + obj.serialize() + "}\n"});
    cv_.notify_all();
  }
  // A user Secret as `kubectl create secret generic` makes it.
  void put_user(const std::string &name, const std::string &hash, const std::string &groups) {
    put(get(name) ? "MODIFIED" : "ADDED",
        json::parse(R"({"apiVersion":"v1","kind":"Secret","type":"Opaque","metadata":{"name":")" + name +
                    R"("},"data":{"passwordHash":")" + b64(hash) + R"(","groups":")" + b64(groups) + R"("}})"));
  }
  std::optional<picojson::value> get(const std::string &name) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = secrets_.find(name);
    if (it == secrets_.end()) return std::nullopt;
    return it->second;
  }

 private:
  struct Event {
    int64_t rv;
    std::string name, line;
  };
  static void not_found(httplib::Response &res) {
    res.status = 404;
    res.set_content(R"({"kind":"Status","code":404,"reason":"NotFound","message":"not found"})", "application/json");
  }
  void watch(const httplib::Request &req, httplib::Response &res, const std::string &only) {
    auto from = std::make_shared<int64_t>(std::atoll(req.get_param_value("resourceVersion").c_str()));
    auto until = Steady::now() + std::chrono::seconds(1);
    res.set_chunked_content_provider("application/json", [this, from, until, only](size_t, httplib::DataSink &sink) {
      std::string out;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait_for(lk, Millis(50));
        if (stopping_) {
          sink.done();
          return true;
        }
        for (const auto &e : events_)
          if (e.rv > *from && (only.empty() || e.name == only)) out += e.line;
        if (!events_.empty()) *from = std::max(*from, events_.back().rv);
      }
      if (!out.empty() && !sink.write(out.data(), out.size())) return false;
      if (Steady::now() >= until) sink.done();
      return true;
    });
  }

  std::string ns_;
  CertificateAndKey ca_;
  TlsServer server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  int64_t rv_ = 100;
  std::map<std::string, picojson::value> secrets_;
  std::vector<Event> events_;
};

}  // namespace

// ---------------------------------------------------------------------------
// bcrypt, users file, user Secrets.

TEST_CASE("bcrypt through libcrypt: known vectors, new hashes, wrong passwords and malformed hashes") {
  // Openwall's crypt_blowfish test vector, with the $2a$ and htpasswd's $2y$ prefixes.
  CHECK(bcrypt_verify("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
  CHECK(bcrypt_verify("U*U", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
  CHECK(bcrypt_verify("U*U", "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
  CHECK_FALSE(bcrypt_verify("U*V", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
  std::string h = bcrypt_hash("correct horse", 4);
  CHECK(h.rfind("$2y$04$", 0) == 0);
  CHECK(bcrypt_cost(h) == 4);
  CHECK(bcrypt_verify("correct horse", h));
  CHECK_FALSE(bcrypt_verify("correct horsf", h));
  CHECK_FALSE(bcrypt_verify("", h));
  CHECK_FALSE(bcrypt_verify(std::string("correct horse\0x", 15), h));  // NUL never truncates a password
  CHECK(bcrypt_hash("correct horse", 4) != h);                         // a fresh salt each time
  for (const std::string bad :
       {"", "$2y$04$short", "$1$abc$def", "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2y$99$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "plaintext"}) {
    INFO(bad);
    CHECK(bcrypt_cost(bad) == -1);
    CHECK_FALSE(bcrypt_verify("U*U", bad));
  }
  CHECK_THROWS_AS(bcrypt_hash("x", 3), Error);
  CHECK(detail::constant_time_equal("abc", "abc"));
  CHECK_FALSE(detail::constant_time_equal("abc", "abd"));
  CHECK_FALSE(detail::constant_time_equal("abc", "abcd"));
}

TEST_CASE("the users file: htpasswd lines, groups, comments; bad lines are named by number, never by hash") {
  std::string h = "$2y$04$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
  auto users = parse_users_file("# comment\n\nalice:" + h + "\r\n  bob:" + h + ": devs , ops,, \ncarol:" + h + ":\n");
  REQUIRE(users.size() == 3);
  CHECK(users[0].name == "alice");
  CHECK(users[0].groups.empty());
  CHECK(users[1].name == "bob");
  CHECK(users[1].password_hash == h);
  CHECK(users[1].groups == std::vector<std::string>{"devs", "ops"});
  CHECK(users[2].groups.empty());
  CHECK(users_file_line(users[1]) == "bob:" + h + ":devs,ops");
  CHECK(parse_users_file(users_file_line(users[1]) + "\n")[0].groups == users[1].groups);
  struct Row {
    std::string text, says;
  };
  for (const auto &r :
       std::vector<Row>{{"alice\n", "line 1: expected name:bcrypt-hash"},
                        {"# x\n:" + h + "\n", "line 2: the user name is empty"},
                        {"alice:plaintextpassword\n", "line 1: the password hash of \"alice\" is not bcrypt"},
                        {"alice:" + h + "\nalice:" + h + "\n", "line 2: user \"alice\" appears twice"},
                        {"al\x01ice:" + h + "\n", "not printable"}}) {
    INFO(r.text);
    try {
      parse_users_file(r.text);
      FAIL("accepted");
    } catch (const Error &e) {
      CHECK(contains(e.what(), r.says));
      CHECK_FALSE(contains(e.what(), "plaintextpassword"));
      CHECK_FALSE(contains(e.what(), h));
    }
  }
}

TEST_CASE("a user Secret as upstream reads it; other Secrets are not users") {
  std::string h = "$2y$04$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
  auto secret = [](const std::string &data) {
    return json::parse(R"({"metadata":{"name":"pinny"},"data":)" + data + "}");
  };
  auto u =
      user_from_secret(secret(R"({"passwordHash":")" + b64(h + "\n") + R"(","groups":")" + b64(" a, b ,c") + "\"}"));
  REQUIRE(u);
  CHECK(u->name == "pinny");
  CHECK(u->password_hash == h);
  CHECK(u->groups == std::vector<std::string>{"a", "b", "c"});
  auto nogroups = user_from_secret(secret(R"({"passwordHash":")" + b64(h) + "\"}"));
  REQUIRE(nogroups);
  CHECK(nogroups->groups.empty());
  CHECK_FALSE(user_from_secret(secret(R"({"tlsPrivateKey":"eA=="})")));
  CHECK_FALSE(user_from_secret(json::parse(R"({"metadata":{"name":"x"}})")));
  CHECK_THROWS_AS(user_from_secret(secret(R"({"passwordHash":")" + b64("secret") + "\"}")), Error);
  CHECK_THROWS_AS(user_from_secret(secret(R"({"passwordHash":"!!notbase64"})")), Error);
  // The manifest add-user prints reads back as the same user.
  LocalUser lu{"pinny", h, {"a", "b"}};
  auto docs = parse_yaml_documents(user_secret_yaml(lu, "ns"));
  REQUIRE(docs.size() == 1);
  auto back = user_from_secret(docs[0]);
  REQUIRE(back);
  CHECK(back->password_hash == h);
  CHECK(back->groups == lu.groups);
  CHECK(valid_secret_name("pinny-the.seal"));
  CHECK_FALSE(valid_secret_name("Pinny"));
  CHECK_FALSE(valid_secret_name("-x"));
}

// ---------------------------------------------------------------------------
// The brake and the dummy hash.

TEST_CASE("the brake: a burst of attempts per name, refilled over time, forgotten on success") {
  BrakeOptions o;
  o.burst = 3;
  o.refill = std::chrono::seconds(10);
  FailureBrake b(o);
  auto t0 = Steady::now();
  for (int i = 0; i < 3; i++) CHECK(b.acquire("alice", t0));
  CHECK_FALSE(b.acquire("alice", t0));
  CHECK_FALSE(b.acquire("alice", t0 + std::chrono::seconds(9)));
  CHECK(b.acquire("bob", t0));               // names are separate
  auto t20 = t0 + std::chrono::seconds(20);  // 0.9 left at t0+9, one more per 10 s
  CHECK(b.acquire("alice", t20));
  CHECK(b.acquire("alice", t20));
  CHECK_FALSE(b.acquire("alice", t20));
  b.succeeded("bob");
  CHECK(b.tracked() == 1);
  BrakeOptions off;
  off.burst = 0;
  FailureBrake none(off);
  for (int i = 0; i < 100; i++) CHECK(none.acquire("alice"));
}

TEST_CASE("the brake's memory is bounded however many names are tried, and a flood frees no braked name") {
  BrakeOptions o;
  o.burst = 2;
  o.refill = std::chrono::hours(1);
  o.max_names = 1000;
  FailureBrake b(o);
  auto t0 = Steady::now();
  CHECK(b.acquire("victim", t0));
  CHECK(b.acquire("victim", t0));
  CHECK_FALSE(b.acquire("victim", t0));
  size_t allowed = 0;
  for (int i = 0; i < 100000; i++) allowed += b.acquire("spray-" + std::to_string(i), t0) ? 1 : 0;
  CHECK(b.tracked() <= o.max_names);
  CHECK(b.overflowed() > 0);
  // While the table is full of live entries, new names share one bucket.
  CHECK(allowed <= o.max_names + o.burst);
  CHECK_FALSE(b.acquire("victim", t0));
  // Once entries have refilled they give way to new names again.
  auto later = t0 + std::chrono::hours(3);
  CHECK(b.acquire("newcomer", later));
  CHECK(b.tracked() <= o.max_names);
}

TEST_CASE("an unknown user costs a full bcrypt against the dummy hash, as long as a wrong password") {
  BrakeOptions off;
  off.burst = 0;
  LocalUsers users(off);
  const int cost = 7;
  users.replace_all({{"alice", bcrypt_hash("right", cost), {"devs"}}});
  CHECK(users.dummy_cost() == cost);  // the dummy follows the users' cost
  auto r = users.authenticate("alice", "right");
  CHECK(r.authenticated);
  CHECK(r.user.groups == std::vector<std::string>{"devs"});
  CHECK(r.user.uid.empty());
  uint64_t dummies = users.stats().dummy_verifications.load();
  auto u = users.authenticate("mallory", "right");
  CHECK_FALSE(u.authenticated);
  CHECK(u.reason_class == "unknown_user");
  CHECK(users.stats().dummy_verifications.load() == dummies + 1);
  // Timing: interleaved tries, medians compared.
  std::vector<double> unknown, wrong;
  for (int i = 0; i < 15; i++) {
    auto t = Steady::now();
    users.authenticate("nobody-" + std::to_string(i), "guess");
    unknown.push_back(std::chrono::duration<double>(Steady::now() - t).count());
    t = Steady::now();
    users.authenticate("alice", "guess");
    wrong.push_back(std::chrono::duration<double>(Steady::now() - t).count());
  }
  std::sort(unknown.begin(), unknown.end());
  std::sort(wrong.begin(), wrong.end());
  double ratio = unknown[unknown.size() / 2] / wrong[wrong.size() / 2];
  INFO("unknown/wrong median ratio " << ratio);
  CHECK(ratio > 0.6);
  CHECK(ratio < 1.6);
  CHECK(users.stats().dummy_verifications.load() == dummies + 16);
  // A users set of another cost moves the dummy along.
  users.replace_all({{"bob", bcrypt_hash("x", 5), {}}});
  CHECK(users.dummy_cost() == 5);
}

// ---------------------------------------------------------------------------
// The HTTPS surface of the real binary.

TEST_CASE("bad requests get exactly upstream's status codes, and no answer or log carries the token") {
  TempDir dir;
  dir.write("users", users_file_line({"alice", bcrypt_hash("s3cret-pw", 4), {"devs"}}) + "\n");
  LuaProcess lua(dir, {"--users-file", dir.file("users")});
  const httplib::Headers json_headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  std::string good = review_body("alice:s3cret-pw");
  struct Row {
    std::string name, method, path, body;
    httplib::Headers headers;
    int code;
  };
  std::vector<Row> rows = {
      {"GET", "GET", "/authenticate", "", json_headers, 405},
      {"PUT", "PUT", "/authenticate", good, json_headers, 405},
      {"DELETE", "DELETE", "/authenticate", "", json_headers, 405},
      {"PATCH", "PATCH", "/authenticate", good, json_headers, 405},
      {"OPTIONS", "OPTIONS", "/authenticate", "", json_headers, 405},
      {"TRACE", "TRACE", "/authenticate", "", json_headers, 405},
      {"TRACE elsewhere", "TRACE", "/x", "", json_headers, 404},
      {"another path", "POST", "/other", good, json_headers, 404},
      {"the root", "POST", "/", good, json_headers, 404},
      {"a trailing slash", "POST", "/authenticate/", good, json_headers, 404},
      {"health is not served", "GET", "/healthz", "", {}, 404},
      {"GET elsewhere is 404 first", "GET", "/x", "", {}, 404},
      {"Content-Type text/plain",
       "POST",
       "/authenticate",
       good,
       {{"Content-Type", "text/plain"}, {"Accept", "application/json"}},
       415},
      {"an empty Content-Type",
       "POST",
       "/authenticate",
       good,
       {{"Content-Type", ""}, {"Accept", "application/json"}},
       415},
      {"Accept text/html",
       "POST",
       "/authenticate",
       good,
       {{"Content-Type", "application/json"}, {"Accept", "text/html"}},
       415},
      {"an empty Accept", "POST", "/authenticate", good, {{"Content-Type", "application/json"}, {"Accept", ""}}, 415},
      {"Accept application/yaml",
       "POST",
       "/authenticate",
       good,
       {{"Content-Type", "application/json"}, {"Accept", "application/yaml"}},
       415},
      {"malformed JSON", "POST", "/authenticate", "{\"apiVersion\":", json_headers, 400},
      {"a JSON list", "POST", "/authenticate", "[]", json_headers, 400},
      {"an empty body", "POST", "/authenticate", "", json_headers, 400},
      {"trailing garbage", "POST", "/authenticate", good + "x", json_headers, 400},
      {"wrong kind", "POST", "/authenticate",
       R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"token":"alice:s3cret-pw"}})",
       json_headers, 400},
      {"no kind", "POST", "/authenticate",
       R"({"apiVersion":"authentication.k8s.io/v1","spec":{"token":"alice:s3cret-pw"}})", json_headers, 400},
      {"wrong apiVersion", "POST", "/authenticate", review_body("alice:s3cret-pw", "authentication.k8s.io/v2"),
       json_headers, 400},
      {"no apiVersion", "POST", "/authenticate", R"({"kind":"TokenReview","spec":{"token":"alice:s3cret-pw"}})",
       json_headers, 400},
      {"a token without a colon", "POST", "/authenticate", review_body("alices3cret-pw"), json_headers, 400},
      {"an empty token", "POST", "/authenticate", review_body(""), json_headers, 400},
      {"no spec", "POST", "/authenticate", R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview"})",
       json_headers, 400},
      {"a token that is a number", "POST", "/authenticate",
       R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":42}})", json_headers, 400},
      {"a body over 64 KiB", "POST", "/authenticate", review_body("alice:" + std::string(70000, 'x')), json_headers,
       413},
      // Accepted variants.
      {"Content-Type with charset",
       "POST",
       "/authenticate",
       good,
       {{"Content-Type", "application/json; charset=utf-8"}, {"Accept", "application/json"}},
       200},
      {"Accept */*", "POST", "/authenticate", good, {{"Content-Type", "application/json"}, {"Accept", "*/*"}}, 200},
      {"Accept list with application/*",
       "POST",
       "/authenticate",
       good,
       {{"Content-Type", "application/json"}, {"Accept", "text/html, application/*;q=0.5"}},
       200},
      {"an empty user name", "POST", "/authenticate", review_body(":s3cret-pw"), json_headers, 200},
      {"an empty password", "POST", "/authenticate", review_body("alice:"), json_headers, 200},
  };
  for (const auto &r : rows) {
    INFO(r.name);
    auto res = lua.request(r.method, r.path, r.body, r.headers);
    CHECK(res.status == r.code);
    CHECK_FALSE(contains(res.body, "s3cret-pw"));
    if (r.code != 200 && r.method != "HEAD") {
      auto st = Status::from_body(res.body);
      REQUIRE(st);
      CHECK(st->code == r.code);
    }
  }
  auto head = lua.request("HEAD", "/authenticate", "", json_headers);
  CHECK(head.status == 405);
  CHECK_FALSE(contains(lua.log(), "s3cret-pw"));
}

TEST_CASE("a user authenticates with TokenReview v1 and v1beta1; wrong passwords and unknown users do not") {
  TempDir dir;
  dir.write("users", "# test users\n" + users_file_line({"alice", bcrypt_hash("pa:ss word", 4), {"devs", "ops"}}) +
                         "\n" + users_file_line({"bob", bcrypt_hash("bobpw", 4), {}}) + "\n");
  LuaProcess lua(dir, {"--users-file", dir.file("users")});
  for (const auto &version : {kV1, kV1beta1}) {
    INFO(version);
    auto ok = lua.review("alice:pa:ss word", version);  // split at the first colon
    CHECK(ok.authenticated);
    CHECK(ok.user.username == "alice");
    CHECK(ok.user.groups == std::vector<std::string>{"devs", "ops"});
    CHECK(ok.user.uid.empty());
    CHECK(ok.user.extra.empty());
    auto bob = lua.review("bob:bobpw", version);
    CHECK(bob.authenticated);
    CHECK(bob.user.groups.empty());
    CHECK_FALSE(lua.review("alice:wrong", version).authenticated);
    CHECK_FALSE(lua.review("mallory:pa:ss word", version).authenticated);
    CHECK_FALSE(lua.review("Alice:pa:ss word", version).authenticated);
  }
  auto res = lua.post(review_body("alice:wrong"));
  CHECK(res.header("Content-Type") == "application/json");
  CHECK_FALSE(contains(res.body, "\"user\""));
  std::string log = lua.log();
  CHECK(contains(log, "\"reasonClass\":\"wrong_password\""));
  CHECK(contains(log, "\"reasonClass\":\"unknown_user\""));
  CHECK_FALSE(contains(log, "pa:ss word"));
  CHECK_FALSE(contains(log, "mallory"));  // unknown names may be mistyped passwords
}

TEST_CASE("file mode: a changed users file is reloaded; a broken one keeps the previous users") {
  TempDir dir;
  dir.write("users", users_file_line({"alice", bcrypt_hash("one", 4), {}}) + "\n");
  LuaProcess lua(dir, {"--users-file", dir.file("users"), "--reload-interval", "100ms"});
  CHECK(lua.review("alice:one").authenticated);
  dir.write("users", users_file_line({"alice", bcrypt_hash("two", 4), {"new"}}) + "\n" +
                         users_file_line({"carol", bcrypt_hash("three", 4), {}}) + "\n");
  // A new version is read once it has settled (PINNIPED_FILE_SETTLE_MS); poll
  // gently, so that the brute-force brake does not see a guesser meanwhile.
  CHECK(eventually([&] { return lua.review("alice:two").authenticated; }, Millis(5000 * slow_factor()), Millis(100)));
  CHECK_FALSE(lua.review("alice:one").authenticated);
  CHECK(lua.review("alice:two").user.groups == std::vector<std::string>{"new"});
  CHECK(lua.review("carol:three").authenticated);
  dir.write("users", "carol:not-a-hash\n");
  CHECK(eventually([&] { return contains(lua.log(), "users not reloaded"); }, Millis(5000 * slow_factor())));
  CHECK(lua.review("carol:three").authenticated);
  dir.write("users", "# nobody\n");
  CHECK(eventually([&] { return !lua.review("carol:three").authenticated; }, Millis(5000 * slow_factor())));
  CHECK_FALSE(contains(lua.log(), "not-a-hash"));
}

TEST_CASE("file mode: a users file rewritten in place is never used half-written (no cut groups, no empty windows)") {
  TempDir dir;
  // alice's second group starts with the name of a much stronger one: a
  // read cut after "system:masters" must never grant it.
  std::string hash = bcrypt_hash("pw", 4);
  std::string full = users_file_line({"bob", bcrypt_hash("bob-pw", 4), {}}) + "\n" +
                     users_file_line({"alice", hash, {"ops", "system:masters-readonly"}}) + "\n";
  std::string path = dir.write("users", full);
  std::this_thread::sleep_for(Millis(PINNIPED_FILE_SETTLE_MS + 100));
  LuaProcess lua(dir, {"--users-file", path, "--reload-interval", "10ms"});
  REQUIRE(lua.review("alice:pw").authenticated);
  // A writer that rewrites the file in place, as editors without atomic
  // saves and `cat > file` do: truncate, then the text in pieces.
  std::atomic<bool> stop{false};
  std::atomic<int> rewrites{0};
  std::thread writer([&] {
    std::string cut = full.substr(0, full.find("system:masters") + std::string("system:masters").size());
    while (!stop) {
      int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC);
      if (fd < 0) break;
      std::this_thread::sleep_for(Millis(2));
      (void)!::write(fd, cut.data(), cut.size());
      std::this_thread::sleep_for(Millis(3));
      (void)!::write(fd, full.data() + cut.size(), full.size() - cut.size());
      ::close(fd);
      rewrites++;
      std::this_thread::sleep_for(Millis(1));
    }
  });
  int checked = 0, wrong = 0, refused = 0;
  auto until = Steady::now() + Millis(1500) * slow_factor();
  while (Steady::now() < until) {
    auto r = lua.review("alice:pw");
    checked++;
    if (!r.authenticated)
      refused++;
    else if (r.user.groups != std::vector<std::string>{"ops", "system:masters-readonly"})
      wrong++;
  }
  stop = true;
  writer.join();
  INFO(checked << " reviews during " << rewrites.load() << " in-place rewrites");
  CHECK(rewrites > 50);
  CHECK(checked > 10);
  CHECK(wrong == 0);
  CHECK(refused == 0);
  CHECK(contains(lua.log(), "keeping the previous users until it is whole"));
  // Once the writer stops, the file settles and is read again (and it is
  // the same text, so alice is unchanged).
  CHECK(eventually([&] { return contains(lua.log(), "\"msg\":\"users loaded\""); }, Millis(5000 * slow_factor())));
  CHECK(lua.review("alice:pw").user.groups == std::vector<std::string>{"ops", "system:masters-readonly"});
}

TEST_CASE("Secret mode: users follow Secrets added, changed and deleted; the serving certificate is a Secret") {
  FakeApi api;
  api.put_user("alice", bcrypt_hash("one", 4), "devs, ops");
  api.put("ADDED", json::parse(R"({"metadata":{"name":"not-a-user"},"data":{"token":"eA=="}})"));
  TempDir dir;
  LuaProcess lua(dir, {"--kubeconfig", api.kubeconfig(dir)}, "local-user-authenticator.local-user-authenticator.svc");
  // The managed serving certificate: created in the Secret, its CA written out.
  auto tls = api.get(LocalUserAuthenticator::kServingSecret);
  REQUIRE(tls);
  auto ca = detail::base64_decode(json::get_string(*json::field(*tls, "data"), "caCertificate", "data"));
  REQUIRE(ca);
  CHECK(*ca == lua.ca_pem());
  CHECK(contains(lua.log(), "certificateAuthorityData"));

  auto ok = lua.review("alice:one");
  CHECK(ok.authenticated);
  CHECK(ok.user.groups == std::vector<std::string>{"devs", "ops"});
  CHECK_FALSE(lua.review("not-a-user:x").authenticated);
  CHECK_FALSE(lua.review(std::string(LocalUserAuthenticator::kServingSecret) + ":x").authenticated);
  Millis limit(10000 * slow_factor());
  api.put_user("bob", bcrypt_hash("bobpw", 4), "");
  CHECK(eventually([&] { return lua.review("bob:bobpw").authenticated; }, limit));
  api.put_user("alice", bcrypt_hash("two", 4), "admins");
  CHECK(eventually([&] { return lua.review("alice:two").authenticated; }, limit));
  CHECK_FALSE(lua.review("alice:one").authenticated);
  CHECK(lua.review("alice:two").user.groups == std::vector<std::string>{"admins"});
  api.remove("alice");
  CHECK(eventually([&] { return !lua.review("alice:two").authenticated; }, limit));
  CHECK(lua.review("bob:bobpw").authenticated);
  CHECK(contains(lua.log(), "user removed"));
}

TEST_CASE("the brake through the binary: after the burst even the right password fails, and the log says why") {
  TempDir dir;
  dir.write("users", users_file_line({"alice", bcrypt_hash("right-pw", 4), {}}) + "\n" +
                         users_file_line({"bob", bcrypt_hash("bob-pw", 4), {}}) + "\n");
  LuaProcess lua(dir, {"--users-file", dir.file("users"), "--brake-burst", "3", "--brake-refill", "1h"});
  CHECK(lua.review("alice:right-pw").authenticated);  // successes never brake
  CHECK(lua.review("alice:right-pw").authenticated);
  CHECK(lua.review("alice:right-pw").authenticated);
  CHECK(lua.review("alice:right-pw").authenticated);
  for (int i = 0; i < 3; i++) CHECK_FALSE(lua.review("alice:guess-" + std::to_string(i)).authenticated);
  CHECK_FALSE(lua.review("alice:right-pw").authenticated);
  for (int i = 0; i < 4; i++) CHECK_FALSE(lua.review("ghost:guess").authenticated);  // unknown names brake alike
  CHECK(lua.review("bob:bob-pw").authenticated);
  std::string log = lua.log();
  CHECK(contains(log, "\"reasonClass\":\"braked\""));
  CHECK_FALSE(contains(log, "right-pw"));
  CHECK_FALSE(contains(log, "guess-"));
}

TEST_CASE("add-user: the printed line and Secret authenticate; the password never comes from argv") {
  TempDir dir;
  dir.write("pw", "Tr0ub4dor&3\n");
  std::string bin = pinniped_bin();
  int rc = 0;
  std::string line =
      run("'" + bin + "' local-user-authenticator add-user alice --groups 'devs, ops' --cost 4 --output line <'" +
              dir.file("pw") + "'",
          &rc);
  REQUIRE(rc == 0);
  CHECK(line.rfind("alice:$2y$04$", 0) == 0);
  CHECK(contains(line, ":devs,ops\n"));
  CHECK_FALSE(contains(line, "Tr0ub4dor"));
  std::string secret = run(
      "'" + bin + "' local-user-authenticator add-user bob --groups admins --cost 4 <'" + dir.file("pw") + "'", &rc);
  REQUIRE(rc == 0);
  auto docs = parse_yaml_documents(secret);
  REQUIRE(docs.size() == 1);
  CHECK(json::get_string(docs[0], "kind", "kind") == "Secret");
  CHECK(json::get_string(*json::field(docs[0], "metadata"), "namespace", "ns") == "local-user-authenticator");

  dir.write("users", line);
  LuaProcess file_mode(dir, {"--users-file", dir.file("users")});
  auto a = file_mode.review("alice:Tr0ub4dor&3");
  CHECK(a.authenticated);
  CHECK(a.user.groups == std::vector<std::string>{"devs", "ops"});

  FakeApi api;
  api.put("ADDED", docs[0]);
  TempDir dir2;
  LuaProcess secret_mode(dir2, {"--kubeconfig", api.kubeconfig(dir2)},
                         "local-user-authenticator.local-user-authenticator.svc");
  auto b = secret_mode.review("bob:Tr0ub4dor&3");
  CHECK(b.authenticated);
  CHECK(b.user.groups == std::vector<std::string>{"admins"});

  struct Row {
    std::string args;
    std::string says;
  };
  for (const auto &r : std::vector<Row>{{"add-user alice --password x", "unknown flag --password"},
                                        {"add-user", "needs a user name"},
                                        {"add-user Alice", "cannot be a Secret name"},
                                        {"add-user alice --cost 3", "--cost"},
                                        {"add-user alice --output json", "--output must be secret or line"}}) {
    INFO(r.args);
    std::string out = run("'" + bin + "' local-user-authenticator " + r.args + " <'" + dir.file("pw") + "' 2>&1", &rc);
    CHECK(rc == 2);
    CHECK(contains(out, r.says));
  }
  std::string empty = run("'" + bin + "' local-user-authenticator add-user alice </dev/null 2>&1", &rc);
  CHECK(rc == 2);
  CHECK(contains(empty, "the password is empty"));
}

TEST_CASE("the concierge exchanges user:password for a certificate through the local-user-authenticator") {
  TempDir lua_dir;
  lua_dir.write("users", users_file_line({"pinny", bcrypt_hash("seal-pw", 4), {"seals", "admins"}}) + "\n");
  LuaProcess lua(lua_dir, {"--users-file", lua_dir.file("users")});
  TempDir dir;
  auto signer = make_self_signed_ca("test-cluster-signer", std::chrono::hours(1));
  dir.write("signer.crt", signer.cert_pem);
  dir.write("signer.key", signer.key_pem);
  dir.write("authenticators.yaml", authenticator_yaml("local-users", lua.url(), b64(lua.ca_pem())));
  ConciergeProcess concierge(dir, {"--signer-cert", dir.file("signer.crt"), "--signer-key", dir.file("signer.key"),
                                   "--authenticators", dir.file("authenticators.yaml")});
  auto res = concierge.request("POST", kTcrPath, tcr_body("pinny:seal-pw", "local-users"));
  INFO(res.body);
  REQUIRE(res.status == 201);
  auto out = TokenCredentialRequest::from_json(json::parse(res.body));
  REQUIRE(out.credential);
  auto chain = CertificateChain::parse(out.credential->client_certificate_data);
  CHECK(detail::common_name(&chain->get()->subject) == "pinny");
  auto orgs = detail::organizations(&chain->get()->subject);
  CHECK(orgs == std::vector<std::string>{"seals", "admins"});
  auto bad = concierge.request("POST", kTcrPath, tcr_body("pinny:wrong", "local-users"));
  CHECK(bad.status == 201);
  CHECK(contains(bad.body, "authentication failed"));
  CHECK_FALSE(contains(bad.body, "clientCertificateData"));
  CHECK_FALSE(contains(lua.log(), "seal-pw"));
  CHECK_FALSE(contains(concierge.log(), "seal-pw"));
}

TEST_CASE("the brake slows the guesser, not the user: per source and name, with a per-name backstop") {
  BrakeOptions o;
  o.burst = 3;
  o.refill = std::chrono::hours(1);
  LocalUsers users(o, 4);
  users.replace_all({{"alice", bcrypt_hash("right-pw", 4), {"devs"}}});
  // A stranger at 198.51.100.7 spends the budget for alice...
  for (int i = 0; i < 5; i++) CHECK_FALSE(users.authenticate("alice", "guess", "198.51.100.7").authenticated);
  CHECK(users.authenticate("alice", "right-pw", "198.51.100.7").reason_class == "braked");
  // ...alice, from her own address, is not locked out.
  CHECK(users.authenticate("alice", "right-pw", "203.0.113.5").authenticated);
  // A spray from many (forged) sources meets the per-name brake: 10 x burst.
  int before_braked = 0;
  for (int i = 0; i < 40; i++) {
    auto r = users.authenticate("alice", "guess", "192.0.2." + std::to_string(i));
    if (r.reason_class == "braked") break;
    before_braked++;
  }
  CHECK(before_braked < 31);  // at most 10 x 3 failures got a bcrypt check
  auto r = users.authenticate("alice", "right-pw", "203.0.113.99");
  CHECK(r.reason_class == "braked");
  CHECK(r.reason.find("from many sources") != std::string::npos);
}

TEST_CASE("through the binary the brake keys on X-Forwarded-For, as the concierge sends it") {
  TempDir dir;
  dir.write("users", users_file_line({"alice", bcrypt_hash("right-pw", 4), {}}) + "\n");
  LuaProcess lua(dir, {"--users-file", dir.file("users"), "--brake-burst", "2", "--brake-refill", "1h"});
  auto review_from = [&](const std::string &token, const std::string &xff) {
    auto res =
        lua.request("POST", "/authenticate", review_body(token),
                    {{"Content-Type", "application/json"}, {"Accept", "application/json"}, {"X-Forwarded-For", xff}});
    REQUIRE(res.status == 200);
    return TokenReview::from_json(json::parse(res.body)).authenticated;
  };
  for (int i = 0; i < 3; i++) CHECK_FALSE(review_from("alice:guess", "198.51.100.7"));
  CHECK_FALSE(review_from("alice:right-pw", "198.51.100.7"));  // the guesser's address is braked
  CHECK(review_from("alice:right-pw", "203.0.113.5"));         // alice's is not
}
