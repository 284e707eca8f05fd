// `pinniped login oidc`'s client side (section 6d): the session cache, the
// browser launcher, and logins against the real test provider
// (tests/oidc/provider.mjs, oidc-provider on Node) through a real headless
// chromium (tests/oidc/browser.mjs), with support.hpp's helpers for them. A
// missing stack fails these tests.
#include <catch2/catch.hpp>
#include <future>

#include "tests/jwt_keys.hpp"
#include "tests/support.hpp"

using namespace testing;

namespace {

// Sets (or, with nullptr, unsets) an environment variable for a scope.
struct ScopedEnv {
  std::string name;
  std::optional<std::string> old;
  ScopedEnv(std::string n, const char *v) : name(std::move(n)) {
    if (const char *o = std::getenv(name.c_str())) old = o;
    v ? ::setenv(name.c_str(), v, 1) : ::unsetenv(name.c_str());
  }
  ~ScopedEnv() { old ? ::setenv(name.c_str(), old->c_str(), 1) : ::unsetenv(name.c_str()); }
};

// What the login writes to `err`, readable while it runs.
class SharedText : public std::streambuf {
 public:
  std::string text() {
    std::lock_guard<std::mutex> lk(mu_);
    return text_;
  }

 protected:
  int overflow(int c) override {
    if (c == EOF) return 0;
    std::lock_guard<std::mutex> lk(mu_);
    text_ += static_cast<char>(c);
    return c;
  }
  std::streamsize xsputn(const char *s, std::streamsize n) override {
    std::lock_guard<std::mutex> lk(mu_);
    text_.append(s, static_cast<size_t>(n));
    return n;
  }

 private:
  std::mutex mu_;
  std::string text_;
};

// The text after `prefix` up to the end of its line, once `buf` has it.
std::string wait_for_line(SharedText &buf, const std::string &prefix, Millis limit = std::chrono::seconds(20)) {
  std::string found;
  eventually(
      [&] {
        std::string t = buf.text();
        auto at = t.find(prefix);
        if (at == std::string::npos) return false;
        at += prefix.size();
        auto end = t.find('\n', at);
        if (end == std::string::npos) return false;
        found = t.substr(at, end - at);
        return true;
      },
      limit);
  if (found.empty()) FAIL("no \"" << prefix << "\" in:\n" << buf.text());
  return found;
}

// $BROWSER for a login: the stack's open-browser.sh, signing in as alice,
// its output and its "open-browser: exit N" in <name>.log.
struct BrowserEnv {
  ScopedEnv browser, user, password, ca, log;
  BrowserEnv(const TempDir &dir, const OidcTestProvider &p, const std::string &name = "browser")
      : browser("BROWSER", (oidc_stack() + "/open-browser.sh").c_str()),
        user("PINNIPED_TEST_OIDC_USER", "alice"),
        password("PINNIPED_TEST_OIDC_PASSWORD", "alice-password"),
        ca("PINNIPED_TEST_OIDC_CA", p.ca_file.c_str()),
        log("PINNIPED_TEST_BROWSER_LOG", dir.file(name + ".log").c_str()) {}
};
// A $BROWSER that must not run: it leaves a mark.
std::string no_browser_script(const TempDir &dir) {
  std::string p = dir.write("no-browser.sh", "#!/bin/sh\ntouch " + shell_quote(dir.file("browser-was-run")) + "\n");
  ::chmod(p.c_str(), 0755);
  return p;
}

// The exit code open-browser.sh logged for browser.mjs, once it has; -1 if never.
int browser_exit(const TempDir &dir, const std::string &name = "browser") {
  int rc = -1;
  eventually(
      [&] {
        std::string log = dir.read(name + ".log");
        auto at = log.find("open-browser: exit ");
        if (at == std::string::npos) return false;
        rc = std::atoi(log.c_str() + at + std::strlen("open-browser: exit "));
        return true;
      },
      std::chrono::seconds(60), Millis(50));
  return rc;
}

// The claims of a JWT, read without any check (the tests' own look inside).
picojson::value jwt_claims(const std::string &jwt) {
  auto parts = detail::split(jwt, '.');
  REQUIRE(parts.size() == 3);
  auto raw = detail::base64url_decode(parts[1]);
  REQUIRE(raw);
  return json::parse(*raw);
}

mode_t file_mode(const std::string &p) {
  struct stat st;
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

// oidc_login, or a failure that shows what the browser and the provider said.
OidcTokens login_or_fail(const OidcLoginOptions &o, std::ostream &err, const TempDir &dir, const OidcTestProvider &p,
                         const std::string &browser = "browser") {
  try {
    return oidc_login(o, err);
  } catch (const std::exception &e) {
    std::string blog;
    try {
      blog = dir.read(browser + ".log");
    } catch (const std::exception &) {
    }
    FAIL(e.what() << "\n--- browser:\n" << blog << "\n--- provider:\n" << p.log());
  }
  return {};
}

OidcLoginOptions options_for(const OidcTestProvider &p, const TempDir &dir) {
  OidcLoginOptions o;
  o.issuer = p.issuer;
  o.ca_pem = p.ca_pem;
  o.scopes = {"openid", "offline_access", "username", "groups"};
  o.session_cache = dir.file("cfg/pinniped/sessions.yaml");
  o.timeout = std::chrono::seconds(60);
  return o;
}

// Every secret a test saw, and every message: no message may hold a secret.
struct SecretWatch {
  std::vector<std::string> secrets, messages;
  void add(const OidcTokens &t) {
    for (const auto &s : {t.id_token, t.refresh_token, t.access_token})
      if (!s.empty()) secrets.push_back(s);
  }
  void check() const {
    for (const auto &m : messages)
      for (const auto &s : secrets) {
        INFO(m);
        CHECK(m.find(s) == std::string::npos);
        // nor a recognisable piece of one
        if (s.size() > 24) CHECK(m.find(s.substr(s.size() / 2, 16)) == std::string::npos);
      }
  }
};

// A scripted provider on support.hpp's FakeIdp: discovery as given, and
// POST answers from `on_post`. For what the real one cannot be made to do.
class ScriptedProvider {
 public:
  using Post = std::function<void(const httplib::Request &, httplib::Response &)>;
  ScriptedProvider(std::function<picojson::object(const std::string &issuer)> discovery, Post on_post) {
    // Before any request comes: the server reads its routes only for requests.
    idp_.server().Get("/.well-known/openid-configuration",
                      [this, discovery](const httplib::Request &, httplib::Response &res) {
                        res.set_content(to_json_string(picojson::value(discovery(issuer()))), "application/json");
                      });
    idp_.set_handler([this, on_post](const httplib::Request &req, httplib::Response &res) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        posts.push_back({Steady::now(), req.path});
      }
      on_post(req, res);
    });
  }
  std::string issuer() const { return "https://127.0.0.1:" + std::to_string(idp_.port()); }
  const std::string &ca_pem() const { return idp_.ca_pem(); }
  // GET routes beyond discovery: add them before the first request.
  TlsServer &server() { return idp_.server(); }
  static picojson::object standard(const std::string &iss) {
    picojson::object d;
    d["issuer"] = jv(iss);
    d["authorization_endpoint"] = jv(iss + "/auth");
    d["token_endpoint"] = jv(iss + "/token");
    d["jwks_uri"] = jv(iss + "/jwks");
    d["device_authorization_endpoint"] = jv(iss + "/device");
    d["response_types_supported"] = picojson::value(picojson::array{jv("code")});
    d["subject_types_supported"] = picojson::value(picojson::array{jv("public")});
    d["id_token_signing_alg_values_supported"] = picojson::value(picojson::array{jv("RS256")});
    d["code_challenge_methods_supported"] = picojson::value(picojson::array{jv("S256")});
    return d;
  }
  std::vector<std::pair<Steady::time_point, std::string>> posts;  // when, and which path
  std::mutex mu_;

 private:
  FakeIdp idp_;
};

void oauth_error(httplib::Response &res, const std::string &error, const std::string &desc = "") {
  picojson::object o;
  o["error"] = jv(error);
  if (!desc.empty()) o["error_description"] = jv(desc);
  res.status = 400;
  res.set_content(to_json_string(picojson::value(o)), "application/json");
}

}  // namespace

TEST_CASE("oidc login options: each mistake is refused before any network call") {
  std::ostringstream err;
  struct Row {
    const char *name;
    std::function<void(OidcLoginOptions &)> change;
    const char *says;
  };
  for (const Row &r : std::vector<Row>{
           {"an http issuer", [](OidcLoginOptions &o) { o.issuer = "http://127.0.0.1:1"; }, "--issuer"},
           {"an empty issuer", [](OidcLoginOptions &o) { o.issuer = ""; }, "--issuer"},
           {"an issuer with a query", [](OidcLoginOptions &o) { o.issuer = "https://127.0.0.1:1/?a=b"; }, "--issuer"},
           {"an empty client", [](OidcLoginOptions &o) { o.client_id = ""; }, "--client-id"},
           {"an unknown flow", [](OidcLoginOptions &o) { o.flow = "implicit"; }, "--flow"},
           {"a port beyond 65535", [](OidcLoginOptions &o) { o.listen_port = 70000; }, "--listen-port"},
       }) {
    INFO(r.name);
    OidcLoginOptions o;
    o.issuer = "https://127.0.0.1:1";
    r.change(o);
    try {
      oidc_login(o, err);
      FAIL("accepted");
    } catch (const UsageError &e) {
      CHECK_THAT(e.what(), Catch::Contains(r.says));
    }
  }
  CHECK(err.str().empty());
}

TEST_CASE("provider text is quoted bounded, without control characters or invalid UTF-8") {
  struct Row {
    std::string in;
    size_t max;
    std::string quoted;
  };
  for (const Row &r : std::vector<Row>{
           {"plain words", 200, "\"plain words\""},
           {"a\x1b[31mred\x1b[0m\r\nb\x7f", 200, "\"a[31mred[0mb\""},  // escape sequences lose their ESC
           {"c1 \xc2\x9b"
            "2J here",
            200, "\"c1 2J here\""},                                    // CSI as one C1 character
           {"caf\xc3\xa9 \xff", 200, "\"caf\xc3\xa9 \xef\xbf\xbd\""},  // invalid UTF-8 replaced
           {"say \"hi\" \\ o/", 200, "\"say \\\"hi\\\" \\\\ o/\""},    // JSON-quoted
           {std::string(1000, 'x'), 50, "\"" + std::string(50, 'x') + "\"..."},
           {std::string(300, '\x01') + "end", 10, "\"end\""},
           {"\xc3\xa9\xc3\xa9\xc3\xa9", 5, "\"\xc3\xa9\xc3\xa9\"..."},  // a character is never cut
       }) {
    INFO(r.in);
    CHECK(detail::quote_untrusted(r.in, r.max) == r.quoted);
  }
  CHECK(detail::printable("https://idp/\x1b]0;title\x07") == "https://idp/]0;title");
  CHECK(detail::printable(std::string(100, 'u'), 10) == std::string(10, 'u'));
}

TEST_CASE("the browser launcher: no shell, the URL as one argument, no waiting, no inherited descriptors") {
  TempDir dir;
  CHECK(!detail::launch_browser(dir.file("missing"), "https://x"));
  CHECK(!detail::launch_browser("no-such-browser-anywhere", "https://x"));
  // Perl, which leaves the signal mask and dispositions as it found them (dash clears the mask).
  auto in = [&](const std::string &name) { return "'" + dir.file(name) + "'"; };
  std::string script = dir.write("browser.pl",
                                 "#!/usr/bin/perl\n"
                                 "open(my $a, '>', " +
                                     in("args") +
                                     "); print $a scalar(@ARGV), \"\\n$ARGV[0]\\n\"; close($a);\n"
                                     "open(my $d, '>', " +
                                     in("std") +
                                     "); print $d join(' ', map { readlink(\"/proc/self/fd/$_\") } 0..2); close($d);\n"
                                     "open(my $s, '<', '/proc/self/status'); open(my $o, '>', " +
                                     in("signals") +
                                     ");\n"
                                     "print $o grep { /^Sig(Blk|Ign):/ } <$s>; close($o);\n"
                                     "sleep 2; open(STDOUT, '>', " +
                                     in("fds.tmp") + "); exec('/bin/ls', '/proc/self/fd');\n");
  ::chmod(script.c_str(), 0755);
  int leak = ::open("/dev/null", O_RDONLY);  // not CLOEXEC: the launcher must close it anyway
  // As main.cpp runs: signals blocked for its waiter, SIGPIPE ignored. The browser gets neither.
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  auto old_pipe = signal(SIGPIPE, SIG_IGN);
  std::string url = "https://idp.example/auth?a=1&b=$(touch pwned)&c='\"; x";
  auto t0 = Steady::now();
  CHECK(detail::launch_browser(script, url));
  CHECK(Steady::now() - t0 < std::chrono::seconds(1));  // the script sleeps 2 s
  ::close(leak);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  signal(SIGPIPE, old_pipe);
  // The script's last step done, all it wrote is there.
  REQUIRE(eventually([&] { return !dir.read("fds.tmp").empty(); }, std::chrono::seconds(10)));
  CHECK(dir.read("args") == "1\n" + url + "\n");
  CHECK(::access((dir.path + "/pwned").c_str(), F_OK) != 0);
  CHECK(::access("pwned", F_OK) != 0);
  CHECK(dir.read("std") == "/dev/null /dev/null /dev/null");
  // No signal blocked; SIGPIPE (bit 12) not ignored (perl itself ignores SIGFPE).
  std::string sig = dir.read("signals");
  INFO(sig);
  REQUIRE(sig.rfind("SigBlk:\t", 0) == 0);
  CHECK(sig.substr(0, sig.find('\n')) == "SigBlk:\t0000000000000000");
  CHECK((std::stoull(sig.substr(sig.find("SigIgn:\t") + 8), nullptr, 16) & (1ull << (SIGPIPE - 1))) == 0);
  // ls itself: 0, 1, 2 (/dev/null, and fds.tmp as its stdout) and the folder it reads; nothing of ours.
  auto fds = detail::split(dir.read("fds.tmp"), '\n');
  fds.erase(std::remove(fds.begin(), fds.end(), ""), fds.end());
  INFO(dir.read("fds.tmp"));
  CHECK(fds == std::vector<std::string>{"0", "1", "2", "3"});
}

TEST_CASE("the session cache: keys, replacement, drop, pruning, foreign entries, locking, permissions, corruption") {
  TempDir dir;
  std::string path = dir.file("cfg/pinniped/sessions.yaml");
  SessionCache cache(path);
  OidcLoginOptions o;
  o.issuer = "https://idp.example";
  auto key = SessionCacheKey::of(o);
  auto now = Clock::now();
  OidcTokens t{"id-1", "refresh-1", "access-1", now + std::chrono::minutes(5), now + std::chrono::minutes(5), ""};
  CHECK(!cache.get(key));
  cache.put(key, t);
  CHECK(file_mode(dir.file("cfg/pinniped")) == 0700);
  CHECK(file_mode(path) == 0600);
  auto got = cache.get(key);
  REQUIRE(got);
  CHECK(got->id_token == "id-1");
  CHECK(got->refresh_token == "refresh-1");
  CHECK(got->access_token == "access-1");
  CHECK(format_rfc3339(got->id_expiry) == format_rfc3339(t.id_expiry));

  // Upstream's shape, in YAML that our reader (and sigs.k8s.io/yaml) reads.
  auto docs = parse_yaml_documents(read_file(path));
  REQUIRE(docs.size() == 1);
  CHECK(json::get_string(docs[0], "apiVersion", "") == "config.supervisor.pinniped.dev/v1alpha1");
  CHECK(json::get_string(docs[0], "kind", "") == "SessionCache");
  const auto &s = json::field(docs[0], "sessions")->get<picojson::array>().at(0);
  CHECK(to_json_string(*json::field(s, "key")) ==
        R"({"clientID":"pinniped-cli","issuer":"https://idp.example","redirect_uri":"http://127.0.0.1:0/callback",)"
        R"("scopes":["groups","offline_access","openid","pinniped:request-audience","username"]})");
  CHECK(json::get_string(*json::field(*json::field(s, "tokens"), "id"), "token", "") == "id-1");
  CHECK(!json::get_string(s, "creationTimestamp", "").empty());
  CHECK(!json::get_string(s, "lastUsedTimestamp", "").empty());

  // Another issuer, client, scope set or port is another session; scope order is not.
  for (auto change : std::vector<std::function<void(OidcLoginOptions &)>>{
           [](OidcLoginOptions &x) { x.issuer += "/other"; },
           [](OidcLoginOptions &x) { x.client_id = "other"; },
           [](OidcLoginOptions &x) { x.scopes.pop_back(); },
           [](OidcLoginOptions &x) { x.listen_port = 48095; },
       }) {
    OidcLoginOptions other = o;
    change(other);
    CHECK(!cache.get(SessionCacheKey::of(other)));
  }
  OidcLoginOptions reordered = o;
  std::reverse(reordered.scopes.begin(), reordered.scopes.end());
  CHECK(cache.get(SessionCacheKey::of(reordered)));

  // Replacing keeps one entry and its creation time.
  std::string created = json::get_string(s, "creationTimestamp", "");
  t.id_token = "id-2";
  cache.put(key, t, now + std::chrono::seconds(5));
  REQUIRE(cache.load().size() == 1);
  CHECK(cache.load()[0].tokens.id_token == "id-2");
  CHECK(format_rfc3339(cache.load()[0].created) == created);

  // drop() only removes the refused refresh token's session.
  cache.drop(key, "some-other-refresh");
  CHECK(cache.get(key));
  cache.drop(key, "refresh-1");
  CHECK(!cache.get(key));

  // Entries we do not understand (upstream's, with an upstream provider) stay, unused.
  std::string foreign_key =
      R"({"issuer":"https://idp.example","clientID":"pinniped-cli","scopes":["groups","offline_access","openid","pinniped:request-audience","username"],"redirect_uri":"http://127.0.0.1:0/callback","upstream_provider_name":"ldap"})";
  dir.write("cfg/pinniped/sessions.yaml",
            "apiVersion: config.supervisor.pinniped.dev/v1alpha1\nkind: SessionCache\nsessions:\n- key: " +
                foreign_key + "\n  creationTimestamp: \"" + format_rfc3339(now) + "\"\n  lastUsedTimestamp: \"" +
                format_rfc3339(now) + "\"\n  tokens:\n    id:\n      token: upstream-id\n      expiryTimestamp: \"" +
                format_rfc3339(now + std::chrono::hours(1)) + "\"\n      claims: {sub: x}\n");
  CHECK(!cache.get(key));
  cache.put(key, t);
  REQUIRE(cache.load().size() == 2);
  CHECK(read_file(path).find("upstream-id") != std::string::npos);
  CHECK(read_file(path).find("ldap") != std::string::npos);

  // Sessions idle for 90 days go on the next write.
  OidcLoginOptions idle = o;
  idle.client_id = "idle";
  cache.put(SessionCacheKey::of(idle), t, now - std::chrono::hours(24 * 91));
  CHECK(cache.load().size() == 3);
  cache.put(key, t);
  CHECK(cache.load().size() == 2);
  CHECK(!cache.get(SessionCacheKey::of(idle)));

  // Corrupt, foreign or empty: read as empty and replaced on the next write.
  for (const std::string &bad :
       {std::string("{{{ not yaml"), std::string("kind: Pod\napiVersion: v1\n"), std::string(""),
        std::string("\x01\x02garbage"), std::string("kind: SessionCache\nsessions: 5\n"),
        std::string("apiVersion: config.supervisor.pinniped.dev/v1alpha1\nkind: SessionCache\nsessions:\n- key: 7\n"),
        std::string("apiVersion: v9\nkind: SessionCache\nsessions: []\n")}) {
    INFO(bad);
    dir.write("cfg/pinniped/sessions.yaml", bad);
    CHECK(!cache.get(key));
    cache.put(key, t);
    CHECK(cache.get(key));
    CHECK(file_mode(path) == 0600);
  }
  // Writers in parallel (threads here, processes alike: one flock each) lose nobody's session.
  std::vector<std::thread> writers;
  for (int i = 0; i < 16; i++)
    writers.emplace_back([&, i] {
      OidcLoginOptions mine = o;
      mine.client_id = "client-" + std::to_string(i);
      cache.put(SessionCacheKey::of(mine), t);
    });
  for (auto &th : writers) th.join();
  CHECK(cache.load().size() == 17);

  // A cache that cannot be written reads as empty and its put throws
  // (oidc_login warns).
  SessionCache blocked(dir.file("cfg/pinniped/sessions.yaml/below"));
  CHECK(!blocked.get(key));
  CHECK_THROWS_AS(blocked.put(key, t), Error);
}

TEST_CASE("oidc login refuses an issuer that lacks what the flow needs, before showing anything") {
  std::mutex mu;
  picojson::object published;  // the discovery document of the row
  ScriptedProvider p(
      [&](const std::string &) {
        std::lock_guard<std::mutex> lk(mu);
        return published;
      },
      [](const httplib::Request &, httplib::Response &res) { res.status = 500; });
  struct Row {
    const char *name;
    std::function<void(picojson::object &)> change;
    const char *flow, *says;
  };
  for (const Row &r : std::vector<Row>{
           {"PKCE without S256",
            [](picojson::object &d) {
              d["code_challenge_methods_supported"] = picojson::value(picojson::array{jv("plain")});
            },
            "browser", "the issuer does not support PKCE with S256 (its code_challenge_methods_supported: plain)"},
           {"no device endpoint", [](picojson::object &d) { d.erase("device_authorization_endpoint"); }, "device",
            "the issuer does not offer the device flow (its discovery has no device_authorization_endpoint)"},
           {"no authorization endpoint", [](picojson::object &d) { d.erase("authorization_endpoint"); }, "browser",
            "the issuer's discovery has no authorization_endpoint"},
           {"no token endpoint", [](picojson::object &d) { d.erase("token_endpoint"); }, "device",
            "the issuer's discovery has no token_endpoint"},
           {"a plain http token endpoint",
            [](picojson::object &d) { d["token_endpoint"] = jv("http://127.0.0.1:1/token"); }, "browser",
            "is not an https:// URL"},
           {"another issuer", [](picojson::object &d) { d["issuer"] = jv("https://elsewhere.example"); }, "browser",
            "names issuer \"https://elsewhere.example\""},
       }) {
    INFO(r.name);
    {
      std::lock_guard<std::mutex> lk(mu);
      published = ScriptedProvider::standard(p.issuer());
      r.change(published);
    }
    OidcLoginOptions o;
    o.issuer = p.issuer();
    o.ca_pem = p.ca_pem();
    o.flow = r.flow;
    o.skip_browser = true;
    std::ostringstream err;
    CHECK_THROWS_WITH(oidc_login(o, err), Catch::Contains(r.says));
    CHECK(err.str().empty());
  }
  // Without a display the automatic choice is the device flow, but only where
  // there is one: here the browser flow (its URL printed).
  {
    std::lock_guard<std::mutex> lk(mu);
    published = ScriptedProvider::standard(p.issuer());
    published.erase("device_authorization_endpoint");
  }
  ScopedEnv a("DISPLAY", nullptr), b("WAYLAND_DISPLAY", nullptr), c("BROWSER", nullptr);
  OidcLoginOptions o;
  o.issuer = p.issuer();
  o.ca_pem = p.ca_pem();
  o.skip_browser = true;
  o.timeout = std::chrono::seconds(1);
  std::ostringstream err;
  CHECK_THROWS_WITH(oidc_login(o, err), Catch::StartsWith("the login did not complete within 1s"));
  CHECK_THAT(err.str(), Catch::StartsWith("Log in by visiting this link:\n\n    " + p.issuer() + "/auth?"));
}

TEST_CASE("the device flow's polling: pending waits, slow_down adds 5 s, denied and expired codes fail clearly") {
  std::atomic<int> polls{0};
  std::string answer_after;  // what the token endpoint says after
                             // "authorization_pending"
  ScriptedProvider p(ScriptedProvider::standard, [&](const httplib::Request &req, httplib::Response &res) {
    if (req.path == "/device") {
      CHECK(req.get_header_value("Content-Type") == "application/x-www-form-urlencoded");
      CHECK(req.get_param_value("client_id") == "pinniped-cli");
      CHECK(req.get_param_value("scope") == "openid offline_access");
      res.set_content(
          R"({"device_code":"dc-secret-123","user_code":"ABCD-\u001b[2JEFGH","verification_uri":"https://127.0.0.1/device","expires_in":60,"interval":1})",
          "application/json");
      return;
    }
    CHECK(req.get_param_value("grant_type") == "urn:ietf:params:oauth:grant-type:device_code");
    CHECK(req.get_param_value("device_code") == "dc-secret-123");
    int n = ++polls;
    if (n == 1) return oauth_error(res, "authorization_pending");
    if (n == 2 && answer_after == "access_denied") return oauth_error(res, "slow_down");
    oauth_error(res, answer_after, "the\ruser\x1b said no");
  });
  OidcLoginOptions o;
  o.issuer = p.issuer();
  o.ca_pem = p.ca_pem();
  o.flow = "device";
  o.scopes = {"openid", "offline_access"};
  o.timeout = std::chrono::seconds(30);
  std::ostringstream err;
  SECTION("slow_down, then access_denied") {
    answer_after = "access_denied";
    CHECK_THROWS_WITH(oidc_login(o, err), "the login was denied at the identity provider");
    CHECK_THAT(err.str(),
               Catch::StartsWith("To log in, visit https://127.0.0.1/device and enter the code: ABCD-[2JEFGH\n"));
    std::lock_guard<std::mutex> lk(p.mu_);
    REQUIRE(p.posts.size() == 4);  // device, pending, slow_down, denied
    auto gap = [&](size_t i) { return std::chrono::duration_cast<Millis>(p.posts[i].first - p.posts[i - 1].first); };
    CHECK(gap(2) >= Millis(900));
    CHECK(gap(2) < Millis(3000));
    CHECK(gap(3) >= Millis(5900));  // 1 s + 5 s
  }
  SECTION("expired_token") {
    answer_after = "expired_token";
    CHECK_THROWS_WITH(oidc_login(o, err), Catch::Contains("the device code expired"));
  }
  SECTION("another error is quoted, sanitized, and the device code is not in it") {
    answer_after = "invalid_client";
    try {
      oidc_login(o, err);
      FAIL("accepted");
    } catch (const Error &e) {
      CHECK(std::string(e.what()) == "the token endpoint refused the device login: invalid_client \"theuser said no\"");
      CHECK(std::string(e.what()).find("dc-secret") == std::string::npos);
    }
  }
  SECTION("the login's own limit") {
    answer_after = "authorization_pending";
    o.timeout = std::chrono::seconds(3);
    auto t0 = Steady::now();
    CHECK_THROWS_WITH(oidc_login(o, err), "the login did not complete within 3s");
    CHECK(Steady::now() - t0 < std::chrono::seconds(5));
  }
}

TEST_CASE("the callback: no state waits, another issuer ends the login, a refused code's message loses our secrets") {
  std::mutex mu;
  std::string verifier_seen;
  ScriptedProvider p(ScriptedProvider::standard, [&](const httplib::Request &req, httplib::Response &res) {
    CHECK(req.get_param_value("grant_type") == "authorization_code");
    CHECK(req.get_param_value("client_id") == "pinniped-cli");
    {
      std::lock_guard<std::mutex> lk(mu);
      verifier_seen = req.get_param_value("code_verifier");
    }
    oauth_error(res, "invalid_grant",
                "code " + req.get_param_value("code") + " (verifier " + req.get_param_value("code_verifier") +
                    ", sent to " + req.get_param_value("redirect_uri") + ") was already used");
  });
  OidcLoginOptions o;
  o.issuer = p.issuer();
  o.ca_pem = p.ca_pem();
  o.flow = "browser";
  o.skip_browser = true;
  o.timeout = std::chrono::seconds(20);
  SharedText buf;
  std::ostream err(&buf);
  auto login = std::async(std::launch::async, [&] { return oidc_login(o, err); });
  std::string url = wait_for_line(buf, "Log in by visiting this link:\n\n    ");
  httplib::Params q;
  q = form_decode(url.substr(url.find('?') + 1));
  auto param = [&](const std::string &k) { return q.count(k) ? q.find(k)->second : ""; };
  Url cb = Url::parse(param("redirect_uri"));
  httplib::Client c("127.0.0.1", cb.port);
  // Without our state: refused, and the login goes on.
  auto res = c.Get("/callback?code=c0de-0000-aaaa");
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK(res->get_header_value("Cache-Control") == "no-store");
  // With it, from another issuer (RFC 9207 iss): the login ends.
  res = c.Get("/callback?state=" + param("state") + "&iss=https%3A%2F%2Fevil.example&code=c0de-1111-bbbb");
  REQUIRE(res);
  CHECK(res->status == 400);
  REQUIRE(login.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  try {
    login.get();
    FAIL("accepted");
  } catch (const Error &e) {
    CHECK_THAT(e.what(), Catch::StartsWith("the authorization response names the issuer \"https://evil.example\""));
  }

  // A second login: the code is refused, and the provider's message loses the
  // code and the verifier.
  SharedText buf2;
  std::ostream err2(&buf2);
  login = std::async(std::launch::async, [&] { return oidc_login(o, err2); });
  url = wait_for_line(buf2, "Log in by visiting this link:\n\n    ");
  q.clear();
  q = form_decode(url.substr(url.find('?') + 1));
  httplib::Client c2("127.0.0.1", Url::parse(param("redirect_uri")).port);
  res = c2.Get("/callback?state=" + param("state") + "&code=c0de-2222-cccc&iss=" + detail::percent_encode(p.issuer()));
  REQUIRE(res);
  CHECK(res->status == 500);
  REQUIRE(login.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  try {
    login.get();
    FAIL("accepted");
  } catch (const Error &e) {
    CHECK(std::string(e.what()) ==
          "the token endpoint refused the authorization code: invalid_grant \"code [redacted] (verifier [redacted], "
          "sent to " +
              param("redirect_uri") + ") was already used\"");
  }
  // PKCE: the challenge is the verifier's SHA-256.
  std::lock_guard<std::mutex> lk(mu);
  CHECK(verifier_seen.size() == 43);
  CHECK(detail::base64url_encode(detail::sha256(verifier_seen)) == param("code_challenge"));
}

TEST_CASE("refresh refusals: the session goes and the message has no refresh token; a provider failure keeps it") {
  std::atomic<int> status{400};
  ScriptedProvider p(ScriptedProvider::standard, [&](const httplib::Request &req, httplib::Response &res) {
    CHECK(req.get_param_value("grant_type") == "refresh_token");
    oauth_error(res, status == 400 ? "invalid_grant" : "server_error",
                "refresh token " + req.get_param_value("refresh_token") + " is not valid");
    res.status = status;
  });
  TempDir dir;
  OidcLoginOptions o;
  o.issuer = p.issuer();
  o.ca_pem = p.ca_pem();
  o.flow = "browser";
  o.skip_browser = true;
  o.timeout = std::chrono::seconds(2);
  o.session_cache = dir.file("sessions.yaml");
  OidcTokens stale{"id-expired", "rt-5ecret-refresh-token", "", Clock::now() - std::chrono::minutes(1), {}, ""};
  SessionCache cache(o.session_cache);

  cache.put(SessionCacheKey::of(o), stale);
  std::ostringstream err;
  status = 500;
  CHECK_THROWS_WITH(
      oidc_login(o, err),
      "the token endpoint failed to refresh the session: server_error \"refresh token [redacted] is not valid\"");
  CHECK(cache.load().size() == 1);  // kept: the provider may work again

  status = 400;
  CHECK_THROWS_WITH(oidc_login(o, err), Catch::StartsWith("the login did not complete within 2s"));
  CHECK_THAT(err.str(), Catch::StartsWith("Refreshing the session failed (invalid_grant \"refresh token [redacted] is "
                                          "not valid\"); logging in again.\n"));
  CHECK(err.str().find("rt-5ecret") == std::string::npos);
  CHECK(cache.load().empty());
}

TEST_CASE("refresh: a refreshed ID token for another subject ends the session; one for the same subject is used") {
  auto key = jwt_keys::make_rsa("k1", 2048);
  std::atomic<bool> other_subject{true};
  std::string iss;
  auto id_token = [&](const std::string &sub, Clock::time_point exp) {
    picojson::object c;
    c["iss"] = jv(iss);
    c["aud"] = jv("pinniped-cli");
    c["sub"] = jv(sub);
    c["iat"] = jv(jwt_keys::secs(Clock::now()));
    c["exp"] = jv(jwt_keys::secs(exp));
    return jwt_keys::token_from(key, "RS256", jwt_keys::header_for_kid("RS256", key.kid),
                                picojson::value(c).serialize());
  };
  ScriptedProvider p(ScriptedProvider::standard, [&](const httplib::Request &req, httplib::Response &res) {
    CHECK(req.get_param_value("grant_type") == "refresh_token");
    picojson::object a;
    a["id_token"] = jv(id_token(other_subject ? "mallory" : "alice", Clock::now() + std::chrono::minutes(30)));
    a["access_token"] = jv("at-1");
    a["refresh_token"] = jv("rt-2");
    a["token_type"] = jv("Bearer");
    a["expires_in"] = jv(1800);
    res.set_content(to_json_string(picojson::value(a)), "application/json");
  });
  iss = p.issuer();
  std::string set = jwt_keys::jwks({key.jwk()});
  p.server().Get("/jwks",
                 [set](const httplib::Request &, httplib::Response &res) { res.set_content(set, "application/json"); });
  TempDir dir;
  OidcLoginOptions o;
  o.issuer = p.issuer();
  o.ca_pem = p.ca_pem();
  o.client_id = "pinniped-cli";
  o.flow = "browser";
  o.skip_browser = true;
  o.timeout = std::chrono::seconds(2);
  o.session_cache = dir.file("sessions.yaml");
  SessionCache cache(o.session_cache);
  OidcTokens stale;
  stale.id_token = id_token("alice", Clock::now() - std::chrono::minutes(1));
  stale.refresh_token = "rt-1";
  stale.id_expiry = Clock::now() - std::chrono::minutes(1);
  REQUIRE(detail::cached_subject(stale.id_token) == "alice");

  // Another subject: refused, the session goes, and a login is asked for.
  cache.put(SessionCacheKey::of(o), stale);
  std::ostringstream err;
  CHECK_THROWS_WITH(oidc_login(o, err), Catch::StartsWith("the login did not complete within 2s"));
  CHECK_THAT(err.str(), Catch::StartsWith("Refreshing the session failed (the refreshed ID token is for another "
                                          "subject than the session's); logging in again.\n"));
  CHECK(cache.load().empty());

  // The same subject: the refreshed tokens are used and stored.
  other_subject = false;
  cache.put(SessionCacheKey::of(o), stale);
  std::ostringstream err2;
  OidcTokens t = oidc_login(o, err2);
  CHECK(err2.str().empty());
  CHECK(t.subject == "alice");
  CHECK(t.refresh_token == "rt-2");
  auto stored = cache.load();
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].tokens.refresh_token == "rt-2");
}

TEST_CASE("browser flow against the real provider: tokens, nonce, cache reuse without a browser, 0600 file") {
  TempDir dir;
  OidcTestProvider p(dir);
  SecretWatch w;
  auto o = options_for(p, dir);
  std::ostringstream err;
  auto t0 = Steady::now();
  OidcTokens t;
  {
    BrowserEnv b(dir, p);
    t = login_or_fail(o, err, dir, p);
  }
  w.add(t);
  WARN("browser login took " << std::chrono::duration_cast<Millis>(Steady::now() - t0).count() << " ms");
  CHECK(browser_exit(dir) == 0);
  CHECK_THAT(dir.read("browser.log"), Catch::Contains("You are logged in"));
  CHECK(err.str().empty());  // a browser opened: nothing printed

  REQUIRE(!t.id_token.empty());
  CHECK(!t.access_token.empty());
  CHECK(!t.refresh_token.empty());
  auto claims = jwt_claims(t.id_token);
  CHECK(json::get_string(claims, "iss", "") == p.issuer);
  CHECK(json::get_string(claims, "aud", "") == "pinniped-cli");
  CHECK(json::get_string(claims, "username", "") == "alice");
  std::string nonce = json::get_string(claims, "nonce", "");
  CHECK(nonce.size() >= 22);
  CHECK(t.id_expiry > Clock::now() + std::chrono::minutes(4));
  CHECK(t.id_expiry < Clock::now() + std::chrono::minutes(6));

  // The nonce is checked: the same answer with another nonce is refused.
  ClientTlsOptions tls;
  tls.ca_pem = p.ca_pem;
  OidcDiscovery d = fetch_oidc_discovery(p.issuer, tls, std::chrono::seconds(10));
  detail::OAuthAnswer a;
  picojson::object body;
  body["id_token"] = jv(t.id_token);
  a.body = picojson::value(body);
  auto deadline = Steady::now() + std::chrono::seconds(10);
  CHECK(detail::checked_tokens(a, o, d, nonce, deadline, "x").id_token == t.id_token);
  try {
    detail::checked_tokens(a, o, d, nonce + "x", deadline, "the token endpoint");
    FAIL("another nonce was accepted");
  } catch (const Error &e) {
    w.messages.push_back(e.what());
    CHECK_THAT(e.what(), Catch::Contains("the ID token from the token endpoint is not valid"));
  }
  // ...and so are another audience and another issuer.
  OidcLoginOptions other = o;
  other.client_id = "someone-else";
  CHECK_THROWS_AS(detail::checked_tokens(a, other, d, nonce, deadline, "x"), Error);
  other = o;
  other.issuer = p.issuer + "/elsewhere";
  CHECK_THROWS_AS(detail::checked_tokens(a, other, d, nonce, deadline, "x"), Error);

  // The cache: 0600 in a 0700 folder, and the next login is answered from it
  // (the provider's ID tokens live 5 minutes, under upstream's 10-minute margin).
  o.reuse_margin = std::chrono::minutes(1);
  CHECK(file_mode(o.session_cache) == 0600);
  CHECK(file_mode(dir.file("cfg/pinniped")) == 0700);
  {
    ScopedEnv b("BROWSER", no_browser_script(dir).c_str());
    auto t2 = oidc_login(o, err);
    CHECK(t2.id_token == t.id_token);
    CHECK(t2.refresh_token == t.refresh_token);
  }
  CHECK(::access(dir.file("browser-was-run").c_str(), F_OK) != 0);
  CHECK(err.str().empty());
  w.messages.push_back(err.str());
  w.messages.push_back(p.log());
  w.check();
}

TEST_CASE(
    "browser flow: a request with a wrong or no state gets 400 and the login still succeeds; the URL is printed") {
  TempDir dir;
  OidcTestProvider p(dir);
  auto o = options_for(p, dir);
  o.skip_browser = true;
  SharedText buf;
  std::ostream err(&buf);
  ScopedEnv b("BROWSER", no_browser_script(dir).c_str());
  auto login = std::async(std::launch::async, [&] { return oidc_login(o, err); });
  std::string url = wait_for_line(buf, "Log in by visiting this link:\n\n    ");
  REQUIRE(url.rfind(p.issuer + "/auth?", 0) == 0);
  auto at = url.find("redirect_uri=http%3A%2F%2F127.0.0.1%3A");
  REQUIRE(at != std::string::npos);
  int port = std::atoi(url.c_str() + at + std::strlen("redirect_uri=http%3A%2F%2F127.0.0.1%3A"));
  REQUIRE(port > 0);
  {
    httplib::Client c("127.0.0.1", port);
    auto r1 = c.Get("/callback?state=forged&code=attacker-code");
    REQUIRE(r1);
    CHECK(r1->status == 400);
    auto r2 = c.Get("/callback?code=attacker-code");
    REQUIRE(r2);
    CHECK(r2->status == 400);
    auto r3 = c.Get("/callback?error=access_denied&state=forged");  // a forged refusal does
                                                                    // not end it either
    REQUIRE(r3);
    CHECK(r3->status == 400);
    auto r4 = c.Get("/other");
    REQUIRE(r4);
    CHECK(r4->status == 404);
  }
  auto [rc, out] = drive_browser(p, "login", url);
  INFO(out);
  CHECK(rc == 0);
  CHECK_THAT(out, Catch::Contains("You are logged in"));
  REQUIRE(login.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  auto t = login.get();
  CHECK(!t.id_token.empty());
  CHECK(::access(dir.file("browser-was-run").c_str(), F_OK) != 0);  // --skip-browser
  // The request: code with PKCE S256, fresh state and nonce; the ID token repeats the nonce.
  auto param = [&](const std::string &name) {
    httplib::Params q;
    q = form_decode(url.substr(url.find('?') + 1));
    auto it = q.find(name);
    return it == q.end() ? std::string() : it->second;
  };
  CHECK(param("response_type") == "code");
  CHECK(param("client_id") == "pinniped-cli");
  CHECK(param("scope") == "openid offline_access username groups");
  CHECK(param("code_challenge_method") == "S256");
  CHECK(param("code_challenge").size() == 43);
  CHECK(param("state").size() >= 22);
  CHECK(param("nonce").size() >= 22);
  CHECK(param("redirect_uri") == "http://127.0.0.1:" + std::to_string(port) + "/callback");
  CHECK(json::get_string(jwt_claims(t.id_token), "nonce", "") == param("nonce"));
  // The listener is gone with the login.
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(1, 0);
  CHECK(!c.Get("/callback"));
}

TEST_CASE("browser flow: the provider's error ends the login with its words, sanitized; a timeout is clear") {
  TempDir dir;
  OidcTestProvider p(dir);
  auto o = options_for(p, dir);
  o.flow = "browser";  // whether or not this machine has a display
  o.skip_browser = true;
  SharedText buf;
  std::ostream err(&buf);
  SECTION("access_denied from the provider's consent page") {
    std::string deny = dir.write("deny.mjs", R"JS(
const [stack, url] = process.argv.slice(2);
const { chromium } = await import(`${stack}/node_modules/playwright-core/index.mjs`);
const fs = await import('node:fs'), crypto = await import('node:crypto'), os = await import('node:os');
const pem = fs.readFileSync(process.env.PINNIPED_TEST_OIDC_CA, 'utf8');
const pin = crypto.createHash('sha256').update(new crypto.X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
const profile = fs.mkdtempSync(`${os.tmpdir()}/pinniped-deny-`);
const ctx = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', `--ignore-certificate-errors-spki-list=${pin}`] });
const page = ctx.pages()[0] || await ctx.newPage();
page.setDefaultTimeout(30000);
await page.goto(url);
await page.fill('form#login input[name=username]', 'alice');
await page.fill('form#login input[name=password]', 'alice-password');
await Promise.all([page.waitForSelector('#consent-deny'), page.click('#login-submit')]);
await Promise.all([page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback/), page.click('#consent-deny')]);
console.log(page.url().split('?')[0], await page.locator('body').innerText());
await ctx.close();
fs.rmSync(profile, { recursive: true, force: true });
)JS");
    auto login = std::async(std::launch::async, [&] { return oidc_login(o, err); });
    std::string url = wait_for_line(buf, "Log in by visiting this link:\n\n    ");
    int rc = 0;
    std::string out = run("PINNIPED_TEST_OIDC_CA=" + shell_quote(p.ca_file) + " " + shell_quote(node_bin()) + " " +
                              shell_quote(deny) + " " + shell_quote(oidc_stack()) + " " + shell_quote(url) + " 2>&1",
                          &rc);
    INFO(out);
    CHECK(rc == 0);
    CHECK_THAT(out, Catch::Contains("The identity provider refused the login"));
    REQUIRE(login.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
    try {
      login.get();
      FAIL("a refused login returned tokens");
    } catch (const Error &e) {
      CHECK(e.code == 401);
      CHECK(std::string(e.what()) ==
            "the identity provider refused the login: access_denied \"End-User aborted interaction\"");
    }
  }
  SECTION("an error with a hostile description, and a timeout that closes the listener") {
    o.timeout = std::chrono::seconds(20);
    auto login = std::async(std::launch::async, [&] { return oidc_login(o, err); });
    std::string url = wait_for_line(buf, "Log in by visiting this link:\n\n    ");
    httplib::Params q;
    q = form_decode(url.substr(url.find('?') + 1));
    auto params = [&](const std::string &name) { return q.count(name) ? q.find(name)->second : ""; };
    std::string redirect = params("redirect_uri");
    INFO(url);
    Url cb = Url::parse(redirect);
    httplib::Client c("127.0.0.1", cb.port);
    auto r = c.Get("/callback?state=" + params("state") + "&error=temporarily%0Aunavailable&error_description=" +
                   detail::percent_encode("\x1b[2J\r\n" + std::string(400, 'z')));
    REQUIRE(r);
    CHECK(r->status == 403);
    REQUIRE(login.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    try {
      login.get();
      FAIL("accepted");
    } catch (const Error &e) {
      std::string m = e.what();
      CHECK(m ==
            "the identity provider refused the login: temporarilyunavailable \"[2J" + std::string(197, 'z') + "\"...");
      CHECK(m.size() < 300);
    }
    c.set_connection_timeout(1, 0);
    CHECK(!c.Get("/callback"));
  }
  SECTION("timeout") {
    o.timeout = std::chrono::seconds(2);
    auto t0 = Steady::now();
    CHECK_THROWS_WITH(
        oidc_login(o, err),
        Catch::StartsWith("the login did not complete within 2s (nothing came back to http://127.0.0.1:"));
    CHECK(Steady::now() - t0 < std::chrono::seconds(4));
  }
}

TEST_CASE("refresh: an expired ID token is refreshed without a browser; a refused refresh logs in again") {
  TempDir dir;
  OidcTestProvider p(dir, {"--id-token-ttl", "5"});
  SecretWatch w;
  auto o = options_for(p, dir);
  o.reuse_margin = Millis(0);
  SharedText buf;
  std::ostream err(&buf);
  OidcTokens first;
  {
    BrowserEnv b(dir, p);
    first = login_or_fail(o, err, dir, p);
  }
  w.add(first);
  REQUIRE(browser_exit(dir) == 0);
  CHECK(first.id_expiry <= Clock::now() + std::chrono::seconds(6));

  ScopedEnv nb("BROWSER", no_browser_script(dir).c_str());
  // Still valid: the cached one.
  CHECK(oidc_login(o, err).id_token == first.id_token);
  // Expired: refreshed.
  std::this_thread::sleep_until(first.id_expiry + std::chrono::seconds(1));
  auto t0 = Steady::now();
  auto second = oidc_login(o, err);
  w.add(second);
  WARN("refresh took " << std::chrono::duration_cast<Millis>(Steady::now() - t0).count() << " ms");
  CHECK(second.id_token != first.id_token);
  CHECK(second.id_expiry > Clock::now());
  CHECK(second.refresh_token != first.refresh_token);  // the provider rotates them
  CHECK(json::get_string(jwt_claims(second.id_token), "sub", "") ==
        json::get_string(jwt_claims(first.id_token), "sub", ""));
  CHECK(::access(dir.file("browser-was-run").c_str(), F_OK) != 0);
  auto stored = SessionCache(o.session_cache).load();
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].tokens.refresh_token == second.refresh_token);
  CHECK(stored[0].tokens.id_token == second.id_token);

  // A refused refresh (the rotated-away token) drops the session; the new login
  // here fails (no browser, short limit), and nothing stale stays behind.
  {
    SessionCache(o.session_cache).put(SessionCacheKey::of(o), first, Clock::now());
    auto quick = o;
    quick.skip_browser = true;
    quick.timeout = std::chrono::seconds(3);
    CHECK_THROWS_WITH(oidc_login(quick, err), Catch::Contains("did not complete within 3s"));
    CHECK(SessionCache(o.session_cache).load().empty());
    CHECK_THAT(buf.text(), Catch::Contains("Refreshing the session failed (invalid_grant"));
  }
  // And with a browser, the refused refresh becomes a new login.
  {
    SessionCache(o.session_cache).put(SessionCacheKey::of(o), first, Clock::now());
    BrowserEnv b(dir, p, "browser2");
    auto third = login_or_fail(o, err, dir, p, "browser2");
    w.add(third);
    CHECK(browser_exit(dir, "browser2") == 0);
    CHECK(third.id_token != first.id_token);
    CHECK(third.refresh_token != first.refresh_token);
    auto now_stored = SessionCache(o.session_cache).load();
    REQUIRE(now_stored.size() == 1);
    CHECK(now_stored[0].tokens.refresh_token == third.refresh_token);
  }
  w.messages.push_back(buf.text());
  w.messages.push_back(p.log());
  w.check();
}

TEST_CASE("device flow against the real provider, chosen by itself without a display; a corrupt cache is replaced") {
  TempDir dir;
  OidcTestProvider p(dir);
  SecretWatch w;
  auto o = options_for(p, dir);
  detail::make_dirs(dir.file("cfg/pinniped"), 0700);
  dir.write("cfg/pinniped/sessions.yaml", "\x01{{{ corrupt: [");
  SharedText buf;
  std::ostream err(&buf);
  ScopedEnv a("DISPLAY", nullptr), b("WAYLAND_DISPLAY", nullptr), c("BROWSER", nullptr);
  auto t0 = Steady::now();
  auto login = std::async(std::launch::async, [&] { return oidc_login(o, err); });
  std::string line = wait_for_line(buf, "To log in, visit ");
  auto sep = line.find(" and enter the code: ");
  REQUIRE(sep != std::string::npos);
  std::string uri = line.substr(0, sep), code = line.substr(sep + std::strlen(" and enter the code: "));
  CHECK(uri == p.issuer + "/device");
  std::string complete = wait_for_line(buf, "(or open ");
  CHECK_THAT(complete, Catch::StartsWith(uri + "?user_code="));
  // The user types the code at verification_uri.
  auto [rc, out] = drive_browser(p, "device", uri, code);
  INFO(out);
  CHECK(rc == 0);
  REQUIRE(login.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  auto t = login.get();
  w.add(t);
  WARN("device login took " << std::chrono::duration_cast<Millis>(Steady::now() - t0).count() << " ms");
  CHECK(json::get_string(jwt_claims(t.id_token), "username", "") == "alice");
  CHECK(!t.refresh_token.empty());
  // The corrupt file was replaced by a valid one holding this session.
  CHECK(file_mode(o.session_cache) == 0600);
  auto stored = SessionCache(o.session_cache).load();
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].tokens.id_token == t.id_token);
  w.messages.push_back(buf.text());
  w.messages.push_back(p.log());
  w.check();
}

TEST_CASE("pinniped login oidc against a concierge with a JWTAuthenticator in its file: a certificate for the user") {
  TempDir dir;
  OidcTestProvider p(dir);
  auto signer = openssl_signer(dir, "signer", "ec", "/CN=k3s-client-ca");
  std::string ca_data = detail::base64_encode(p.ca_pem);
  dir.write("auth.yaml",
            "apiVersion: authentication.concierge.pinniped.dev/v1alpha1\nkind: JWTAuthenticator\n"
            "metadata:\n  name: my-oidc\nspec:\n  issuer: " +
                p.issuer + "\n  audience: pinniped-cli\n  tls:\n    certificateAuthorityData: " + ca_data +
                "\n---\napiVersion: authentication.concierge.pinniped.dev/v1alpha1\n"
                "kind: JWTAuthenticator\nmetadata:\n  name: wants-other\nspec:\n  issuer: " +
                p.issuer + "\n  audience: another-client\n  tls:\n    certificateAuthorityData: " + ca_data + "\n");
  ConciergeProcess c(dir, {"--signer-cert", signer.cert_file, "--signer-key", signer.key_file, "--authenticators",
                           dir.file("auth.yaml")});
  CHECK(c.log().find("\"jwtAuthenticators\":2") != std::string::npos);
  BrowserEnv b(dir, p);
  auto login = [&](const std::string &name, int *rc) {
    return run("XDG_CONFIG_HOME=" + shell_quote(dir.file("xdg-" + name)) + " " + shell_quote(pinniped_bin()) +
                   " login oidc --issuer " + shell_quote(p.issuer) + " --ca-bundle " + shell_quote(p.ca_file) +
                   " --concierge-authenticator-name " + name + " --concierge-endpoint " + c.base() +
                   " --concierge-ca-bundle-data " + detail::base64_encode(c.ca_pem()) + " 2>" +
                   shell_quote(dir.file(name + ".err")),
               rc);
  };
  int rc = 0;
  std::string out = login("my-oidc", &rc);
  INFO(out << dir.read("my-oidc.err") << c.log().substr(0, 3000));
  REQUIRE(rc == 0);
  CHECK(browser_exit(dir) == 0);
  auto cred = json::parse(out);
  std::string cert = json::get_string(*json::field(cred, "status"), "clientCertificateData", "");
  REQUIRE(!cert.empty());
  auto chain = CertificateChain::parse(cert);
  CHECK(detail::common_name(&chain->get()->subject) == "alice");
  CHECK(detail::organizations(&chain->get()->subject) == std::vector<std::string>{"devs", "ops"});
  CHECK(c.log().find("\"authenticator\":\"JWTAuthenticator/my-oidc\"") != std::string::npos);
  // The metrics count the kind.
  auto m = c.request("GET", "/metrics", "", {});
  CHECK(m.body.find("pinniped_authentications_total{kind=\"JWTAuthenticator\",outcome=\"success\"} 1") !=
        std::string::npos);
  // An authenticator that wants another audience refuses alice's ID token
  // (the session cache holds it: no second browser login), and says why in
  // its log only.
  ::setenv("PINNIPED_TEST_BROWSER_LOG", dir.file("browser-2.log").c_str(), 1);
  run("cp -r " + shell_quote(dir.file("xdg-my-oidc")) + " " + shell_quote(dir.file("xdg-wants-other")));
  std::remove(dir.file("xdg-wants-other/pinniped/credentials.yaml").c_str());
  out = login("wants-other", &rc);
  CHECK(rc == 1);
  CHECK(dir.read("wants-other.err").find("pinniped: login failed: authentication failed") != std::string::npos);
  CHECK(::access(dir.file("browser-2.log").c_str(), F_OK) != 0);  // no browser this time
  CHECK(c.log().find("aud claim does not name the audience \\\"another-client\\\"") != std::string::npos);
  CHECK(m.body.find("eyJ") == std::string::npos);  // no token in the metrics
}

TEST_CASE("a key rotated at the real provider: a new token passes after the refetch, an old one then fails") {
  TempDir dir;
  auto contains = [](const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; };
  // Private JWKs with kids of our own, made by Node's crypto.
  auto jwks_file = [&](const std::string &name, const std::string &kid, const std::string &gen) {
    int rc = 0;
    std::string out = run(shell_quote(node_bin()) + " -e " +
                              shell_quote("const c=require('crypto');const {privateKey}=c.generateKeyPairSync(" + gen +
                                          ");console.log(JSON.stringify({keys:[{...privateKey.export({format:'jwk'})"
                                          ",kid:'" +
                                          kid + "'}]}))"),
                          &rc);
    REQUIRE(rc == 0);
    return dir.write(name, out);
  };
  std::string first = jwks_file("jwks-1.json", "rotate-1", "'rsa',{modulusLength:2048}");
  std::string second = jwks_file("jwks-2.json", "rotate-2", "'ec',{namedCurve:'P-256'}");
  auto p = std::make_unique<OidcTestProvider>(dir, std::vector<std::string>{"--jwks", first});
  std::string issuer = p->issuer;
  std::string port = issuer.substr(issuer.rfind(':') + 1);
  port = port.substr(0, port.find('/'));
  auto signer = openssl_signer(dir, "signer", "ec", "/CN=k3s-client-ca");
  dir.write("auth.yaml",
            "apiVersion: authentication.concierge.pinniped.dev/v1alpha1\nkind: JWTAuthenticator\n"
            "metadata:\n  name: my-oidc\nspec:\n  issuer: " +
                issuer + "\n  audience: pinniped-cli\n  tls:\n    certificateAuthorityData: " +
                detail::base64_encode(p->ca_pem) + "\n");
  ConciergeProcess c(dir, {"--signer-cert", signer.cert_file, "--signer-key", signer.key_file, "--authenticators",
                           dir.file("auth.yaml")});
  auto fetched_at = Steady::now();  // the concierge fetched the keys as it started
  ExchangeOptions x;
  x.endpoint = c.base();
  x.tls.ca_pem = c.ca_pem();
  x.authenticator_kind = "JWTAuthenticator";
  x.authenticator_name = "my-oidc";
  auto login = [&](const std::string &cache) {
    BrowserEnv b(dir, *p, cache);
    auto o = options_for(*p, dir);
    o.session_cache = dir.file(cache + "/sessions.yaml");
    std::ostringstream err;
    return oidc_login(o, err).id_token;
  };
  std::string old_token = login("one");
  CHECK(jwt_claims(old_token).is<picojson::object>());
  CHECK_FALSE(exchange_token(x, old_token).client_certificate_data.empty());

  // The provider starts again on the same address with only the new key.
  p.reset();
  p = std::make_unique<OidcTestProvider>(dir, std::vector<std::string>{"--jwks", second, "--port", port});
  REQUIRE(p->issuer == issuer);
  std::string new_token = login("two");
  CHECK(new_token != old_token);
  // A refetch comes at most once every PINNIPED_JWT_REFETCH_SECONDS.
  std::this_thread::sleep_until(fetched_at + std::chrono::seconds(PINNIPED_JWT_REFETCH_SECONDS + 1));
  CHECK_FALSE(exchange_token(x, new_token).client_certificate_data.empty());  // kid rotate-2: fetched again
  CHECK(contains(c.log(), "JWKS refetched for an unknown key"));
  // The old token's key is gone from the set the refetch brought.
  try {
    exchange_token(x, old_token);
    FAIL("a token signed with the rotated-away key was accepted");
  } catch (const Error &e) {
    CHECK(contains(e.what(), "authentication failed"));
  }
  CHECK(contains(c.log(), "no key with kid \\\"rotate-1\\\""));
  CHECK_FALSE(contains(c.log(), old_token));
  CHECK_FALSE(contains(c.log(), new_token));
}

TEST_CASE(
    "bad tokens over the wire, signed with the real provider's own key: each refused with its reason in the log") {
  using namespace testing::jwt_keys;
  TempDir dir;
  auto contains = [](const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; };
  // The provider signs with a key made here (Node turns its PEM into a
  // private JWK), so this test can mint tokens the provider's JWKS vouches
  // for, with claims no provider would write.
  TestKey k = make_ec("wire-ec", MBEDTLS_ECP_DP_SECP256R1);
  dir.write("wire-ec.pem", k.key->to_pem());
  int rc = 0;
  std::string private_jwks =
      run(shell_quote(node_bin()) + " -e " +
              shell_quote("const c=require('crypto'),fs=require('fs');"
                          "const j=c.createPrivateKey(fs.readFileSync(process.argv[1])).export({format:'jwk'});"
                          "console.log(JSON.stringify({keys:[{...j,kid:'wire-ec'}]}))") +
              " " + shell_quote(dir.file("wire-ec.pem")),
          &rc);
  REQUIRE(rc == 0);
  OidcTestProvider p(dir, {"--jwks", dir.write("jwks.json", private_jwks)});
  auto signer = openssl_signer(dir, "signer", "ec", "/CN=k3s-client-ca");
  std::string ca_data = detail::base64_encode(p.ca_pem);
  auto authenticator = [&](const std::string &name, const std::string &claims) {
    return "apiVersion: authentication.concierge.pinniped.dev/v1alpha1\nkind: JWTAuthenticator\nmetadata:\n  name: " +
           name + "\nspec:\n  issuer: " + p.issuer + "\n  audience: pinniped-cli\n" + claims +
           "  tls:\n    certificateAuthorityData: " + ca_data + "\n";
  };
  dir.write("auth.yaml",
            authenticator("by-username", "") + "---\n" + authenticator("by-email", "  claims:\n    username: email\n"));
  ConciergeProcess c(dir, {"--signer-cert", signer.cert_file, "--signer-key", signer.key_file, "--authenticators",
                           dir.file("auth.yaml")});
  auto now = secs(Clock::now());
  auto claims = [&] {
    picojson::object o;
    o["iss"] = jv(p.issuer);
    o["aud"] = jv("pinniped-cli");
    o["sub"] = jv("wire-sub");
    o["iat"] = jv(now);
    o["exp"] = jv(now + 600);
    o["username"] = jv("wire-user");
    o["email"] = jv("wire@example.com");
    o["groups"] = picojson::value(picojson::array{jv("wire-devs")});
    return o;
  };
  auto es256 = [&](const picojson::object &o, const std::string &header = "") {
    return token_from(k, "ES256", header.empty() ? header_for_kid("ES256", "wire-ec") : header,
                      picojson::value(o).serialize());
  };
  auto with = [&](const std::string &name, picojson::value v) {
    auto o = claims();
    v.is<picojson::null>() ? (void)o.erase(name) : (void)(o[name] = std::move(v));
    return o;
  };
  std::string good = es256(claims());
  auto exchange = [&](const std::string &name, const std::string &token) {
    ExchangeOptions x;
    x.endpoint = c.base();
    x.tls.ca_pem = c.ca_pem();
    x.authenticator_kind = "JWTAuthenticator";
    x.authenticator_name = name;
    return exchange_token(x, token);
  };
  // The control rows: the key really is the provider's, and both
  // authenticators take a token within the rules.
  auto cert = exchange("by-username", good).client_certificate_data;
  REQUIRE(!cert.empty());
  CHECK(detail::common_name(&CertificateChain::parse(cert)->get()->subject) == "wire-user");
  auto verified = with("email_verified", jv(true));
  cert = exchange("by-email", es256(verified)).client_certificate_data;
  REQUIRE(!cert.empty());
  CHECK(detail::common_name(&CertificateChain::parse(cert)->get()->subject) == "wire@example.com");

  std::string input = b64url(header_for_kid("ES256", "wire-ec")) + "." + b64url(picojson::value(claims()).serialize());
  std::string tampered = good.substr(0, good.find('.') + 1) +
                         b64url(picojson::value(with("username", jv("admin"))).serialize()) +
                         good.substr(good.rfind('.'));
  std::string hs_input = b64url("{\"alg\":\"HS256\",\"kid\":\"wire-ec\",\"typ\":\"JWT\"}") + "." +
                         b64url(picojson::value(claims()).serialize());
  struct Row {
    std::string what, authenticator, token, reason, outcome;
  };
  std::vector<Row> rows = {
      {"expired", "by-username", es256(with("exp", jv(now - 3600))), "token expired at", "rejected"},
      {"not yet valid", "by-username", es256(with("nbf", jv(now + 3600))), "token is not valid before", "rejected"},
      {"issued in the future", "by-username", es256(with("iat", jv(now + 3600))), "token was issued in the future",
       "rejected"},
      {"wrong iss", "by-username", es256(with("iss", jv(p.issuer + "/other"))), "is not the issuer", "rejected"},
      {"wrong aud", "by-username", es256(with("aud", jv("another-client"))), "aud claim does not name the audience",
       "rejected"},
      {"aud list without ours", "by-username", es256(with("aud", picojson::value(picojson::array{jv("a"), jv("b")}))),
       "aud claim does not name the audience", "rejected"},
      {"alg none", "by-username",
       b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}") + "." + b64url(picojson::value(claims()).serialize()) + ".",
       "alg none (an unsigned token) is refused", "rejected"},
      {"HS256 with the public key as the secret", "by-username",
       hs_input + "." + b64url(hmac_sha256(k.jwk(), hs_input)), "(a shared secret) is refused", "rejected"},
      {"unknown kid", "by-username", es256(claims(), header_for_kid("ES256", "not-the-providers")),
       "no key with kid \\\"not-the-providers\\\" in the JWKS", "rejected"},
      {"alg for another key type", "by-username", es256(claims(), header_for_kid("RS256", "wire-ec")),
       "which cannot verify RS256", "rejected"},
      {"payload changed after signing", "by-username", tampered, "(kid \\\"wire-ec\\\")", "rejected"},
      {"signature of another input", "by-username", input + "." + b64url(sign(k, "ES256", input + "x")),
       "(kid \\\"wire-ec\\\")", "rejected"},
      {"email without email_verified", "by-email", es256(claims()), "token has no email_verified claim",
       "invalid_user"},
      {"email_verified false", "by-email", es256(with("email_verified", jv(false))),
       "email_verified claim is false, not true", "invalid_user"},
      {"no username claim", "by-username", es256(with("username", picojson::value())),
       "token has no \\\"username\\\" claim (the username)", "invalid_user"},
      {"huge", "by-username", es256(with("pad", jv(std::string(PINNIPED_JWT_MAX_TOKEN_BYTES, 'x')))),
       "more than the " + std::to_string(PINNIPED_JWT_MAX_TOKEN_BYTES) + " accepted", "rejected"},
      {"not a JWT", "by-username", "opaque-token-value", "token is not a JWT", "rejected"},
      {"two parts", "by-username", input, "token has 2 parts", "rejected"},
      {"five parts (JWE)", "by-username", "a.b.c.d.e", "an encrypted token (JWE) is not accepted", "rejected"},
      {"header not base64url", "by-username", "e30*." + input.substr(input.find('.') + 1) + ".c2ln",
       "token header is not base64url", "rejected"},
  };
  std::map<std::string, int> outcomes;
  for (const auto &row : rows) {
    INFO(row.what);
    try {
      exchange(row.authenticator, row.token);
      FAIL("accepted");
    } catch (const Error &e) {
      CHECK(std::string(e.what()).find("authentication failed") != std::string::npos);
      CHECK_FALSE(contains(e.what(), row.token.substr(0, 40)));
    }
    outcomes[row.outcome]++;
    // The exchange's one log line, found by the token's ID (a SHA-256
    // prefix), says why.
    std::string id = detail::hex(detail::sha256(row.token)).substr(0, 12);
    std::string line;
    std::istringstream lines(c.log());
    for (std::string l; std::getline(lines, l);)
      if (contains(l, "\"tokenID\":\"" + id + "\"")) line = l;
    INFO(line);
    CHECK(contains(line, "\"outcome\":\"failed\""));
    CHECK(contains(line, "\"reasonClass\":\"" + row.outcome + "\""));
    CHECK(contains(line, row.reason));
  }
  // Nothing of any token in the log; the metrics count every outcome.
  std::string log = c.log();
  for (const auto &row : rows)
    for (const auto &part : detail::split(row.token, '.'))
      if (part.size() >= 16) CHECK_FALSE(contains(log, part));
  auto m = c.request("GET", "/metrics", "", {});
  CHECK(contains(m.body, "pinniped_authentications_total{kind=\"JWTAuthenticator\",outcome=\"success\"} 2"));
  for (const auto &o : outcomes)
    CHECK(contains(m.body, "pinniped_authentications_total{kind=\"JWTAuthenticator\",outcome=\"" + o.first + "\"} " +
                               std::to_string(o.second)));

  // A flood of random kids, once a refetch is allowed again: one more GET of
  // the provider's JWKS at most, every token refused, the good one still good.
  auto jwks_gets = [&] {
    std::istringstream lines(p.log());
    int n = 0;
    for (std::string l; std::getline(lines, l);) n += contains(l, "jwks requested");
    return n;
  };
  int before = jwks_gets();
  CHECK(before >= 2);  // by each authenticator as it started
  std::this_thread::sleep_for(std::chrono::seconds(PINNIPED_JWT_REFETCH_SECONDS + 1));
  std::atomic<int> refused{0};
  std::vector<std::thread> flood;
  for (int t = 0; t < 4; t++)
    flood.emplace_back([&, t] {
      for (int i = 0; i < 25; i++) {
        try {
          exchange("by-username", es256(claims(), header_for_kid("ES256", "flood-" + std::to_string(t * 100 + i))));
        } catch (const Error &e) {
          refused += contains(e.what(), "authentication failed");
        }
      }
    });
  for (auto &th : flood) th.join();
  CHECK(refused == 100);
  INFO(p.log());
  CHECK(jwks_gets() - before <= 1);
  CHECK_FALSE(exchange("by-username", good).client_certificate_data.empty());
}
