// pinniped.hpp: a small, dependency-light Pinniped Concierge for edge Kubernetes.
//
// One header, read top to bottom in the order a request travels:
//   0. tunables, includes, the error type, logging, string and file helpers
//   1. wire types (TokenCredentialRequest, TokenReview, Status, ...) + JSON
//   2. crypto helpers and the certificate authority (cluster signer)
//   3. TLS transport on mbedTLS (server for cpp-httplib, HTTPS client)
//  3b. Kubernetes client (kubeconfig, REST, watches, informers)
//  3c. serving certificates kept in a Secret (ServingCertController)
//  3d. what both servers are made of: options, watched files, a generated
//      certificate, the HTTPS service (listener, TLS material, Status
//      answers, health, drain) and the bundle of background loops
//   4. authenticators (TokenReview webhooks, the registry, config files)
//  4b. OIDC ID tokens (JWS verification, JWK sets, discovery, JWTAuthenticator)
//   5. the concierge (the exchange, its HTTP surface, discovery, controllers)
//   6. the client side (exchange a token for a credential; the kubectl exec
//      plugin, its credential cache, the OIDC login and its session cache,
//      kubeconfig generation, whoami)
//   7. local-user-authenticator (a bcrypt TokenReview IDP)
// A section may call the sections above it, never below. Machinery lives in
// `pinniped::detail`; everything else is the public API.
//
// Threads. A concierge runs: main (start(), then run(): the aggregated
// HttpsService's accept loop); the direct frontend's HttpsService accept loop
// on a thread of its own (with --direct-listen); per TlsServer a pool of
// --threads workers (handshakes, requests, handlers: an exchange calls the
// IDP and the CSR API on its worker) and one thread that watches idle
// kept-alive connections; the reload thread (PeriodicTask: files, the CSR
// sweep, the anonymous probe, the CredentialIssuer); one watch thread per
// Informer (serving Secret, WebhookAuthenticators, JWTAuthenticators,
// front-proxy ConfigMap, direct Service, CSRs), whose handlers run on it; the
// JWTAuthenticators' sync worker (discovery and JWKS fetches, one object at a
// time: the watch only marks objects); the LeaderElector; the key pool's
// refill thread; main.cpp's signal waiter (shutdown(): the drain's delay
// sleeps there). The local-user-authenticator has the same kinds: accept
// loop, workers, reload thread, informers.
// Locks. Each mutex guards its own object's members only, and almost all
// are leaves. Nested, outer first: TlsServer's parking lock, then its
// pool's queue; Concierge::apply_mu_ then tls_mu_ (apply_tls), and
// direct_apply_mu_ then tls_mu_ or direct_mu_ (never both: each is taken
// and dropped in turn); Logger's lock is innermost and takes no other.
// JwtAuthenticator::mu_ is a leaf: a JWKS refetch for an unknown key id
// runs on the request's worker without it, one at a time per authenticator,
// bounded by PINNIPED_JWT_REFETCH_TIMEOUT_SECONDS; the others fail at once.
// Rule: no lock is held across network I/O (Kubernetes calls, the IDP, a
// TLS handshake), a blocking wait other than a condition variable, or a
// callback; state is copied under the lock, the work done without it, and
// the result published under it again. An object whose destructor does
// I/O (a client closing its kept-alive TLS connections) is released after
// the lock. ServingCertController::sync runs one pass at a time without
// making callers wait: a caller that finds a pass running asks for another.
//
// Build: needs cpp-httplib 0.11.4 (header-only, without OpenSSL), picojson,
// libyaml, libcrypt and mbedTLS 2.28
// (-lmbedtls -lmbedx509 -lmbedcrypto -lyaml -lcrypt).
#pragma once

// ---------------------------------------------------------------------------
// 0. Tunables
// ---------------------------------------------------------------------------
#ifndef PINNIPED_VERSION
#define PINNIPED_VERSION "0.1.0"
#endif
#ifndef PINNIPED_DEFAULT_API_GROUP_SUFFIX
#define PINNIPED_DEFAULT_API_GROUP_SUFFIX "pinniped.dev"
#endif
#ifndef PINNIPED_LOCAL_USER_DEFAULT_COST
#define PINNIPED_LOCAL_USER_DEFAULT_COST 10  // bcrypt cost of add-user, as `htpasswd -nbBC 10`
#endif
#ifndef PINNIPED_MAX_WEBHOOK_RESPONSE_BYTES
#define PINNIPED_MAX_WEBHOOK_RESPONSE_BYTES (1024 * 1024)
#endif
// A file that others rewrite is used only once it has not changed for this
// long (see read_whole_file).
#ifndef PINNIPED_FILE_SETTLE_MS
#define PINNIPED_FILE_SETTLE_MS 300
#endif
// Leader election among replicas (a Lease; the values client-go's
// controllers use by default).
#ifndef PINNIPED_LEASE_DURATION_SECONDS
#define PINNIPED_LEASE_DURATION_SECONDS 15
#endif
#ifndef PINNIPED_LEASE_RENEW_DEADLINE_SECONDS
#define PINNIPED_LEASE_RENEW_DEADLINE_SECONDS 10
#endif
#ifndef PINNIPED_LEASE_RETRY_PERIOD_SECONDS
#define PINNIPED_LEASE_RETRY_PERIOD_SECONDS 2
#endif
// How long an exchange over --max-exchanges waits for a slot before 429.
#ifndef PINNIPED_EXCHANGE_SLOT_WAIT_MS
#define PINNIPED_EXCHANGE_SLOT_WAIT_MS 200
#endif
// How far back a client certificate's notBefore goes (clock skew between
// the concierge and kube-apiserver), as upstream and kube-controller-manager
// backdate; also the tolerance when checking a certificate the CSR API issued.
#ifndef PINNIPED_BACKDATE_SECONDS
#define PINNIPED_BACKDATE_SECONDS 300
#endif
// The CSR strategy: how long an exchange waits for the cluster to sign its
// CertificateSigningRequest, and the age after which any replica deletes a
// CSR of ours that its maker left behind (it died mid-exchange).
#ifndef PINNIPED_CSR_WAIT_SECONDS
#define PINNIPED_CSR_WAIT_SECONDS 10
#endif
#ifndef PINNIPED_CSR_LEFTOVER_SECONDS
#define PINNIPED_CSR_LEFTOVER_SECONDS 120
#endif
// The direct frontend (TokenCredentialRequest served to clients that reach
// the concierge without kube-apiserver in front): the port the manifests use,
// how often kube-apiserver is asked whether it lets anonymous exchanges
// through once that is known, and how many client addresses the per-address
// failure limit remembers (least recently seen forgotten first).
#ifndef PINNIPED_DIRECT_PORT
#define PINNIPED_DIRECT_PORT 10444
#endif
#ifndef PINNIPED_ANONYMOUS_PROBE_SECONDS
#define PINNIPED_ANONYMOUS_PROBE_SECONDS 60
#endif
#ifndef PINNIPED_FAILURE_LIMIT_ADDRESSES
#define PINNIPED_FAILURE_LIMIT_ADDRESSES 4096
#endif

// Periodic passes that catch what a missed watch event leaves behind: the
// serving-certificate Secret, the CredentialIssuer (rewritten this often
// even when nothing changed), and the sweep of CSRs left behind.
#ifndef PINNIPED_SERVING_RESYNC_SECONDS
#define PINNIPED_SERVING_RESYNC_SECONDS 30
#endif
#ifndef PINNIPED_ISSUER_RESYNC_SECONDS
#define PINNIPED_ISSUER_RESYNC_SECONDS 60
#endif
#ifndef PINNIPED_CSR_SWEEP_SECONDS
#define PINNIPED_CSR_SWEEP_SECONDS 60
#endif
// A watch that fails is retried after 500 ms, doubling up to this.
#ifndef PINNIPED_WATCH_BACKOFF_MAX_MS
#define PINNIPED_WATCH_BACKOFF_MAX_MS 30000
#endif
// Kubernetes API calls' default time limit, and how long start-up waits
// for an informer's first list before it goes on without it.
#ifndef PINNIPED_KUBE_TIMEOUT_SECONDS
#define PINNIPED_KUBE_TIMEOUT_SECONDS 30
#endif
#ifndef PINNIPED_START_SYNC_WAIT_SECONDS
#define PINNIPED_START_SYNC_WAIT_SECONDS 5
#endif
// Probes that only ask whether something answers (a webhook's TLS, whether
// kube-apiserver lets anonymous exchanges through).
#ifndef PINNIPED_PROBE_TIMEOUT_SECONDS
#define PINNIPED_PROBE_TIMEOUT_SECONDS 5
#endif
// JWTAuthenticators: one not ready is tried again this often; a ready one is
// checked again (its CA from a Secret or ConfigMap read anew) this often.
// The controller's worker looks for work at least every TICK.
#ifndef PINNIPED_JWT_RETRY_SECONDS
#define PINNIPED_JWT_RETRY_SECONDS 10
#endif
#ifndef PINNIPED_JWT_RESYNC_SECONDS
#define PINNIPED_JWT_RESYNC_SECONDS 60
#endif
#ifndef PINNIPED_JWT_WORKER_TICK_MS
#define PINNIPED_JWT_WORKER_TICK_MS 1000
#endif
// Lifetime of a serving certificate made in memory (no files, no cluster).
#ifndef PINNIPED_GENERATED_CERT_DAYS
#define PINNIPED_GENERATED_CERT_DAYS 365
#endif

// OIDC ID tokens (section 4b). How far a token's exp, nbf and iat may be off
// our clock.
#ifndef PINNIPED_JWT_CLOCK_SKEW_SECONDS
#define PINNIPED_JWT_CLOCK_SKEW_SECONDS 60
#endif
// The longest token looked at; longer ones are refused before any parsing.
#ifndef PINNIPED_JWT_MAX_TOKEN_BYTES
#define PINNIPED_JWT_MAX_TOKEN_BYTES (16 * 1024)
#endif
// The largest discovery document or JWKS read from an issuer, and the most
// keys a JWKS may list.
#ifndef PINNIPED_JWT_MAX_DOCUMENT_BYTES
#define PINNIPED_JWT_MAX_DOCUMENT_BYTES (1024 * 1024)
#endif
#ifndef PINNIPED_JWT_MAX_KEYS
#define PINNIPED_JWT_MAX_KEYS 64
#endif
// A token without kid is tried against at most this many keys of its type.
#ifndef PINNIPED_JWT_KEYLESS_TRIES
#define PINNIPED_JWT_KEYLESS_TRIES 4
#endif
#ifndef PINNIPED_JWT_RSA_MIN_BITS
#define PINNIPED_JWT_RSA_MIN_BITS 2048
#endif
#ifndef PINNIPED_JWT_RSA_MAX_BITS
#define PINNIPED_JWT_RSA_MAX_BITS 8192
#endif
// Copies of each RSA key, so that threads verifying with one key do not
// queue on its mutex (see detail::Jwk).
#ifndef PINNIPED_JWT_RSA_REPLICAS
#define PINNIPED_JWT_RSA_REPLICAS 8
#endif
// A token whose kid is not in the JWKS makes the authenticator fetch the
// JWKS again, at most once per this interval, within this time limit.
#ifndef PINNIPED_JWT_REFETCH_SECONDS
#define PINNIPED_JWT_REFETCH_SECONDS 10
#endif
#ifndef PINNIPED_JWT_REFETCH_TIMEOUT_SECONDS
#define PINNIPED_JWT_REFETCH_TIMEOUT_SECONDS 5
#endif
// An ID token in the session cache is reused while it is valid for this much
// longer (upstream's 10 minutes).
#ifndef PINNIPED_OIDC_REUSE_SECONDS
#define PINNIPED_OIDC_REUSE_SECONDS 600
#endif
// Each call to the OpenID provider (discovery, keys, token endpoint), within
// what is left of the login's own time limit.
#ifndef PINNIPED_OIDC_HTTP_TIMEOUT_SECONDS
#define PINNIPED_OIDC_HTTP_TIMEOUT_SECONDS 30
#endif
// Sessions not used for this long are dropped (upstream's 90 days).
#ifndef PINNIPED_OIDC_SESSION_MAX_IDLE_DAYS
#define PINNIPED_OIDC_SESSION_MAX_IDLE_DAYS 90
#endif
// The device flow's polling interval when the provider names none (RFC 8628).
#ifndef PINNIPED_OIDC_DEVICE_INTERVAL_SECONDS
#define PINNIPED_OIDC_DEVICE_INTERVAL_SECONDS 5
#endif
// cpp-httplib's settings. With a split httplib.h (its definitions compiled
// apart, as tools/fetch-httplib.sh and the Makefile do), compile httplib.cc
// with the same two (the Makefile's HTTPLIB_DEFS).
// poll(2) instead of select(2): no FD_SETSIZE ceiling on busy servers.
#ifndef CPPHTTPLIB_USE_POLL
#define CPPHTTPLIB_USE_POLL
#endif
// A burst of clients waits in the kernel's accept queue (cpp-httplib's
// default is 5: a burst beyond it was refused).
#ifndef CPPHTTPLIB_LISTEN_BACKLOG
#define CPPHTTPLIB_LISTEN_BACKLOG 1024
#endif
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
#error "pinniped.hpp brings its own TLS (mbedTLS); build cpp-httplib without OpenSSL"
#endif
#ifndef PICOJSON_USE_INT64
#define PICOJSON_USE_INT64
#endif

#include <httplib.h>
#include <picojson.h>
// cpp-httplib parses Range headers with a recursive std::regex that a long
// header drives off a thread's stack; tools/fetch-httplib.sh's copy never
// parses them (nothing here serves ranges).
#if !defined(PINNIPED_HTTPLIB_NO_RANGES) && !defined(PINNIPED_ALLOW_HTTPLIB_RANGES)
#error "use the httplib.h of tools/fetch-httplib.sh (Range parsing off), or define PINNIPED_ALLOW_HTTPLIB_RANGES"
#endif
#include <arpa/inet.h>
#include <crypt.h>  // bcrypt (libxcrypt, -lcrypt) for the local-user-authenticator
#include <fcntl.h>
#include <ifaddrs.h>
#include <mbedtls/asn1.h>
#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <yaml.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#if MBEDTLS_VERSION_NUMBER < 0x021C0000 || MBEDTLS_VERSION_NUMBER >= 0x03000000
#error "pinniped.hpp is written for mbedTLS 2.28"
#endif

namespace pinniped {

using Clock = std::chrono::system_clock;
using Steady = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;
// How far back every certificate made here dates its notBefore (see
// PINNIPED_BACKDATE_SECONDS).
constexpr std::chrono::seconds kBackdate{PINNIPED_BACKDATE_SECONDS};

// ---------------------------------------------------------------------------
// 0. The error type and logging
// ---------------------------------------------------------------------------

// One field-level reason inside a Status (metav1.StatusCause).
struct StatusCause {
  std::string reason;  // e.g. FieldValueRequired
  std::string field;   // e.g. spec.token.value
  std::string message;
};

// The library's one error type. `code` is an HTTP status and `reason` the
// matching Kubernetes StatusReason, so the HTTP edge can turn it into a
// Status and the CLI edge into one line. Messages never carry secrets.
class Error : public std::runtime_error {
 public:
  Error(int code, std::string reason, const std::string &message, std::vector<StatusCause> causes = {})
      : std::runtime_error(message), code(code), reason(std::move(reason)), causes(std::move(causes)) {}
  int code;
  std::string reason;
  std::vector<StatusCause> causes;
};

// Kubernetes StatusReason for an HTTP code.
inline std::string reason_for_code(int code) {
  switch (code) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 406: return "NotAcceptable";
    case 409: return "Conflict";
    case 410: return "Expired";
    case 413: return "RequestEntityTooLarge";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default: return code >= 500 ? "InternalError" : "BadRequest";
  }
}

inline Error bad_request(const std::string &msg) { return Error(400, "BadRequest", msg); }
inline Error internal_error(const std::string &msg) { return Error(500, "InternalError", msg); }

// Structured logs: one JSON object per line. Callers pass fields; nothing
// here knows about tokens or keys, and callers never hand them over.
class Logger {
 public:
  enum class Level { debug = 0, info = 1, warn = 2, error = 3 };
  using Sink = std::function<void(const std::string &line)>;
  using Fields = std::vector<std::pair<std::string, picojson::value>>;

  explicit Logger(Level min = Level::info, Sink sink = nullptr) : min_(min), sink_(std::move(sink)) {}

  void set_level(Level l) { min_ = l; }
  bool enabled(Level l) const { return l >= min_; }

  void log(Level l, const std::string &msg, const Fields &fields = {}) const;
  void debug(const std::string &m, const Fields &f = {}) const { log(Level::debug, m, f); }
  void info(const std::string &m, const Fields &f = {}) const { log(Level::info, m, f); }
  void warn(const std::string &m, const Fields &f = {}) const { log(Level::warn, m, f); }
  void error(const std::string &m, const Fields &f = {}) const { log(Level::error, m, f); }

  static std::optional<Level> parse_level(const std::string &s) {
    if (s == "debug") return Level::debug;
    if (s == "info") return Level::info;
    if (s == "warn" || s == "warning") return Level::warn;
    if (s == "error") return Level::error;
    return std::nullopt;
  }

 private:
  Level min_;
  Sink sink_;
  mutable std::mutex mu_;
};

// Serialises JSON as Go does it: '/' is not escaped (picojson writes "\/").
inline std::string to_json_string(const picojson::value &v) {
  std::string in = v.serialize(), out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); i++) {
    if (in[i] == '\\' && i + 1 < in.size()) {
      if (in[i + 1] != '/') out += in[i];
      out += in[++i];
    } else {
      out += in[i];
    }
  }
  return out;
}

// Small helpers to build log fields.
inline picojson::value jv(const std::string &s) { return picojson::value(s); }
inline picojson::value jv(const char *s) { return picojson::value(std::string(s)); }
inline picojson::value jv(int64_t n) { return picojson::value(n); }
inline picojson::value jv(int n) { return picojson::value(static_cast<int64_t>(n)); }
inline picojson::value jv(size_t n) { return picojson::value(static_cast<int64_t>(n)); }
inline picojson::value jv(double d) { return picojson::value(d); }
inline picojson::value jv(bool b) { return picojson::value(b); }

// Clock::from_time_t without its overflow: system_clock counts nanoseconds
// in 64 bits (years 1678 to 2262), and RFC 5280's "no expiry" notAfter is
// 9999-12-31. Times outside that range saturate at its ends.
inline Clock::time_point clock_from_time_t(int64_t tt) {
  using std::chrono::seconds;
  const int64_t max_s = std::chrono::duration_cast<seconds>(Clock::duration::max()).count() - 1;
  const int64_t min_s = std::chrono::duration_cast<seconds>(Clock::duration::min()).count() + 1;
  int64_t v = std::min<int64_t>(std::max<int64_t>(tt, min_s), max_s);
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(seconds(v)));
}

// Seconds since 1970 of a UTC date and time of the proleptic Gregorian
// calendar, in 64 bits: timegm's time_t is 32 bits on armhf (years past
// 2038 fail there). Counts days through 400-year cycles of 146097 days.
inline int64_t utc_seconds(int64_t year, int month, int day, int hour, int minute, int second) {
  int64_t y = month <= 2 ? year - 1 : year;                  // years start in March here
  int64_t cycle = (y >= 0 ? y : y - 399) / 400;              // 400-year cycles
  int64_t year_of_cycle = y - cycle * 400;                   // 0..399
  int month_from_march = month > 2 ? month - 3 : month + 9;  // 0..11
  int64_t day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
  int64_t day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
  int64_t days = cycle * 146097 + day_of_cycle - 719468;  // 719468: 0000-03-01 to 1970-01-01
  return days * 86400 + hour * 3600 + minute * 60 + second;
}
inline int days_in_month(int64_t year, int month) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : days[month - 1];
}

// RFC 3339 UTC with second precision, as Kubernetes writes metav1.Time.
inline std::string format_rfc3339(Clock::time_point t) {
  std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Parses "2026-11-28T20:15:00Z" (and fractional seconds / numeric offsets).
inline std::optional<Clock::time_point> parse_rfc3339(const std::string &s) {
  int y, mo, d, h, mi, sec;
  char tail[40] = {0};
  if (s.size() < 20 || s.size() > 40) return std::nullopt;
  // Exactly YYYY-MM-DDTHH:MM:SS first (sscanf alone takes "+1" or "1").
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18})
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
  if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':') return std::nullopt;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*c%2d:%2d:%2d%39s", &y, &mo, &d, &h, &mi, &sec, tail) < 6)
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return std::nullopt;  // no February 31st
  int64_t tt = utc_seconds(y, mo, d, h, mi, sec);
  std::string rest = tail;
  if (!rest.empty() && rest[0] == '.') {
    size_t i = 1;
    while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i]))) i++;
    rest = rest.substr(i);
  }
  long offset = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    auto digit = [&](size_t i) { return std::isdigit(static_cast<unsigned char>(rest[i])) != 0; };
    if (!digit(1) || !digit(2) || !digit(4) || !digit(5)) return std::nullopt;
    long hours = (rest[1] - '0') * 10 + (rest[2] - '0'), minutes = (rest[4] - '0') * 10 + (rest[5] - '0');
    if (hours > 23 || minutes > 59) return std::nullopt;
    offset = (hours * 60 + minutes) * 60;
    if (rest[0] == '-') offset = -offset;
  } else {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60 || y < 0)
    return std::nullopt;
  return clock_from_time_t(tt - offset);
}

// Durations as Go's time.ParseDuration reads them, without a sign: "0", or
// numbers each with a unit ("10s", "1.5h", ".5s", "1h30m", "500ms"; units
// ns, us, µs, ms, s, m, h). Each number has a digit and at most one '.';
// anything else ("1.2.3s", ".s", "5", "1e3s") is refused. Sub-millisecond
// parts round down; more than about 31 years is refused.
inline std::optional<Millis> parse_duration(const std::string &s) {
  if (s == "0") return Millis(0);
  if (s.empty()) return std::nullopt;
  static const std::pair<const char *, uint64_t> units[] = {
      {"ns", 1},           {"us", 1000},         {"\xC2\xB5s", 1000},  // U+00B5 micro sign
      {"\xCE\xBCs", 1000},                                             // U+03BC Greek mu
      {"ms", 1000000},     {"s", 1000000000ull}, {"m", 60000000000ull}, {"h", 3600000000000ull}};
  const uint64_t limit = 1000000000000000000ull;  // ns: 1e12 ms
  uint64_t total = 0;
  size_t i = 0;
  auto digit = [&](size_t k) { return k < s.size() && std::isdigit(static_cast<unsigned char>(s[k])); };
  while (i < s.size()) {
    uint64_t whole = 0, frac = 0;
    double scale = 1;
    bool any = false;
    for (; digit(i); i++, any = true) {
      if (whole > limit / 10) return std::nullopt;
      whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
    }
    if (i < s.size() && s[i] == '.') {
      for (i++; digit(i); i++, any = true)
        if (scale < 1e18) {  // further digits are below a nanosecond
          frac = frac * 10 + static_cast<uint64_t>(s[i] - '0');
          scale *= 10;
        }
    }
    if (!any) return std::nullopt;
    size_t u = i;
    while (i < s.size() && s[i] != '.' && !digit(i)) i++;
    std::string unit = s.substr(u, i - u);
    uint64_t ns = 0;
    for (const auto &x : units)
      if (unit == x.first) ns = x.second;
    if (ns == 0 || whole > limit / ns) return std::nullopt;
    total += whole * ns + static_cast<uint64_t>(static_cast<double>(frac) * (static_cast<double>(ns) / scale));
    if (total > limit) return std::nullopt;
  }
  return Millis(static_cast<int64_t>(total / 1000000));
}

inline void Logger::log(Level l, const std::string &msg, const Fields &fields) const {
  if (!enabled(l)) return;
  static const char *names[] = {"debug", "info", "warn", "error"};
  auto now = Clock::now();
  auto ms = std::chrono::duration_cast<Millis>(now.time_since_epoch()).count() % 1000;
  std::string ts = format_rfc3339(now);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms));
  ts.insert(ts.size() - 1, frac);
  // Keys in a fixed order: ts, level, msg, then the caller's fields.
  std::string line = "{\"ts\":" + to_json_string(picojson::value(ts)) + ",\"level\":\"" + names[static_cast<int>(l)] +
                     "\",\"msg\":" + to_json_string(picojson::value(msg));
  for (const auto &f : fields) line += "," + to_json_string(picojson::value(f.first)) + ":" + to_json_string(f.second);
  line += "}\n";
  std::lock_guard<std::mutex> lk(mu_);
  if (sink_) {
    sink_(line);
  } else {
    (void)!::write(2, line.data(), line.size());
  }
}

// Runs `tick` every `interval` on a thread of its own until stop(); what a
// tick throws is logged, and the next tick comes all the same.
class PeriodicTask {
 public:
  ~PeriodicTask() { stop(); }
  void start(Millis interval, std::function<void()> tick, const Logger &log) {
    thread_ = std::thread([this, interval, tick = std::move(tick), &log] {
      std::unique_lock<std::mutex> lk(mu_);
      for (;;) {
        cv_.wait_for(lk, interval, [this] { return stop_ || woken_; });
        if (stop_) break;
        woken_ = false;
        lk.unlock();
        try {
          tick();
        } catch (const std::exception &e) {
          log.error("reload failed", {{"error", jv(e.what())}});
        }
        lk.lock();
      }
    });
  }
  // Runs the next tick now rather than after the interval.
  void wake() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      woken_ = true;
    }
    cv_.notify_all();
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, woken_ = false;
  std::thread thread_;
};

// ---------------------------------------------------------------------------
// 0. Generic helpers: strings and files
// ---------------------------------------------------------------------------

namespace detail {
inline std::string lower(std::string s) {
  for (auto &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
inline std::string trim(const std::string &s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}
inline std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

inline std::string hex(const std::string &in) {
  static const char *d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : in) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

// Percent-encoding (RFC 3986 2.1): every byte but the unreserved characters
// (letters, digits, "-._~") as %XX.
inline std::string percent_encode(const std::string &in) {
  static const char *d = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += d[c >> 4];
      out += d[c & 15];
    }
  }
  return out;
}
// %XX decoded (and "+" as a space when `plus_is_space`, as in a form); an
// escape that is not two hex digits stays as it is.
inline std::string percent_decode(const std::string &in, bool plus_is_space = false) {
  auto digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); i++) {
    int hi = in[i] == '%' && i + 2 < in.size() ? digit(in[i + 1]) : -1, lo = hi >= 0 ? digit(in[i + 2]) : -1;
    if (lo >= 0) {
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += plus_is_space && in[i] == '+' ? ' ' : in[i];
    }
  }
  return out;
}
// application/x-www-form-urlencoded, as a form body or a URL's query:
// name=value pairs joined by "&", both percent-encoded.
inline std::string form_encode(const std::multimap<std::string, std::string> &fields) {
  std::string out;
  for (const auto &f : fields)
    out += (out.empty() ? "" : "&") + percent_encode(f.first) + "=" + percent_encode(f.second);
  return out;
}
// The reason phrase of an HTTP status code (RFC 9110 section 15), or "" for
// a code without one here.
inline const char *http_reason_phrase(int code) {
  switch (code) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}
}  // namespace detail

// "a, b or c" (for messages).
inline std::string join_words(const std::vector<std::string> &v, const std::string &last = "or") {
  std::string out;
  for (size_t i = 0; i < v.size(); i++) out += (i == 0 ? "" : i + 1 == v.size() ? " " + last + " " : ", ") + v[i];
  return out;
}

// Writes `content` to `path` atomically (temp file beside it + rename) with
// `mode` (0600: the default, for anything private).
inline void write_file_atomic(const std::string &path, const std::string &content, mode_t mode = 0600) {
  // pid + counter: no other live writer uses the name; one that exists is
  // left over by a dead process that had our pid, and is replaced.
  static std::atomic<uint64_t> seq{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(seq++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0 && errno == EEXIST && ::unlink(tmp.c_str()) == 0)
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw internal_error("cannot write " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  bool ok = ::fchmod(fd, mode) == 0;
  while (ok && off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) off += static_cast<size_t>(n);
  }
  int err = errno;
  if (::close(fd) != 0) ok = false;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    ::unlink(tmp.c_str());
    throw internal_error("cannot write " + path + ": " + std::strerror(err));
  }
}

inline std::string read_file(const std::string &path, size_t max_bytes = 4 * 1024 * 1024) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(500, "InternalError", "cannot read " + path + ": " + std::strerror(errno));
  std::string out;
  char buf[8192];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    out.append(buf, static_cast<size_t>(f.gcount()));
    if (out.size() > max_bytes) throw internal_error(path + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  return out;
}

// Identity of a file's current content for change polling: follows
// symlinks, so Kubernetes' atomic "..data" swaps are seen too.
inline std::string file_version(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// Reads a file that other programs may be rewriting while we run. The bytes
// are used only when the read is whole: the file's identity (device, inode,
// size, modification time) is the same before and after the read, every
// byte was read, the path still names that file, and it was last modified
// at least `settle` ago. So a writer that truncates and rewrites in place,
// or writes in pieces, is never caught mid-way: a cut line in a users file
// would otherwise read as a shorter, valid one (groups lost or, worse, a
// group name cut into another). nullopt, with the reason in `why`, when the
// file is not (yet) usable; the caller keeps what it had and looks again.
inline std::optional<std::string> read_whole_file(const std::string &path, std::string *why,
                                                  Millis settle = Millis(PINNIPED_FILE_SETTLE_MS),
                                                  size_t max_bytes = 4 * 1024 * 1024) {
  auto say = [&](const std::string &w) {
    if (why) *why = w;
    return std::optional<std::string>();
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return say("cannot read " + path + ": " + std::strerror(errno));
  struct stat before {
  }, after{}, now_at_path{};
  std::string out;
  bool ok = ::fstat(fd, &before) == 0;
  char buf[8192];
  while (ok) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      ::close(fd);
      return say(path + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  ok = ok && ::fstat(fd, &after) == 0;
  ::close(fd);
  if (!ok) return say("cannot read " + path + ": " + std::strerror(errno));
  auto same = [](const struct stat &a, const struct stat &b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
           a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
  };
  if (!same(before, after) || out.size() != static_cast<size_t>(before.st_size) ||
      ::stat(path.c_str(), &now_at_path) != 0 || !same(before, now_at_path))
    return say(path + " changed while it was read");
  auto mtime = Clock::time_point(std::chrono::duration_cast<Clock::duration>(
      std::chrono::seconds(before.st_mtim.tv_sec) + std::chrono::nanoseconds(before.st_mtim.tv_nsec)));
  if (Clock::now() - mtime < settle) return say(path + " was modified just now (it may still be being written)");
  return out;
}

// At start, when there is nothing to keep: waits up to `limit` for a whole
// read; throws with the reason after that.
inline std::string read_whole_file_waiting(const std::string &path,
                                           Millis limit = Millis(4 * PINNIPED_FILE_SETTLE_MS + 2000)) {
  auto until = Steady::now() + limit;
  std::string why;
  for (;;) {
    if (auto c = read_whole_file(path, &why)) return *c;
    if (Steady::now() >= until || access(path.c_str(), R_OK) != 0) throw internal_error(why);
    std::this_thread::sleep_for(Millis(50));
  }
}

// A whole read for a reload: at start (`initial`) it waits; later it gives
// nullopt while the file is moving, and the caller looks again next time.
inline std::optional<std::string> read_for_reload(const std::string &path, bool initial, std::string *why) {
  if (initial) return read_whole_file_waiting(path);
  return read_whole_file(path, why);
}

// Files reread together when any of them changes (a certificate and its
// key, say). take() gives all of their texts once per version, and only
// when each is whole; a version taken is not given again, so content that
// turns out bad is reported once and retried only after the next change.
class WatchedFiles {
 public:
  explicit WatchedFiles(std::vector<std::string> paths = {}) : paths_(std::move(paths)) {}
  // Other files (a signer found elsewhere): the next take reads them.
  void watch(std::vector<std::string> paths) {
    if (paths != paths_) version_.clear();
    paths_ = std::move(paths);
  }
  const std::vector<std::string> &paths() const { return paths_; }
  // `initial`: waits for whole files and throws if one is unreadable; the
  // texts even when unchanged. Later: nullopt while unchanged or while one
  // is being written (`why` says which).
  std::optional<std::vector<std::string>> take(bool initial, std::string *why = nullptr) {
    std::string v = version();
    if (!initial && v == version_) return std::nullopt;
    std::vector<std::string> texts;
    for (const auto &p : paths_) {
      auto t = read_for_reload(p, initial, why);
      if (!t) return std::nullopt;  // not whole yet: this version is read again
      texts.push_back(std::move(*t));
    }
    version_ = v;
    return texts;
  }
  // The version take() last gave ("" before the first).
  const std::string &taken() const { return version_; }
  std::string version() const {
    std::string v;
    for (const auto &p : paths_) v += p + "|" + file_version(p) + "|";
    return v;
  }

 private:
  std::vector<std::string> paths_;
  std::string version_;
};

// ---------------------------------------------------------------------------
// 1. Wire types
// Owns the JSON shapes of the APIs we serve and call (as upstream Pinniped
// and Kubernetes write them). Calls nothing but picojson.
// ---------------------------------------------------------------------------

namespace json {
// Typed accessors that throw Error(400) with the field path on a wrong type,
// so a hostile body gets a precise BadRequest and never a crash.
inline const picojson::value *field(const picojson::value &obj, const std::string &key) {
  if (!obj.is<picojson::object>()) return nullptr;
  const auto &o = obj.get<picojson::object>();
  auto it = o.find(key);
  if (it == o.end() || it->second.is<picojson::null>()) return nullptr;
  return &it->second;
}
inline std::string get_string(const picojson::value &obj, const std::string &key, const std::string &path) {
  const auto *v = field(obj, key);
  if (!v) return "";
  if (!v->is<std::string>()) throw bad_request(path + ": expected a string");
  return v->get<std::string>();
}
inline bool get_bool(const picojson::value &obj, const std::string &key, const std::string &path) {
  const auto *v = field(obj, key);
  if (!v) return false;
  if (!v->is<bool>()) throw bad_request(path + ": expected a boolean");
  return v->get<bool>();
}
inline int64_t get_int(const picojson::value &obj, const std::string &key, const std::string &path) {
  const auto *v = field(obj, key);
  if (!v) return 0;
  if (!v->is<int64_t>()) throw bad_request(path + ": expected an integer");
  return v->get<int64_t>();
}
inline const picojson::value *get_object(const picojson::value &obj, const std::string &key, const std::string &path) {
  const auto *v = field(obj, key);
  if (!v) return nullptr;
  if (!v->is<picojson::object>()) throw bad_request(path + ": expected an object");
  return v;
}
inline std::vector<std::string> get_string_list(const picojson::value &obj, const std::string &key,
                                                const std::string &path) {
  std::vector<std::string> out;
  const auto *v = field(obj, key);
  if (!v) return out;
  if (!v->is<picojson::array>()) throw bad_request(path + ": expected a list of strings");
  for (const auto &e : v->get<picojson::array>()) {
    if (!e.is<std::string>()) throw bad_request(path + ": expected a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}
// Parses a JSON document; a parse error is a BadRequest naming the position.
inline picojson::value parse(const std::string &text) {
  picojson::value v;
  std::string err;
  // picojson recurses per nesting level; refuse absurd depth before parsing.
  int depth = 0, max_depth = 0;
  bool in_str = false, esc = false;
  for (char c : text) {
    if (in_str) {
      if (esc)
        esc = false;
      else if (c == '\\')
        esc = true;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (c == '"')
      in_str = true;
    else if (c == '{' || c == '[')
      max_depth = std::max(max_depth, ++depth);
    else if (c == '}' || c == ']')
      depth--;
  }
  if (max_depth > 64) throw bad_request("request body nests too deeply");
  std::string::const_iterator end;
  try {
    end = picojson::parse(v, text.begin(), text.end(), &err);
  } catch (const std::exception &) {
    // picojson throws std::overflow_error for a number beyond a double (1e999).
    throw bad_request("malformed JSON: a number is out of range");
  }
  if (!err.empty()) {
    // picojson quotes the text after the error ("near: ..."), which may be
    // the token: keep only "syntax error at line N".
    throw bad_request("malformed JSON: " + err.substr(0, std::min(err.find('\n'), err.find(" near:"))));
  }
  if (std::any_of(end, text.end(), [](char c) { return !std::isspace(static_cast<unsigned char>(c)); }))
    throw bad_request("malformed JSON: unexpected data after the document");
  return v;
}
}  // namespace json

namespace detail {

// Builds JSON values from libyaml events. Aliases are refused (no "billion
// laughs"), depth and size are bounded.
class YamlReader {
 public:
  explicit YamlReader(const std::string &text) : text_(text) {}

  std::vector<picojson::value> documents() {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) throw internal_error("cannot initialise the YAML parser");
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char *>(text_.data()), text_.size());
    std::vector<picojson::value> docs;
    try {
      for (;;) {
        Event ev(parser);
        if (ev.e.type == YAML_STREAM_END_EVENT) break;
        if (ev.e.type == YAML_DOCUMENT_START_EVENT) {
          Event first(parser);
          if (first.e.type == YAML_DOCUMENT_END_EVENT) continue;
          picojson::value v = node(parser, first, 0);
          Event end(parser);
          if (!v.is<picojson::null>()) docs.push_back(std::move(v));
        }
      }
    } catch (...) {
      yaml_parser_delete(&parser);
      throw;
    }
    yaml_parser_delete(&parser);
    return docs;
  }

 private:
  struct Event {
    yaml_event_t e;
    explicit Event(yaml_parser_t &p) {
      if (!yaml_parser_parse(&p, &e)) {
        std::string msg = p.problem ? p.problem : "syntax error";
        throw bad_request("YAML: " + msg + " at line " + std::to_string(p.problem_mark.line + 1) + " column " +
                          std::to_string(p.problem_mark.column + 1));
      }
    }
    ~Event() { yaml_event_delete(&e); }
  };

  picojson::value scalar(const yaml_event_t &e) {
    std::string s(reinterpret_cast<const char *>(e.data.scalar.value), e.data.scalar.length);
    if (e.data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return picojson::value(s);
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return picojson::value();
    if (s == "true" || s == "True" || s == "TRUE") return picojson::value(true);
    if (s == "false" || s == "False" || s == "FALSE") return picojson::value(false);
    char *end = nullptr;
    errno = 0;
    long long n = std::strtoll(s.c_str(), &end, 10);
    if (*end == '\0' && errno == 0 && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '+'))
      return picojson::value(static_cast<int64_t>(n));
    double d = std::strtod(s.c_str(), &end);
    // Not a number JSON can hold (inf, nan, 1e999: picojson would throw):
    // the text as written, which the field's reader then refuses by type.
    if (*end == '\0' && std::isfinite(d) &&
        (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '.'))
      return picojson::value(d);
    return picojson::value(s);
  }

  picojson::value node(yaml_parser_t &p, Event &ev, int depth) {
    if (depth > 64) throw bad_request("YAML nests too deeply");
    if (++nodes_ > 200000) throw bad_request("YAML document is too large");
    switch (ev.e.type) {
      case YAML_ALIAS_EVENT: throw bad_request("YAML aliases are not supported");
      case YAML_SCALAR_EVENT: return scalar(ev.e);
      case YAML_SEQUENCE_START_EVENT: {
        picojson::array a;
        for (;;) {
          Event child(p);
          if (child.e.type == YAML_SEQUENCE_END_EVENT) break;
          a.push_back(node(p, child, depth + 1));
        }
        return picojson::value(a);
      }
      case YAML_MAPPING_START_EVENT: {
        picojson::object o;
        for (;;) {
          Event k(p);
          if (k.e.type == YAML_MAPPING_END_EVENT) break;
          picojson::value key = node(p, k, depth + 1);
          if (!key.is<std::string>()) key = picojson::value(key.to_str());
          Event v(p);
          o[key.get<std::string>()] = node(p, v, depth + 1);
        }
        return picojson::value(o);
      }
      default: throw bad_request("YAML: unexpected event");
    }
  }
  const std::string &text_;
  size_t nodes_ = 0;
};

}  // namespace detail

// Parses YAML (1.1, as Kubernetes tools write it) or JSON into JSON values,
// one per document of the stream.
inline std::vector<picojson::value> parse_yaml_documents(const std::string &text) {
  return detail::YamlReader(text).documents();
}

// metav1.ObjectMeta, the parts this project reads or writes.
struct ObjectMeta {
  std::string name;
  std::string namespace_;
  std::string generate_name;
  std::string resource_version;
  int64_t generation = 0;

  picojson::value to_json() const {
    picojson::object o;
    if (!name.empty()) o["name"] = jv(name);
    if (!namespace_.empty()) o["namespace"] = jv(namespace_);
    if (!generate_name.empty()) o["generateName"] = jv(generate_name);
    if (!resource_version.empty()) o["resourceVersion"] = jv(resource_version);
    if (generation) o["generation"] = jv(generation);
    o["creationTimestamp"] = picojson::value();
    return picojson::value(o);
  }
  static ObjectMeta from_json(const picojson::value &v) {
    ObjectMeta m;
    m.name = json::get_string(v, "name", "metadata.name");
    m.namespace_ = json::get_string(v, "namespace", "metadata.namespace");
    m.generate_name = json::get_string(v, "generateName", "metadata.generateName");
    m.resource_version = json::get_string(v, "resourceVersion", "metadata.resourceVersion");
    if (const auto *g = json::field(v, "generation")) {
      if (!g->is<int64_t>()) throw bad_request("metadata.generation: expected an integer");
      m.generation = g->get<int64_t>();
    }
    return m;
  }
};

// corev1.TypedLocalObjectReference: which authenticator to use.
struct AuthenticatorRef {
  std::string api_group;  // authentication.concierge.<suffix>
  std::string kind;       // WebhookAuthenticator
  std::string name;

  picojson::value to_json() const {
    picojson::object o;
    o["apiGroup"] = api_group.empty() ? picojson::value() : jv(api_group);
    o["kind"] = jv(kind);
    o["name"] = jv(name);
    return picojson::value(o);
  }
  static AuthenticatorRef from_json(const picojson::value &v) {
    AuthenticatorRef r;
    r.api_group = json::get_string(v, "apiGroup", "spec.authenticator.apiGroup");
    r.kind = json::get_string(v, "kind", "spec.authenticator.kind");
    r.name = json::get_string(v, "name", "spec.authenticator.name");
    return r;
  }
};

// The credential handed to kubectl: a short-lived client certificate.
struct ClusterCredential {
  std::string expiration_timestamp;  // RFC 3339
  std::string token;                 // unused by this concierge; kept for the shape
  std::string client_certificate_data;
  std::string client_key_data;

  picojson::value to_json() const {
    picojson::object o;
    o["expirationTimestamp"] = jv(expiration_timestamp);
    if (!token.empty()) o["token"] = jv(token);
    if (!client_certificate_data.empty()) o["clientCertificateData"] = jv(client_certificate_data);
    if (!client_key_data.empty()) o["clientKeyData"] = jv(client_key_data);
    return picojson::value(o);
  }
  static ClusterCredential from_json(const picojson::value &v) {
    ClusterCredential c;
    c.expiration_timestamp = json::get_string(v, "expirationTimestamp", "status.credential.expirationTimestamp");
    c.token = json::get_string(v, "token", "status.credential.token");
    c.client_certificate_data = json::get_string(v, "clientCertificateData", "status.credential.clientCertificateData");
    c.client_key_data = json::get_string(v, "clientKeyData", "status.credential.clientKeyData");
    return c;
  }
};

inline std::string login_group(const std::string &suffix) { return "login.concierge." + suffix; }
inline std::string authentication_group(const std::string &suffix) { return "authentication.concierge." + suffix; }

// login.concierge.<suffix>/v1alpha1 TokenCredentialRequest.
struct TokenCredentialRequest {
  std::string api_version;  // login.concierge.<suffix>/v1alpha1
  ObjectMeta metadata;
  std::string token;  // spec.token
  AuthenticatorRef authenticator;
  std::optional<ClusterCredential> credential;  // status.credential
  std::string message;                          // status.message

  // Serialises the object. The token is written only when `with_token`:
  // requests carry it, responses never do.
  picojson::value to_json(bool with_token) const {
    picojson::object o, spec, status;
    o["apiVersion"] = jv(api_version);
    o["kind"] = jv("TokenCredentialRequest");
    o["metadata"] = metadata.to_json();
    if (with_token) {
      spec["token"] = jv(token);
      spec["authenticator"] = authenticator.to_json();
    }
    o["spec"] = picojson::value(spec);
    if (credential) status["credential"] = credential->to_json();
    if (!message.empty()) status["message"] = jv(message);
    o["status"] = picojson::value(status);
    return picojson::value(o);
  }
  static TokenCredentialRequest from_json(const picojson::value &v) {
    if (!v.is<picojson::object>()) throw bad_request("request body must be a JSON object");
    TokenCredentialRequest r;
    r.api_version = json::get_string(v, "apiVersion", "apiVersion");
    if (const auto *m = json::get_object(v, "metadata", "metadata")) r.metadata = ObjectMeta::from_json(*m);
    if (const auto *s = json::get_object(v, "spec", "spec")) {
      r.token = json::get_string(*s, "token", "spec.token");
      if (const auto *a = json::get_object(*s, "authenticator", "spec.authenticator"))
        r.authenticator = AuthenticatorRef::from_json(*a);
    }
    if (const auto *st = json::get_object(v, "status", "status")) {
      if (const auto *c = json::get_object(*st, "credential", "status.credential"))
        r.credential = ClusterCredential::from_json(*c);
      r.message = json::get_string(*st, "message", "status.message");
    }
    return r;
  }
};

// metav1.Status, the body of every error answer.
struct Status {
  int code = 500;
  std::string reason;
  std::string message;
  std::string details_name;
  std::string details_group;
  std::string details_kind;
  std::vector<StatusCause> causes;

  static Status from_error(const Error &e) {
    Status s;
    s.code = e.code;
    s.reason = e.reason.empty() ? reason_for_code(e.code) : e.reason;
    s.message = e.what();
    s.causes = e.causes;
    return s;
  }
  picojson::value to_json() const {
    picojson::object o, meta;
    o["kind"] = jv("Status");
    o["apiVersion"] = jv("v1");
    o["metadata"] = picojson::value(meta);
    o["status"] = jv("Failure");
    o["message"] = jv(message);
    o["reason"] = jv(reason);
    o["code"] = jv(code);
    if (!causes.empty() || !details_name.empty() || !details_kind.empty()) {
      picojson::object d;
      if (!details_name.empty()) d["name"] = jv(details_name);
      if (!details_group.empty()) d["group"] = jv(details_group);
      if (!details_kind.empty()) d["kind"] = jv(details_kind);
      if (!causes.empty()) {
        picojson::array arr;
        for (const auto &c : causes) {
          picojson::object co;
          co["reason"] = jv(c.reason);
          co["message"] = jv(c.message);
          co["field"] = jv(c.field);
          arr.push_back(picojson::value(co));
        }
        d["causes"] = picojson::value(arr);
      }
      o["details"] = picojson::value(d);
    }
    return picojson::value(o);
  }
  // Reads a Status body; nullopt when the body is not a Status.
  static std::optional<Status> from_body(const std::string &body) {
    picojson::value v;
    std::string err;
    try {
      err = picojson::parse(v, body);
    } catch (const std::exception &) {
      return std::nullopt;  // a number beyond a double (picojson throws): not a Status
    }
    if (!err.empty() || !v.is<picojson::object>()) return std::nullopt;
    try {
      if (json::get_string(v, "kind", "kind") != "Status") return std::nullopt;
      Status s;
      s.message = json::get_string(v, "message", "message");
      s.reason = json::get_string(v, "reason", "reason");
      if (const auto *c = json::field(v, "code"); c && c->is<int64_t>()) s.code = static_cast<int>(c->get<int64_t>());
      return s;
    } catch (const Error &) {
      return std::nullopt;
    }
  }
};

// authentication.k8s.io UserInfo.
struct UserInfo {
  std::string username;
  std::string uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;

  picojson::value to_json() const {
    picojson::object o;
    o["username"] = jv(username);
    if (!uid.empty()) o["uid"] = jv(uid);
    picojson::array g;
    for (const auto &x : groups) g.push_back(jv(x));
    o["groups"] = picojson::value(g);
    if (!extra.empty()) {
      picojson::object e;
      for (const auto &kv : extra) {
        picojson::array a;
        for (const auto &x : kv.second) a.push_back(jv(x));
        e[kv.first] = picojson::value(a);
      }
      o["extra"] = picojson::value(e);
    }
    return picojson::value(o);
  }
  static UserInfo from_json(const picojson::value &v, const std::string &path) {
    UserInfo u;
    u.username = json::get_string(v, "username", path + ".username");
    u.uid = json::get_string(v, "uid", path + ".uid");
    u.groups = json::get_string_list(v, "groups", path + ".groups");
    if (const auto *e = json::get_object(v, "extra", path + ".extra")) {
      for (const auto &kv : e->get<picojson::object>()) {
        if (kv.second.is<picojson::null>()) continue;
        u.extra[kv.first] = json::get_string_list(*e, kv.first, path + ".extra");
      }
    }
    return u;
  }
};

// identity.concierge.<suffix>/v1alpha1 WhoAmIRequest: an empty request, and
// the answer whose status.kubernetesUserInfo.user is the caller.
struct WhoAmIRequest {
  std::string api_version;
  ObjectMeta metadata;
  std::optional<UserInfo> user;  // set in an answer

  static std::string api_version_for(const std::string &suffix) { return "identity.concierge." + suffix + "/v1alpha1"; }
  picojson::value to_json() const {
    picojson::object o;
    o["apiVersion"] = jv(api_version);
    o["kind"] = jv("WhoAmIRequest");
    o["metadata"] = metadata.to_json();
    o["spec"] = picojson::value(picojson::object());
    if (user) {
      picojson::object status, info;
      info["user"] = user->to_json();
      status["kubernetesUserInfo"] = picojson::value(info);
      o["status"] = picojson::value(status);
    }
    return picojson::value(o);
  }
  // A request or an answer; `want_user`: the answer must name the user.
  static WhoAmIRequest from_json(const picojson::value &v, bool want_user = false) {
    if (!v.is<picojson::object>()) throw bad_request("WhoAmIRequest: not a JSON object");
    WhoAmIRequest w;
    w.api_version = json::get_string(v, "apiVersion", "apiVersion");
    if (const auto *m = json::get_object(v, "metadata", "metadata")) w.metadata = ObjectMeta::from_json(*m);
    const auto *st = json::field(v, "status");
    const auto *ki = st ? json::field(*st, "kubernetesUserInfo") : nullptr;
    const auto *u = ki ? json::field(*ki, "user") : nullptr;
    if (u) w.user = UserInfo::from_json(*u, "status.kubernetesUserInfo.user");
    if (want_user && !w.user) throw bad_request("the WhoAmIRequest answer has no status.kubernetesUserInfo.user");
    return w;
  }
};

// authentication.k8s.io/{v1,v1beta1} TokenReview (we are the client).
struct TokenReview {
  std::string api_version = "authentication.k8s.io/v1beta1";
  std::string token;
  std::vector<std::string> audiences;
  bool authenticated = false;
  UserInfo user;
  std::string error;

  picojson::value to_json(bool with_token) const {
    picojson::object o, spec, status;
    o["apiVersion"] = jv(api_version);
    o["kind"] = jv("TokenReview");
    o["metadata"] = ObjectMeta().to_json();
    if (with_token) spec["token"] = jv(token);
    if (!audiences.empty()) {
      picojson::array a;
      for (const auto &x : audiences) a.push_back(jv(x));
      spec["audiences"] = picojson::value(a);
    }
    o["spec"] = picojson::value(spec);
    status["authenticated"] = jv(authenticated);
    if (authenticated) status["user"] = user.to_json();
    if (!error.empty()) status["error"] = jv(error);
    o["status"] = picojson::value(status);
    return picojson::value(o);
  }
  static TokenReview from_json(const picojson::value &v) {
    if (!v.is<picojson::object>()) throw bad_request("TokenReview must be a JSON object");
    TokenReview r;
    r.api_version = json::get_string(v, "apiVersion", "apiVersion");
    if (json::get_string(v, "kind", "kind") != "TokenReview") throw bad_request("kind must be TokenReview");
    if (const auto *s = json::get_object(v, "spec", "spec")) {
      r.token = json::get_string(*s, "token", "spec.token");
      r.audiences = json::get_string_list(*s, "audiences", "spec.audiences");
    }
    if (const auto *st = json::get_object(v, "status", "status")) {
      r.authenticated = json::get_bool(*st, "authenticated", "status.authenticated");
      if (const auto *u = json::get_object(*st, "user", "status.user")) r.user = UserInfo::from_json(*u, "status.user");
      r.error = json::get_string(*st, "error", "status.error");
    }
    return r;
  }
};

// authentication.concierge.<suffix>/v1alpha1 WebhookAuthenticator, as the
// CRD (and our config file) describes one IDP.
struct WebhookAuthenticatorSpec {
  std::string endpoint;                    // https://...
  std::string certificate_authority_data;  // base64 PEM; empty: system roots
  // Extensions of this project (absent upstream; defaults match upstream):
  std::string token_review_version = "v1beta1";  // or "v1"
  std::optional<Millis> timeout;                 // whole exchange with the IDP
};

struct WebhookAuthenticatorObject {
  ObjectMeta metadata;
  WebhookAuthenticatorSpec spec;

  static WebhookAuthenticatorObject from_json(const picojson::value &v) {
    WebhookAuthenticatorObject w;
    if (const auto *m = json::get_object(v, "metadata", "metadata")) w.metadata = ObjectMeta::from_json(*m);
    if (const auto *s = json::get_object(v, "spec", "spec")) {
      w.spec.endpoint = json::get_string(*s, "endpoint", "spec.endpoint");
      if (const auto *t = json::get_object(*s, "tls", "spec.tls"))
        w.spec.certificate_authority_data =
            json::get_string(*t, "certificateAuthorityData", "spec.tls.certificateAuthorityData");
      auto trv = json::get_string(*s, "tokenReviewVersion", "spec.tokenReviewVersion");
      if (!trv.empty()) w.spec.token_review_version = trv;
      auto to = json::get_string(*s, "timeout", "spec.timeout");
      if (!to.empty()) {
        auto d = parse_duration(to);
        if (!d || d->count() <= 0) throw bad_request("spec.timeout: not a duration: " + to);
        w.spec.timeout = d;
      }
    }
    return w;
  }
};

// ---------------------------------------------------------------------------
// 2. Crypto helpers and the certificate authority
// Owns keys, DER building, certificate issuance and the cluster signer.
// Calls mbedTLS and section 0/1 only.
// ---------------------------------------------------------------------------

namespace detail {

inline std::string mbed_error(int ret) {
  char buf[160];
  mbedtls_strerror(ret, buf, sizeof buf);
  return buf;
}

// One DRBG per thread: no lock on the issuing path. `rng_fill` is the
// callback handed to mbedTLS; it always uses the calling thread's DRBG.
struct Rng {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  Rng() {
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    static const unsigned char pers[] = "pinniped";
    int ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, pers, sizeof pers - 1);
    if (ret != 0) throw internal_error("cannot seed the random generator: " + mbed_error(ret));
  }
  ~Rng() {
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
  }
  Rng(const Rng &) = delete;
  Rng &operator=(const Rng &) = delete;
};
inline Rng &thread_rng() {
  thread_local Rng r;
  return r;
}
inline int rng_fill(void *, unsigned char *out, size_t n) {
  return mbedtls_ctr_drbg_random(&thread_rng().drbg, out, n);
}
inline std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (rng_fill(nullptr, reinterpret_cast<unsigned char *>(&out[0]), n) != 0)
    throw internal_error("random generator failed");
  return out;
}

// Minimal forward DER writer: enough for names, extensions and certificates.
namespace der {
inline std::string length(size_t n) {
  if (n < 0x80) return std::string(1, static_cast<char>(n));
  std::string b;
  while (n) {
    b.insert(b.begin(), static_cast<char>(n & 0xff));
    n >>= 8;
  }
  return std::string(1, static_cast<char>(0x80 | b.size())) + b;
}
inline std::string tlv(unsigned char tag, const std::string &content) {
  return std::string(1, static_cast<char>(tag)) + length(content.size()) + content;
}
inline std::string seq(const std::string &c) { return tlv(0x30, c); }
inline std::string set(const std::string &c) { return tlv(0x31, c); }
inline std::string oid(const std::string &raw) { return tlv(0x06, raw); }
inline std::string octets(const std::string &c) { return tlv(0x04, c); }
inline std::string boolean(bool b) { return tlv(0x01, std::string(1, b ? '\xff' : '\0')); }
inline std::string null() { return std::string("\x05\x00", 2); }
inline std::string bits(const std::string &c, unsigned unused = 0) {
  return tlv(0x03, std::string(1, static_cast<char>(unused)) + c);
}
// Non-negative INTEGER from big-endian magnitude bytes.
inline std::string uint(std::string mag) {
  size_t i = 0;
  while (i + 1 < mag.size() && mag[i] == 0) i++;
  mag = mag.substr(i);
  if (mag.empty()) mag = std::string(1, '\0');
  if (static_cast<unsigned char>(mag[0]) & 0x80) mag.insert(mag.begin(), '\0');
  return tlv(0x02, mag);
}
inline std::string small_int(unsigned v) {
  std::string mag;
  do {
    mag.insert(mag.begin(), static_cast<char>(v & 0xff));
    v >>= 8;
  } while (v);
  return uint(mag);
}
// UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5).
inline std::string time(Clock::time_point t) {
  std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  if (tm.tm_year + 1900 >= 1950 && tm.tm_year + 1900 < 2050) {
    std::strftime(buf, sizeof buf, "%y%m%d%H%M%SZ", &tm);
    return tlv(0x17, buf);
  }
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%SZ", &tm);
  return tlv(0x18, buf);
}
}  // namespace der

// OIDs (content bytes only).
namespace oid {
const std::string cn("\x55\x04\x03", 3);
const std::string org("\x55\x04\x0a", 3);
const std::string ec_public_key("\x2a\x86\x48\xce\x3d\x02\x01", 7);
const std::string ecdsa_sha256("\x2a\x86\x48\xce\x3d\x04\x03\x02", 8);
const std::string ecdsa_sha384("\x2a\x86\x48\xce\x3d\x04\x03\x03", 8);
const std::string ecdsa_sha512("\x2a\x86\x48\xce\x3d\x04\x03\x04", 8);
const std::string rsa_sha256("\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b", 9);
const std::string key_usage("\x55\x1d\x0f", 3);
const std::string ext_key_usage("\x55\x1d\x25", 3);
const std::string basic_constraints("\x55\x1d\x13", 3);
const std::string subject_key_id("\x55\x1d\x0e", 3);
const std::string authority_key_id("\x55\x1d\x23", 3);
const std::string subject_alt_name("\x55\x1d\x11", 3);
const std::string client_auth("\x2b\x06\x01\x05\x05\x07\x03\x02", 8);
const std::string server_auth("\x2b\x06\x01\x05\x05\x07\x03\x01", 8);
}  // namespace oid

inline std::string base64_encode(const std::string &in) {
  size_t olen = 0;
  mbedtls_base64_encode(nullptr, 0, &olen, reinterpret_cast<const unsigned char *>(in.data()), in.size());
  std::string out(olen, '\0');
  if (mbedtls_base64_encode(reinterpret_cast<unsigned char *>(&out[0]), out.size(), &olen,
                            reinterpret_cast<const unsigned char *>(in.data()), in.size()) != 0)
    throw internal_error("base64 encoding failed");
  out.resize(olen);
  return out;
}

// Decodes standard base64; whitespace and newlines are tolerated, as in PEM.
inline std::optional<std::string> base64_decode(const std::string &in) {
  std::string clean;
  clean.reserve(in.size());
  for (char c : in)
    if (!std::isspace(static_cast<unsigned char>(c))) clean += c;
  size_t olen = 0;
  std::string out(clean.size() * 3 / 4 + 3, '\0');
  if (mbedtls_base64_decode(reinterpret_cast<unsigned char *>(&out[0]), out.size(), &olen,
                            reinterpret_cast<const unsigned char *>(clean.data()), clean.size()) != 0)
    return std::nullopt;
  out.resize(olen);
  return out;
}

inline std::string pem_encode(const std::string &label, const std::string &der) {
  std::string b64 = base64_encode(der);
  std::string out = "-----BEGIN " + label + "-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  out += "-----END " + label + "-----\n";
  return out;
}

inline std::string sha256(const std::string &in) {
  unsigned char h[32];
  mbedtls_sha256_ret(reinterpret_cast<const unsigned char *>(in.data()), in.size(), h, 0);
  return std::string(reinterpret_cast<char *>(h), 32);
}

// The length of the strict UTF-8 sequence at s[i] (no overlongs, no
// surrogates), or 0 when there is none.
inline size_t utf8_sequence_at(const std::string &s, size_t i) {
  unsigned char c = s[i];
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) {
    n = 1;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 2;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 3;
    cp = c & 0x07;
  } else
    return 0;
  for (size_t k = 1; k <= n; k++) {
    if (i + k >= s.size()) return 0;
    unsigned char cc = s[i + k];
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n + 1;
}
inline bool valid_utf8(const std::string &s) {
  for (size_t i = 0, n; i < s.size(); i += n)
    if ((n = utf8_sequence_at(s, i)) == 0) return false;
  return true;
}
// Each byte that is not part of valid UTF-8 replaced with U+FFFD, as Go's
// encoding/json writes such a string: what we send is always valid JSON.
inline std::string to_valid_utf8(const std::string &s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence_at(s, i);
    if (n == 0) {
      out += "\xef\xbf\xbd";
      i++;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

// X.520 DirectoryString as Go writes it: PrintableString when every
// character allows it, else UTF8String.
inline std::string directory_string(const std::string &v) {
  bool printable = std::all_of(v.begin(), v.end(), [](char ch) {
    unsigned char c = ch;
    return c != 0 && (std::isalnum(c) || std::strchr(" '()+,-./:=?", c) != nullptr);
  });
  return der::tlv(printable ? 0x13 : 0x0c, v);
}

inline std::string rdn(const std::string &attr_oid, const std::string &value) {
  return der::set(der::seq(der::oid(attr_oid) + directory_string(value)));
}

inline Clock::time_point from_x509_time(const mbedtls_x509_time &t) {
  return clock_from_time_t(utc_seconds(t.year, t.mon, t.day, t.hour, t.min, t.sec));
}

// Walks a parsed certificate's extensions; returns the extnValue contents.
inline std::optional<std::string> find_extension(const mbedtls_x509_crt &crt, const std::string &want) {
  if (crt.version != 3 || crt.v3_ext.p == nullptr) return std::nullopt;
  unsigned char *p = crt.v3_ext.p;
  const unsigned char *end = crt.v3_ext.p + crt.v3_ext.len;
  size_t len;
  if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return std::nullopt;
  end = p + len;
  while (p < end) {
    size_t elen;
    if (mbedtls_asn1_get_tag(&p, end, &elen, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
      return std::nullopt;
    const unsigned char *eend = p + elen;
    size_t olen;
    if (mbedtls_asn1_get_tag(&p, eend, &olen, MBEDTLS_ASN1_OID) != 0) return std::nullopt;
    std::string id(reinterpret_cast<char *>(p), olen);
    p += olen;
    int crit;
    if (mbedtls_asn1_get_bool(&p, eend, &crit) != 0 && *p == MBEDTLS_ASN1_BOOLEAN) return std::nullopt;
    size_t vlen;
    if (mbedtls_asn1_get_tag(&p, eend, &vlen, MBEDTLS_ASN1_OCTET_STRING) != 0) return std::nullopt;
    if (id == want) return std::string(reinterpret_cast<char *>(p), vlen);
    p = const_cast<unsigned char *>(eend);
  }
  return std::nullopt;
}

// The subjectKeyIdentifier of a certificate, if it carries one.
inline std::string subject_key_id(const mbedtls_x509_crt &crt) {
  auto v = find_extension(crt, oid::subject_key_id);
  if (!v) return "";
  unsigned char *p = reinterpret_cast<unsigned char *>(&(*v)[0]);
  size_t len;
  if (mbedtls_asn1_get_tag(&p, p + v->size(), &len, MBEDTLS_ASN1_OCTET_STRING) != 0) return "";
  return std::string(reinterpret_cast<char *>(p), len);
}

// iPAddress entries of subjectAltName (4 or 16 raw bytes each).
inline std::vector<std::string> san_ip_addresses(const mbedtls_x509_crt &crt) {
  std::vector<std::string> out;
  auto v = find_extension(crt, oid::subject_alt_name);
  if (!v) return out;
  unsigned char *p = reinterpret_cast<unsigned char *>(&(*v)[0]);
  const unsigned char *end = p + v->size();
  size_t len;
  if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return out;
  end = p + len;
  while (p < end) {
    unsigned char tag = *p++;
    size_t l;
    if (mbedtls_asn1_get_len(&p, end, &l) != 0) break;
    if (tag == 0x87) out.emplace_back(reinterpret_cast<char *>(p), l);
    p += l;
  }
  return out;
}

inline std::string x509_name_string(const mbedtls_x509_name *name) {
  char buf[1024];
  int n = mbedtls_x509_dn_gets(buf, sizeof buf, name);
  return n < 0 ? std::string("?") : std::string(buf, static_cast<size_t>(n));
}

// First commonName of a parsed name (a peer's identity).
inline std::string common_name(const mbedtls_x509_name *name) {
  for (const mbedtls_x509_name *n = name; n; n = n->next) {
    if (n->oid.len == 3 && std::memcmp(n->oid.p, oid::cn.data(), 3) == 0)
      return std::string(reinterpret_cast<char *>(n->val.p), n->val.len);
  }
  return "";
}
inline std::vector<std::string> organizations(const mbedtls_x509_name *name) {
  std::vector<std::string> out;
  for (const mbedtls_x509_name *n = name; n; n = n->next) {
    if (n->oid.len == 3 && std::memcmp(n->oid.p, oid::org.data(), 3) == 0)
      out.emplace_back(reinterpret_cast<char *>(n->val.p), n->val.len);
  }
  return out;
}

// One prepared curve group per thread and curve. mbedTLS builds a curve's
// fixed-point table for the generator on the first multiplication by it and
// keeps it in the group; a group loaded per operation (mbedtls_ecp_gen_key,
// and mbedtls_pk_sign, which copies the key's group for every signature)
// rebuilds it each time, the larger part of an operation's cost. Per
// thread, because that first write takes no lock. Null for a curve mbedTLS
// does not have.
inline mbedtls_ecp_group *prepared_group(mbedtls_ecp_group_id id) {
  struct Groups {
    std::vector<std::pair<mbedtls_ecp_group_id, std::unique_ptr<mbedtls_ecp_group>>> list;
    ~Groups() {
      for (auto &g : list) mbedtls_ecp_group_free(g.second.get());
    }
  };
  thread_local Groups groups;
  for (auto &g : groups.list)
    if (g.first == id) return g.second.get();
  auto g = std::make_unique<mbedtls_ecp_group>();
  mbedtls_ecp_group_init(g.get());
  if (mbedtls_ecp_group_load(g.get(), id) != 0) {
    mbedtls_ecp_group_free(g.get());
    return nullptr;
  }
  groups.list.emplace_back(id, std::move(g));
  return groups.list.back().second.get();
}

}  // namespace detail

// The half of an ECDSA signature that does not depend on the message, made
// ahead of time so that a signature on the request path is a few products
// modulo the group order n instead of a scalar multiplication and an
// inversion. With a random nonce k and a random blinding factor t, both in
// [1, n-1], it holds r = x(k·G) mod n, t and w = (k·t)^-1 mod n; signing a
// message e is then s = w·((e + r·d)·t) mod n = k^-1·(e + r·d) mod n, the
// same steps and blinding as mbedTLS's own mbedtls_ecdsa_sign after its
// nonce. A nonce must sign one message with one key: used twice it gives
// the key away. So a presignature is move-only, leaves its pool with the
// one caller that takes it, is spent (wiped) by its first use whether that
// succeeds or not, is wiped when dropped, and is refused in a forked child,
// which holds a copy of its parent's.
class Presignature {
 public:
  Presignature() { init(); }
  ~Presignature() { wipe(); }
  Presignature(Presignature &&o) noexcept : Presignature() { swap(o); }
  Presignature &operator=(Presignature &&o) noexcept {
    if (this != &o) {
      wipe();
      init();
      swap(o);
    }
    return *this;
  }
  Presignature(const Presignature &) = delete;
  Presignature &operator=(const Presignature &) = delete;

  // A fresh one for `curve`, with the thread's prepared group and DRBG.
  static Presignature make(mbedtls_ecp_group_id curve) { return with_nonce(curve, nullptr); }
  // Tests only: one made from a known nonce (big-endian, in [1, n-1]), to
  // check the arithmetic against published vectors.
  static Presignature with_known_nonce(mbedtls_ecp_group_id curve, const std::string &k_be) {
    mbedtls_mpi k;
    mbedtls_mpi_init(&k);
    int ret = mbedtls_mpi_read_binary(&k, reinterpret_cast<const unsigned char *>(k_be.data()), k_be.size());
    if (ret != 0) {
      mbedtls_mpi_free(&k);
      throw internal_error("presignature: bad nonce");
    }
    try {
      Presignature p = with_nonce(curve, &k);
      mbedtls_mpi_free(&k);
      return p;
    } catch (...) {
      mbedtls_mpi_free(&k);
      throw;
    }
  }

  // Whether it can sign with a key on `curve` in this process.
  bool usable_for(mbedtls_ecp_group_id curve) const {
    return curve_ != MBEDTLS_ECP_DP_NONE && curve_ == curve && pid_ == getpid();
  }

  // Signs `hash` with the private scalar `d` of a key on `grp` (the key's
  // own group: only its order is used), writing r and s. Spends the
  // presignature. Non-zero (and nothing written) when it cannot be used:
  // the caller then signs the usual way.
  int finish(const mbedtls_ecp_group &grp, const mbedtls_mpi &d, const unsigned char *hash, size_t hash_len,
             mbedtls_mpi *r, mbedtls_mpi *s) {
    int ret = usable_for(grp.id) ? 0 : MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
    mbedtls_mpi e, rd, v;
    mbedtls_mpi_init(&e);
    mbedtls_mpi_init(&rd);
    mbedtls_mpi_init(&v);
    if (ret == 0 && (mbedtls_mpi_cmp_int(&d, 1) < 0 || mbedtls_mpi_cmp_mpi(&d, &grp.N) >= 0))
      ret = MBEDTLS_ERR_ECP_INVALID_KEY;
    // e: the hash's leftmost bits, as many as n has (SEC 1, 4.1.3 step 5),
    // then reduced modulo n.
    size_t n_bytes = (grp.nbits + 7) / 8, use = std::min(hash_len, n_bytes);
    if (ret == 0) ret = mbedtls_mpi_read_binary(&e, hash, use);
    if (ret == 0 && use * 8 > grp.nbits) ret = mbedtls_mpi_shift_r(&e, use * 8 - grp.nbits);
    if (ret == 0 && mbedtls_mpi_cmp_mpi(&e, &grp.N) >= 0) ret = mbedtls_mpi_sub_mpi(&e, &e, &grp.N);
    if (ret == 0) ret = mbedtls_mpi_mul_mpi(&rd, &r_, &d);  // r·d
    if (ret == 0) ret = mbedtls_mpi_add_mpi(&e, &e, &rd);   // e + r·d
    if (ret == 0) ret = mbedtls_mpi_mul_mpi(&e, &e, &t_);   // (e + r·d)·t
    if (ret == 0) ret = mbedtls_mpi_mul_mpi(&v, &w_, &e);   // (k·t)^-1·(e + r·d)·t
    if (ret == 0) ret = mbedtls_mpi_mod_mpi(&v, &v, &grp.N);
    if (ret == 0 && mbedtls_mpi_cmp_int(&v, 0) == 0) ret = MBEDTLS_ERR_ECP_RANDOM_FAILED;  // s = 0: sign anew
    if (ret == 0) ret = mbedtls_mpi_copy(r, &r_);
    if (ret == 0) ret = mbedtls_mpi_copy(s, &v);
    mbedtls_mpi_free(&e);  // mbedtls_mpi_free wipes the limbs
    mbedtls_mpi_free(&rd);
    mbedtls_mpi_free(&v);
    wipe();
    init();
    return ret;
  }

 private:
  void init() {
    curve_ = MBEDTLS_ECP_DP_NONE;
    pid_ = 0;
    mbedtls_mpi_init(&r_);
    mbedtls_mpi_init(&t_);
    mbedtls_mpi_init(&w_);
  }
  void wipe() {
    curve_ = MBEDTLS_ECP_DP_NONE;
    mbedtls_mpi_free(&r_);
    mbedtls_mpi_free(&t_);
    mbedtls_mpi_free(&w_);
  }
  void swap(Presignature &o) {
    std::swap(curve_, o.curve_);
    std::swap(pid_, o.pid_);
    mbedtls_mpi_swap(&r_, &o.r_);
    mbedtls_mpi_swap(&t_, &o.t_);
    mbedtls_mpi_swap(&w_, &o.w_);
  }
  // `known`: the nonce to use (tests), or null for a random one.
  static Presignature with_nonce(mbedtls_ecp_group_id curve, const mbedtls_mpi *known) {
    mbedtls_ecp_group *g = detail::prepared_group(curve);
    if (!g || g->N.p == nullptr) throw internal_error("presignature: curve unavailable");
    Presignature p;
    mbedtls_mpi k, kt;
    mbedtls_ecp_point R;
    mbedtls_mpi_init(&k);
    mbedtls_mpi_init(&kt);
    mbedtls_ecp_point_init(&R);
    int ret = 0;
    for (int tries = 0; ret == 0; tries++) {
      if (tries == 10) {  // r = 0 ten times: the generator is broken
        ret = MBEDTLS_ERR_ECP_RANDOM_FAILED;
        break;
      }
      ret = known ? mbedtls_mpi_copy(&k, known) : mbedtls_ecp_gen_privkey(g, &k, detail::rng_fill, nullptr);
      if (ret == 0 && (mbedtls_mpi_cmp_int(&k, 1) < 0 || mbedtls_mpi_cmp_mpi(&k, &g->N) >= 0))
        ret = MBEDTLS_ERR_ECP_INVALID_KEY;
      // k·G with randomized coordinates (the rng), the table in `g`.
      if (ret == 0) ret = mbedtls_ecp_mul(g, &R, &k, &g->G, detail::rng_fill, nullptr);
      if (ret == 0) ret = mbedtls_mpi_mod_mpi(&p.r_, &R.X, &g->N);
      if (ret == 0 && mbedtls_mpi_cmp_int(&p.r_, 0) != 0) break;
      if (known && ret == 0) ret = MBEDTLS_ERR_ECP_INVALID_KEY;
    }
    // The blinding factor t and the inverse of k·t: k is never inverted
    // itself, so the inversion's timing says nothing about it.
    if (ret == 0) ret = mbedtls_ecp_gen_privkey(g, &p.t_, detail::rng_fill, nullptr);
    if (ret == 0) ret = mbedtls_mpi_mul_mpi(&kt, &k, &p.t_);
    if (ret == 0) ret = mbedtls_mpi_mod_mpi(&kt, &kt, &g->N);
    if (ret == 0) ret = mbedtls_mpi_inv_mod(&p.w_, &kt, &g->N);
    mbedtls_mpi_free(&k);
    mbedtls_mpi_free(&kt);
    mbedtls_ecp_point_free(&R);
    if (ret != 0) throw internal_error("presignature failed: " + detail::mbed_error(ret));
    p.curve_ = curve;
    p.pid_ = getpid();
    return p;
  }

  mbedtls_ecp_group_id curve_;
  pid_t pid_;
  mbedtls_mpi r_, t_, w_;
};

// A private key (EC or RSA) with its PEM and DER forms.
class PrivateKey {
 public:
  PrivateKey() { mbedtls_pk_init(&pk_); }
  ~PrivateKey() { mbedtls_pk_free(&pk_); }
  PrivateKey(const PrivateKey &) = delete;
  PrivateKey &operator=(const PrivateKey &) = delete;

  // Fresh ECDSA key on a NIST curve (P-256 unless told otherwise), made
  // with the thread's prepared group (detail::prepared_group).
  static std::unique_ptr<PrivateKey> generate_ec(mbedtls_ecp_group_id curve = MBEDTLS_ECP_DP_SECP256R1) {
    auto k = std::make_unique<PrivateKey>();
    int ret = mbedtls_pk_setup(&k->pk_, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    mbedtls_ecp_group *prepared = ret == 0 ? detail::prepared_group(curve) : nullptr;
    if (ret == 0 && !prepared) ret = MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE;
    mbedtls_ecp_keypair *kp = ret == 0 ? mbedtls_pk_ec(k->pk_) : nullptr;
    // The key's own group holds the curve's constants only (no table).
    if (ret == 0) ret = mbedtls_ecp_group_load(&kp->grp, curve);
    if (ret == 0) ret = mbedtls_ecp_gen_keypair(prepared, &kp->d, &kp->Q, detail::rng_fill, nullptr);
    if (ret != 0) throw internal_error("EC key generation failed: " + detail::mbed_error(ret));
    return k;
  }
  static std::unique_ptr<PrivateKey> generate_rsa(unsigned bits) {
    auto k = std::make_unique<PrivateKey>();
    int ret = mbedtls_pk_setup(&k->pk_, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA));
    if (ret == 0) ret = mbedtls_rsa_gen_key(mbedtls_pk_rsa(k->pk_), detail::rng_fill, nullptr, bits, 65537);
    if (ret != 0) throw internal_error("RSA key generation failed: " + detail::mbed_error(ret));
    return k;
  }
  // SEC1, PKCS#1 or PKCS#8 (unencrypted), PEM or DER. Never echoes the input.
  static std::unique_ptr<PrivateKey> parse(const std::string &data) {
    auto k = std::make_unique<PrivateKey>();
    std::string buf = data;
    buf.push_back('\0');  // PEM parsing wants the terminating NUL counted
    int ret =
        mbedtls_pk_parse_key(&k->pk_, reinterpret_cast<const unsigned char *>(buf.data()), buf.size(), nullptr, 0);
    if (ret != 0 && !data.empty() && data[0] == 0x30)
      ret =
          mbedtls_pk_parse_key(&k->pk_, reinterpret_cast<const unsigned char *>(data.data()), data.size(), nullptr, 0);
    mbedtls_platform_zeroize(&buf[0], buf.size());
    // Encrypted keys are not read (tools/build-mbedtls.sh leaves out PKCS#5,
    // PKCS#12 and PEM decryption): said as such, whatever mbedTLS says.
    if (ret != 0 && (data.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string::npos ||
                     data.find("Proc-Type: 4,ENCRYPTED") != std::string::npos))
      throw Error(400, "BadRequest",
                  "cannot parse private key: it is encrypted (needs a password); give it unencrypted");
    if (ret != 0) throw Error(400, "BadRequest", "cannot parse private key: " + detail::mbed_error(ret));
    return k;
  }

  bool is_ec() const { return mbedtls_pk_get_type(&pk_) == MBEDTLS_PK_ECKEY; }
  bool is_rsa() const { return mbedtls_pk_get_type(&pk_) == MBEDTLS_PK_RSA; }
  size_t bits() const { return mbedtls_pk_get_bitlen(&pk_); }
  std::string describe() const { return (is_ec() ? "ECDSA P-" : "RSA ") + std::to_string(bits()); }

  // SubjectPublicKeyInfo DER.
  std::string public_der() const {
    unsigned char buf[2048];
    int n = mbedtls_pk_write_pubkey_der(const_cast<mbedtls_pk_context *>(&pk_), buf, sizeof buf);
    if (n < 0) throw internal_error("cannot encode public key: " + detail::mbed_error(n));
    return std::string(reinterpret_cast<char *>(buf + sizeof buf - n), static_cast<size_t>(n));
  }
  // PKCS#8 "PRIVATE KEY" PEM for EC keys (as upstream), PKCS#1 for RSA.
  std::string to_pem() const {
    std::vector<unsigned char> buf(8192);
    int n = mbedtls_pk_write_key_der(const_cast<mbedtls_pk_context *>(&pk_), buf.data(), buf.size());
    if (n < 0) throw internal_error("cannot encode private key: " + detail::mbed_error(n));
    std::string inner(reinterpret_cast<char *>(buf.data() + buf.size() - n), static_cast<size_t>(n));
    mbedtls_platform_zeroize(buf.data(), buf.size());
    std::string pem;
    if (is_ec()) {
      const mbedtls_ecp_keypair *ec = mbedtls_pk_ec(pk_);
      const char *curve_oid;
      size_t curve_len;
      if (mbedtls_oid_get_oid_by_ec_grp(ec->grp.id, &curve_oid, &curve_len) != 0)
        throw internal_error("unknown EC curve");
      namespace der = detail::der;
      std::string algo = der::seq(der::oid(detail::oid::ec_public_key) + der::oid(std::string(curve_oid, curve_len)));
      std::string info = der::seq(der::small_int(0) + algo + der::octets(inner));
      pem = detail::pem_encode("PRIVATE KEY", info);
      mbedtls_platform_zeroize(&info[0], info.size());
    } else {
      pem = detail::pem_encode("RSA PRIVATE KEY", inner);
    }
    mbedtls_platform_zeroize(&inner[0], inner.size());
    return pem;
  }

  mbedtls_pk_context *get() { return &pk_; }
  const mbedtls_pk_context *get() const { return &pk_; }

  // The curve of an EC key; MBEDTLS_ECP_DP_NONE for RSA.
  mbedtls_ecp_group_id curve() const { return is_ec() ? mbedtls_pk_ec(pk_)->grp.id : MBEDTLS_ECP_DP_NONE; }

  // A signature of `hash` (made with `md`), as X.509 and PKCS#10 carry it:
  // ECDSA (DER SEQUENCE of r and s), finished from `pre` when one for the
  // key's curve is given (and spending it), else with the thread's
  // prepared group; or RSA PKCS#1 v1.5 (`pre` unused).
  std::string sign(mbedtls_md_type_t md, const unsigned char *hash, size_t hash_len,
                   Presignature *pre = nullptr) const {
    if (is_ec()) {
      const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(pk_);
      mbedtls_mpi r, s;
      mbedtls_mpi_init(&r);
      mbedtls_mpi_init(&s);
      int ret = pre ? pre->finish(kp->grp, kp->d, hash, hash_len, &r, &s) : -1;
      if (ret != 0) {
        mbedtls_ecp_group *g = detail::prepared_group(kp->grp.id);
        ret = g ? mbedtls_ecdsa_sign(g, &r, &s, &kp->d, hash, hash_len, detail::rng_fill, nullptr)
                : MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE;
      }
      std::string out;
      if (ret == 0) {
        auto bytes = [](const mbedtls_mpi &x) {
          std::string b(mbedtls_mpi_size(&x), '\0');
          mbedtls_mpi_write_binary(&x, reinterpret_cast<unsigned char *>(&b[0]), b.size());
          return b;
        };
        namespace der = detail::der;
        out = der::seq(der::uint(bytes(r)) + der::uint(bytes(s)));
      }
      mbedtls_mpi_free(&r);
      mbedtls_mpi_free(&s);
      if (ret != 0) throw internal_error("signing failed: " + detail::mbed_error(ret));
      return out;
    }
    unsigned char sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t sig_len = 0;
    int ret = mbedtls_pk_sign(const_cast<mbedtls_pk_context *>(&pk_), md, hash, hash_len, sig, &sig_len,
                              detail::rng_fill, nullptr);
    if (ret != 0) throw internal_error("signing failed: " + detail::mbed_error(ret));
    return std::string(reinterpret_cast<char *>(sig), sig_len);
  }

 private:
  mbedtls_pk_context pk_;
};

// A parsed X.509 certificate chain (PEM bundle or DER).
class CertificateChain {
 public:
  CertificateChain() { mbedtls_x509_crt_init(&crt_); }
  ~CertificateChain() { mbedtls_x509_crt_free(&crt_); }
  CertificateChain(const CertificateChain &) = delete;
  CertificateChain &operator=(const CertificateChain &) = delete;

  // Strict: every certificate in the bundle must parse, and there must be one.
  static std::unique_ptr<CertificateChain> parse(const std::string &data) {
    auto c = std::make_unique<CertificateChain>();
    std::string buf = data;
    buf.push_back('\0');
    int ret = mbedtls_x509_crt_parse(&c->crt_, reinterpret_cast<const unsigned char *>(buf.data()),
                                     data.find("-----BEGIN") != std::string::npos ? buf.size() : data.size());
    if (ret < 0) throw Error(400, "BadRequest", "cannot parse certificate: " + detail::mbed_error(ret));
    if (ret > 0) throw Error(400, "BadRequest", std::to_string(ret) + " certificate(s) in the bundle do not parse");
    if (c->crt_.raw.len == 0) throw Error(400, "BadRequest", "no certificate found");
    return c;
  }
  // Lenient, for the system's root store: skips entries that do not parse.
  static std::unique_ptr<CertificateChain> system_roots() {
    static const char *paths[] = {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                                  "/etc/ssl/cert.pem", "/etc/ssl/ca-bundle.pem"};
    auto c = std::make_unique<CertificateChain>();
    for (const char *p : paths) {
      if (access(p, R_OK) != 0) continue;
      int ret = mbedtls_x509_crt_parse_file(&c->crt_, p);
      if (ret >= 0 && c->crt_.raw.len) return c;
    }
    if (access("/etc/ssl/certs", R_OK) == 0) mbedtls_x509_crt_parse_path(&c->crt_, "/etc/ssl/certs");
    return c;
  }

  size_t size() const {
    size_t n = 0;
    for (const mbedtls_x509_crt *p = &crt_; p && p->raw.len; p = p->next) n++;
    return n;
  }
  mbedtls_x509_crt *get() { return &crt_; }
  const mbedtls_x509_crt *get() const { return &crt_; }
  std::string pem() const {
    std::string out;
    for (const mbedtls_x509_crt *p = &crt_; p && p->raw.len; p = p->next)
      out += detail::pem_encode("CERTIFICATE", std::string(reinterpret_cast<char *>(p->raw.p), p->raw.len));
    return out;
  }

 private:
  mbedtls_x509_crt crt_;
};

// What a new certificate says. Used for client certificates, and for the
// self-made CAs and serving certificates of tests and the concierge.
struct CertificateTemplate {
  std::string common_name;
  std::vector<std::string> organizations;  // one O attribute per entry, in order
  bool is_ca = false;
  unsigned key_usage = MBEDTLS_X509_KU_DIGITAL_SIGNATURE;  // MBEDTLS_X509_KU_* bits
  bool client_auth = false;
  bool server_auth = false;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;  // textual IPv4/IPv6
  Clock::time_point not_before;
  Clock::time_point not_after;
  std::string serial;  // big-endian bytes; empty: 128 random bits
};

namespace detail {

inline std::string encode_name(const CertificateTemplate &t) {
  // Same attribute order as Go's pkix.Name: O before CN.
  std::string rdns;
  for (const auto &o : t.organizations) rdns += rdn(oid::org, o);
  if (!t.common_name.empty()) rdns += rdn(oid::cn, t.common_name);
  return der::seq(rdns);
}

inline std::string key_usage_bits(unsigned ku) {
  unsigned char b = static_cast<unsigned char>(ku & 0xff);
  unsigned unused = 0;
  if (b == 0) return der::bits(std::string(), 0);
  while (!(b & (1u << unused))) unused++;
  return der::bits(std::string(1, static_cast<char>(b)), unused);
}

inline std::string extension(const std::string &id, bool critical, const std::string &value) {
  return der::seq(der::oid(id) + (critical ? der::boolean(true) : std::string()) + der::octets(value));
}

// Signature algorithm and digest for an issuer key, as Go chooses them.
inline std::pair<std::string, mbedtls_md_type_t> signature_algorithm(const PrivateKey &key) {
  if (key.is_rsa()) return {der::seq(der::oid(oid::rsa_sha256) + der::null()), MBEDTLS_MD_SHA256};
  if (key.is_ec()) {
    size_t bits = key.bits();
    if (bits > 384) return {der::seq(der::oid(oid::ecdsa_sha512)), MBEDTLS_MD_SHA512};
    if (bits > 256) return {der::seq(der::oid(oid::ecdsa_sha384)), MBEDTLS_MD_SHA384};
    return {der::seq(der::oid(oid::ecdsa_sha256)), MBEDTLS_MD_SHA256};
  }
  throw internal_error("unsupported signer key type");
}

inline std::string parse_ip(const std::string &s) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) return std::string(reinterpret_cast<char *>(buf), 4);
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) return std::string(reinterpret_cast<char *>(buf), 16);
  return "";
}

// Builds and signs a certificate. `issuer_name_der` is copied byte for byte
// (Go compares issuer bytes exactly), `issuer_key_id` becomes the AKI;
// `pre`, when given, finishes an ECDSA signature (PrivateKey::sign).
inline std::string sign_certificate(const CertificateTemplate &t, const std::string &subject_spki_der,
                                    const std::string &issuer_name_der, const PrivateKey &issuer_key,
                                    const std::string &issuer_key_id, Presignature *pre = nullptr) {
  auto alg = signature_algorithm(issuer_key);
  std::string serial = t.serial;
  if (serial.empty()) {
    serial = random_bytes(16);  // 128 random bits; der::uint keeps it positive
    if (serial[0] == 0) serial[0] = 1;
  }
  std::string exts;
  exts += extension(oid::key_usage, true, key_usage_bits(t.key_usage));
  std::string eku;
  if (t.server_auth) eku += der::oid(oid::server_auth);
  if (t.client_auth) eku += der::oid(oid::client_auth);
  if (!eku.empty()) exts += extension(oid::ext_key_usage, false, der::seq(eku));
  exts += extension(oid::basic_constraints, true, der::seq(t.is_ca ? der::boolean(true) : std::string()));
  if (t.is_ca) {
    // SKI from a truncated SHA-256 of the public key (RFC 7093, method 1).
    exts += extension(oid::subject_key_id, false, der::octets(sha256(subject_spki_der).substr(0, 20)));
  }
  if (!issuer_key_id.empty()) exts += extension(oid::authority_key_id, false, der::seq(der::tlv(0x80, issuer_key_id)));
  std::string san;
  for (const auto &d : t.dns_names) san += der::tlv(0x82, d);
  for (const auto &ip : t.ip_addresses) {
    std::string raw = parse_ip(ip);
    if (raw.empty()) throw bad_request("not an IP address: " + ip);
    san += der::tlv(0x87, raw);
  }
  if (!san.empty()) exts += extension(oid::subject_alt_name, false, der::seq(san));

  std::string tbs = der::seq(der::tlv(0xa0, der::small_int(2)) + der::uint(serial) + alg.first + issuer_name_der +
                             der::seq(der::time(t.not_before) + der::time(t.not_after)) + encode_name(t) +
                             subject_spki_der + der::tlv(0xa3, der::seq(exts)));
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(alg.second);
  unsigned char hash[64];
  if (mbedtls_md(md, reinterpret_cast<const unsigned char *>(tbs.data()), tbs.size(), hash) != 0)
    throw internal_error("hashing failed");
  return der::seq(tbs + alg.first + der::bits(issuer_key.sign(alg.second, hash, mbedtls_md_get_size(md), pre)));
}

}  // namespace detail

// A self-signed CA (for serving certificates and tests): PEM cert and key.
struct CertificateAndKey {
  std::string cert_pem;
  std::string key_pem;
};

inline CertificateAndKey make_self_signed_ca(const std::string &common_name, Millis ttl,
                                             std::unique_ptr<PrivateKey> key = nullptr) {
  if (!key) key = PrivateKey::generate_ec();
  CertificateTemplate t;
  t.common_name = common_name;
  t.is_ca = true;
  t.key_usage = MBEDTLS_X509_KU_DIGITAL_SIGNATURE | MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN;
  auto now = Clock::now();
  t.not_before = now - kBackdate;
  t.not_after = now + ttl;
  std::string name = detail::encode_name(t);
  std::string spki = key->public_der();
  std::string der = detail::sign_certificate(t, spki, name, *key, "");
  return {detail::pem_encode("CERTIFICATE", der), key->to_pem()};
}

// Issues a certificate from `tmpl` for a new EC key, signed by the CA given
// as PEM. Used for serving certificates and for test fixtures.
inline CertificateAndKey issue_with_ca(const CertificateAndKey &ca, CertificateTemplate tmpl,
                                       std::unique_ptr<PrivateKey> key = nullptr) {
  auto ca_chain = CertificateChain::parse(ca.cert_pem);
  auto ca_key = PrivateKey::parse(ca.key_pem);
  if (!key) key = PrivateKey::generate_ec();
  const mbedtls_x509_crt *c = ca_chain->get();
  std::string issuer(reinterpret_cast<const char *>(c->subject_raw.p), c->subject_raw.len);
  std::string der = detail::sign_certificate(tmpl, key->public_der(), issuer, *ca_key, detail::subject_key_id(*c));
  return {detail::pem_encode("CERTIFICATE", der), key->to_pem()};
}

// A client certificate issued by the signer.
struct IssuedCertificate {
  std::string cert_pem;
  std::string key_pem;
  Clock::time_point not_before;
  Clock::time_point not_after;
  std::string serial_hex;  // for the audit line
};

// A ready client key: public part for the certificate, PEM for the caller.
struct ClientKey {
  std::string spki_der;
  std::string key_pem;
  std::shared_ptr<const PrivateKey> key;  // signs the CSR of the CSR strategy
  static ClientKey generate() {
    std::shared_ptr<const PrivateKey> k = PrivateKey::generate_ec();
    return {k->public_der(), k->to_pem(), k};
  }
};

// Keeps a few fresh P-256 client keys, and as many presignatures for the
// signer's curve (presign_for), ready so that key generation and the heavy
// half of the certificate's signature run off the request path, in one
// background thread that refills as they are taken.
class KeyPool {
 public:
  explicit KeyPool(size_t capacity) : capacity_(capacity) {
    if (capacity_ > 0) worker_ = std::thread([this] { run(); });
  }
  ~KeyPool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }
  KeyPool(const KeyPool &) = delete;
  KeyPool &operator=(const KeyPool &) = delete;

  // What one exchange takes: a client key (made here when none is ready)
  // and, for an EC signer's `curve`, a presignature when one is ready (no
  // other caller gets it; without one the signature is made whole, on the
  // request path). One lock and one wake-up for both. The refill thread is
  // woken after the lock is let go: woken under it, it would only block on
  // the lock again (two more context switches on the request path).
  struct Taken {
    ClientKey key;
    std::optional<Presignature> presignature;
  };
  Taken take(mbedtls_ecp_group_id curve) {
    std::optional<ClientKey> k;
    Taken t;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!keys_.empty()) {
        k = std::move(keys_.front());
        keys_.pop_front();
      } else {
        key_misses_++;
      }
      if (curve != MBEDTLS_ECP_DP_NONE && curve == curve_) {
        if (presignatures_.empty()) {
          presignature_misses_++;
        } else {
          t.presignature = std::move(presignatures_.front());
          presignatures_.pop_front();
          presignatures_taken_++;
        }
      }
    }
    cv_.notify_one();
    t.key = k ? std::move(*k) : ClientKey::generate();
    return t;
  }
  ClientKey take() { return take(MBEDTLS_ECP_DP_NONE).key; }
  // Presignatures are made for `curve` from now on (MBEDTLS_ECP_DP_NONE:
  // none, for an RSA signer); those for another curve are dropped.
  void presign_for(mbedtls_ecp_group_id curve) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (curve == curve_) return;
      curve_ = curve;
      presignatures_.clear();
    }
    cv_.notify_one();
  }
  size_t ready() const {
    std::lock_guard<std::mutex> lk(mu_);
    return keys_.size();
  }
  size_t presignatures_ready() const {
    std::lock_guard<std::mutex> lk(mu_);
    return presignatures_.size();
  }
  size_t presignatures_taken() const {  // since the pool was made
    std::lock_guard<std::mutex> lk(mu_);
    return presignatures_taken_;
  }
  // Takes that found none ready, so that the work was done on the request
  // path (since the pool was made): a pool that does not keep up.
  size_t key_misses() const {
    std::lock_guard<std::mutex> lk(mu_);
    return key_misses_;
  }
  size_t presignature_misses() const {
    std::lock_guard<std::mutex> lk(mu_);
    return presignature_misses_;
  }

 private:
  void run() {
    // Background work: request threads go first. SCHED_IDLE (per thread on
    // Linux) runs it only on a core nothing else wants, and a request
    // thread that wakes never waits behind it; nice 10 where that is
    // refused (a busy request then does the work itself, see take()).
    sched_param idle{};
    if (sched_setscheduler(0, SCHED_IDLE, &idle) != 0)
      setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
    std::unique_lock<std::mutex> lk(mu_);
    auto wants_key = [this] { return keys_.size() < capacity_; };
    auto wants_presignature = [this] { return curve_ != MBEDTLS_ECP_DP_NONE && presignatures_.size() < capacity_; };
    while (!stop_) {
      if (!wants_key() && !wants_presignature()) {
        cv_.wait(lk, [&] { return stop_ || wants_key() || wants_presignature(); });
        continue;
      }
      // An exchange takes one of each: refill the one with fewer ready.
      bool key = wants_key() && (!wants_presignature() || keys_.size() <= presignatures_.size());
      mbedtls_ecp_group_id curve = curve_;
      lk.unlock();
      std::optional<ClientKey> k;
      std::optional<Presignature> p;
      try {
        if (key)
          k = ClientKey::generate();
        else
          p = Presignature::make(curve);
      } catch (const Error &) {
      }
      lk.lock();
      if (k) keys_.push_back(std::move(*k));
      if (p && curve == curve_) presignatures_.push_back(std::move(*p));
    }
  }
  size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ClientKey> keys_;
  mbedtls_ecp_group_id curve_ = MBEDTLS_ECP_DP_NONE;
  std::deque<Presignature> presignatures_;
  size_t presignatures_taken_ = 0, key_misses_ = 0, presignature_misses_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

// The cluster signer: the CA kube-apiserver trusts for client certificates
// (--client-ca-file), with its private key. Immutable once loaded.
class Signer {
 public:
  // Loads a signer from PEM. The cert file may be a bundle (rotation): the
  // certificate whose public key matches the key is the one used.
  static std::shared_ptr<const Signer> from_pem(const std::string &cert_pem, const std::string &key_pem,
                                                Clock::time_point now = Clock::now()) {
    auto s = std::shared_ptr<Signer>(new Signer());
    try {
      s->chain_ = CertificateChain::parse(cert_pem);
    } catch (const Error &e) {
      throw Error(500, "InternalError", std::string("signer certificate: ") + e.what());
    }
    try {
      s->key_ = PrivateKey::parse(key_pem);
    } catch (const Error &e) {
      throw Error(500, "InternalError", std::string("signer key: ") + e.what());
    }
    if (!s->key_->is_ec() && !s->key_->is_rsa())
      throw internal_error("signer key: only ECDSA and RSA keys are supported");
    if (s->key_->is_rsa() && s->key_->bits() < 2048)
      throw internal_error("signer key: RSA keys under 2048 bits are refused");
    for (const mbedtls_x509_crt *c = s->chain_->get(); c && c->raw.len; c = c->next) {
      if (mbedtls_pk_check_pair(&c->pk, s->key_->get()) == 0) {
        s->cert_ = c;
        break;
      }
    }
    if (!s->cert_) throw internal_error("signer certificate and key do not match");
    const mbedtls_x509_crt *c = s->cert_;
    if (!c->ca_istrue) throw internal_error("signer certificate is not a CA (basicConstraints CA:FALSE or absent)");
    if ((c->ext_types & MBEDTLS_X509_EXT_KEY_USAGE) && !(c->key_usage & MBEDTLS_X509_KU_KEY_CERT_SIGN))
      throw internal_error("signer certificate may not sign certificates (keyUsage lacks keyCertSign)");
    s->not_before_ = detail::from_x509_time(c->valid_from);
    s->not_after_ = detail::from_x509_time(c->valid_to);
    if (s->not_after_ <= now) throw internal_error("signer certificate expired at " + format_rfc3339(s->not_after_));
    if (s->not_before_ > now + kBackdate)  // clock skew
      throw internal_error("signer certificate is not valid before " + format_rfc3339(s->not_before_));
    s->subject_der_.assign(reinterpret_cast<const char *>(c->subject_raw.p), c->subject_raw.len);
    s->subject_ = detail::x509_name_string(&c->subject);
    s->key_id_ = detail::subject_key_id(*c);
    s->cert_pem_ = detail::pem_encode("CERTIFICATE", std::string(reinterpret_cast<const char *>(c->raw.p), c->raw.len));
    s->bundle_pem_ = cert_pem;
    s->fingerprint_ = detail::hex(detail::sha256(std::string(reinterpret_cast<const char *>(c->raw.p), c->raw.len)));
    return s;
  }

  // Issues a client certificate: CN = username, one O per group, clientAuth
  // only, valid from now - skew to now + ttl (clamped to the signer's life).
  // `pre`: a presignature for the signer's curve (KeyPool), spent here.
  IssuedCertificate issue(const std::string &username, const std::vector<std::string> &groups, Millis ttl,
                          const ClientKey &key, Clock::time_point now = Clock::now(), Millis skew = kBackdate,
                          Presignature *pre = nullptr) const {
    if (username.empty()) throw bad_request("username must not be empty");
    CertificateTemplate t;
    t.common_name = username;
    for (const auto &g : groups)
      if (!g.empty()) t.organizations.push_back(g);  // X.520 forbids empty strings
    t.client_auth = true;
    t.key_usage = MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
    now = std::chrono::time_point_cast<std::chrono::seconds>(now);
    // A signer that expired after it was loaded would issue dead certificates.
    if (not_after_ <= now) throw internal_error("cluster signer expired at " + format_rfc3339(not_after_));
    t.not_before = std::max(now - skew, not_before_);
    t.not_after = std::min(now + ttl, not_after_);
    t.serial = detail::random_bytes(16);  // 128 random bits, as upstream
    if (t.serial[0] == 0) t.serial[0] = 1;
    std::string der = detail::sign_certificate(t, key.spki_der, subject_der_, *key_, key_id_, pre);
    return {detail::pem_encode("CERTIFICATE", der), key.key_pem, t.not_before, t.not_after, detail::hex(t.serial)};
  }

  const std::string &cert_pem() const { return cert_pem_; }
  // The whole certificate file as given (an intermediate with its root, or
  // old and new CAs during a rotation).
  const std::string &bundle_pem() const { return bundle_pem_; }
  const std::string &subject() const { return subject_; }
  const std::string &fingerprint() const { return fingerprint_; }  // SHA-256 of the DER
  std::string key_type() const { return key_->describe(); }
  mbedtls_ecp_group_id curve() const { return key_->curve(); }  // NONE for RSA
  Clock::time_point not_before() const { return not_before_; }
  Clock::time_point not_after() const { return not_after_; }

 private:
  Signer() = default;
  std::unique_ptr<CertificateChain> chain_;
  std::unique_ptr<PrivateKey> key_;
  const mbedtls_x509_crt *cert_ = nullptr;
  std::string subject_der_, subject_, key_id_, cert_pem_, bundle_pem_, fingerprint_;
  Clock::time_point not_before_, not_after_;
};

// Where distributions keep the cluster signer, k3s first.
struct SignerLocation {
  std::string distribution;
  std::string cert_path;
  std::string key_path;
};
inline std::vector<SignerLocation> known_signer_locations() {
  return {
      {"k3s", "/var/lib/rancher/k3s/server/tls/client-ca.crt", "/var/lib/rancher/k3s/server/tls/client-ca.key"},
      {"rke2", "/var/lib/rancher/rke2/server/tls/client-ca.crt", "/var/lib/rancher/rke2/server/tls/client-ca.key"},
      {"kubeadm", "/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/pki/ca.key"},
      {"k0s", "/var/lib/k0s/pki/ca.crt", "/var/lib/k0s/pki/ca.key"},
      {"microk8s", "/var/snap/microk8s/current/certs/ca.crt", "/var/snap/microk8s/current/certs/ca.key"},
  };
}

// First known location under `root` ("/" on the host, the hostPath mount
// point in a pod) where both files exist.
inline std::optional<SignerLocation> find_signer(const std::string &root) {
  std::string prefix = root == "/" ? "" : root;
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  for (auto loc : known_signer_locations()) {
    loc.cert_path = prefix + loc.cert_path;
    loc.key_path = prefix + loc.key_path;
    if (access(loc.cert_path.c_str(), R_OK) == 0 && access(loc.key_path.c_str(), R_OK) == 0) return loc;
  }
  return std::nullopt;
}

// Issues client certificates with the current signer. The signer can be
// swapped at any time (rotation); requests in flight keep the one they took.
class CertificateAuthority {
 public:
  explicit CertificateAuthority(size_t key_pool = 16) : pool_(key_pool) {}

  void set_signer(std::shared_ptr<const Signer> s) {
    pool_.presign_for(s ? s->curve() : MBEDTLS_ECP_DP_NONE);
    std::lock_guard<std::mutex> lk(mu_);
    signer_ = std::move(s);
  }
  std::shared_ptr<const Signer> signer() const {
    std::lock_guard<std::mutex> lk(mu_);
    return signer_;
  }
  IssuedCertificate issue(const std::string &username, const std::vector<std::string> &groups,
                          Millis ttl = std::chrono::minutes(5)) {
    auto s = signer();
    if (!s) throw Error(503, "ServiceUnavailable", "no cluster signer is loaded");
    KeyPool::Taken t = pool_.take(s->curve());
    return s->issue(username, groups, ttl, t.key, Clock::now(), kBackdate, t.presignature ? &*t.presignature : nullptr);
  }
  KeyPool &key_pool() { return pool_; }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Signer> signer_;
  KeyPool pool_;
};

// --- 2b. Certificates from the cluster's CSR API: the PKCS#10 request we
// send and the checks on what comes back (used by section 5's CsrIssuer).

namespace detail {

// A PKCS#10 CertificationRequest (RFC 2986) for CN = user, one O per group,
// signed with the client key; no attributes (the API server's signer sets
// usages and lifetime from the CSR object's spec).
inline std::string certificate_request_der(const std::string &username, const std::vector<std::string> &groups,
                                           const ClientKey &key) {
  if (!key.key) throw internal_error("client key has no private part to sign the request with");
  CertificateTemplate t;
  t.common_name = username;
  for (const auto &g : groups)
    if (!g.empty()) t.organizations.push_back(g);
  std::string info = der::seq(der::small_int(0) + encode_name(t) + key.spki_der + der::tlv(0xa0, ""));
  auto alg = signature_algorithm(*key.key);
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(alg.second);
  unsigned char hash[64];
  if (mbedtls_md(md, reinterpret_cast<const unsigned char *>(info.data()), info.size(), hash) != 0)
    throw internal_error("hashing failed");
  return der::seq(info + alg.first + der::bits(key.key->sign(alg.second, hash, mbedtls_md_get_size(md))));
}

inline std::string describe_duration(Millis d) {
  int64_t s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  std::string out;
  if (s >= 3600) out += std::to_string(s / 3600) + "h";
  if (s % 3600 >= 60) out += std::to_string(s % 3600 / 60) + "m";
  if (s % 60 || out.empty()) out += std::to_string(s % 60) + "s";
  return out;
}

}  // namespace detail

// What was asked of the cluster's signer, to check what it returned.
struct CertificateExpectation {
  std::string username;
  std::vector<std::string> groups;  // as asked; empty names are not in the certificate
  std::string spki_der;             // our client key's public part
  Millis lifetime{0};               // spec.expirationSeconds
  Millis tolerance = kBackdate;     // the signer's backdating
  std::string trusted_ca_pem;       // kube-apiserver's client CA when known; empty: not checked
};

// Why a certificate issued through the CSR API must not be handed out.
struct CertificateProblem {
  std::string reason;   // a CredentialIssuer reason: CertificateLifetimeTooLong, CertificateMismatch
  std::string message;  // a sentence for people
};

// Checks an issued certificate (PEM, the leaf first) against what was asked:
// the user exactly and the same groups, our public key, clientAuth and not
// a CA, a chain to the client CA where known, valid now, and a lifetime no
// longer than asked plus the backdating tolerance. Fills `out` (certificate
// PEM, times, serial) when it passes.
inline std::optional<CertificateProblem> check_issued_certificate(const std::string &pem,
                                                                  const CertificateExpectation &want,
                                                                  IssuedCertificate &out,
                                                                  Clock::time_point now = Clock::now()) {
  auto mismatch = [](const std::string &m) { return CertificateProblem{"CertificateMismatch", m}; };
  std::unique_ptr<CertificateChain> chain;
  try {
    chain = CertificateChain::parse(pem);
  } catch (const Error &e) {
    return mismatch(std::string("the issued certificate does not parse: ") + e.what());
  }
  const mbedtls_x509_crt *c = chain->get();
  if (detail::common_name(&c->subject) != want.username)
    return mismatch("the issued certificate names another user than was asked for");
  // The same groups, in any order: Go's signer (kube-controller-manager)
  // puts them in one RDN, a SET OF that DER sorts.
  std::vector<std::string> groups, got = detail::organizations(&c->subject);
  for (const auto &g : want.groups)
    if (!g.empty()) groups.push_back(g);
  std::sort(groups.begin(), groups.end());
  std::sort(got.begin(), got.end());
  if (got != groups) return mismatch("the issued certificate names other groups than were asked for");
  unsigned char buf[2048];
  int n = mbedtls_pk_write_pubkey_der(const_cast<mbedtls_pk_context *>(&c->pk), buf, sizeof buf);
  if (n < 0 || std::string(reinterpret_cast<char *>(buf + sizeof buf - n), static_cast<size_t>(n)) != want.spki_der)
    return mismatch("the issued certificate is not for the key that was sent");
  if (c->ca_istrue) return mismatch("the issued certificate is a CA certificate");
  if (!(c->ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE) ||
      mbedtls_x509_crt_check_extended_key_usage(c, MBEDTLS_OID_CLIENT_AUTH,
                                                MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)) != 0)
    return mismatch("the issued certificate is not for client authentication (no clientAuth extended key usage)");
  if (!want.trusted_ca_pem.empty()) {
    std::unique_ptr<CertificateChain> roots;
    try {
      roots = CertificateChain::parse(want.trusted_ca_pem);
    } catch (const Error &e) {
      return mismatch(std::string("kube-apiserver's client CA does not parse: ") + e.what());
    }
    uint32_t flags = 0;
    int ret = mbedtls_x509_crt_verify(const_cast<mbedtls_x509_crt *>(c), roots->get(), nullptr, nullptr, &flags,
                                      nullptr, nullptr);
    // Time is checked below against our clock, with the stated tolerance;
    // any other flag, or a failure with no flag, means no chain.
    flags &= ~static_cast<uint32_t>(MBEDTLS_X509_BADCERT_FUTURE | MBEDTLS_X509_BADCERT_EXPIRED);
    if (ret != 0 && (ret != MBEDTLS_ERR_X509_CERT_VERIFY_FAILED || flags != 0))
      return mismatch("the issued certificate does not chain to the CA kube-apiserver trusts for clients");
  }
  Clock::time_point nb = detail::from_x509_time(c->valid_from), na = detail::from_x509_time(c->valid_to);
  if (na <= now) return mismatch("the issued certificate has already expired");
  if (nb > now + want.tolerance) return mismatch("the issued certificate is not valid yet");
  Millis life = std::chrono::duration_cast<Millis>(na - nb);
  // One second of slack: the signer's times are whole seconds.
  Millis bound = want.lifetime + want.tolerance + std::chrono::seconds(1);
  if (life > bound || na > now + want.lifetime + want.tolerance)
    return CertificateProblem{
        "CertificateLifetimeTooLong",
        "the cluster's signer issued a certificate valid for " + detail::describe_duration(life) + " although " +
            detail::describe_duration(want.lifetime) +
            " were asked for (spec.expirationSeconds): it does not honour the requested lifetime (Kubernetes "
            "before 1.22, or a signer that ignores it), so no certificate from it is handed out; lower "
            "kube-controller-manager's --cluster-signing-duration, or use the signer-files strategy"};
  out.cert_pem = detail::pem_encode("CERTIFICATE", std::string(reinterpret_cast<const char *>(c->raw.p), c->raw.len));
  out.not_before = nb;
  out.not_after = na;
  out.serial_hex = detail::hex(std::string(reinterpret_cast<const char *>(c->serial.p), c->serial.len));
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// 3. TLS transport on mbedTLS
// Owns TLS configs, the HTTPS server (a cpp-httplib Server whose sockets we
// wrap in TLS) and the HTTPS client. Calls sections 0-2.
// ---------------------------------------------------------------------------

// Server side TLS material, PEM. An empty client CA: no client certificate
// is requested.
struct TlsServerCredentials {
  std::string cert_chain_pem;
  std::string key_pem;
  std::string client_ca_pem;
};

// What TLS established about the peer of the current connection.
struct PeerCertificate {
  bool present = false;   // the client sent a certificate
  bool verified = false;  // ...and it chains to the configured client CA, with clientAuth
  std::string common_name;
  std::vector<std::string> organizations;
};

// Client side TLS settings. An empty CA uses the system roots.
struct ClientTlsOptions {
  std::string ca_pem;
  std::string server_name;  // name to verify (and send as SNI) instead of the URL's host
  std::string client_cert_pem;
  std::string client_key_pem;
  bool insecure_skip_verify = false;
};

// A parsed https:// URL.
struct Url {
  std::string scheme;
  std::string host;  // without brackets for IPv6
  int port = 443;
  std::string path;  // "/..." (never empty)

  static Url parse(const std::string &s) {
    Url u;
    auto sep = s.find("://");
    if (sep == std::string::npos) throw bad_request("URL must start with https://");
    u.scheme = s.substr(0, sep);
    for (auto &c : u.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string rest = s.substr(sep + 3);
    auto slash = rest.find_first_of("/?#");
    std::string hostport = rest.substr(0, slash);
    u.path = slash == std::string::npos ? "/" : rest.substr(slash);
    if (!u.path.empty() && u.path[0] != '/') u.path = "/" + u.path;
    auto hash = u.path.find('#');
    if (hash != std::string::npos) u.path.resize(hash);
    if (hostport.find('@') != std::string::npos) throw bad_request("URL must not carry user information");
    if (!hostport.empty() && hostport[0] == '[') {
      auto close = hostport.find(']');
      if (close == std::string::npos) throw bad_request("URL has an unterminated IPv6 address");
      u.host = hostport.substr(1, close - 1);
      std::string after = hostport.substr(close + 1);
      if (!after.empty()) {
        if (after[0] != ':') throw bad_request("URL has garbage after the host");
        hostport = after;
      } else {
        hostport.clear();
      }
    } else {
      auto colon = hostport.rfind(':');
      u.host = hostport.substr(0, colon);
      hostport = colon == std::string::npos ? "" : hostport.substr(colon);
      // "https://fd00::1/" or "https://h:1:2/": an IPv6 address needs brackets.
      if (u.host.find(':') != std::string::npos) throw bad_request("URL has an invalid host (IPv6 needs [brackets])");
    }
    if (!hostport.empty()) {
      std::string p = hostport.substr(1);
      if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), ::isdigit))
        throw bad_request("URL has an invalid port");
      u.port = std::stoi(p);
      if (u.port < 1 || u.port > 65535) throw bad_request("URL has an invalid port");
    } else if (u.scheme == "http") {
      u.port = 80;
    }
    if (u.host.empty()) throw bad_request("URL has no host");
    for (char c : u.host)
      if (static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '\\') throw bad_request("URL has an invalid host");
    return u;
  }
  std::string host_for_url() const { return host.find(':') != std::string::npos ? "[" + host + "]" : host; }
  std::string base() const { return scheme + "://" + host_for_url() + ":" + std::to_string(port); }
};

namespace detail {

// ECDHE with AEAD ciphers only (what Go and kube-apiserver prefer).
inline const int *cipher_suites() {
  static const int suites[] = {MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                               MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                               MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                               MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                               MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                               MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                               0};
  return suites;
}

// An immutable TLS configuration with everything it points to.
struct TlsConfig {
  mbedtls_ssl_config conf;
  std::unique_ptr<CertificateChain> own_chain;
  std::unique_ptr<PrivateKey> own_key;
  std::unique_ptr<CertificateChain> ca;
  std::string verify_name;  // client: expected server name
  bool verify_ip = false;   // client: verify_name is an IP literal
  bool skip_verify = false;
  std::shared_ptr<void> tickets;  // a server's TicketKeys, kept alive as long as this
  TlsConfig() { mbedtls_ssl_config_init(&conf); }
  ~TlsConfig() { mbedtls_ssl_config_free(&conf); }
  TlsConfig(const TlsConfig &) = delete;
  TlsConfig &operator=(const TlsConfig &) = delete;
};

inline const char **alpn_http11() {
  static const char *protos[] = {"http/1.1", nullptr};
  return protos;
}

// Key exchange curves in our order of preference, as Go's crypto/tls (and
// so kube-apiserver) prefers them: X25519, then P-256. mbedTLS's default
// list starts with P-521, which a server then picks even when the client
// offers P-256 first (several times the cost for nothing). P-384 and P-521
// stay last: the list also bounds the curves of peers' certificate keys.
inline const mbedtls_ecp_group_id *key_exchange_curves() {
  static const mbedtls_ecp_group_id curves[] = {MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
                                                MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_SECP521R1,
                                                MBEDTLS_ECP_DP_NONE};
  return curves;
}
// Signature hashes for TLS 1.2 handshakes: SHA-2 of 256 bits and more
// (mbedTLS's default also accepts SHA-224, which Go does not offer).
inline const int *signature_hashes() {
  static const int hashes[] = {MBEDTLS_MD_SHA256, MBEDTLS_MD_SHA384, MBEDTLS_MD_SHA512, MBEDTLS_MD_NONE};
  return hashes;
}

inline void base_config(TlsConfig &c, int endpoint) {
  int ret = mbedtls_ssl_config_defaults(&c.conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
  if (ret != 0) throw internal_error("TLS config: " + mbed_error(ret));
  mbedtls_ssl_conf_rng(&c.conf, rng_fill, nullptr);
  mbedtls_ssl_conf_min_version(&c.conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_ciphersuites(&c.conf, cipher_suites());
  mbedtls_ssl_conf_curves(&c.conf, key_exchange_curves());
  mbedtls_ssl_conf_sig_hashes(&c.conf, signature_hashes());
  mbedtls_ssl_conf_alpn_protocols(&c.conf, alpn_http11());
#if defined(MBEDTLS_SSL_RENEGOTIATION)  // tools/build-mbedtls.sh builds mbedTLS without it
  mbedtls_ssl_conf_renegotiation(&c.conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
#endif
}

// Session tickets (RFC 5077) for a server: resumed handshakes skip the
// key exchange and the certificate signature. The ticket key is made at
// random and replaced every `lifetime` (mbedTLS keeps the previous one, so
// a ticket stays usable for up to two lifetimes); one context serves every
// configuration of a server, so tickets survive certificate reloads. Never
// written anywhere: a restart invalidates every ticket.
class TicketKeys {
 public:
  explicit TicketKeys(uint32_t lifetime_seconds = 3600) {
    mbedtls_ssl_ticket_init(&ctx_);
    ok_ = mbedtls_ssl_ticket_setup(&ctx_, rng_fill, nullptr, MBEDTLS_CIPHER_AES_256_GCM, lifetime_seconds) == 0;
  }
  ~TicketKeys() { mbedtls_ssl_ticket_free(&ctx_); }
  TicketKeys(const TicketKeys &) = delete;
  TicketKeys &operator=(const TicketKeys &) = delete;
  void install(mbedtls_ssl_config &conf) {
    if (ok_) mbedtls_ssl_conf_session_tickets_cb(&conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, &ctx_);
  }

 private:
  mbedtls_ssl_ticket_context ctx_;
  bool ok_ = false;
};

#if defined(MBEDTLS_SSL_ASYNC_PRIVATE)
// A server's handshake signature (ServerKeyExchange) made with the thread's
// prepared curve group, as certificates are (PrivateKey::sign): mbedTLS's
// own path copies the key's group and rebuilds its fixed-point table for
// every handshake. mbedTLS asks (start), then takes the result (resume) at
// once; an RSA key goes mbedTLS's own way.
inline int async_sign_start(mbedtls_ssl_context *ssl, mbedtls_x509_crt *, mbedtls_md_type_t md,
                            const unsigned char *hash, size_t hash_len) {
  const auto *key = static_cast<const PrivateKey *>(mbedtls_ssl_conf_get_async_config_data(ssl->conf));
  if (!key || !key->is_ec()) return MBEDTLS_ERR_SSL_HW_ACCEL_FALLTHROUGH;
  try {
    mbedtls_ssl_set_async_operation_data(ssl, new std::string(key->sign(md, hash, hash_len)));
    return 0;
  } catch (const std::exception &) {
    return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
  }
}
inline int async_resume(mbedtls_ssl_context *ssl, unsigned char *out, size_t *out_len, size_t out_size) {
  std::unique_ptr<std::string> sig(static_cast<std::string *>(mbedtls_ssl_get_async_operation_data(ssl)));
  mbedtls_ssl_set_async_operation_data(ssl, nullptr);
  if (!sig || sig->size() > out_size) return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
  std::memcpy(out, sig->data(), sig->size());
  *out_len = sig->size();
  return 0;
}
inline void async_cancel(mbedtls_ssl_context *ssl) {
  delete static_cast<std::string *>(mbedtls_ssl_get_async_operation_data(ssl));
  mbedtls_ssl_set_async_operation_data(ssl, nullptr);
}
#endif

inline std::shared_ptr<TlsConfig> make_server_config(const TlsServerCredentials &cr,
                                                     const std::shared_ptr<TicketKeys> &tickets = nullptr) {
  auto c = std::make_shared<TlsConfig>();
  base_config(*c, MBEDTLS_SSL_IS_SERVER);
  if (tickets) {
    tickets->install(c->conf);
    c->tickets = tickets;  // the configuration keeps its ticket keys alive
  }
  try {
    c->own_chain = CertificateChain::parse(cr.cert_chain_pem);
  } catch (const Error &e) {
    throw bad_request(std::string("serving certificate: ") + e.what());
  }
  try {
    c->own_key = PrivateKey::parse(cr.key_pem);
  } catch (const Error &e) {
    throw bad_request(std::string("serving key: ") + e.what());
  }
  if (mbedtls_pk_check_pair(&c->own_chain->get()->pk, c->own_key->get()) != 0)
    throw bad_request("serving certificate and key do not match");
  int ret = mbedtls_ssl_conf_own_cert(&c->conf, c->own_chain->get(), c->own_key->get());
#if defined(MBEDTLS_SSL_ASYNC_PRIVATE)
  mbedtls_ssl_conf_async_private_cb(&c->conf, async_sign_start, nullptr, async_resume, async_cancel, c->own_key.get());
#endif
  if (ret != 0) throw bad_request("serving certificate: " + mbed_error(ret));
  if (!cr.client_ca_pem.empty()) {
    try {
      c->ca = CertificateChain::parse(cr.client_ca_pem);
    } catch (const Error &e) {
      throw bad_request(std::string("client CA: ") + e.what());
    }
    mbedtls_ssl_conf_ca_chain(&c->conf, c->ca->get(), nullptr);
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
  } else {
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE);
  }
  return c;
}

inline bool is_ip_literal(const std::string &h) { return !parse_ip(h).empty(); }

// This host's IPv4 and IPv6 addresses (link-local ones left out), in the
// order the kernel lists them.
inline std::vector<std::string> host_addresses() {
  std::vector<std::string> out;
  ifaddrs *list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs *i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
    char buf[INET6_ADDRSTRLEN] = {0};
    if (i->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in *>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto *a6 = &reinterpret_cast<sockaddr_in6 *>(i->ifa_addr)->sin6_addr;
      if (IN6_IS_ADDR_LINKLOCAL(a6)) continue;
      inet_ntop(AF_INET6, a6, buf, sizeof buf);
    } else {
      continue;
    }
    if (std::find(out.begin(), out.end(), buf) == out.end()) out.push_back(buf);
  }
  freeifaddrs(list);
  return out;
}

inline std::shared_ptr<TlsConfig> make_client_config(const ClientTlsOptions &o, const std::string &host) {
  auto c = std::make_shared<TlsConfig>();
  base_config(*c, MBEDTLS_SSL_IS_CLIENT);
  c->skip_verify = o.insecure_skip_verify;
  c->verify_name = o.server_name.empty() ? host : o.server_name;
  c->verify_ip = is_ip_literal(c->verify_name);
  if (o.insecure_skip_verify) {
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE);
  } else {
    if (o.ca_pem.empty()) {
      c->ca = CertificateChain::system_roots();
    } else {
      try {
        c->ca = CertificateChain::parse(o.ca_pem);
      } catch (const Error &e) {
        throw bad_request(std::string("certificate authority data: ") + e.what());
      }
    }
    mbedtls_ssl_conf_ca_chain(&c->conf, c->ca->get(), nullptr);
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
  }
  if (!o.client_cert_pem.empty() || !o.client_key_pem.empty()) {
    c->own_chain = CertificateChain::parse(o.client_cert_pem);
    c->own_key = PrivateKey::parse(o.client_key_pem);
    if (mbedtls_pk_check_pair(&c->own_chain->get()->pk, c->own_key->get()) != 0)
      throw bad_request("client certificate and key do not match");
    int ret = mbedtls_ssl_conf_own_cert(&c->conf, c->own_chain->get(), c->own_key->get());
    if (ret != 0) throw bad_request("client certificate: " + mbed_error(ret));
  }
  return c;
}

// Socket I/O for mbedTLS with a per-operation timeout and an overall
// deadline, MSG_NOSIGNAL on send (no SIGPIPE) and EINTR handled.
struct Bio {
  int fd = -1;
  int timeout_ms = 10000;
  Steady::time_point deadline = Steady::time_point::max();
  const std::atomic<bool> *cancel = nullptr;
  // Reads return MBEDTLS_ERR_SSL_WANT_READ instead of waiting (a server's
  // handshake runs in steps, each when the client's bytes are there).
  bool nonblocking = false;

  int wait_ms() const {
    if (deadline == Steady::time_point::max()) return timeout_ms;
    // Rounded up: a timeout is only reported once the deadline has passed.
    auto left = std::chrono::ceil<Millis>(deadline - Steady::now()).count();
    if (left <= 0) return 0;
    return static_cast<int>(std::min<int64_t>(left, timeout_ms));
  }
  // Waits for the socket; 0 on timeout or when `cancel` is raised (polled
  // every 100 ms, so a long watch can be abandoned promptly).
  static int wait(const Bio *b, short events) {
    pollfd p{b->fd, events, 0};
    auto until = Steady::now() + Millis(b->wait_ms());
    for (;;) {
      if (b->cancel && b->cancel->load()) return 0;
      auto left = std::chrono::ceil<Millis>(until - Steady::now()).count();
      if (left <= 0) return 0;
      int ms = static_cast<int>(b->cancel ? std::min<int64_t>(left, 100) : left);
      int r = ::poll(&p, 1, ms);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0 && b->cancel) continue;
      return r;
    }
  }
  static int send(void *ctx, const unsigned char *buf, size_t len) {
    auto *b = static_cast<Bio *>(ctx);
    for (;;) {
      int w = wait(b, POLLOUT);
      if (w == 0) return MBEDTLS_ERR_SSL_TIMEOUT;
      if (w < 0) return MBEDTLS_ERR_NET_SEND_FAILED;
      ssize_t n = ::send(b->fd, buf, len, MSG_NOSIGNAL);
      if (n >= 0) return static_cast<int>(n);
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == EPIPE || errno == ECONNRESET) return MBEDTLS_ERR_NET_CONN_RESET;
      return MBEDTLS_ERR_NET_SEND_FAILED;
    }
  }
  static int recv(void *ctx, unsigned char *buf, size_t len) {
    auto *b = static_cast<Bio *>(ctx);
    if (b->nonblocking) {
      for (;;) {
        ssize_t n = ::recv(b->fd, buf, len, MSG_DONTWAIT);
        if (n >= 0) return static_cast<int>(n);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return MBEDTLS_ERR_SSL_WANT_READ;
        return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
      }
    }
    for (;;) {
      int w = wait(b, POLLIN);
      if (w == 0) return MBEDTLS_ERR_SSL_TIMEOUT;
      if (w < 0) return MBEDTLS_ERR_NET_RECV_FAILED;
      ssize_t n = ::recv(b->fd, buf, len, 0);
      if (n >= 0) return static_cast<int>(n);
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNRESET) return MBEDTLS_ERR_NET_CONN_RESET;
      return MBEDTLS_ERR_NET_RECV_FAILED;
    }
  }
};

// One TLS connection over an already connected socket.
struct TlsSession {
  mbedtls_ssl_context ssl;
  Bio bio;
  std::shared_ptr<TlsConfig> config;  // keeps the certs alive for the connection

  TlsSession(int fd, std::shared_ptr<TlsConfig> cfg, int timeout_ms) : config(std::move(cfg)) {
    mbedtls_ssl_init(&ssl);
    bio.fd = fd;
    bio.timeout_ms = timeout_ms;
    int ret = mbedtls_ssl_setup(&ssl, &config->conf);
    if (ret != 0) throw internal_error("TLS setup: " + mbed_error(ret));
    mbedtls_ssl_set_bio(&ssl, &bio, Bio::send, Bio::recv, nullptr);
  }
  ~TlsSession() { mbedtls_ssl_free(&ssl); }
  TlsSession(const TlsSession &) = delete;
  TlsSession &operator=(const TlsSession &) = delete;

  // Returns 0 or an mbedTLS error.
  int handshake(Steady::time_point deadline) {
    bio.deadline = deadline;
    int ret;
    do {
      ret = mbedtls_ssl_handshake(&ssl);
    } while ((ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) && Steady::now() < deadline);
    bio.deadline = Steady::time_point::max();
    return ret;
  }
  void close_notify() {
    bio.timeout_ms = std::min(bio.timeout_ms, 1000);
    mbedtls_ssl_close_notify(&ssl);
  }
};

// httplib::Stream over a TLS session. `budget` caps the bytes one request
// may send (headers plus body), whatever its framing.
// One request's deadlines are separate: reading it (`set_deadline`), then
// handling it (no stream deadline: the handler bounds its own waits, as the
// webhook timeout does), then writing the answer (a fresh `write_timeout`
// from its first byte). A request whose reading and handling together took
// longer than the read deadline still gets its whole answer.
class TlsStream : public httplib::Stream {
 public:
  // write_timeout 0 (clients): one deadline for the whole exchange.
  explicit TlsStream(TlsSession &s, Millis write_timeout = Millis(0)) : s_(s), write_timeout_(write_timeout) {}
  void set_budget(size_t b) {
    budget_ = b;
    used_ = 0;
    failed_ = false;
  }
  // A read failed (budget spent, timeout, error) since set_budget: the
  // request was cut short and the rest of the stream cannot be trusted.
  bool failed() const { return failed_; }
  // The read deadline of the next request; its answer is not written yet.
  void set_deadline(Steady::time_point d) {
    read_deadline_ = d;
    writing_ = false;
    s_.bio.deadline = d;
  }
  // The status code of the last answer written (0: none yet).
  int last_status() const { return last_status_; }
  // Raised when the server stops: reading a request gives up at once.
  void set_read_cancel(const std::atomic<bool> *c) { read_cancel_ = c; }

  bool is_readable() const override {
    if (!flush()) return false;
    if (mbedtls_ssl_get_bytes_avail(&s_.ssl) > 0) return true;
    return Bio::wait(&s_.bio, POLLIN) > 0;
  }
  bool is_writable() const override { return Bio::wait(&s_.bio, POLLOUT) > 0; }
  // Sends a held message head (see write); false when that failed.
  bool flush() const {
    if (held_.empty()) return true;
    std::string h;
    h.swap(held_);
    return send_all(h.data(), h.size());
  }
  ssize_t read(char *ptr, size_t size) override {
    if (!flush()) {
      failed_ = true;
      return -1;
    }
    if (used_ >= budget_) {
      failed_ = true;
      return -1;
    }
    if (!writing_ && write_timeout_.count() > 0) {
      s_.bio.deadline = read_deadline_;
      s_.bio.cancel = read_cancel_;  // a stopping server does not wait for the rest of a request
    }
    size = std::min(size, budget_ - used_);
    for (;;) {
      int r = mbedtls_ssl_read(&s_.ssl, reinterpret_cast<unsigned char *>(ptr), size);
      if (r > 0) {
        used_ += static_cast<size_t>(r);
        return r;
      }
      if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) continue;
      if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return 0;
      failed_ = true;
      return -1;
    }
  }
  ssize_t write(const char *ptr, size_t size) override {
    if (!writing_ && write_timeout_.count() > 0) {
      writing_ = true;
      s_.bio.cancel = nullptr;  // an answer is always written whole
      s_.bio.deadline = Steady::now() + write_timeout_;
      // "HTTP/1.1 NNN ...": the status line is the answer's first write.
      if (size >= 12 && std::memcmp(ptr, "HTTP/1.", 7) == 0) last_status_ = std::atoi(std::string(ptr + 9, 3).c_str());
    }
    if (!held_.empty()) {  // the body of a held head: both in one record (of at most 16 KiB)
      std::string m;
      m.swap(held_);
      size_t first = std::min(size, m.size() < 16384 ? 16384 - m.size() : 0);
      m.append(ptr, first);
      bool ok = send_all(m.data(), m.size()) && send_all(ptr + first, size - first);
      return ok ? static_cast<ssize_t>(size) : -1;
    }
    // cpp-httplib writes a message's head in one call, then its body. A
    // head that announces a body waits for it, so that both go out as one
    // TLS record and one send: as two, the peer wakes for the head alone
    // and must wait again for the body. A head is held only when a body
    // of known length follows (never chunked streams); whatever comes
    // next, a read, or the end of the request (TlsServer) sends it.
    if (announces_body(ptr, size)) {
      held_.assign(ptr, size);
      return static_cast<ssize_t>(size);
    }
    return send_all(ptr, size) ? static_cast<ssize_t>(size) : -1;
  }
  void get_remote_ip_and_port(std::string &ip, int &port) const override { addr(false, ip, port); }
  void get_local_ip_and_port(std::string &ip, int &port) const override { addr(true, ip, port); }
  socket_t socket() const override { return s_.bio.fd; }

 private:
  void addr(bool local, std::string &ip, int &port) const {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int r = local ? getsockname(s_.bio.fd, reinterpret_cast<sockaddr *>(&ss), &len)
                  : getpeername(s_.bio.fd, reinterpret_cast<sockaddr *>(&ss), &len);
    if (r != 0) return;
    char buf[INET6_ADDRSTRLEN] = {0};
    if (ss.ss_family == AF_INET) {
      auto *a = reinterpret_cast<sockaddr_in *>(&ss);
      inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      auto *a = reinterpret_cast<sockaddr_in6 *>(&ss);
      inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
      port = ntohs(a->sin6_port);
    }
    ip = buf;
  }
  bool send_all(const char *ptr, size_t size) const {
    size_t off = 0;
    while (off < size) {
      int r = mbedtls_ssl_write(&s_.ssl, reinterpret_cast<const unsigned char *>(ptr + off), size - off);
      if (r > 0)
        off += static_cast<size_t>(r);
      else if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE)
        return false;
    }
    return true;
  }
  // A whole HTTP/1.1 message head (status or request line, headers, the
  // blank line) with "Content-Length: N", N > 0, and no Transfer-Encoding.
  static bool announces_body(const char *ptr, size_t size) {
    if (size < 16 || size > 16384 || std::memcmp(ptr + size - 4, "\r\n\r\n", 4) != 0) return false;
    std::string_view m(ptr, size);
    auto line_end = m.find("\r\n");
    auto first = m.substr(0, line_end);
    bool status_line = first.rfind("HTTP/1.", 0) == 0;
    bool request_line = first.size() > 9 && first.substr(first.size() - 9) == " HTTP/1.1";
    if (!status_line && !request_line) return false;
    size_t length = 0;
    bool has_length = false;
    for (size_t at = line_end + 2; at < size;) {
      auto end = m.find("\r\n", at);
      if (end == std::string_view::npos || end == at) break;
      auto line = m.substr(at, end - at);
      at = end + 2;
      auto colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      auto name = line.substr(0, colon);
      auto is = [&name](std::string_view want) {
        return name.size() == want.size() && strncasecmp(name.data(), want.data(), want.size()) == 0;
      };
      if (is("transfer-encoding")) return false;
      if (!is("content-length")) continue;
      auto v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      if (v.empty() || v.size() > 12 || v.find_first_not_of("0123456789") != std::string_view::npos) return false;
      length = std::stoull(std::string(v));
      has_length = true;
    }
    return has_length && length > 0;
  }
  TlsSession &s_;
  mutable std::string held_;  // a message head waiting for its body
  Millis write_timeout_;
  const std::atomic<bool> *read_cancel_ = nullptr;
  Steady::time_point read_deadline_ = Steady::time_point::max();
  bool writing_ = false;
  int last_status_ = 0;
  size_t budget_ = SIZE_MAX;
  size_t used_ = 0;
  bool failed_ = false;
};

// Worker pool with a bounded queue. A connection with bytes to serve that
// finds every worker busy and the queue full is refused at once, so a flood
// cannot pile up unbounded work; connections that say nothing wait with
// TlsServer's parker instead, off the queue.

class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(size_t threads, size_t max_queue, std::function<void()> on_shutdown = nullptr)
      : max_queue_(max_queue), on_shutdown_(std::move(on_shutdown)) {
    for (size_t i = 0; i < threads; i++) workers_.emplace_back([this] { run(); });
  }
  // cpp-httplib hands every accepted socket here, on its accept thread.
  // The task runs right there: TlsServer looks at the socket at once and
  // parks it or queues it for a worker itself (try_enqueue), so a
  // connection that sends nothing never takes a queue slot or a worker.
  void enqueue(std::function<void()> fn) override { fn(); }
  // Queues `fn` when there is room; false (and nothing run) when full.
  // The worker is woken after the lock is let go (see KeyPool::take).
  bool try_enqueue(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_ || queue_.size() >= max_queue_) return false;
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
    return true;
  }
  void shutdown() override {
    if (on_shutdown_) on_shutdown_();
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto &t : workers_) t.join();
  }
  size_t pending() const {
    std::lock_guard<std::mutex> lk(mu_);
    return queue_.size();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lk(mu_);
        idle_workers_++;
        cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
        idle_workers_--;
        if (queue_.empty()) return;  // stop_ and drained
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }
  size_t max_queue_;
  std::function<void()> on_shutdown_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> workers_;
  size_t idle_workers_ = 0;
  bool stop_ = false;
};

// The peer of the request this thread is handling (handlers run on the
// connection's thread, synchronously).
inline thread_local const PeerCertificate *t_current_peer = nullptr;

inline PeerCertificate peer_of(TlsSession &s) {
  PeerCertificate p;
  const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&s.ssl);
  if (!crt) return p;
  p.present = true;
  // VERIFY_OPTIONAL finishes the handshake with a bad chain; trust only a
  // clean result (it also enforces clientAuth when the cert has an EKU).
  p.verified = s.config->ca && mbedtls_ssl_get_verify_result(&s.ssl) == 0;
  p.common_name = common_name(&crt->subject);
  p.organizations = organizations(&crt->subject);
  return p;
}

}  // namespace detail

// HTTPS server: cpp-httplib's routing and HTTP/1.1 on top of mbedTLS.
// Connections run on a bounded pool; each request must arrive within
// `request_timeout`; idle keep-alive connections give way when others wait.
struct TlsServerOptions {
  Millis handshake_timeout = std::chrono::seconds(10);
  Millis request_timeout = std::chrono::seconds(10);  // reading one request, headers and body
  Millis write_timeout = std::chrono::seconds(10);    // writing one answer, from its first byte
  Millis idle_timeout = std::chrono::seconds(30);     // keep-alive wait
  size_t threads = 16;
  size_t max_queue = 64;
  size_t max_request_bytes = 64 * 1024 + 16 * 1024;  // body limit + room for headers
  size_t max_requests_per_connection = 1000;
  size_t max_parked = 4096;  // connections waiting for their client's next bytes, off the workers
};

class TlsServer : public httplib::Server {
 public:
  explicit TlsServer(TlsServerOptions o = TlsServerOptions()) : opt_(o) {
    new_task_queue = [this] {
      auto *p = new detail::BoundedPool(opt_.threads, opt_.max_queue, [this] {
        std::lock_guard<std::mutex> lk(park_mu_);
        pool_.store(nullptr);  // the parker hands nothing more to this pool
      });
      pool_.store(p);
      return p;
    };
    set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(opt_.request_timeout).count() + 1);
    set_write_timeout(10);
    // What the Keep-Alive answer header announces.
    set_keep_alive_timeout(
        std::max<time_t>(1, std::chrono::duration_cast<std::chrono::seconds>(opt_.idle_timeout).count()));
    set_keep_alive_max_count(opt_.max_requests_per_connection);
    // A streamed answer goes out in several records (and a bodiless head
    // before its body): without NODELAY, Nagle and delayed ACKs would add
    // ~40 ms to each.
    set_tcp_nodelay(true);
    start_parker();
  }
  ~TlsServer() override { stop_parker(); }

  // Installs (or replaces) certificate, key and client CA. New connections
  // use the new material; open ones finish with what they started with.
  void set_credentials(const TlsServerCredentials &c) {
    auto cfg = detail::make_server_config(c, tickets_);
    std::lock_guard<std::mutex> lk(mu_);
    config_ = std::move(cfg);
  }
  bool has_credentials() const {
    std::lock_guard<std::mutex> lk(mu_);
    return config_ != nullptr;
  }

  // The TLS peer of the request being handled on this thread.
  static const PeerCertificate &peer() {
    static const PeerCertificate none;
    return detail::t_current_peer ? *detail::t_current_peer : none;
  }

  // Graceful stop: no new connections; requests in progress finish and
  // their connections close; listen() returns when all workers are done.
  // Safe to call more than once and from any thread (cpp-httplib's stop()
  // asserts when called twice). Before the listener runs it only marks the
  // server as stopping: call it again once is_running().
  void shutdown() {
    stopping_ = true;
    wake_parker();  // parked connections are idle: closed at once
    std::lock_guard<std::mutex> lk(stop_mu_);
    if (!stopped_ && is_running()) {
      stop();
      stopped_ = true;
    }
  }

  size_t refused_connections() const { return refused_.load(); }
  size_t failed_handshakes() const { return failed_handshakes_.load(); }
  size_t open_connections() const { return open_.load(); }

 private:
  std::shared_ptr<detail::TlsConfig> config() const {
    std::lock_guard<std::mutex> lk(mu_);
    return config_;
  }

  static void close_fd(socket_t sock) {
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
  }
  // Half-closes and reads what the client still sends until it closes too,
  // at most 1 MiB or 1 s (as Go's server reads a bounded remainder).
  static void linger(socket_t sock) {
    ::shutdown(sock, SHUT_WR);
    auto until = Steady::now() + std::chrono::seconds(1);
    size_t drained = 0;
    char buf[16384];
    while (drained < 1024 * 1024) {
      auto left = std::chrono::duration_cast<Millis>(until - Steady::now()).count();
      if (left <= 0) break;
      pollfd p{sock, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      ssize_t n = ::recv(sock, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      drained += static_cast<size_t>(n);
    }
  }

  // A connection and its TLS state. Between requests (and before its first
  // byte) it is parked with the parker thread rather than a worker, so that
  // neither a silent new connection nor an idle keep-alive one holds a
  // worker: a worker takes it again when it has bytes to read.
  struct Conn {
    socket_t sock = -1;
    std::unique_ptr<detail::TlsSession> session;  // null before the handshake
    PeerCertificate peer;
    std::unique_ptr<detail::TlsStream> stream;
    size_t remaining = 0;      // requests this connection may still make
    Steady::time_point until;  // the end of a parked wait, or of the handshake
    bool ok = true;
    bool ready = false;        // parked with bytes to serve, waiting for a worker
    bool handshaking = false;  // its TLS handshake is under way
  };

  static bool readable_now(socket_t sock) {
    pollfd p{sock, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

  // On the accept thread (see BoundedPool::enqueue): a new connection is
  // parked until it sends something, or queued for a worker when it already
  // has; with every worker busy and the queue full it waits parked. Only
  // when max_parked connections wait already is it refused.
  bool process_and_close_socket(socket_t sock) override {
    if (stopping_) {
      refused_++;
      close_fd(sock);
      return false;
    }
    open_++;
    int one = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Conn>();
    c->sock = sock;
    // As Go's net/http does, a client gets no longer for its handshake than
    // for a request, counted from the accept.
    c->until = Steady::now() + std::min(opt_.handshake_timeout, opt_.request_timeout);
    if (!readable_now(sock) && park(c)) return true;
    if (dispatch(c)) return true;
    c->ready = true;  // every worker busy and the queue full: it waits off the workers
    if (!park(c)) refuse(c);
    return true;
  }
  // Queues `c` for a worker (true: `c` is now empty).
  bool dispatch(std::unique_ptr<Conn> &c) {
    auto *pool = pool_.load();
    if (!pool) return false;
    auto holder = std::make_shared<std::unique_ptr<Conn>>(std::move(c));
    if (pool->try_enqueue([this, holder] { serve(*holder); })) return true;
    c = std::move(*holder);
    return false;
  }
  void refuse(std::unique_ptr<Conn> &c) {
    refused_++;
    drop(c);
  }
  // Frees the TLS state and closes the socket.
  void drop(std::unique_ptr<Conn> &c) {
    c->stream.reset();
    c->session.reset();
    close_fd(c->sock);
    open_--;
    c.reset();
  }

  // Runs a connection on this worker until it waits for its client (then it
  // is parked and `c` is empty) or it ends (then it is closed).
  void serve(std::unique_ptr<Conn> &c) {
    c->ready = false;  // a worker has it now
    try {
      if (!c->session || c->handshaking) {
        if (!c->session) {
          auto cfg = config();
          if (!cfg) return finish(c);
          c->session =
              std::make_unique<detail::TlsSession>(c->sock, cfg, static_cast<int>(opt_.request_timeout.count()));
          c->handshaking = true;
        }
        // The handshake advances as far as the client's bytes allow, then
        // waits parked: a client that dribbles its handshake holds no worker.
        c->session->bio.nonblocking = true;
        int ret;
        do {
          ret = mbedtls_ssl_handshake(&c->session->ssl);
        } while (ret == MBEDTLS_ERR_SSL_WANT_WRITE);
        c->session->bio.nonblocking = false;
        if (ret == MBEDTLS_ERR_SSL_WANT_READ && Steady::now() < c->until && park(c)) return;
        if (ret != 0) {
          failed_handshakes_++;
          c->session.reset();  // no close_notify after a failed handshake
          return finish(c);
        }
        c->handshaking = false;
        c->peer = detail::peer_of(*c->session);
        c->stream = std::make_unique<detail::TlsStream>(*c->session, opt_.write_timeout);
        c->stream->set_read_cancel(&stopping_);
        c->remaining = opt_.max_requests_per_connection;
      }
      auto &stream = *c->stream;
      while (c->remaining > 0 && !stopping_) {
        if (mbedtls_ssl_get_bytes_avail(&c->session->ssl) == 0 && !readable_now(c->sock)) {
          c->until = Steady::now() + opt_.idle_timeout;
          if (park(c)) return;
          break;
        }
        stream.set_deadline(Steady::now() + opt_.request_timeout);
        stream.set_budget(opt_.max_request_bytes);
        // The last answer a connection gets says so (Connection: close), so
        // that a client never sends a request into a closing connection.
        bool close_connection = c->remaining == 1 || stopping_;
        bool closed = false;
        detail::t_current_peer = &c->peer;
        c->ok = process_request(stream, close_connection, closed, nullptr);
        c->ok = stream.flush() && c->ok;  // a head held for a body that never came (HEAD)
        detail::t_current_peer = nullptr;
        stream.set_deadline(Steady::time_point::max());
        // After a request cut short (body over budget, timeout) the rest of
        // the stream would be parsed as requests the client never made.
        if (!c->ok || closed || close_connection || stream.failed()) break;
        c->remaining--;
      }
    } catch (const std::exception &) {
      detail::t_current_peer = nullptr;
      c->ok = false;
    }
    finish(c);
  }

  void finish(std::unique_ptr<Conn> &c) {
    if (!c) return;
    if (c->session) {
      c->session->close_notify();
      // After an error answer the client may still be sending the body we
      // did not read: closing with unread bytes makes the kernel reset the
      // connection, and the client would lose our answer.
      if (c->stream && (!c->ok || c->stream->failed() || c->stream->last_status() >= 400)) linger(c->sock);
    }
    drop(c);
  }

  // Hands `c` to the parker (true: `c` is now empty); false when the
  // server stops or too many connections are parked.
  bool park(std::unique_ptr<Conn> &c) {
    {
      std::lock_guard<std::mutex> lk(park_mu_);
      if (parker_stop_ || stopping_ || parked_.size() >= opt_.max_parked) return false;
      parked_.push_back(std::move(c));
    }
    wake_parker();
    return true;
  }
  void wake_parker() {
    uint64_t one = 1;
    if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
  }
  void start_parker() {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    parker_ = std::thread([this] { parker_run(); });
  }
  void stop_parker() {
    {
      std::lock_guard<std::mutex> lk(park_mu_);
      parker_stop_ = true;
    }
    wake_parker();
    if (parker_.joinable()) parker_.join();
    if (wake_fd_ >= 0) ::close(wake_fd_);
    wake_fd_ = -1;
  }
  // Waits on every parked connection at once: one with bytes goes back to a
  // worker (it waits here, marked ready, while every worker and the queue
  // are taken: a burst waits, it is not refused), one whose wait ended is
  // closed.
  void parker_run() {
    std::vector<std::unique_ptr<Conn>> expired;
    for (;;) {
      std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}};
      int timeout_ms = 1000;
      {
        std::lock_guard<std::mutex> lk(park_mu_);
        if (parker_stop_ || stopping_) break;
        auto now = Steady::now();
        for (const auto &c : parked_) {
          if (c->ready) {
            timeout_ms = std::min(timeout_ms, 10);  // retry a full queue soon
          } else {
            fds.push_back({c->sock, POLLIN, 0});
          }
          auto left = std::chrono::ceil<Millis>(c->until - now).count();
          timeout_ms = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(timeout_ms, left)));
        }
      }
      int r = ::poll(fds.data(), fds.size(), timeout_ms);
      if (r < 0 && errno != EINTR) std::this_thread::sleep_for(Millis(10));
      if (fds[0].revents & POLLIN) {
        uint64_t n;
        while (::read(wake_fd_, &n, sizeof n) > 0) {
        }
      }
      {
        std::lock_guard<std::mutex> lk(park_mu_);  // pool_ is cleared under it when the pool goes
        auto now = Steady::now();
        std::map<socket_t, short> events;
        for (size_t i = 1; i < fds.size(); i++) events[fds[i].fd] = fds[i].revents;
        for (auto it = parked_.begin(); it != parked_.end();) {
          auto ev = events.find((*it)->sock);
          if (ev != events.end() && (ev->second & (POLLIN | POLLHUP | POLLERR))) (*it)->ready = true;
          bool done = false;
          if ((*it)->ready && dispatch(*it)) {
            done = true;
          } else if (now >= (*it)->until && (!(*it)->ready || !(*it)->session || (*it)->handshaking)) {
            // Its wait is over; a request already sent on a kept-alive
            // connection waits on for a worker, never lost.
            expired.push_back(std::move(*it));
            done = true;
          }
          it = done ? parked_.erase(it) : std::next(it);
        }
      }
      for (auto &c : expired) close_idle(c);
      expired.clear();
    }
    // Stopping: nothing parked is in the middle of a request.
    std::list<std::unique_ptr<Conn>> left;
    {
      std::lock_guard<std::mutex> lk(park_mu_);
      left.swap(parked_);
    }
    for (auto &c : left) close_idle(c);
  }
  // Closes a connection that waits for its client: a short close_notify,
  // no lingering (the client sent nothing unread).
  void close_idle(std::unique_ptr<Conn> &c) {
    if (!c->session || c->handshaking) {
      failed_handshakes_++;  // did not finish its handshake in time
      c->session.reset();
    }
    if (c->session) c->session->bio.timeout_ms = 100;
    c->stream.reset();
    finish(c);
  }

  TlsServerOptions opt_;
  std::mutex park_mu_;
  std::list<std::unique_ptr<Conn>> parked_;
  bool parker_stop_ = false;
  int wake_fd_ = -1;
  std::thread parker_;
  std::shared_ptr<detail::TicketKeys> tickets_ = std::make_shared<detail::TicketKeys>();
  mutable std::mutex mu_;
  std::mutex stop_mu_;
  bool stopped_ = false;
  std::shared_ptr<detail::TlsConfig> config_;
  std::atomic<detail::BoundedPool *> pool_{nullptr};
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> refused_{0}, failed_handshakes_{0}, open_{0};
};

// Sends every method on every path to one handler, which does its own
// routing (so 404/405 and their Status bodies are ours).
inline void route_everything(httplib::Server &s, const httplib::Server::Handler &h) {
  s.Get(".*", h);
  s.Post(".*", h);
  s.Put(".*", h);
  s.Patch(".*", h);
  s.Delete(".*", h);
  s.Options(".*", h);
}

// Answers with the Kubernetes Status of an error.
inline void send_status(httplib::Response &res, const Error &e) {
  res.status = e.code;
  res.set_content(to_json_string(Status::from_error(e).to_json()), "application/json");
}

// An HTTP answer.
struct HttpResponse {
  int status = 0;
  std::string body;
  httplib::Headers headers;
  std::string header(const std::string &k) const {
    auto it = headers.find(k);
    return it == headers.end() ? "" : it->second;
  }
};

namespace detail {

// Why a TCP connection to host:port fails, in the errno's words
// ("Connection refused", "No route to host", ...): cpp-httplib reports every
// failure alike, so after one the address is tried once more to learn why.
// "" when it connects now.
inline std::string connect_failure(const std::string &host, int port, int timeout_ms) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) return std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
  std::string why = "connection failed";
  for (addrinfo *ai = res; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) {
          err = ETIMEDOUT;
        } else {
          socklen_t len = sizeof err;
          if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        }
      }
    }
    ::close(fd);
    if (err == 0) {
      why.clear();
      break;
    }
    why = std::error_code(err, std::generic_category()).message();
  }
  freeaddrinfo(res);
  if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
  return why;
}

// cpp-httplib's client with our TLS in its socket hooks.
class MbedClient : public httplib::ClientImpl {
 public:
  MbedClient(const std::string &host, int port, std::shared_ptr<TlsConfig> cfg)
      : httplib::ClientImpl(host, port), cfg_(std::move(cfg)), host_name_(host), port_number_(port) {}
  ~MbedClient() override { stop(); }

  std::string last_error;
  Steady::time_point deadline = Steady::time_point::max();
  const std::atomic<bool> *cancel = nullptr;  // raised: stop waiting for data

  // Connects and completes the TLS handshake only; "" or why it failed.
  std::string probe(Millis timeout) {
    auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    set_connection_timeout(usecs / 1000000, usecs % 1000000);
    deadline = Steady::now() + timeout;
    Socket s;
    httplib::Error e = httplib::Error::Success;
    std::string err;
    if (create_and_connect_socket(s, e)) {
      shutdown_ssl(s, true);
      ::close(s.sock);
    } else {
      err = last_error.empty() ? httplib::to_string(e) : last_error;
    }
    deadline = Steady::time_point::max();
    return err;
  }

  // Drops the kept-alive connection when the server already closed or sent
  // anything (an alert): a request on it would fail.
  void drop_if_stale() {
    std::lock_guard<std::mutex> guard(socket_mutex_);
    if (!socket_.is_open() || !session_) return;
    pollfd p{socket_.sock, POLLIN, 0};
    if (::poll(&p, 1, 0) != 0 && mbedtls_ssl_get_bytes_avail(&session_->ssl) == 0) {
      shutdown_ssl(socket_, false);
      shutdown_socket(socket_);
      close_socket(socket_);
    }
  }

 protected:
  bool create_and_connect_socket(Socket &socket, httplib::Error &error) override {
    if (!httplib::ClientImpl::create_and_connect_socket(socket, error)) {
      std::string why = error == httplib::Error::ConnectionTimeout ? "connect timed out"
                                                                   : connect_failure(host_name_, port_number_, 1000);
      last_error = "cannot connect to " + host_and_port_ + ": " + (why.empty() ? "connection failed" : why);
      return false;
    }
    try {
      auto s = std::make_unique<TlsSession>(socket.sock, cfg_, static_cast<int>(read_timeout_sec_ * 1000 + 1000));
      s->bio.cancel = cancel;
      if (!cfg_->verify_ip && !cfg_->verify_name.empty()) mbedtls_ssl_set_hostname(&s->ssl, cfg_->verify_name.c_str());
      int ret = s->handshake(deadline);
      if (ret == 0 && !cfg_->skip_verify && cfg_->verify_ip) {
        const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&s->ssl);
        std::string want = parse_ip(cfg_->verify_name);
        auto ips = crt ? san_ip_addresses(*crt) : std::vector<std::string>();
        if (std::find(ips.begin(), ips.end(), want) == ips.end()) {
          last_error = "TLS: server certificate is not valid for IP address " + cfg_->verify_name;
          error = httplib::Error::SSLServerVerification;
          ret = -1;
        }
      } else if (ret != 0) {
        uint32_t flags = mbedtls_ssl_get_verify_result(&s->ssl);
        if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && flags) {
          char buf[512];
          int n = mbedtls_x509_crt_verify_info(buf, sizeof buf, "", flags);
          std::string info = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
          std::replace(info.begin(), info.end(), '\n', ';');
          while (!info.empty() && (info.back() == ';' || info.back() == ' ')) info.pop_back();
          last_error = "TLS: server certificate verification failed: " + info;
          error = httplib::Error::SSLServerVerification;
        } else if (ret == MBEDTLS_ERR_SSL_TIMEOUT) {
          last_error = "TLS handshake with " + host_and_port_ + " timed out";
          error = httplib::Error::SSLConnection;
        } else {
          last_error = "TLS handshake with " + host_and_port_ + " failed: " + mbed_error(ret);
          error = httplib::Error::SSLConnection;
        }
      }
      if (ret != 0) {
        s.reset();
        ::close(socket.sock);
        socket.sock = INVALID_SOCKET;
        return false;
      }
      session_ = std::move(s);
      return true;
    } catch (const Error &e) {
      last_error = e.what();
      ::close(socket.sock);
      socket.sock = INVALID_SOCKET;
      error = httplib::Error::SSLConnection;
      return false;
    }
  }
  void shutdown_ssl(Socket &, bool gracefully) override {
    if (session_ && gracefully) session_->close_notify();
    session_.reset();
  }

 private:
  bool process_socket(const Socket &, std::function<bool(httplib::Stream &)> callback) override {
    if (!session_) return false;
    TlsStream strm(*session_);
    strm.set_deadline(deadline);
    bool r = callback(strm);
    // An answer with "Connection: close" makes httplib call shutdown_ssl()
    // inside the callback: the session (and strm's reference) is gone then.
    if (session_) session_->bio.deadline = Steady::time_point::max();
    return r;
  }
  std::shared_ptr<TlsConfig> cfg_;
  std::string host_name_;
  int port_number_;
  std::unique_ptr<TlsSession> session_;
};

}  // namespace detail

// An HTTPS client for one server, on mbedTLS: verifies the chain and the
// host name or IP SAN, keeps the connection alive between calls. Not
// thread-safe: use one per thread, or a pool. Throws Error(503) on
// transport failures, with a message that names the cause.
class HttpsClient {
 public:
  HttpsClient(const std::string &base_url, const ClientTlsOptions &tls) : url_(Url::parse(base_url)) {
    if (url_.scheme != "https") throw bad_request("URL must use https://, got " + url_.scheme + "://");
    init(detail::make_client_config(tls, url_.host));
  }
  // Shares one parsed TLS configuration between many clients (a pool).
  HttpsClient(const std::string &base_url, std::shared_ptr<detail::TlsConfig> cfg) : url_(Url::parse(base_url)) {
    if (url_.scheme != "https") throw bad_request("URL must use https://, got " + url_.scheme + "://");
    init(std::move(cfg));
  }
  static std::shared_ptr<detail::TlsConfig> make_config(const std::string &base_url, const ClientTlsOptions &tls) {
    return detail::make_client_config(tls, Url::parse(base_url).host);
  }

  const Url &url() const { return url_; }

  // Dials the server and completes a TLS handshake, nothing more: "" when
  // that works, else the reason (as a WebhookAuthenticator status says).
  std::string probe(Millis timeout) { return cli_->probe(timeout); }

  // One request; `timeout` bounds the whole call (connect, TLS, answer).
  HttpResponse request(const std::string &method, const std::string &path, const httplib::Headers &headers,
                       const std::string &body, Millis timeout, size_t max_response_bytes = 16 * 1024 * 1024) {
    auto deadline = Steady::now() + timeout;
    auto secs = std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(timeout).count());
    auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    cli_->set_connection_timeout(usecs / 1000000, usecs % 1000000);
    cli_->set_read_timeout(secs, 0);
    cli_->set_write_timeout(secs, 0);
    cli_->deadline = deadline;
    cli_->last_error.clear();
    cli_->drop_if_stale();

    httplib::Request req;
    req.method = method;
    req.path = path;
    req.headers = headers;
    if (req.headers.find("User-Agent") == req.headers.end())
      req.headers.emplace("User-Agent", "pinniped/" PINNIPED_VERSION);
    req.body = body;
    if (!body.empty() && req.headers.find("Content-Type") == req.headers.end())
      req.headers.emplace("Content-Type", "application/json");
    size_t received = 0;
    bool too_large = false;
    std::string out;
    req.content_receiver = [&](const char *data, size_t len, uint64_t, uint64_t) {
      received += len;
      if (received > max_response_bytes) {
        too_large = true;
        return false;
      }
      out.append(data, len);
      return true;
    };
    auto res = cli_->send(req);
    if (too_large) throw Error(503, "ServiceUnavailable", "response from " + url_.base() + " is too large");
    if (!res) {
      std::string why = cli_->last_error;
      if (why.empty()) {
        why = httplib::to_string(res.error());
        if (Steady::now() >= deadline) why = "timed out after " + std::to_string(timeout.count()) + "ms";
      }
      throw Error(503, "ServiceUnavailable", "request to " + url_.base() + " failed: " + why);
    }
    HttpResponse r;
    r.status = res->status;
    r.headers = res->headers;
    r.body = std::move(out);
    return r;
  }

  // Streams a long answer (a watch) to `on_data` (false stops it) on a new
  // connection; `idle_timeout` bounds each wait for data, not the whole call.
  // A non-2xx answer's body is returned in the response instead.
  HttpResponse stream(const std::string &method, const std::string &path, const httplib::Headers &headers,
                      Millis idle_timeout, const std::function<bool(const char *, size_t)> &on_data,
                      const std::atomic<bool> *cancel = nullptr) {
    cli_->stop();
    cli_->cancel = cancel;
    auto secs = std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(idle_timeout).count());
    cli_->set_connection_timeout(std::min<int64_t>(secs, 30), 0);
    cli_->set_read_timeout(secs, 0);
    cli_->deadline = Steady::time_point::max();
    cli_->last_error.clear();
    httplib::Request req;
    req.method = method;
    req.path = path;
    req.headers = headers;
    HttpResponse r;
    req.response_handler = [&](const httplib::Response &res) {
      r.status = res.status;
      r.headers = res.headers;
      return true;
    };
    req.content_receiver = [&](const char *data, size_t len, uint64_t, uint64_t) {
      if (r.status >= 200 && r.status < 300) return on_data(data, len);
      if (r.body.size() < 64 * 1024) r.body.append(data, len);
      return true;
    };
    auto res = cli_->send(req);
    cli_->stop();
    cli_->cancel = nullptr;
    if (cancel && cancel->load()) return r;
    if (!res && r.status == 0) {
      std::string why = cli_->last_error.empty() ? httplib::to_string(res.error()) : cli_->last_error;
      throw Error(503, "ServiceUnavailable", "request to " + url_.base() + " failed: " + why);
    }
    return r;
  }

 private:
  void init(std::shared_ptr<detail::TlsConfig> cfg) {
    cli_ = std::make_unique<detail::MbedClient>(url_.host, url_.port, std::move(cfg));
    cli_->set_keep_alive(true);
    cli_->set_tcp_nodelay(true);
  }
  Url url_;
  std::unique_ptr<detail::MbedClient> cli_;
};

// ---------------------------------------------------------------------------
// 3b. Kubernetes client
// Owns kubeconfig / in-cluster configuration, REST calls with Status errors,
// watches and informers (list + watch with reconnects). Calls sections 0-3.
// ---------------------------------------------------------------------------

// How to reach and authenticate to kube-apiserver.
struct KubeConfig {
  std::string server;      // https://host:port
  ClientTlsOptions tls;    // CA, client certificate, server name
  std::string token;       // bearer token, or...
  std::string token_file;  // ...a file holding it, re-read when it changes (rotation)
  std::string namespace_;  // the context's namespace, or the pod's
  std::string source;      // for logs: "in-cluster" or "<file>#<context>"

  // A pod's service account: token and CA under `sa_dir`, the API server
  // from KUBERNETES_SERVICE_HOST/_PORT.
  static KubeConfig in_cluster(const std::string &sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount") {
    const char *host = std::getenv("KUBERNETES_SERVICE_HOST");
    const char *port = std::getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port)
      throw internal_error("not running in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set (give --kubeconfig)");
    KubeConfig c;
    std::string h = host;
    c.server = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + port;
    c.tls.ca_pem = read_file(sa_dir + "/ca.crt");
    c.token_file = sa_dir + "/token";
    if (access((sa_dir + "/namespace").c_str(), R_OK) == 0)
      c.namespace_ = detail_trim_newline(read_file(sa_dir + "/namespace"));
    c.source = "in-cluster";
    return c;
  }

  // A kubeconfig file; `context` empty means current-context. Relative file
  // paths are resolved against the kubeconfig's folder, as kubectl does.
  static KubeConfig from_kubeconfig_file(const std::string &path, const std::string &context = "") {
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    KubeConfig c = from_kubeconfig(read_file(path), dir, context);
    c.source = path + "#" + c.source;
    return c;
  }

  static KubeConfig from_kubeconfig(const std::string &text, const std::string &dir, std::string context) {
    auto docs = parse_yaml_documents(text);
    if (docs.size() != 1 || !docs[0].is<picojson::object>()) throw bad_request("kubeconfig: not a single YAML object");
    const auto &root = docs[0];
    if (context.empty()) context = json::get_string(root, "current-context", "current-context");
    if (context.empty()) throw bad_request("kubeconfig: no current-context and no context given");
    auto named = [&](const std::string &list, const std::string &name, const std::string &inner) -> picojson::value {
      const auto *l = json::field(root, list);
      if (l && l->is<picojson::array>())
        for (const auto &e : l->get<picojson::array>())
          if (json::get_string(e, "name", list + ".name") == name) {
            const auto *v = json::get_object(e, inner, list + "." + inner);
            return v ? *v : picojson::value(picojson::object());
          }
      throw bad_request("kubeconfig: no " + inner + " named \"" + name + "\"");
    };
    auto ctx = named("contexts", context, "context");
    auto cluster = named("clusters", json::get_string(ctx, "cluster", "context.cluster"), "cluster");
    std::string user_name = json::get_string(ctx, "user", "context.user");
    picojson::value user = user_name.empty() ? picojson::value(picojson::object()) : named("users", user_name, "user");
    auto path_of = [&](const std::string &p) { return p.empty() || p[0] == '/' ? p : dir + "/" + p; };
    auto data_or_file = [&](const picojson::value &obj, const std::string &data_key, const std::string &file_key,
                            const std::string &what) -> std::string {
      std::string d = json::get_string(obj, data_key, what + "." + data_key);
      if (!d.empty()) {
        auto dec = detail_base64(d);
        if (!dec) throw bad_request("kubeconfig: " + data_key + " is not valid base64");
        return *dec;
      }
      std::string f = json::get_string(obj, file_key, what + "." + file_key);
      return f.empty() ? "" : read_file(path_of(f));
    };
    KubeConfig c;
    c.server = json::get_string(cluster, "server", "cluster.server");
    if (c.server.empty()) throw bad_request("kubeconfig: cluster has no server");
    c.tls.ca_pem = data_or_file(cluster, "certificate-authority-data", "certificate-authority", "cluster");
    c.tls.insecure_skip_verify =
        json::get_bool(cluster, "insecure-skip-tls-verify", "cluster.insecure-skip-tls-verify");
    c.tls.server_name = json::get_string(cluster, "tls-server-name", "cluster.tls-server-name");
    c.tls.client_cert_pem = data_or_file(user, "client-certificate-data", "client-certificate", "user");
    c.tls.client_key_pem = data_or_file(user, "client-key-data", "client-key", "user");
    c.token = json::get_string(user, "token", "user.token");
    std::string tf = json::get_string(user, "tokenFile", "user.tokenFile");
    if (!tf.empty()) c.token_file = path_of(tf);
    if (json::field(user, "exec") || json::field(user, "auth-provider"))
      if (c.token.empty() && c.token_file.empty() && c.tls.client_cert_pem.empty())
        throw bad_request("kubeconfig: user \"" + user_name +
                          "\" uses exec/auth-provider, which is not supported here");
    c.namespace_ = json::get_string(ctx, "namespace", "context.namespace");
    c.source = context;
    return c;
  }

 private:
  static std::string detail_trim_newline(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
  }
  static std::optional<std::string> detail_base64(const std::string &s) { return detail::base64_decode(s); }
};

// A Kubernetes API error: code and reason come from the server's Status.
inline Error kube_error(const HttpResponse &res, const std::string &what) {
  auto st = Status::from_body(res.body);
  std::string reason = st && !st->reason.empty() ? st->reason : reason_for_code(res.status);
  std::string msg = st && !st->message.empty() ? st->message : "HTTP " + std::to_string(res.status);
  return Error(res.status, reason, what + ": " + msg);
}

// REST calls to kube-apiserver with JSON bodies. Thread-safe: connections
// come from a small pool. Errors are pinniped::Error carrying the Status.
class KubeClient {
 public:
  explicit KubeClient(KubeConfig c, Millis timeout = std::chrono::seconds(PINNIPED_KUBE_TIMEOUT_SECONDS))
      : cfg_(std::move(c)), timeout_(timeout) {
    tls_ = HttpsClient::make_config(cfg_.server, cfg_.tls);
    Url u = Url::parse(cfg_.server);
    if (u.scheme != "https") throw bad_request("the API server must be reached over https://");
    prefix_ = u.path == "/" ? "" : u.path;
    while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
  }
  const KubeConfig &config() const { return cfg_; }

  picojson::value get(const std::string &path) { return call("GET", path, "", ""); }
  std::optional<picojson::value> get_if_exists(const std::string &path) {
    try {
      return get(path);
    } catch (const Error &e) {
      if (e.code == 404) return std::nullopt;
      throw;
    }
  }
  picojson::value create(const std::string &collection, const picojson::value &obj) {
    return call("POST", collection, to_json_string(obj), "application/json");
  }
  picojson::value update(const std::string &path, const picojson::value &obj) {
    return call("PUT", path, to_json_string(obj), "application/json");
  }
  picojson::value update_status(const std::string &path, const picojson::value &obj) {
    return update(path + "/status", obj);
  }
  picojson::value patch(const std::string &path, const picojson::value &p,
                        const std::string &type = "application/merge-patch+json") {
    return call("PATCH", path, to_json_string(p), type);
  }
  void remove(const std::string &path) { call("DELETE", path, "", ""); }

  // Reads the object, lets `mutate` change it (return false: nothing to do)
  // and writes it back; retried on 409 Conflict, which is safe because each
  // try starts from a fresh read.
  std::optional<picojson::value> update_with_retry(const std::string &path,
                                                   const std::function<bool(picojson::value &)> &mutate,
                                                   bool status = false) {
    for (int attempt = 0;; attempt++) {
      picojson::value obj = get(path);
      if (!mutate(obj)) return std::nullopt;
      try {
        return status ? update_status(path, obj) : update(path, obj);
      } catch (const Error &e) {
        if (e.code != 409 || attempt >= 5) throw;
      }
    }
  }

  // One watch request from resourceVersion `rv`: calls on_event(type, object)
  // per event until the server ends the stream (after timeout_seconds), the
  // connection breaks (throws Error 503) or on_event returns false. A 410
  // Gone arrives as an ERROR event or as a thrown Error with code 410.
  void watch(const std::string &collection, const std::string &rv, int timeout_seconds,
             const std::function<bool(const std::string &, const picojson::value &)> &on_event,
             const std::atomic<bool> *cancel = nullptr) {
    std::string path = prefix_ + collection + (collection.find('?') == std::string::npos ? "?" : "&") +
                       "watch=1&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(timeout_seconds);
    if (!rv.empty()) path += "&resourceVersion=" + rv;
    HttpsClient client(cfg_.server, tls_);
    std::string buf;
    bool stop = false;
    auto res = client.stream(
        "GET", path, headers(""), Millis((timeout_seconds + 30) * 1000),
        [&](const char *d, size_t n) {
          buf.append(d, n);
          size_t nl;
          while (!stop && (nl = buf.find('\n')) != std::string::npos) {
            std::string line = buf.substr(0, nl);
            buf.erase(0, nl + 1);
            if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
            picojson::value ev = json::parse(line);
            std::string type = json::get_string(ev, "type", "type");
            const auto *obj = json::field(ev, "object");
            if (!on_event(type, obj ? *obj : picojson::value())) stop = true;
          }
          if (buf.size() > 16 * 1024 * 1024) throw internal_error("watch event too large");
          return !stop;
        },
        cancel);
    if (cancel && cancel->load()) return;
    if (res.status != 200 && !stop) throw kube_error(res, "watch " + collection);
  }

 private:
  httplib::Headers headers(const std::string &content_type) {
    httplib::Headers h{{"Accept", "application/json"}, {"User-Agent", "pinniped/" PINNIPED_VERSION}};
    if (!content_type.empty()) h.emplace("Content-Type", content_type);
    std::string token = bearer_token();
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return h;
  }
  std::string bearer_token() {
    if (cfg_.token_file.empty()) return cfg_.token;
    std::lock_guard<std::mutex> lk(mu_);
    std::string v = file_version(cfg_.token_file);
    if (v != token_version_) {
      std::string t = read_file(cfg_.token_file);
      while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
      token_cache_ = t;
      token_version_ = v;
    }
    return token_cache_;
  }
  picojson::value call(const std::string &method, const std::string &path, const std::string &body,
                       const std::string &content_type) {
    std::unique_ptr<HttpsClient> c;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!idle_.empty()) {
        c = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (!c) c = std::make_unique<HttpsClient>(cfg_.server, tls_);
    HttpResponse res = c->request(method, prefix_ + path, headers(content_type), body, timeout_);
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (idle_.size() < 4) idle_.push_back(std::move(c));
    }
    if (res.status < 200 || res.status > 299) throw kube_error(res, method + " " + path);
    if (res.body.empty()) return picojson::value(picojson::object());
    return json::parse(res.body);
  }

  KubeConfig cfg_;
  Millis timeout_;
  std::shared_ptr<detail::TlsConfig> tls_;
  std::string prefix_;
  std::mutex mu_;
  std::vector<std::unique_ptr<HttpsClient>> idle_;
  std::string token_cache_, token_version_;
};

inline std::string object_key(const picojson::value &obj) {
  const auto *m = json::field(obj, "metadata");
  if (!m) return "";
  std::string ns = json::get_string(*m, "namespace", "metadata.namespace");
  std::string name = json::get_string(*m, "name", "metadata.name");
  return ns.empty() ? name : ns + "/" + name;
}
inline std::string resource_version(const picojson::value &obj) {
  const auto *m = json::field(obj, "metadata");
  return m ? json::get_string(*m, "resourceVersion", "metadata.resourceVersion") : "";
}

// Keeps a live copy of a collection: list, then watch from the list's
// resourceVersion, following bookmarks; relists on 410 Gone; reconnects with
// capped exponential backoff. `on_change(type, obj)` sees ADDED, MODIFIED
// and DELETED (a relist reports what changed meanwhile).
class Informer {
 public:
  using Handler = std::function<void(const std::string &type, const picojson::value &obj)>;

  Informer(KubeClient &client, std::string collection, Logger &log, Handler on_change)
      : client_(client), collection_(std::move(collection)), log_(log), on_change_(std::move(on_change)) {}
  ~Informer() { stop(); }
  Informer(const Informer &) = delete;
  Informer &operator=(const Informer &) = delete;

  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cancel_ = true;  // abandons a watch that is waiting for data
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool synced() const { return synced_.load(); }
  uint64_t reconnects() const { return reconnects_.load(); }
  std::map<std::string, picojson::value> snapshot() const {
    std::lock_guard<std::mutex> lk(mu_);
    return cache_;
  }
  // Shortens the wait of each watch request (tests); default 5 minutes.
  void set_watch_timeout(int seconds) { watch_timeout_ = seconds; }
  // For one named object: when RBAC forbids list/watch (a role limited by
  // resourceNames, as kube-system's extension-apiserver-authentication-reader
  // is on older clusters), fall back to reading `path` every `interval`.
  void set_fallback_get(std::string path, Millis interval) {
    fallback_path_ = std::move(path);
    fallback_interval_ = interval;
  }

 private:
  bool sleep(Millis d) {
    std::unique_lock<std::mutex> lk(mu_);
    return !cv_.wait_for(lk, d, [this] { return stop_; });
  }
  bool stopping() {
    std::lock_guard<std::mutex> lk(mu_);
    return stop_;
  }
  void apply(const std::string &type, const picojson::value &obj) {
    std::string key = object_key(obj);
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (type == "DELETED")
        cache_.erase(key);
      else
        cache_[key] = obj;
    }
    try {
      on_change_(type, obj);
    } catch (const std::exception &e) {
      log_.error("informer handler failed", {{"collection", jv(collection_)}, {"error", jv(e.what())}});
    }
  }
  std::string relist() {
    picojson::value list = client_.get(collection_);
    std::string rv;
    if (const auto *m = json::field(list, "metadata")) rv = json::get_string(*m, "resourceVersion", "metadata");
    std::map<std::string, picojson::value> fresh;
    if (const auto *items = json::field(list, "items"); items && items->is<picojson::array>())
      for (const auto &i : items->get<picojson::array>()) fresh[object_key(i)] = i;
    auto old = snapshot();
    for (const auto &kv : old)
      if (!fresh.count(kv.first)) apply("DELETED", kv.second);
    for (const auto &kv : fresh) {
      auto it = old.find(kv.first);
      if (it == old.end())
        apply("ADDED", kv.second);
      else if (resource_version(it->second) != resource_version(kv.second))
        apply("MODIFIED", kv.second);
    }
    synced_ = true;
    return rv;
  }
  // Polling mode: one GET per interval, changes reported like events.
  void poll() {
    log_.info("list/watch forbidden; polling instead", {{"path", jv(fallback_path_)}});
    while (!stopping()) {
      try {
        auto obj = client_.get_if_exists(fallback_path_);
        auto old = snapshot();
        if (!obj) {
          for (const auto &kv : old) apply("DELETED", kv.second);
        } else if (old.empty()) {
          apply("ADDED", *obj);
        } else if (resource_version(old.begin()->second) != resource_version(*obj)) {
          apply("MODIFIED", *obj);
        }
        synced_ = true;
      } catch (const Error &e) {
        reconnects_++;
        log_.warn("poll failed; retrying", {{"path", jv(fallback_path_)}, {"error", jv(e.what())}});
      }
      if (!sleep(fallback_interval_)) break;
    }
  }

  void run() {
    Millis backoff(500);
    std::string rv;
    bool need_list = true;
    while (!stopping()) {
      try {
        if (need_list) {
          rv = relist();
          need_list = false;
        }
        bool gone = false;
        client_.watch(
            collection_, rv, watch_timeout_,
            [&](const std::string &type, const picojson::value &obj) {
              if (stopping()) return false;
              if (type == "BOOKMARK") {
                rv = resource_version(obj);
                return true;
              }
              if (type == "ERROR") {
                const auto *code = json::field(obj, "code");
                gone = code && code->is<int64_t>() && code->get<int64_t>() == 410;
                return false;
              }
              rv = resource_version(obj);
              apply(type, obj);
              return true;
            },
            &cancel_);
        backoff = Millis(500);
        if (gone) {
          need_list = true;
          log_.info("watch expired; relisting", {{"collection", jv(collection_)}});
        }
      } catch (const Error &e) {
        if (stopping()) break;
        if (e.code == 403 && !fallback_path_.empty() && !synced_) return poll();
        reconnects_++;
        if (e.code == 410)
          need_list = true;
        else if (e.code != 503)
          need_list = true;  // unexpected answers: start over
        log_.warn("watch interrupted; retrying", {{"collection", jv(collection_)},
                                                  {"error", jv(e.what())},
                                                  {"backoffMs", jv(static_cast<int64_t>(backoff.count()))}});
        if (!sleep(backoff)) break;
        backoff = std::min(backoff * 2, Millis(PINNIPED_WATCH_BACKOFF_MAX_MS));
      } catch (const std::exception &e) {
        // Anything else a hostile stream provokes: the thread never dies of it.
        if (stopping()) break;
        reconnects_++;
        need_list = true;
        log_.warn("watch failed; relisting", {{"collection", jv(collection_)}, {"error", jv(e.what())}});
        if (!sleep(backoff)) break;
        backoff = std::min(backoff * 2, Millis(PINNIPED_WATCH_BACKOFF_MAX_MS));
      }
    }
  }

  KubeClient &client_;
  std::string collection_;
  Logger &log_;
  Handler on_change_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<bool> synced_{false};
  std::atomic<bool> cancel_{false};
  std::atomic<uint64_t> reconnects_{0};
  int watch_timeout_ = 300;
  std::string fallback_path_;
  Millis fallback_interval_{10000};
  std::map<std::string, picojson::value> cache_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------
// 3c. Serving certificates
// Owns the serving certificate a server keeps in a Secret shared by its
// replicas, and the caBundle of the APIServices that front it. Calls 0-3b.
// ---------------------------------------------------------------------------

// The aggregated API's serving certificate: a CA and a leaf for
// <service>.<namespace>.svc kept in a Secret shared by all replicas (create
// if absent, adopt if present), renewed before it expires, and the CA
// written into our APIServices' caBundle.
struct ServingCertSettings {
  std::string namespace_;
  std::string secret_name;
  std::string service_name;
  std::vector<std::string> api_services;
  Millis validity = std::chrono::hours(24 * 30);
  Millis renew_after = std::chrono::hours(24 * 25);
  // False on a replica that does not lead: it serves what the Secret holds
  // and leaves creating, renewing and the caBundle to the leader.
  std::function<bool()> may_write;
};

class ServingCertController {
 public:
  // The leaf to serve, the CA bundle clients should trust, and the CA
  // itself (the direct frontend issues its own leaf with it).
  using OnCert =
      std::function<void(const CertificateAndKey &leaf, const std::string &ca_pem, const CertificateAndKey &ca)>;

  ServingCertController(KubeClient &kube, Logger &log, ServingCertSettings s, OnCert on_cert)
      : kube_(kube),
        log_(log),
        s_(std::move(s)),
        on_cert_(std::move(on_cert)),
        informer_(kube,
                  "/api/v1/namespaces/" + s_.namespace_ + "/secrets?fieldSelector=metadata.name%3D" + s_.secret_name,
                  log, [this](const std::string &t, const picojson::value &) {
                    if (t == "DELETED") log_.warn("serving certificate Secret deleted; recreating");
                    sync();
                  }) {}

  void start() { informer_.start(); }
  void stop() { informer_.stop(); }
  uint64_t reconnects() const { return informer_.reconnects(); }
  bool has_cert() const { return has_cert_.load(); }
  // The Secret informer reacts at once; this periodic pass catches what a
  // missed event or a pending renewal leaves behind.
  void resync_if_due(Millis every = std::chrono::seconds(PINNIPED_SERVING_RESYNC_SECONDS)) {
    if (has_cert() && Steady::now() - last_sync_.load() < every) return;
    sync();
  }

  // Makes the Secret and APIServices right; safe to call from any thread.
  // One pass runs at a time, and no caller waits behind another's API
  // calls: a call that finds a pass running asks it for one more pass and
  // returns at once (the Secret informer and the reload thread both call).
  void sync() {
    again_ = true;
    for (;;) {
      bool idle = false;
      if (!running_.compare_exchange_strong(idle, true)) return;
      while (again_.exchange(false)) {
        last_sync_ = Steady::now();
        try {
          sync_once();
        } catch (const std::exception &e) {
          log_.warn("serving certificate sync failed; will retry", {{"error", jv(e.what())}});
        }
      }
      running_ = false;
      if (!again_.load()) return;  // else asked for between the last pass and the release
    }
  }

 private:
  std::string path() const { return "/api/v1/namespaces/" + s_.namespace_ + "/secrets/" + s_.secret_name; }

  // The CA outlives its leaves: it is made for kCaLifetimes x validity and
  // kept across leaf renewals, so a renewal never changes what kube-apiserver
  // trusts. When it is itself replaced, the old CA stays in the bundle as
  // previousCaCertificate until it expires, so that replicas still serving
  // a leaf of the old CA stay trusted.
  static constexpr int kCaLifetimes = 4;
  struct Material {
    std::string ca_cert, ca_key, cert, key;
    std::string previous_ca;
    std::string bundle() const { return ca_cert + previous_ca; }
  };
  static std::optional<Material> read(const picojson::value &secret) {
    const auto *data = json::field(secret, "data");
    if (!data) return std::nullopt;
    auto get = [&](const char *k) { return detail::base64_decode(json::get_string(*data, k, "data")); };
    auto a = get("caCertificate"), b = get("caCertificatePrivateKey"), c = get("tlsCertificateChain"),
         d = get("tlsPrivateKey");
    if (!a || !b || !c || !d || a->empty() || c->empty() || d->empty()) return std::nullopt;
    auto previous = get("previousCaCertificate");
    return Material{*a, *b, *c, *d, previous ? *previous : ""};
  }
  // The certificate's notAfter, or the epoch when it does not parse.
  static Clock::time_point expiry(const std::string &pem) {
    try {
      return detail::from_x509_time(CertificateChain::parse(pem)->get()->valid_to);
    } catch (const Error &) {
      return Clock::time_point();
    }
  }
  // The CA of `m` can sign one more full-lifetime leaf.
  bool ca_reusable(const Material &m) const {
    try {
      auto ca = CertificateChain::parse(m.ca_cert);
      auto key = PrivateKey::parse(m.ca_key);
      if (mbedtls_pk_check_pair(&ca->get()->pk, key->get()) != 0) return false;
      // Compared, not subtracted: a saturated time minus now overflows.
      return detail::from_x509_time(ca->get()->valid_to) >= Clock::now() + s_.validity + kBackdate;
    } catch (const Error &) {
      return false;
    }
  }
  // Usable and not yet due for renewal.
  bool fresh(const Material &m) const {
    try {
      auto chain = CertificateChain::parse(m.cert);
      auto key = PrivateKey::parse(m.key);
      auto ca = CertificateChain::parse(m.ca_cert);
      if (mbedtls_pk_check_pair(&chain->get()->pk, key->get()) != 0) return false;
      uint32_t flags = 0;
      if (mbedtls_x509_crt_verify(chain->get(), ca->get(), nullptr, nullptr, &flags, nullptr, nullptr) != 0)
        return false;
      // Age counts from issuance: notBefore is backdated for clock skew.
      auto issued = detail::from_x509_time(chain->get()->valid_from) + kBackdate;
      auto na = detail::from_x509_time(chain->get()->valid_to);
      auto now = Clock::now();
      return now < issued + s_.renew_after && now < na;
    } catch (const Error &) {
      return false;
    }
  }
  Material generate(const std::optional<Material> &prev) const {
    CertificateAndKey ca;
    std::string previous;
    if (prev && ca_reusable(*prev)) {
      ca = {prev->ca_cert, prev->ca_key};
      previous = prev->previous_ca;
    } else {
      ca = make_self_signed_ca(s_.service_name + "-ca", s_.validity * kCaLifetimes);
      if (prev) previous = prev->ca_cert;
    }
    if (!previous.empty() && expiry(previous) <= Clock::now()) previous.clear();
    CertificateTemplate t;
    std::string dns = s_.service_name + "." + s_.namespace_ + ".svc";
    t.common_name = dns;
    t.dns_names = {dns, dns + ".cluster.local"};
    t.server_auth = true;
    t.key_usage = MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
    auto now = std::chrono::time_point_cast<std::chrono::seconds>(Clock::now());
    t.not_before = now - kBackdate;
    t.not_after = now + s_.validity;
    auto leaf = issue_with_ca(ca, t);
    return {ca.cert_pem, ca.key_pem, leaf.cert_pem, leaf.key_pem, previous};
  }
  static picojson::value secret_data(const Material &m) {
    picojson::object d;
    d["caCertificate"] = jv(detail::base64_encode(m.ca_cert));
    d["caCertificatePrivateKey"] = jv(detail::base64_encode(m.ca_key));
    d["tlsCertificateChain"] = jv(detail::base64_encode(m.cert));
    d["tlsPrivateKey"] = jv(detail::base64_encode(m.key));
    if (!m.previous_ca.empty()) d["previousCaCertificate"] = jv(detail::base64_encode(m.previous_ca));
    return picojson::value(d);
  }

  // Only ever one at a time (sync): current_cert_ is the running pass's.
  void sync_once() {
    Material m;
    auto existing = kube_.get_if_exists(path());
    std::optional<Material> have = existing ? read(*existing) : std::nullopt;
    bool writer = !s_.may_write || s_.may_write();
    if (!writer) {
      if (!have)
        throw Error(503, "ServiceUnavailable", "no serving certificate in the Secret yet; the leader makes it");
      if (have->cert != current_cert_) {
        on_cert_({have->cert, have->key}, have->bundle(), {have->ca_cert, have->ca_key});
        current_cert_ = have->cert;
        has_cert_ = true;
        log_.info("serving certificate loaded", {{"secret", jv(s_.secret_name)}});
      }
      return;
    }
    if (have && fresh(*have)) {
      m = *have;
    } else if (!existing) {
      m = generate(std::nullopt);
      picojson::object meta, obj;
      meta["name"] = jv(s_.secret_name);
      meta["namespace"] = jv(s_.namespace_);
      obj["apiVersion"] = jv("v1");
      obj["kind"] = jv("Secret");
      obj["metadata"] = picojson::value(meta);
      obj["type"] = jv("Opaque");
      obj["data"] = secret_data(m);
      try {
        kube_.create("/api/v1/namespaces/" + s_.namespace_ + "/secrets", picojson::value(obj));
        log_.info("serving certificate created", {{"secret", jv(s_.secret_name)}});
      } catch (const Error &e) {
        if (e.code != 409) throw;
        // Another replica was first: adopt its certificate.
        auto other = read(kube_.get(path()));
        if (!other) throw internal_error("serving certificate Secret exists but is unreadable");
        m = *other;
      }
    } else {
      m = generate(have);
      picojson::value obj = *existing;
      obj.get<picojson::object>()["data"] = secret_data(m);
      try {
        kube_.update(path(), obj);  // carries resourceVersion: a concurrent writer wins
        log_.info(have ? "serving certificate renewed" : "serving certificate replaced (unreadable)",
                  {{"secret", jv(s_.secret_name)}, {"caRotated", jv(!have || have->ca_cert != m.ca_cert)}});
      } catch (const Error &e) {
        if (e.code != 409) throw;
        auto other = read(kube_.get(path()));
        if (!other) throw internal_error("serving certificate Secret is unreadable");
        m = *other;
      }
    }
    // kube-apiserver learns a new CA before any leaf of it is served; a
    // failed patch does not keep the certificate from loading, and is
    // reported (and retried) after.
    std::exception_ptr patch_error;
    std::string bundle = detail::base64_encode(m.bundle());
    for (const auto &name : s_.api_services) {
      try {
        auto svc = kube_.get_if_exists("/apis/apiregistration.k8s.io/v1/apiservices/" + name);
        if (!svc) continue;
        const auto *spec = json::field(*svc, "spec");
        if (spec && json::get_string(*spec, "caBundle", "spec.caBundle") == bundle) continue;
        picojson::object p, ps;
        ps["caBundle"] = jv(bundle);
        p["spec"] = picojson::value(ps);
        kube_.patch("/apis/apiregistration.k8s.io/v1/apiservices/" + name, picojson::value(p));
        log_.info("APIService caBundle updated", {{"apiService", jv(name)}});
      } catch (const std::exception &) {
        if (!patch_error) patch_error = std::current_exception();
      }
    }
    if (m.cert != current_cert_) {
      on_cert_({m.cert, m.key}, m.bundle(), {m.ca_cert, m.ca_key});
      current_cert_ = m.cert;
      has_cert_ = true;
      log_.info("serving certificate loaded", {{"secret", jv(s_.secret_name)}});
    }
    if (patch_error) std::rethrow_exception(patch_error);
  }

  KubeClient &kube_;
  Logger &log_;
  ServingCertSettings s_;
  OnCert on_cert_;
  Informer informer_;
  std::atomic<bool> running_{false}, again_{false}, has_cert_{false};
  std::string current_cert_;
  std::atomic<Steady::time_point> last_sync_{Steady::time_point()};
};

// ---------------------------------------------------------------------------
// 3d. The HTTPS service both servers are made of
// Owns what the concierge (both of its frontends) and the
// local-user-authenticator are made of: their options, serving certificate
// files reread when they change, a certificate made in memory when there is
// none, the HttpsService (a listener bound or a clear error, TLS material,
// Status answers for whatever is refused, health endpoints, a graceful
// drain) and Controllers, their background loops stopped as one. Calls 0-3c.
// ---------------------------------------------------------------------------

// The serving options of a server (the flags main.cpp reads for both).
struct ServingOptions {
  std::string listen_host = "0.0.0.0";
  int port = 0;  // 0: any free port
  // Serving certificate files (reloaded when they change); else the managed
  // Secret (with a cluster) or a CA and certificate made in memory for
  // `tls_sans`. The CA goes to serving_ca_out.
  std::string tls_cert_file, tls_key_file;
  std::vector<std::string> tls_sans = {"localhost", "127.0.0.1", "::1"};
  std::string serving_ca_out;
  Millis reload_interval = std::chrono::seconds(5);
  size_t max_body_bytes = 64 * 1024;
  // On SIGTERM /readyz fails this long before the listener closes, so a
  // load balancer stops sending first; requests in progress always finish.
  Millis shutdown_delay = Millis(0);
  TlsServerOptions server;
  // A cluster to work with: a kubeconfig file, or the pod's service account
  // when `in_cluster`. Without either the server runs on files alone.
  std::string kubeconfig, kube_context;
  bool in_cluster = false;
  std::string namespace_;
  Millis serving_cert_validity = std::chrono::hours(24 * 30);
  Millis serving_cert_renew_after = std::chrono::hours(24 * 25);
  bool kube_mode() const { return in_cluster || !kubeconfig.empty(); }
};

// Binds `srv` to host:port (any free port when 0); the port, or an error
// that names the address.
inline int bind_listener(TlsServer &srv, const std::string &host, int want) {
  int port = want == 0 ? srv.bind_to_any_port(host) : (srv.bind_to_port(host, want) ? want : -1);
  if (port <= 0) throw Error(500, "InternalError", "cannot listen on " + host + ":" + std::to_string(want));
  return port;
}

// Whatever cpp-httplib answers itself (a bad request line, 413, 414, 404)
// or a handler throws goes out as a Status; an unexpected exception is
// logged and answered 500 without its text.
inline void install_status_handlers(TlsServer &srv, Logger &log, size_t max_body_bytes) {
  srv.set_error_handler([max_body_bytes](const httplib::Request &req, httplib::Response &res) {
    if (!res.body.empty()) return;
    int code = res.status;
    // cpp-httplib limits only Content-Length bodies; a chunked one cut off
    // by the stream's budget shows up as a 400 with the bytes read so far.
    if (code == 400 && req.body.size() > max_body_bytes) code = 413;
    std::string phrase = detail::http_reason_phrase(code);
    send_status(res, Error(code, reason_for_code(code),
                           code == 413      ? "request body is too large"
                           : phrase.empty() ? "HTTP " + std::to_string(code)
                                            : phrase));
  });
  srv.set_exception_handler([&log](const httplib::Request &req, httplib::Response &res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const Error &e) {
      send_status(res, e);
    } catch (const std::exception &e) {
      log.error("handler failed", {{"path", jv(req.path)}, {"error", jv(e.what())}});
      send_status(res, internal_error("internal error"));
    }
  });
}

// A CA and a serving certificate for `sans` made in memory, for a server
// with neither files nor a cluster.
struct GeneratedServing {
  CertificateAndKey ca, leaf;
};
inline GeneratedServing generate_serving_certificate(const std::string &name, const std::vector<std::string> &sans,
                                                     Millis validity) {
  GeneratedServing g;
  g.ca = make_self_signed_ca(name + "-ca", validity);
  CertificateTemplate t;
  t.common_name = name;
  t.server_auth = true;
  t.key_usage = MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
  for (const auto &n : sans) (detail::is_ip_literal(n) ? t.ip_addresses : t.dns_names).push_back(n);
  auto now = Clock::now();
  t.not_before = now - kBackdate;
  t.not_after = now + validity;
  g.leaf = issue_with_ca(g.ca, t);
  return g;
}

// --tls-cert and --tls-key, reread when either changes and used only when
// the pair is whole and valid.
class ServingFiles {
 public:
  ServingFiles(std::string cert_file, std::string key_file)
      : cert_file_(std::move(cert_file)), files_({cert_file_, std::move(key_file)}) {}
  bool given() const { return !cert_file_.empty(); }
  const std::string &cert_file() const { return cert_file_; }
  // The pair when it is new: at start (`initial`) it waits for whole files
  // and throws on a bad pair; later nullopt while unchanged or moving, and a
  // bad pair is logged once and the previous one kept.
  std::optional<CertificateAndKey> poll(bool initial, Logger &log) {
    try {
      std::string why;
      auto texts = files_.take(initial, &why);
      if (!texts) {
        if (!why.empty()) log.debug("serving certificate not read yet", {{"why", jv(why)}});
        return std::nullopt;
      }
      CertificateAndKey pair{(*texts)[0], (*texts)[1]};
      detail::make_server_config({pair.cert_pem, pair.key_pem, ""});  // validate before use
      return pair;
    } catch (const Error &e) {
      if (initial) throw;
      log.warn("serving certificate not reloaded; keeping the previous one", {{"error", jv(e.what())}});
      return std::nullopt;
    }
  }

 private:
  std::string cert_file_;
  WatchedFiles files_;
};

// One HTTPS listener of a server: its TLS material, every request routed to
// one handler, Status answers for whatever is refused, optional health
// endpoints, and a graceful drain. The concierge has one per frontend, the
// local-user-authenticator one.
class HttpsService {
 public:
  using Handler = httplib::Server::Handler;
  HttpsService(const ServingOptions &opt, Logger &log) : log_(log), max_body_(opt.max_body_bytes), server_(opt.server) {
    server_.set_payload_max_length(max_body_);
    install_status_handlers(server_, log_, max_body_);
  }
  ~HttpsService() {
    stop();
    join();
  }
  HttpsService(const HttpsService &) = delete;
  HttpsService &operator=(const HttpsService &) = delete;

  // Every request (but the health endpoints, when served) goes to `h`; a
  // body over the limit is refused first (cpp-httplib limits only
  // Content-Length bodies).
  void handle(Handler h) {
    route_everything(server_, [this, h](const httplib::Request &req, httplib::Response &res) {
      if (req.body.size() > max_body_) throw Error(413, "RequestEntityTooLarge", "request body is too large");
      if (health_ && serve_health(req, res)) return;
      h(req, res);
    });
  }
  // /healthz and /livez answer 200 while the process serves; /readyz 200
  // when `why_not_ready` returns "", else 500 with its reason, and 500
  // from the moment a drain begins.
  void serve_health(std::function<std::string()> why_not_ready) { health_ = std::move(why_not_ready); }
  // Called after every answer (metrics, request logs).
  void on_answer(std::function<void(const httplib::Request &, const httplib::Response &)> f) {
    server_.set_logger(std::move(f));
  }
  // New connections use new material; a refused one is logged and the
  // previous kept. False when refused.
  bool set_credentials(const TlsServerCredentials &c, const char *what = "TLS configuration") {
    try {
      server_.set_credentials(c);
      return true;
    } catch (const Error &e) {
      log_.error(std::string(what) + " refused; keeping the previous one", {{"error", jv(e.what())}});
      return false;
    }
  }
  int bind(const std::string &host, int port) { return port_ = bind_listener(server_, host, port); }
  int port() const { return port_; }
  // Serves on this thread until stopped.
  void run() { server_.listen_after_bind(); }
  // Serves on a thread of its own until stopped; join() waits for it.
  void run_in_background() {
    std::lock_guard<std::mutex> lk(thread_mu_);
    if (thread_.joinable()) return;
    done_ = false;
    background_ = true;
    thread_ = std::thread([this] {
      server_.listen_after_bind();
      done_ = true;
    });
  }
  // The first half of a graceful stop: /readyz fails (load balancers and
  // kubelet take the server out) while requests are still answered.
  void begin_drain() { draining_ = true; }
  bool draining() const { return draining_; }
  // No new connections; requests in progress finish; run() returns.
  // From any thread, any number of times; it does not wait for them.
  void stop() {
    draining_ = true;
    // A stop before the background listener runs would be lost: wait for
    // it to run (or to have given up) first.
    if (background_)
      while (!server_.is_running() && !done_) std::this_thread::sleep_for(Millis(1));
    server_.shutdown();
  }
  // Waits for the background listener (after stop()).
  void join() {
    std::thread t;
    {
      std::lock_guard<std::mutex> lk(thread_mu_);
      t = std::move(thread_);
    }
    if (t.joinable()) t.join();
  }
  TlsServer &tls() { return server_; }
  const TlsServer &tls() const { return server_; }

 private:
  bool serve_health(const httplib::Request &req, httplib::Response &res) {
    std::string path = req.path;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (path != "/healthz" && path != "/livez" && path != "/readyz") return false;
    if (req.method != "GET" && req.method != "HEAD")
      throw Error(405, "MethodNotAllowed", "method " + req.method + " is not allowed on " + path);
    std::string why = path != "/readyz" ? "" : draining_ ? "shutting down" : health_();
    res.status = why.empty() ? 200 : 500;
    res.set_content(why.empty() ? "ok" : "not ready: " + why, "text/plain; charset=utf-8");
    return true;
  }

  Logger &log_;
  size_t max_body_;
  TlsServer server_;
  std::function<std::string()> health_;
  std::atomic<bool> draining_{false};
  int port_ = 0;
  std::mutex thread_mu_;  // a leaf: hands thread_ to the one that joins it
  std::thread thread_;
  std::atomic<bool> background_{false}, done_{true};
};

// The background loops of a server (informers, controllers, the lease), as
// one bundle: each is added once it runs, and all are stopped together in
// the reverse order (the lease, added first, is released last).
class Controllers {
 public:
  ~Controllers() { stop(); }
  // `loop` has stop() and, if it watches, reconnects().
  template <class T>
  T &add(std::unique_ptr<T> &slot, std::unique_ptr<T> loop) {
    slot = std::move(loop);
    T *p = slot.get();
    stops_.push_back([p] { p->stop(); });
    if constexpr (has_reconnects<T>::value) counts_.push_back([p] { return p->reconnects(); });
    return *p;
  }
  void stop() {
    for (auto it = stops_.rbegin(); it != stops_.rend(); ++it) (*it)();
    stops_.clear();
  }
  // Watch reconnections over all of them, for /metrics.
  uint64_t reconnects() const {
    uint64_t n = 0;
    for (const auto &c : counts_) n += c();
    return n;
  }

 private:
  template <class T, class = void>
  struct has_reconnects : std::false_type {};
  template <class T>
  struct has_reconnects<T, std::void_t<decltype(std::declval<const T &>().reconnects())>> : std::true_type {};
  std::vector<std::function<void()>> stops_;
  std::vector<std::function<uint64_t()>> counts_;
};

// ---------------------------------------------------------------------------
// 4. Authenticators
// Owns TokenReview webhooks, the registry of authenticators by name, and
// reading them from a YAML/JSON file. Calls sections 0-3.
// ---------------------------------------------------------------------------

// The outcome of authenticating a token. `reason` is for logs and metrics
// and never contains the token.
struct AuthResult {
  bool authenticated = false;
  UserInfo user;
  std::string reason;        // human readable
  std::string reason_class;  // short, for metrics: rejected, webhook_error, invalid_user, unknown_authenticator
};

// Knobs shared by all webhooks.
struct WebhookOptions {
  Millis timeout = std::chrono::seconds(10);  // whole authentication, retries included
  int attempts = 3;                           // tries on connection errors and 5xx
  Millis backoff = Millis(100);               // doubles per retry
  size_t max_idle_connections = 8;
};

// Checks a user the IDP vouched for against what a certificate can carry.
// Empty when acceptable, else why not.
inline std::string certificate_user_problem(const UserInfo &u) {
  if (u.username.empty()) return "webhook returned an empty username";
  if (!u.uid.empty()) return "webhook returned a uid, which a certificate cannot carry";
  if (!u.extra.empty()) return "webhook returned extra fields, which a certificate cannot carry";
  auto bad = [](const std::string &s) { return s.find('\0') != std::string::npos || !detail::valid_utf8(s); };
  if (bad(u.username)) return "webhook returned a username that is not valid UTF-8 text";
  for (const auto &g : u.groups)
    if (bad(g)) return "webhook returned a group that is not valid UTF-8 text";
  return "";
}

// What the exchange asks to authenticate a token: a WebhookAuthenticator
// (here) or a JWTAuthenticator (4b). Thread-safe.
class TokenAuthenticator {
 public:
  virtual ~TokenAuthenticator() = default;
  virtual const std::string &name() const = 0;
  // The kind of the cluster object it comes from ("WebhookAuthenticator").
  virtual const char *kind() const = 0;
  // `client`: the address the exchange came from.
  virtual AuthResult authenticate(const std::string &token, const std::string &client) = 0;
};

// A TokenReview webhook IDP (WebhookAuthenticator). Thread-safe; keeps a
// few kept-alive connections for reuse.
class WebhookAuthenticator : public TokenAuthenticator {
 public:
  static constexpr const char *kKind = "WebhookAuthenticator";
  WebhookAuthenticator(std::string name, WebhookAuthenticatorSpec spec, WebhookOptions opt = WebhookOptions())
      : name_(std::move(name)), spec_(std::move(spec)), opt_(opt) {
    if (spec_.timeout) opt_.timeout = *spec_.timeout;
    url_ = Url::parse(spec_.endpoint);
    if (url_.scheme != "https") throw bad_request("spec.endpoint must be an https:// URL");
    if (spec_.token_review_version != "v1" && spec_.token_review_version != "v1beta1")
      throw bad_request("spec.tokenReviewVersion must be v1 or v1beta1");
    if (!spec_.certificate_authority_data.empty()) {
      auto pem = detail::base64_decode(spec_.certificate_authority_data);
      if (!pem) throw bad_request("spec.tls.certificateAuthorityData is not valid base64");
      tls_.ca_pem = *pem;
      try {
        CertificateChain::parse(tls_.ca_pem);
      } catch (const Error &e) {
        throw bad_request(std::string("spec.tls.certificateAuthorityData: ") + e.what());
      }
    }
    // Fail now on a broken TLS configuration rather than per request.
    tls_config_ = HttpsClient::make_config(url_.base(), tls_);
  }

  const std::string &name() const override { return name_; }
  const char *kind() const override { return kKind; }
  const WebhookAuthenticatorSpec &spec() const { return spec_; }

  // `client` goes to the IDP as X-Forwarded-For (pinniped's
  // local-user-authenticator brakes per address and user with it; other
  // IDPs may log it or ignore it).
  AuthResult authenticate(const std::string &token, const std::string &client = "") override {
    AuthResult r = authenticate_unredacted(token, client);
    // The IDP may echo the token (in status.error, or in a body whose parse
    // error quotes it); the reason goes to logs, so the token never does.
    const std::string mask = "[token]";
    if (!token.empty())
      for (size_t at = r.reason.find(token); at != std::string::npos; at = r.reason.find(token, at + mask.size()))
        r.reason.replace(at, token.size(), mask);
    return r;
  }

 private:
  AuthResult authenticate_unredacted(const std::string &token, const std::string &client = "") {
    httplib::Headers headers = {{"Accept", "application/json"}, {"Content-Type", "application/json"}};
    // Only an IP literal goes into the header (no header injection).
    if (!client.empty() && !detail::parse_ip(client).empty()) headers.emplace("X-Forwarded-For", client);
    AuthResult r;
    TokenReview review;
    review.api_version = "authentication.k8s.io/" + spec_.token_review_version;
    review.token = detail::to_valid_utf8(token);
    std::string body = review.to_json(true).serialize();
    auto deadline = Steady::now() + opt_.timeout;
    Millis backoff = opt_.backoff;
    std::string last_problem;
    const int attempts = std::max(1, opt_.attempts);
    for (int attempt = 1; attempt <= attempts; attempt++) {
      // No backoff after the last attempt: nothing follows it.
      auto pause = [&] {
        if (attempt < attempts) retry_sleep(backoff, deadline);
        backoff *= 2;
      };
      auto left = std::chrono::duration_cast<Millis>(deadline - Steady::now());
      if (left.count() <= 0) {
        last_problem = "timed out after " + std::to_string(opt_.timeout.count()) + "ms";
        break;
      }
      auto client = borrow();
      HttpResponse res;
      try {
        res = client->request("POST", url_.path, headers, body, left, PINNIPED_MAX_WEBHOOK_RESPONSE_BYTES);
      } catch (const Error &e) {
        last_problem = e.what();
        pause();
        continue;  // connection-level error: retry
      }
      if (res.status >= 500) {
        give_back(std::move(client));
        last_problem = "webhook answered HTTP " + std::to_string(res.status);
        pause();
        continue;
      }
      give_back(std::move(client));
      if (res.status != 200 && res.status != 201) {
        r.reason = "webhook answered HTTP " + std::to_string(res.status);
        r.reason_class = "webhook_error";
        return r;
      }
      TokenReview answer;
      try {
        answer = TokenReview::from_json(json::parse(res.body));
      } catch (const Error &e) {
        r.reason = std::string("webhook answer is not a TokenReview: ") + e.what();
        r.reason_class = "webhook_error";
        return r;
      }
      if (answer.api_version != review.api_version) {
        r.reason =
            "webhook answered apiVersion \"" + answer.api_version + "\", expected \"" + review.api_version + "\"";
        r.reason_class = "webhook_error";
        return r;
      }
      if (!answer.authenticated) {
        r.reason = answer.error.empty() ? "webhook did not authenticate the token"
                                        : "webhook did not authenticate the token: " + answer.error;
        r.reason_class = "rejected";
        return r;
      }
      std::string problem = certificate_user_problem(answer.user);
      if (!problem.empty()) {
        r.reason = problem;
        r.reason_class = "invalid_user";
        return r;
      }
      r.authenticated = true;
      r.user = std::move(answer.user);
      return r;
    }
    r.reason = "webhook unreachable: " + last_problem;
    r.reason_class = "webhook_error";
    return r;
  }

 private:
  static void retry_sleep(Millis d, Steady::time_point deadline) {
    auto until = std::min(Steady::now() + d, deadline);
    std::this_thread::sleep_until(until);
  }
  std::unique_ptr<HttpsClient> borrow() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    return std::make_unique<HttpsClient>(url_.base(), tls_config_);
  }
  void give_back(std::unique_ptr<HttpsClient> c) {
    std::lock_guard<std::mutex> lk(mu_);
    if (idle_.size() < opt_.max_idle_connections) idle_.push_back(std::move(c));
  }

  std::string name_;
  WebhookAuthenticatorSpec spec_;
  WebhookOptions opt_;
  Url url_;
  ClientTlsOptions tls_;
  std::shared_ptr<detail::TlsConfig> tls_config_;
  std::mutex mu_;
  std::vector<std::unique_ptr<HttpsClient>> idle_;
};

// Authenticators by kind and name, from two sources: the cluster's
// WebhookAuthenticator and JWTAuthenticator objects ("api") and the
// --authenticators file ("file"); an object in the cluster wins over a file
// entry of the same kind and name. The exchange only calls find.
class AuthenticatorRegistry {
 public:
  using Ptr = std::shared_ptr<TokenAuthenticator>;
  static constexpr const char *webhook_kind = WebhookAuthenticator::kKind;

  Ptr find(const std::string &kind, const std::string &name) const {
    std::lock_guard<std::mutex> lk(mu_);
    for (const char *source : {"api", "file"}) {
      auto it = items_.find({source, kind, name});
      if (it != items_.end()) return it->second;
    }
    return nullptr;
  }
  // The authenticators these replace are let go after the lock: the last
  // reference closes their kept-alive connections (TLS close_notify).
  void put(Ptr a, const std::string &source = "api") {
    Ptr old;
    std::lock_guard<std::mutex> lk(mu_);
    auto &slot = items_[{source, a->kind(), a->name()}];
    std::swap(old, slot);
    slot = std::move(a);
  }
  void remove(const std::string &kind, const std::string &name, const std::string &source = "api") {
    Ptr old;
    std::lock_guard<std::mutex> lk(mu_);
    auto it = items_.find({source, kind, name});
    if (it == items_.end()) return;
    old = std::move(it->second);
    items_.erase(it);
  }
  // Replaces every authenticator of a kind from one source (a reloaded file).
  void replace_all(const std::string &kind, std::vector<Ptr> list, const std::string &source = "file") {
    std::vector<Ptr> old;
    std::lock_guard<std::mutex> lk(mu_);
    for (auto it = items_.begin(); it != items_.end();) {
      if (std::get<0>(it->first) == source && std::get<1>(it->first) == kind) {
        old.push_back(std::move(it->second));
        it = items_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto &a : list) items_[{source, kind, a->name()}] = std::move(a);
  }
  std::vector<std::string> names() const {
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<std::string> out;
    for (const auto &kv : items_) out.push_back(std::get<1>(kv.first) + "/" + std::get<2>(kv.first));
    return out;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lk(mu_);
    return items_.size();
  }

 private:
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, std::string>, Ptr> items_;
};

// Reads WebhookAuthenticators from a YAML or JSON text: one object, a
// multi-document stream, or a List. Throws Error(400) naming the problem.
// JWTAuthenticator objects go to `jwts` when given (4b reads them), else
// they are refused as any other kind.
inline std::vector<WebhookAuthenticatorObject> parse_authenticators(const std::string &text, const std::string &suffix,
                                                                    std::vector<picojson::value> *jwts = nullptr) {
  std::vector<picojson::value> objs;
  for (auto &doc : parse_yaml_documents(text)) {
    if (!doc.is<picojson::object>()) throw bad_request("authenticators: each document must be an object");
    std::string kind = json::get_string(doc, "kind", "kind");
    if (kind == "List" || kind == "WebhookAuthenticatorList") {
      const auto *items = json::field(doc, "items");
      if (items && !items->is<picojson::array>()) throw bad_request("authenticators: items must be a list");
      if (items)
        for (const auto &i : items->get<picojson::array>()) objs.push_back(i);
    } else {
      objs.push_back(doc);
    }
  }
  std::vector<WebhookAuthenticatorObject> out;
  std::string want_version = authentication_group(suffix) + "/v1alpha1";
  for (const auto &o : objs) {
    if (!o.is<picojson::object>()) throw bad_request("authenticators: each item must be an object");
    std::string kind = json::get_string(o, "kind", "kind");
    bool jwt = jwts && kind == "JWTAuthenticator";
    if (kind != "WebhookAuthenticator" && !jwt)
      throw bad_request("authenticators: kind \"" + kind + "\" is not supported (want WebhookAuthenticator" +
                        (jwts ? std::string(" or JWTAuthenticator") : "") + ")");
    std::string av = json::get_string(o, "apiVersion", "apiVersion");
    if (!av.empty() && av != want_version)
      throw bad_request("authenticators: apiVersion \"" + av + "\" (want " + want_version + ")");
    if (jwt) {
      jwts->push_back(o);
      continue;
    }
    auto w = WebhookAuthenticatorObject::from_json(o);
    if (w.metadata.name.empty()) throw bad_request("authenticators: metadata.name is required");
    if (w.spec.endpoint.empty())
      throw bad_request("authenticators: " + w.metadata.name + ": spec.endpoint is required");
    for (const auto &prev : out)
      if (prev.metadata.name == w.metadata.name)
        throw bad_request("authenticators: duplicate name \"" + w.metadata.name + "\"");
    out.push_back(std::move(w));
  }
  return out;
}

// ---------------------------------------------------------------------------
// 4b. OIDC ID tokens
// Owns JWS verification of ID tokens, JWK sets, OIDC discovery and the
// JWTAuthenticator's key cache. Calls sections 0-4.
// ---------------------------------------------------------------------------

// What a token must satisfy besides its signature.
struct JwtRules {
  std::string issuer;                       // iss must equal exactly
  std::string audience;                     // must be in aud (string or array of strings)
  std::string username_claim = "username";  // upstream default
  std::string groups_claim = "groups";      // upstream default
  std::string nonce;                        // when non-empty, the nonce claim must equal it (CLI use)
  bool require_user = true;                 // false: only signature and iss/aud/time checks (CLI use)
  Millis clock_skew = std::chrono::seconds(PINNIPED_JWT_CLOCK_SKEW_SECONDS);
};

// The verdict on one token. `reason` names what failed for the log; it
// never holds the token, a signature or the payload, and quotes at most 64
// bytes of any claim. Claims and user are empty unless `ok`.
struct JwtCheck {
  bool ok = false;
  std::string reason;
  bool unknown_kid = false;   // the key id was not in the set (caller may refetch)
  bool invalid_user = false;  // signature and claims fine, but no usable username or groups
  std::string alg, kid;
  picojson::object claims;
  UserInfo user;             // username and groups per the rules
  Clock::time_point expiry;  // exp
};

// An issuer's /.well-known/openid-configuration, the fields we use.
struct OidcDiscovery {
  std::string issuer, authorization_endpoint, token_endpoint, jwks_uri, device_authorization_endpoint,
      userinfo_endpoint;
  std::vector<std::string> code_challenge_methods, id_token_algs;
};

// A JWTAuthenticator that cannot be set up or cannot get its keys.
// `condition` is the status condition that fails: TLSConfigurationValid,
// IssuerURLValid, AuthenticatorValid, DiscoveryURLValid, JWKSURLValid or
// JWKSFetchValid.
struct JwtSetupError : Error {
  JwtSetupError(std::string condition, int code, const std::string &message)
      : Error(code, reason_for_code(code), message), condition(std::move(condition)) {}
  std::string condition;
};

// spec of a JWTAuthenticator; `ca_pem` is the decoded
// tls.certificateAuthorityData (empty: the system roots).
struct JwtAuthenticatorSpec {
  std::string issuer, audience, username_claim = "username", groups_claim = "groups", ca_pem;
};

struct JwtAuthenticatorOptions {
  Millis refetch_interval = std::chrono::seconds(PINNIPED_JWT_REFETCH_SECONDS);
  Millis refetch_timeout = std::chrono::seconds(PINNIPED_JWT_REFETCH_TIMEOUT_SECONDS);
  Millis clock_skew = std::chrono::seconds(PINNIPED_JWT_CLOCK_SKEW_SECONDS);
};

namespace detail {

// Base64url without padding, as JWS writes it (RFC 7515 section 2): '=',
// whitespace and bytes outside A-Z a-z 0-9 - _ are refused, and so are a
// length of 4n+1 and leftover low bits that are not zero (one spelling per
// value). A table and four characters a step: it runs over every token.
struct Base64urlTable {
  unsigned char value[256];  // 0x80: not in the alphabet
  constexpr Base64urlTable() : value() {
    for (int i = 0; i < 256; i++) value[i] = 0x80;
    for (int i = 0; i < 26; i++) value['A' + i] = static_cast<unsigned char>(i);
    for (int i = 0; i < 26; i++) value['a' + i] = static_cast<unsigned char>(26 + i);
    for (int i = 0; i < 10; i++) value['0' + i] = static_cast<unsigned char>(52 + i);
    value[static_cast<unsigned char>('-')] = 62;
    value[static_cast<unsigned char>('_')] = 63;
  }
};
inline constexpr Base64urlTable kBase64url{};
inline bool base64url_decode(std::string_view in, std::string &out) {
  size_t n = in.size(), rest = n % 4;
  out.clear();
  if (rest == 1) return false;
  out.resize(n / 4 * 3 + (rest ? rest - 1 : 0));
  const auto *s = reinterpret_cast<const unsigned char *>(in.data());
  const unsigned char *t = kBase64url.value;
  auto *o = reinterpret_cast<unsigned char *>(&out[0]);
  unsigned bad = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4, o += 3) {
    unsigned a = t[s[i]], b = t[s[i + 1]], c = t[s[i + 2]], d = t[s[i + 3]];
    bad |= a | b | c | d;
    uint32_t x = a << 18 | b << 12 | c << 6 | d;
    o[0] = static_cast<unsigned char>(x >> 16);
    o[1] = static_cast<unsigned char>(x >> 8);
    o[2] = static_cast<unsigned char>(x);
  }
  if (rest) {
    unsigned a = t[s[i]], b = t[s[i + 1]], c = rest == 3 ? t[s[i + 2]] : 0;
    bad |= a | b | c;
    uint32_t x = a << 18 | b << 12 | c << 6;
    // The bits past the last whole byte must be zero.
    if (x & (rest == 2 ? 0xffffu : 0xffu)) return false;
    o[0] = static_cast<unsigned char>(x >> 16);
    if (rest == 3) o[1] = static_cast<unsigned char>(x >> 8);
  }
  return (bad & 0x80) == 0;
}
inline std::optional<std::string> base64url_decode(std::string_view in) {
  std::string out;
  if (!base64url_decode(in, out)) return std::nullopt;
  return out;
}

// The unpadded URL alphabet (a PKCE challenge, test tokens).
inline std::string base64url_encode(const std::string &raw) {
  std::string s = base64_encode(raw);
  for (auto &c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  s.erase(std::min(s.find('='), s.size()));
  return s;
}

// A value from a token or an issuer, for a log line: JSON-quoted (control
// characters escaped), valid UTF-8, cut to `limit` bytes with "...".
inline std::string quote_value(std::string_view s, size_t limit = 64) {
  size_t n = std::min(s.size(), limit);
  while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) n--;
  std::string out = to_json_string(picojson::value(to_valid_utf8(std::string(s.substr(0, n)))));
  return n < s.size() ? out + "..." : out;
}
inline const char *json_kind(const picojson::value &v) {
  if (v.is<picojson::null>()) return "null";
  if (v.is<bool>()) return "a boolean";
  if (v.is<double>()) return "a number";  // int64 too
  if (v.is<std::string>()) return "a string";
  if (v.is<picojson::array>()) return "an array";
  return "an object";
}

// `text` as a JSON object; else throws Error(400): "<what> is not JSON: ..."
// or "<what> is not a JSON object".
inline picojson::value parse_json_object(const std::string &text, const std::string &what) {
  picojson::value v;
  try {
    v = json::parse(text);
  } catch (const Error &e) {
    throw bad_request(what + " is not JSON: " + e.what());
  }
  if (!v.is<picojson::object>()) throw bad_request(what + " is not a JSON object");
  return v;
}

// A NumericDate (seconds since 1970, integer or not); nullopt when `v` is
// not a number. Out-of-range values saturate (clock_from_time_t).
inline std::optional<Clock::time_point> numeric_date(const picojson::value &v) {
  if (v.is<int64_t>()) return clock_from_time_t(v.get<int64_t>());
  // is<double> only now: get<double> on an int64 value rewrites it in place.
  if (!v.is<double>()) return std::nullopt;
  double d = v.get<double>();
  if (!std::isfinite(d)) return std::nullopt;
  if (d >= 9e18 || d <= -9e18) return clock_from_time_t(d > 0 ? INT64_MAX : INT64_MIN);
  double whole = std::floor(d);
  return clock_from_time_t(static_cast<int64_t>(whole)) +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(d - whole));
}

// "" when `url` is an absolute https URL without fragment, user
// information, spaces or control characters; else why not.
inline std::string https_url_problem(const std::string &url) {
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return "contains a space, a control character or a non-ASCII byte";
  if (url.find('#') != std::string::npos) return "has a fragment";
  Url u;
  try {
    u = Url::parse(url);
  } catch (const Error &e) {
    return std::string("is not a valid URL: ") + e.what();
  }
  if (u.scheme != "https") return "is not an https:// URL";
  return "";
}

enum class JwkKind { rsa, p256, p384 };
inline const char *jwk_kind_name(JwkKind k) {
  return k == JwkKind::rsa ? "an RSA key" : k == JwkKind::p256 ? "an EC P-256 key" : "an EC P-384 key";
}

// The JWS algorithms we verify (RFC 7518 section 3). HMAC is absent on
// purpose: our keys are public, and an "HS256" token keyed with a public
// key would be forgeable by anyone.
struct JwsAlgorithm {
  const char *name;
  JwkKind kind;
  mbedtls_md_type_t md;
  bool pss;     // RSASSA-PSS, MGF1 with the same hash, salt as long as the hash
  size_t half;  // ECDSA: bytes of r and of s in the raw r||s signature
};
inline const JwsAlgorithm *find_jws_algorithm(std::string_view name) {
  static const JwsAlgorithm all[] = {
      {"RS256", JwkKind::rsa, MBEDTLS_MD_SHA256, false, 0},   {"RS384", JwkKind::rsa, MBEDTLS_MD_SHA384, false, 0},
      {"RS512", JwkKind::rsa, MBEDTLS_MD_SHA512, false, 0},   {"PS256", JwkKind::rsa, MBEDTLS_MD_SHA256, true, 0},
      {"ES256", JwkKind::p256, MBEDTLS_MD_SHA256, false, 32}, {"ES384", JwkKind::p384, MBEDTLS_MD_SHA384, false, 48}};
  for (const auto &a : all)
    if (name == a.name) return &a;
  return nullptr;
}
inline constexpr const char *kJwsAlgorithmNames = "RS256, RS384, RS512, PS256, ES256, ES384";

// A small per-thread number, to spread threads over a key's RSA copies.
inline size_t thread_slot() {
  static std::atomic<size_t> next{0};
  thread_local size_t slot = next.fetch_add(1, std::memory_order_relaxed);
  return slot;
}

// One public key of a JWKS, in mbedTLS form once and for all.
// Thread-safety (mbedTLS 2.28, MBEDTLS_THREADING_C on): mbedtls_rsa_public
// holds the context's mutex for its whole exponentiation (the mutex guards
// the lazily computed Montgomery constant RN), so concurrent verifies with
// one context are safe but run one at a time; each RSA key therefore keeps
// PINNIPED_JWT_RSA_REPLICAS copies and a thread uses the one of its slot.
// ECDSA verification through mbedtls_pk_verify or with the key's own group
// stores the group's comb table on first use, without a lock (a race on a
// shared key); we keep the point only and verify with the thread's
// prepared_group.
class Jwk {
 public:
  ~Jwk() {
    for (size_t i = 0; i < replicas_; i++) mbedtls_rsa_free(&rsa_[i]);
    mbedtls_ecp_point_free(&q_);
  }
  Jwk(const Jwk &) = delete;
  Jwk &operator=(const Jwk &) = delete;

  // The key in `v`; nullptr with *skip set for a key of a kind we do not
  // use; throws Error(400) for a key of our kinds that is malformed or weak.
  static std::unique_ptr<Jwk> from_json(const picojson::value &v, size_t index, std::string *skip);

  const std::string &kid() const { return kid_; }
  JwkKind kind() const { return kind_; }
  const std::string &alg() const { return alg_; }
  bool fits(const JwsAlgorithm &a) const { return a.kind == kind_ && (alg_.empty() || alg_ == a.name); }
  // "" when `sig` signs `hash` (made with a.md) with this key; else why not.
  std::string verify(const JwsAlgorithm &a, const unsigned char *hash, size_t hash_len, std::string_view sig) const;

 private:
  Jwk() { mbedtls_ecp_point_init(&q_); }
  std::string kid_, alg_;
  JwkKind kind_ = JwkKind::rsa;
  std::unique_ptr<mbedtls_rsa_context[]> rsa_;
  size_t replicas_ = 0;
  mbedtls_ecp_group_id group_ = MBEDTLS_ECP_DP_NONE;
  mbedtls_ecp_point q_;
};

}  // namespace detail

// A JWK set as an issuer publishes it (RFC 7517), parsed once. Immutable,
// so any number of threads may verify with it at once.
class JsonWebKeySet {
 public:
  // Throws Error(400) with a clear message for a malformed document, a
  // malformed or weak key of a kind we use (RSA under 2048 bits, an EC
  // point off its curve, private parameters), or a set without one usable
  // key. Keys we cannot use (use other than sig, kty other than RSA/EC, a
  // curve other than P-256/P-384, an algorithm we lack) are skipped.
  static std::shared_ptr<const JsonWebKeySet> parse(const std::string &jwks_json);

  size_t size() const { return keys_.size(); }
  bool has_kid(const std::string &kid) const;
  std::vector<std::string> kids() const;
  // Why each skipped key was skipped ("keys[2] (kid \"x\"): use is \"enc\"").
  const std::vector<std::string> &skipped() const { return skipped_; }

  // Checks `signature` over `signing_input` with the key `kid` names, or,
  // when kid is null, the first PINNIPED_JWT_KEYLESS_TRIES keys that fit
  // `alg`. "" when it verifies, else why not; *unknown_kid is set when no
  // key has that kid.
  std::string verify_signature(const detail::JwsAlgorithm &alg, const std::string *kid, std::string_view signing_input,
                               std::string_view signature, bool *unknown_kid) const;

 private:
  JsonWebKeySet() = default;
  std::vector<std::unique_ptr<detail::Jwk>> keys_;
  std::vector<std::string> skipped_;
};

// Verifies a JWS compact token (an OIDC ID token) with `keys` and `rules`.
// Never throws for bad input: the verdict is in the result.
inline JwtCheck verify_jwt(const std::string &token, const JsonWebKeySet &keys, const JwtRules &rules,
                           Clock::time_point now = Clock::now());

// "" when `issuer` may be a JWTAuthenticator's issuer, else why not: https
// only, with a host, no user information, query or fragment, not ending in
// /.well-known/openid-configuration, ASCII without spaces.
inline std::string validate_issuer_url(const std::string &issuer);

// Reads a discovery document. Throws JwtSetupError: DiscoveryURLValid when
// it is not JSON, names another issuer (compared exactly) or lists an
// endpoint that is not https; JWKSURLValid when jwks_uri is missing or not
// https.
inline OidcDiscovery parse_oidc_discovery(const std::string &json, const std::string &expected_issuer);

// GETs <issuer>/.well-known/openid-configuration (any trailing '/' of the
// issuer dropped first) over https within `timeout`, at most
// PINNIPED_JWT_MAX_DOCUMENT_BYTES, and parses it. Throws JwtSetupError.
inline OidcDiscovery fetch_oidc_discovery(const std::string &issuer, const ClientTlsOptions &tls, Millis timeout);

// GETs and parses a JWKS (bounded likewise). Throws JwtSetupError:
// JWKSURLValid for a bad URL, JWKSFetchValid for anything after.
inline std::shared_ptr<const JsonWebKeySet> fetch_jwks(const std::string &jwks_uri, const ClientTlsOptions &tls,
                                                       Millis timeout);

// The concierge's authenticator for one JWTAuthenticator. Thread-safe.
// Keys are a shared_ptr<const JsonWebKeySet> swapped under a short lock,
// never held across a fetch. A token whose kid is unknown makes the one
// caller that finds no fetch running and none within refetch_interval
// fetch the JWKS again (the new set replaces the old: a key rotated away
// stops working); every other such caller is refused at once.
class JwtAuthenticator : public TokenAuthenticator {
 public:
  static constexpr const char *kKind = "JWTAuthenticator";
  // Checks the spec (throws JwtSetupError); fetches nothing.
  JwtAuthenticator(std::string name, JwtAuthenticatorSpec spec, Logger &log,
                   JwtAuthenticatorOptions opt = JwtAuthenticatorOptions());

  const std::string &name() const override { return name_; }
  const char *kind() const override { return kKind; }
  const JwtAuthenticatorSpec &spec() const { return spec_; }

  // Discovery, then the JWKS, within `timeout` in all. Throws JwtSetupError
  // whose condition names the step that failed; the keys held so far stay.
  // For the controller, not the request path.
  void fetch_keys(Millis timeout);
  bool has_keys() const;
  std::shared_ptr<const JsonWebKeySet> keys() const;
  uint64_t fetches() const;  // JWKS fetches begun, by fetch_keys or a refetch

  // reason_class: rejected (the token), invalid_user (a valid token without
  // a usable user), idp_error (no keys: the issuer is unreachable or broken).
  AuthResult authenticate(const std::string &token, const std::string &client = "") override;

 private:
  struct Refetch {
    std::shared_ptr<const JsonWebKeySet> keys;  // null: no fetch, or it failed
    std::string why;
    bool failed = false;
  };
  Refetch refetch(const std::string &client);
  uint64_t begin_fetch();
  void end_fetch(uint64_t ticket, std::shared_ptr<const JsonWebKeySet> keys, const std::string &jwks_uri);

  std::string name_;
  JwtAuthenticatorSpec spec_;
  Logger &log_;
  JwtAuthenticatorOptions opt_;
  JwtRules rules_;
  ClientTlsOptions tls_;

  mutable std::mutex mu_;  // a leaf: guards what follows, never held across I/O
  std::shared_ptr<const JsonWebKeySet> keys_;
  std::string jwks_uri_;    // from the last discovery that worked
  uint64_t started_ = 0;    // fetch tickets handed out
  uint64_t published_ = 0;  // ticket of the set in keys_ (an older fetch never replaces a newer one)
  int in_flight_ = 0;
  Steady::time_point last_start_{};
};

// ---------------------------------------------------------------------------
// 4b. Definitions
// ---------------------------------------------------------------------------

namespace detail {

inline std::unique_ptr<Jwk> Jwk::from_json(const picojson::value &v, size_t index, std::string *skip) {
  std::string where = "keys[" + std::to_string(index) + "]";
  if (!v.is<picojson::object>()) throw bad_request("JWKS " + where + " is not an object");
  auto str = [&](const char *k) { return json::get_string(v, k, "JWKS " + where + "." + k); };
  std::unique_ptr<Jwk> key(new Jwk);
  key->kid_ = str("kid");
  if (json::field(v, "kid")) where += " (kid " + quote_value(key->kid_) + ")";
  auto skipped = [&](const std::string &why) {
    *skip = where + ": " + why;
    return nullptr;
  };
  std::string kty = str("kty"), use = str("use");
  if (kty.empty()) throw bad_request("JWKS " + where + " has no kty");
  if (!use.empty() && use != "sig") return skipped("use is " + quote_value(use));
  if (json::field(v, "key_ops")) {
    auto ops = json::get_string_list(v, "key_ops", "JWKS " + where + ".key_ops");
    if (std::find(ops.begin(), ops.end(), "verify") == ops.end()) return skipped("key_ops lacks \"verify\"");
  }
  key->alg_ = str("alg");
  const JwsAlgorithm *alg = key->alg_.empty() ? nullptr : find_jws_algorithm(key->alg_);
  if (!key->alg_.empty() && !alg) return skipped("alg " + quote_value(key->alg_) + " is not supported");
  // Base64url members, refused when broken; leading zero bytes dropped.
  auto bytes = [&](const char *k, bool strip) {
    std::string s = str(k), out;
    if (s.empty()) throw bad_request("JWKS " + where + " has no " + k);
    if (!base64url_decode(s, out)) throw bad_request("JWKS " + where + "." + k + " is not base64url");
    if (strip) out.erase(0, std::min(out.find_first_not_of('\0'), out.size()));
    return out;
  };
  auto no_private = [&](std::initializer_list<const char *> names) {
    for (const char *n : names)
      if (json::field(v, n))
        throw bad_request("JWKS " + where + " holds private key material (" + n +
                          "): an issuer publishes public keys only");
  };
  if (kty == "RSA") {
    no_private({"d", "p", "q", "dp", "dq", "qi", "oth"});
    key->kind_ = JwkKind::rsa;
    std::string n = bytes("n", true), e = bytes("e", true);
    size_t bits = 0;
    if (!n.empty()) {
      unsigned top = static_cast<unsigned char>(n[0]);
      bits = (n.size() - 1) * 8;
      while (top) bits++, top >>= 1;
    }
    if (bits < PINNIPED_JWT_RSA_MIN_BITS || bits > PINNIPED_JWT_RSA_MAX_BITS)
      throw bad_request("JWKS " + where + ": RSA modulus is " + std::to_string(bits) + " bits, outside " +
                        std::to_string(PINNIPED_JWT_RSA_MIN_BITS) + ".." + std::to_string(PINNIPED_JWT_RSA_MAX_BITS));
    uint64_t ev = 0;
    for (char c : e.size() <= 4 ? e : std::string()) ev = ev << 8 | static_cast<unsigned char>(c);
    if (ev < 3 || ev % 2 == 0)
      throw bad_request("JWKS " + where + ": RSA exponent must be odd, at least 3 and at most 32 bits");
    if (alg && alg->kind != JwkKind::rsa) throw bad_request("JWKS " + where + ": alg " + alg->name + " on an RSA key");
    key->rsa_.reset(new mbedtls_rsa_context[PINNIPED_JWT_RSA_REPLICAS]);
    for (size_t i = 0; i < PINNIPED_JWT_RSA_REPLICAS; i++) {
      mbedtls_rsa_context *ctx = &key->rsa_[i];
      mbedtls_rsa_init(ctx, MBEDTLS_RSA_PKCS_V15, 0);
      key->replicas_++;
      int ret =
          mbedtls_rsa_import_raw(ctx, reinterpret_cast<const unsigned char *>(n.data()), n.size(), nullptr, 0, nullptr,
                                 0, nullptr, 0, reinterpret_cast<const unsigned char *>(e.data()), e.size());
      if (ret == 0) ret = mbedtls_rsa_complete(ctx);
      if (ret == 0) ret = mbedtls_rsa_check_pubkey(ctx);
      if (ret != 0) throw bad_request("JWKS " + where + ": RSA key is not valid: " + mbed_error(ret));
    }
    return key;
  }
  if (kty == "EC") {
    no_private({"d"});
    std::string crv = str("crv");
    size_t half;
    if (crv == "P-256") {
      key->kind_ = JwkKind::p256;
      key->group_ = MBEDTLS_ECP_DP_SECP256R1;
      half = 32;
    } else if (crv == "P-384") {
      key->kind_ = JwkKind::p384;
      key->group_ = MBEDTLS_ECP_DP_SECP384R1;
      half = 48;
    } else {
      return skipped(crv.empty() ? "EC key without crv" : "crv " + quote_value(crv) + " is not supported");
    }
    // Full-length coordinates only (RFC 7518 section 6.2.1.2).
    std::string x = bytes("x", false), y = bytes("y", false);
    if (x.size() != half || y.size() != half)
      throw bad_request("JWKS " + where + ": x and y of a " + crv + " key must be " + std::to_string(half) +
                        " bytes each");
    if (alg && alg->kind != key->kind_)
      throw bad_request("JWKS " + where + ": alg " + alg->name + " on a " + crv + " key");
    const mbedtls_ecp_group *g = prepared_group(key->group_);
    if (!g) throw internal_error("EC group " + crv + " is not available");
    std::string point = "\x04" + x + y;
    int ret =
        mbedtls_ecp_point_read_binary(g, &key->q_, reinterpret_cast<const unsigned char *>(point.data()), point.size());
    if (ret == 0) ret = mbedtls_ecp_check_pubkey(g, &key->q_);
    if (ret != 0) throw bad_request("JWKS " + where + ": the EC point is not on the " + crv + " curve");
    return key;
  }
  return skipped("kty " + quote_value(kty) + " is not supported");
}

inline std::string Jwk::verify(const JwsAlgorithm &a, const unsigned char *hash, size_t hash_len,
                               std::string_view sig) const {
  const auto *s = reinterpret_cast<const unsigned char *>(sig.data());
  int ret;
  if (kind_ == JwkKind::rsa) {
    mbedtls_rsa_context *ctx = &rsa_[thread_slot() % replicas_];
    // mbedTLS reads exactly a modulus' worth of signature.
    size_t len = mbedtls_rsa_get_len(ctx);
    if (sig.size() != len)
      return "signature is " + std::to_string(sig.size()) + " bytes, the key's modulus " + std::to_string(len);
    auto hl = static_cast<unsigned>(hash_len);
    ret = a.pss ? mbedtls_rsa_rsassa_pss_verify_ext(ctx, nullptr, nullptr, MBEDTLS_RSA_PUBLIC, a.md, hl, hash, a.md,
                                                    static_cast<int>(hash_len), s)
                : mbedtls_rsa_rsassa_pkcs1_v15_verify(ctx, nullptr, nullptr, MBEDTLS_RSA_PUBLIC, a.md, hl, hash, s);
  } else {
    if (sig.size() != 2 * a.half) return "signature has the wrong length";  // verify_signature checked already
    mbedtls_ecp_group *g = prepared_group(group_);
    mbedtls_mpi r, ss;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&ss);
    ret = g ? mbedtls_mpi_read_binary(&r, s, a.half) : MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE;
    if (ret == 0) ret = mbedtls_mpi_read_binary(&ss, s + a.half, a.half);
    if (ret == 0) ret = mbedtls_ecdsa_verify(g, hash, hash_len, &q_, &r, &ss);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&ss);
  }
  return ret == 0 ? "" : "signature does not verify";
}

// The claims part of verify_jwt: "" or why the claims fail `rules`; fills
// c.expiry and c.user.
inline std::string check_claims(const picojson::object &claims, const JwtRules &rules, Clock::time_point now,
                                JwtCheck &c) {
  auto get = [&](const std::string &k) -> const picojson::value * {
    auto it = claims.find(k);
    return it == claims.end() || it->second.is<picojson::null>() ? nullptr : &it->second;
  };
  if (rules.issuer.empty() || rules.audience.empty()) return "no issuer or audience to check the token against";
  const auto *iss = get("iss");
  if (!iss) return "token has no iss claim";
  if (!iss->is<std::string>()) return std::string("iss claim is ") + json_kind(*iss) + ", not a string";
  if (iss->get<std::string>() != rules.issuer)
    return "iss claim " + quote_value(iss->get<std::string>()) + " is not the issuer " + quote_value(rules.issuer);

  const auto *aud = get("aud");
  if (!aud) return "token has no aud claim";
  bool has_aud = false;
  if (aud->is<std::string>()) {
    has_aud = aud->get<std::string>() == rules.audience;
  } else if (aud->is<picojson::array>()) {
    for (const auto &a : aud->get<picojson::array>()) {
      if (!a.is<std::string>()) return std::string("aud claim holds ") + json_kind(a) + ", not only strings";
      has_aud = has_aud || a.get<std::string>() == rules.audience;
    }
  } else {
    return std::string("aud claim is ") + json_kind(*aud) + ", not a string or an array of strings";
  }
  if (!has_aud) return "aud claim does not name the audience " + quote_value(rules.audience);

  // Arithmetic on `now` only: a claim's time may sit at the clock's limits.
  Millis skew = std::min<Millis>(std::max<Millis>(rules.clock_skew, Millis(0)), std::chrono::hours(24));
  auto date = [&](const char *k, bool required, Clock::time_point *out, std::string *why) {
    const auto *v = get(k);
    if (!v) {
      if (required) *why = std::string("token has no ") + k + " claim";
      return false;
    }
    auto t = numeric_date(*v);
    if (!t) {
      *why = std::string(k) + " claim is " + json_kind(*v) + ", not a number";
      return false;
    }
    *out = *t;
    return true;
  };
  std::string why;
  Clock::time_point t;
  if (!date("exp", true, &c.expiry, &why)) return why;
  if (now - skew >= c.expiry)
    return "token expired at " + format_rfc3339(c.expiry) + " (now " + format_rfc3339(now) + ", skew " +
           describe_duration(skew) + ")";
  if (date("nbf", false, &t, &why) && t > now + skew)
    return "token is not valid before " + format_rfc3339(t) + " (now " + format_rfc3339(now) + ", skew " +
           describe_duration(skew) + ")";
  if (!why.empty()) return why;
  if (date("iat", false, &t, &why) && t > now + skew)
    return "token was issued in the future, at " + format_rfc3339(t) + " (now " + format_rfc3339(now) + ", skew " +
           describe_duration(skew) + ")";
  if (!why.empty()) return why;
  if (!rules.nonce.empty()) {
    const auto *n = get("nonce");
    if (!n || !n->is<std::string>() || n->get<std::string>() != rules.nonce)
      return n ? "nonce claim does not match" : "token has no nonce claim";
  }
  if (!rules.require_user) return "";

  c.invalid_user = true;
  const std::string &uc = rules.username_claim;
  const auto *u = get(uc);
  if (!u) return "token has no " + quote_value(uc) + " claim (the username)";
  if (!u->is<std::string>()) return "username claim " + quote_value(uc) + " is " + json_kind(*u) + ", not a string";
  if (u->get<std::string>().empty()) return "username claim " + quote_value(uc) + " is empty";
  if (uc == "email") {
    // kube-apiserver's rule, made strict: the claim must be there and true.
    const auto *ev = get("email_verified");
    if (!ev) return "token has no email_verified claim, needed when the username is the email";
    if (!ev->is<bool>() || !ev->get<bool>())
      return std::string("email_verified claim is ") + (ev->is<bool>() ? "false" : json_kind(*ev)) + ", not true";
  }
  UserInfo user;
  user.username = u->get<std::string>();
  const std::string &gc = rules.groups_claim;
  if (const auto *g = gc.empty() ? nullptr : get(gc)) {
    if (g->is<std::string>()) {
      user.groups.push_back(g->get<std::string>());
    } else if (g->is<picojson::array>()) {
      for (const auto &e : g->get<picojson::array>()) {
        if (!e.is<std::string>())
          return "groups claim " + quote_value(gc) + " holds " + json_kind(e) + ", not a string";
        user.groups.push_back(e.get<std::string>());
      }
    } else {
      return "groups claim " + quote_value(gc) + " is " + json_kind(*g) + ", not a string or an array of strings";
    }
  }
  // What a certificate can carry: text, no NUL, no empty group.
  auto bad = [](const std::string &s) { return s.find('\0') != std::string::npos || !valid_utf8(s); };
  if (bad(user.username)) return "username is not valid UTF-8 text or holds a NUL";
  for (const auto &g : user.groups)
    if (g.empty() || bad(g))
      return g.empty() ? "groups claim holds an empty group" : "a group is not valid UTF-8 text or holds a NUL";
  c.invalid_user = false;
  c.user = std::move(user);
  return "";
}

inline std::string check_jwt(const std::string &token, const JsonWebKeySet &keys, const JwtRules &rules,
                             Clock::time_point now, JwtCheck &c) {
  if (token.empty()) return "token is empty";
  if (token.size() > PINNIPED_JWT_MAX_TOKEN_BYTES)
    return "token is " + std::to_string(token.size()) + " bytes, more than the " +
           std::to_string(PINNIPED_JWT_MAX_TOKEN_BYTES) + " accepted";
  size_t parts = 1 + static_cast<size_t>(std::count(token.begin(), token.end(), '.'));
  if (parts == 5) return "token has 5 parts: an encrypted token (JWE) is not accepted";
  if (parts == 1) return "token is not a JWT (it has no '.')";
  if (parts != 3) return "token has " + std::to_string(parts) + " parts, a signed JWT (JWS compact) has 3";
  std::string_view t(token);
  size_t d1 = t.find('.'), d2 = t.find('.', d1 + 1);
  std::string_view h64 = t.substr(0, d1), p64 = t.substr(d1 + 1, d2 - d1 - 1), s64 = t.substr(d2 + 1);

  std::string buf;
  if (!base64url_decode(h64, buf)) return "token header is not base64url";
  picojson::value header = parse_json_object(buf, "token header");  // what it throws is the reason
  const auto &h = header.get<picojson::object>();
  auto it = h.find("alg");
  if (it == h.end() || !it->second.is<std::string>()) return "token header has no alg string";
  c.alg = it->second.get<std::string>();
  std::string lower_alg = lower(c.alg);
  if (lower_alg == "none") return "alg none (an unsigned token) is refused";
  if (lower_alg.rfind("hs", 0) == 0) return "alg " + quote_value(c.alg) + " (a shared secret) is refused";
  const JwsAlgorithm *alg = find_jws_algorithm(c.alg);
  if (!alg) return "alg " + quote_value(c.alg) + " is not supported (" + kJwsAlgorithmNames + " are)";
  if (h.count("crit")) return "token header has crit, which is not supported";
  if (h.count("zip")) return "token header has zip: compressed tokens are not accepted";
  if ((it = h.find("typ")) != h.end() &&
      (!it->second.is<std::string>() || lower(it->second.get<std::string>()) != "jwt"))
    return "token header typ is " +
           (it->second.is<std::string>() ? quote_value(it->second.get<std::string>()) : json_kind(it->second)) +
           ", not JWT";
  const std::string *kid = nullptr;
  if ((it = h.find("kid")) != h.end() && !it->second.is<picojson::null>()) {
    if (!it->second.is<std::string>()) return std::string("token header kid is ") + json_kind(it->second);
    c.kid = it->second.get<std::string>();
    if (!c.kid.empty()) kid = &c.kid;  // an empty kid names no key: any may be tried, as go-oidc does
  }

  // The signature first: the payload is parsed only once it is authentic.
  if (s64.empty()) return "token has no signature";
  std::string sig;
  if (!base64url_decode(s64, sig)) return "token signature is not base64url";
  std::string why = keys.verify_signature(*alg, kid, t.substr(0, d2), sig, &c.unknown_kid);
  if (!why.empty()) return why;

  if (!base64url_decode(p64, buf)) return "token payload is not base64url";
  picojson::value payload = parse_json_object(buf, "token payload");
  why = check_claims(payload.get<picojson::object>(), rules, now, c);
  if (why.empty()) c.claims = std::move(payload.get<picojson::object>());
  return why;
}

// The body of a 200 answer to GET `url`, at most
// PINNIPED_JWT_MAX_DOCUMENT_BYTES; else throws JwtSetupError(condition).
inline std::string fetch_document(const std::string &url, const ClientTlsOptions &tls, Millis timeout,
                                  const char *condition) {
  Url u = Url::parse(url);
  std::string shown = quote_value(url, 256);
  HttpResponse res;
  try {
    HttpsClient client(u.base(), tls);
    res = client.request("GET", u.path, {{"Accept", "application/json"}}, "", timeout, PINNIPED_JWT_MAX_DOCUMENT_BYTES);
  } catch (const Error &e) {
    throw JwtSetupError(condition, 503, "GET " + shown + ": " + e.what());
  }
  if (res.status != 200)
    throw JwtSetupError(condition, 503, "GET " + shown + " answered HTTP " + std::to_string(res.status));
  return std::move(res.body);
}

}  // namespace detail

inline std::shared_ptr<const JsonWebKeySet> JsonWebKeySet::parse(const std::string &jwks_json) {
  if (jwks_json.size() > PINNIPED_JWT_MAX_DOCUMENT_BYTES)
    throw bad_request("JWKS is larger than " + std::to_string(PINNIPED_JWT_MAX_DOCUMENT_BYTES) + " bytes");
  picojson::value doc = detail::parse_json_object(jwks_json, "JWKS");
  const auto *list = json::field(doc, "keys");
  if (!list || !list->is<picojson::array>()) throw bad_request("JWKS has no keys array");
  const auto &items = list->get<picojson::array>();
  if (items.size() > PINNIPED_JWT_MAX_KEYS)
    throw bad_request("JWKS lists " + std::to_string(items.size()) + " keys, more than the " +
                      std::to_string(PINNIPED_JWT_MAX_KEYS) + " accepted");
  std::shared_ptr<JsonWebKeySet> set(new JsonWebKeySet);
  for (size_t i = 0; i < items.size(); i++) {
    std::string skip;
    if (auto k = detail::Jwk::from_json(items[i], i, &skip))
      set->keys_.push_back(std::move(k));
    else
      set->skipped_.push_back(skip);
  }
  if (set->keys_.empty()) {
    std::string why = items.empty() ? "the keys array is empty" : "";
    for (size_t i = 0; i < set->skipped_.size() && i < 4; i++) why += (i ? "; " : "") + set->skipped_[i];
    if (set->skipped_.size() > 4) why += "; ...";
    throw bad_request("JWKS has no key usable for " + std::string(detail::kJwsAlgorithmNames) + " (" + why + ")");
  }
  return set;
}

inline bool JsonWebKeySet::has_kid(const std::string &kid) const {
  return std::any_of(keys_.begin(), keys_.end(), [&](const auto &k) { return k->kid() == kid; });
}
inline std::vector<std::string> JsonWebKeySet::kids() const {
  std::vector<std::string> out;
  for (const auto &k : keys_) out.push_back(k->kid());
  return out;
}

inline std::string JsonWebKeySet::verify_signature(const detail::JwsAlgorithm &alg, const std::string *kid,
                                                   std::string_view signing_input, std::string_view signature,
                                                   bool *unknown_kid) const {
  if (alg.half && signature.size() != 2 * alg.half)
    return std::string(alg.name) + " signature is " + std::to_string(signature.size()) + " bytes, JWS has exactly " +
           std::to_string(2 * alg.half) + " (r||s; DER is not JWS)";
  std::string quoted_kid = kid ? detail::quote_value(*kid) : "";
  unsigned char hash[MBEDTLS_MD_MAX_SIZE];
  size_t hash_len = 0, named = 0, tried = 0, fitting = 0;
  const detail::Jwk *misfit = nullptr;
  std::string last;
  for (const auto &k : keys_) {
    if (kid && k->kid() != *kid) continue;
    named++;
    if (!k->fits(alg)) {
      misfit = k.get();
      continue;
    }
    if (fitting++ >= PINNIPED_JWT_KEYLESS_TRIES) continue;
    if (!hash_len) {
      const mbedtls_md_info_t *md = mbedtls_md_info_from_type(alg.md);
      if (!md || mbedtls_md(md, reinterpret_cast<const unsigned char *>(signing_input.data()), signing_input.size(),
                            hash) != 0)
        return "cannot hash the token";
      hash_len = mbedtls_md_get_size(md);
    }
    tried++;
    last = k->verify(alg, hash, hash_len, signature);
    if (last.empty()) return "";
  }
  if (kid && !named) {
    *unknown_kid = true;
    return "no key with kid " + quoted_kid + " in the JWKS";
  }
  if (!tried) {
    if (!misfit || !kid) return std::string("no key in the JWKS can verify ") + alg.name;
    if (misfit->kind() == alg.kind)
      return "the key with kid " + quoted_kid + " is marked for " + misfit->alg() + ", not " + alg.name;
    return "the key with kid " + quoted_kid + " is " + detail::jwk_kind_name(misfit->kind()) +
           ", which cannot verify " + alg.name;
  }
  if (tried == 1) return kid ? last + " (kid " + quoted_kid + ")" : last;
  return "signature does not verify with any of the " + std::to_string(tried) + " keys tried for " + alg.name +
         (fitting > tried ? " (of " + std::to_string(fitting) + ")" : "");
}

inline JwtCheck verify_jwt(const std::string &token, const JsonWebKeySet &keys, const JwtRules &rules,
                           Clock::time_point now) {
  JwtCheck c;
  try {
    c.reason = detail::check_jwt(token, keys, rules, now, c);
  } catch (const Error &e) {
    c.reason = e.what();
  }
  c.ok = c.reason.empty();
  if (!c.ok) {
    c.claims.clear();
    c.user = UserInfo();
  }
  return c;
}

inline std::string validate_issuer_url(const std::string &issuer) {
  if (issuer.empty()) return "issuer is empty";
  if (issuer.size() > 2048) return "issuer is longer than 2048 bytes";
  if (issuer.find('?') != std::string::npos) return "issuer must not have a query";
  std::string why = detail::https_url_problem(issuer);
  if (!why.empty()) return "issuer " + why;
  std::string path = Url::parse(issuer).path;
  while (!path.empty() && path.back() == '/') path.pop_back();
  const std::string well_known = "/.well-known/openid-configuration";
  if (path.size() >= well_known.size() &&
      path.compare(path.size() - well_known.size(), std::string::npos, well_known) == 0)
    return "issuer must not end in " + well_known + " (give the issuer itself)";
  return "";
}

inline OidcDiscovery parse_oidc_discovery(const std::string &json, const std::string &expected_issuer) {
  auto bad = [](const std::string &why, const char *condition = "DiscoveryURLValid") {
    return JwtSetupError(condition, 400, "discovery document " + why);
  };
  picojson::value v;
  try {
    v = detail::parse_json_object(json, "discovery document");
  } catch (const Error &e) {
    throw JwtSetupError("DiscoveryURLValid", 400, e.what());
  }
  OidcDiscovery d;
  try {
    auto str = [&](const char *k) { return json::get_string(v, k, k); };
    d.issuer = str("issuer");
    d.jwks_uri = str("jwks_uri");
    d.authorization_endpoint = str("authorization_endpoint");
    d.token_endpoint = str("token_endpoint");
    d.device_authorization_endpoint = str("device_authorization_endpoint");
    d.userinfo_endpoint = str("userinfo_endpoint");
    d.code_challenge_methods =
        json::get_string_list(v, "code_challenge_methods_supported", "code_challenge_methods_supported");
    d.id_token_algs =
        json::get_string_list(v, "id_token_signing_alg_values_supported", "id_token_signing_alg_values_supported");
  } catch (const Error &e) {
    throw bad(std::string("has a bad field: ") + e.what());
  }
  // OIDC Discovery 1.0 section 4.3: the issuer must be the one asked for, exactly.
  if (d.issuer != expected_issuer)
    throw bad("names issuer " + detail::quote_value(d.issuer, 256) + ", not " +
              detail::quote_value(expected_issuer, 256));
  if (d.jwks_uri.empty()) throw bad("has no jwks_uri", "JWKSURLValid");
  std::string why = detail::https_url_problem(d.jwks_uri);
  if (!why.empty()) throw bad("jwks_uri " + detail::quote_value(d.jwks_uri, 256) + " " + why, "JWKSURLValid");
  for (const auto &e : {std::make_pair("authorization_endpoint", &d.authorization_endpoint),
                        std::make_pair("token_endpoint", &d.token_endpoint),
                        std::make_pair("device_authorization_endpoint", &d.device_authorization_endpoint),
                        std::make_pair("userinfo_endpoint", &d.userinfo_endpoint)})
    if (!e.second->empty() && !(why = detail::https_url_problem(*e.second)).empty())
      throw bad(std::string(e.first) + " " + detail::quote_value(*e.second, 256) + " " + why);
  return d;
}

inline OidcDiscovery fetch_oidc_discovery(const std::string &issuer, const ClientTlsOptions &tls, Millis timeout) {
  std::string why = validate_issuer_url(issuer);
  if (!why.empty()) throw JwtSetupError("IssuerURLValid", 400, why);
  std::string base = issuer;
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string body =
      detail::fetch_document(base + "/.well-known/openid-configuration", tls, timeout, "DiscoveryURLValid");
  return parse_oidc_discovery(body, issuer);
}

inline std::shared_ptr<const JsonWebKeySet> fetch_jwks(const std::string &jwks_uri, const ClientTlsOptions &tls,
                                                       Millis timeout) {
  std::string why = detail::https_url_problem(jwks_uri);
  if (!why.empty())
    throw JwtSetupError("JWKSURLValid", 400, "jwks_uri " + detail::quote_value(jwks_uri, 256) + " " + why);
  std::string body = detail::fetch_document(jwks_uri, tls, timeout, "JWKSFetchValid");
  try {
    return JsonWebKeySet::parse(body);
  } catch (const Error &e) {
    throw JwtSetupError("JWKSFetchValid", 400, "JWKS from " + detail::quote_value(jwks_uri, 256) + ": " + e.what());
  }
}

inline JwtAuthenticator::JwtAuthenticator(std::string name, JwtAuthenticatorSpec spec, Logger &log,
                                          JwtAuthenticatorOptions opt)
    : name_(std::move(name)), spec_(std::move(spec)), log_(log), opt_(opt) {
  std::string why = validate_issuer_url(spec_.issuer);
  if (!why.empty()) throw JwtSetupError("IssuerURLValid", 400, "spec.issuer: " + why);
  if (spec_.audience.empty()) throw JwtSetupError("AuthenticatorValid", 400, "spec.audience is required");
  if (spec_.username_claim.empty()) spec_.username_claim = "username";
  if (spec_.groups_claim.empty()) spec_.groups_claim = "groups";
  if (!spec_.ca_pem.empty()) {
    try {
      CertificateChain::parse(spec_.ca_pem);
    } catch (const Error &e) {
      throw JwtSetupError("TLSConfigurationValid", 400, std::string("spec.tls.certificateAuthorityData: ") + e.what());
    }
  }
  tls_.ca_pem = spec_.ca_pem;
  rules_.issuer = spec_.issuer;
  rules_.audience = spec_.audience;
  rules_.username_claim = spec_.username_claim;
  rules_.groups_claim = spec_.groups_claim;
  rules_.clock_skew = opt_.clock_skew;
}

inline bool JwtAuthenticator::has_keys() const { return keys() != nullptr; }
inline std::shared_ptr<const JsonWebKeySet> JwtAuthenticator::keys() const {
  std::lock_guard<std::mutex> lk(mu_);
  return keys_;
}
inline uint64_t JwtAuthenticator::fetches() const {
  std::lock_guard<std::mutex> lk(mu_);
  return started_;
}

inline uint64_t JwtAuthenticator::begin_fetch() {
  std::lock_guard<std::mutex> lk(mu_);
  in_flight_++;
  last_start_ = Steady::now();
  return ++started_;
}
// The set replaced is released after the lock.
inline void JwtAuthenticator::end_fetch(uint64_t ticket, std::shared_ptr<const JsonWebKeySet> keys,
                                        const std::string &jwks_uri) {
  std::lock_guard<std::mutex> lk(mu_);
  in_flight_--;
  if (!keys || ticket < published_) return;
  published_ = ticket;
  keys_.swap(keys);
  if (!jwks_uri.empty()) jwks_uri_ = jwks_uri;
}

inline void JwtAuthenticator::fetch_keys(Millis timeout) {
  auto deadline = Steady::now() + timeout;
  uint64_t ticket = begin_fetch();
  std::shared_ptr<const JsonWebKeySet> set;
  std::string uri;
  try {
    uri = fetch_oidc_discovery(spec_.issuer, tls_, timeout).jwks_uri;
    auto left = std::chrono::duration_cast<Millis>(deadline - Steady::now());
    if (left <= Millis(0)) throw JwtSetupError("JWKSFetchValid", 504, "no time left for the JWKS after discovery");
    set = fetch_jwks(uri, tls_, left);
  } catch (...) {
    end_fetch(ticket, nullptr, "");
    throw;
  }
  log_.info("JWKS fetched", {{"authenticator", jv(name_)}, {"jwks_uri", jv(uri)}, {"keys", jv(set->size())}});
  end_fetch(ticket, set, uri);
}

inline JwtAuthenticator::Refetch JwtAuthenticator::refetch(const std::string &client) {
  Refetch r;
  std::string uri;
  uint64_t ticket = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto now = Steady::now();
    if (in_flight_ > 0) {
      r.why = "a JWKS fetch is in progress";
      return r;
    }
    if (started_ > 0 && now - last_start_ < opt_.refetch_interval) {
      auto ms = opt_.refetch_interval.count();
      r.why = "the JWKS was fetched less than " +
              (ms < 1000 ? std::to_string(ms) + "ms" : detail::describe_duration(opt_.refetch_interval)) + " ago";
      return r;
    }
    in_flight_++;
    last_start_ = now;
    ticket = ++started_;
    uri = jwks_uri_;
  }
  try {
    if (uri.empty()) uri = fetch_oidc_discovery(spec_.issuer, tls_, opt_.refetch_timeout).jwks_uri;
    r.keys = fetch_jwks(uri, tls_, opt_.refetch_timeout);
  } catch (const Error &e) {
    r.failed = true;
    r.why = e.what();
  }
  if (r.keys)
    log_.info("JWKS refetched for an unknown key",
              {{"authenticator", jv(name_)}, {"keys", jv(r.keys->size())}, {"client", jv(client)}});
  else
    log_.warn("JWKS refetch failed", {{"authenticator", jv(name_)}, {"error", jv(r.why)}, {"client", jv(client)}});
  end_fetch(ticket, r.keys, uri);
  return r;
}

inline AuthResult JwtAuthenticator::authenticate(const std::string &token, const std::string &client) {
  AuthResult r;
  auto keys = this->keys();
  if (!keys) {
    Refetch f = refetch(client);
    if (!f.keys) {
      r.reason = "authenticator has no keys yet (" + f.why + ")";
      r.reason_class = "idp_error";
      return r;
    }
    keys = std::move(f.keys);
  }
  JwtCheck c = verify_jwt(token, *keys, rules_);
  if (!c.ok && c.unknown_kid) {
    Refetch f = refetch(client);
    if (f.keys) {
      c = verify_jwt(token, *f.keys, rules_);
    } else {
      r.reason = c.reason + (f.failed ? "; fetching the JWKS again failed: " : " (not fetched again: ") + f.why +
                 (f.failed ? "" : ")");
      r.reason_class = f.failed ? "idp_error" : "rejected";
      return r;
    }
  }
  if (!c.ok) {
    r.reason = c.reason;
    r.reason_class = c.invalid_user ? "invalid_user" : "rejected";
    return r;
  }
  r.authenticated = true;
  r.user = std::move(c.user);
  return r;
}

// A JWTAuthenticator object as the CRD has it. The CA is decoded when given
// inline; one from a Secret or ConfigMap (tls.certificateAuthorityDataSource)
// is left to the caller, who can read it. `unsupported` names upstream's
// fields this build does not evaluate (CEL). Throws Error(400).
struct JwtAuthenticatorObject {
  std::string name;
  JwtAuthenticatorSpec spec;
  std::string unsupported;
  picojson::value ca_source;  // null unless the CA comes from a Secret or ConfigMap
  static JwtAuthenticatorObject from_json(const picojson::value &obj) {
    JwtAuthenticatorObject j;
    j.name = object_key(obj);
    const picojson::value *spec = json::field(obj, "spec");
    if (!spec || !spec->is<picojson::object>()) throw bad_request("spec is required");
    j.spec.issuer = json::get_string(*spec, "issuer", "spec.issuer");
    j.spec.audience = json::get_string(*spec, "audience", "spec.audience");
    auto note = [&](const std::string &f) { j.unsupported += (j.unsupported.empty() ? "" : ", ") + f; };
    if (const auto *c = json::get_object(*spec, "claims", "spec.claims")) {
      std::string u = json::get_string(*c, "username", "spec.claims.username");
      std::string g = json::get_string(*c, "groups", "spec.claims.groups");
      if (!u.empty()) j.spec.username_claim = u;
      if (!g.empty()) j.spec.groups_claim = g;
      for (const char *k : {"usernameExpression", "groupsExpression", "extra"})
        if (json::field(*c, k)) note(std::string("spec.claims.") + k);
    }
    for (const char *k : {"claimValidationRules", "userValidationRules"})
      if (json::field(*spec, k)) note(std::string("spec.") + k);
    if (const auto *tls = json::get_object(*spec, "tls", "spec.tls")) {
      std::string data = json::get_string(*tls, "certificateAuthorityData", "spec.tls.certificateAuthorityData");
      const auto *src = json::field(*tls, "certificateAuthorityDataSource");
      if (!data.empty() && src)
        throw bad_request(
            "give spec.tls.certificateAuthorityData or spec.tls.certificateAuthorityDataSource, not both");
      if (!data.empty()) {
        auto pem = detail::base64_decode(data);
        if (!pem) throw bad_request("spec.tls.certificateAuthorityData is not valid base64");
        CertificateChain::parse(*pem);
        j.spec.ca_pem = *pem;
      }
      if (src) {
        if (!src->is<picojson::object>())
          throw bad_request("spec.tls.certificateAuthorityDataSource: expected an object");
        j.ca_source = *src;
      }
    }
    return j;
  }
  // The spec's problems that no fetch can fix; "" when none.
  std::string problem() const {
    if (spec.issuer.empty()) return "spec.issuer is required";
    std::string bad = validate_issuer_url(spec.issuer);
    if (!bad.empty()) return "spec.issuer: " + bad;
    if (spec.audience.empty()) return "spec.audience is required";
    if (!unsupported.empty())
      return unsupported +
             ": CEL expressions and extra claims are not evaluated by this concierge (remove them, "
             "or use upstream Pinniped)";
    return "";
  }
};

// ---------------------------------------------------------------------------
// 5. The concierge
// Owns the aggregated API's HTTP surface (TokenCredentialRequest, discovery,
// health), the exchange itself and the reloading of files. Calls 0-4.
// ---------------------------------------------------------------------------

// The Lease of leader election (see LeaderElector).
struct LeaseSettings {
  std::string namespace_, name, identity;
  Millis lease_duration = std::chrono::seconds(PINNIPED_LEASE_DURATION_SECONDS);
  Millis renew_deadline = std::chrono::seconds(PINNIPED_LEASE_RENEW_DEADLINE_SECONDS);
  Millis retry_period = std::chrono::seconds(PINNIPED_LEASE_RETRY_PERIOD_SECONDS);
};

struct ConciergeConfig : ServingOptions {
  ConciergeConfig() {
    port = 10250;
    namespace_ = "pinniped-concierge";
  }
  std::string api_group_suffix = PINNIPED_DEFAULT_API_GROUP_SUFFIX;
  std::string client_ca_file;  // optional: request and verify client certificates
  // With client_ca_file: the CNs whose X-Remote-* headers are trusted (as
  // kube-apiserver's --requestheader-allowed-names); empty: any CN.
  std::vector<std::string> requestheader_allowed_names;
  // The cluster signer; when both are empty it is looked for under
  // signer_root at the distributions' paths.
  std::string signer_cert_file, signer_key_file;
  std::string signer_root = "/";
  // How certificates are issued: with the signer files, through the
  // cluster's CSR API (no key here; needs a cluster), or automatically:
  // signer files when found and readable, else the CSR API.
  enum class Strategy { automatic, signer_files, csr };
  Strategy strategy = Strategy::automatic;
  Millis csr_wait = std::chrono::seconds(PINNIPED_CSR_WAIT_SECONDS);
  std::string authenticators_file;
  Millis credential_ttl = std::chrono::minutes(5);
  size_t key_pool = 16;
  WebhookOptions webhook;
  std::string app_name = "pinniped-concierge";  // names: <app>-api, <app>-config, ...
  // The direct frontend: TokenCredentialRequest and WhoAmIRequest for
  // clients that reach the concierge itself (a LoadBalancer or NodePort
  // Service, a host port), for clusters whose kube-apiserver refuses
  // anonymous requests. Off while direct_port < 0 (0: any free port).
  std::string direct_listen_host = "0.0.0.0";
  int direct_port = -1;
  std::string direct_endpoint;           // the https URL clients use; empty: discovered
  std::vector<std::string> direct_sans;  // more names and IPs for its certificate
  int direct_failure_limit = 10;         // failed exchanges per client address a minute; 0: no limit
  // Exchanges handled at once (each may wait on the IDP); 0: the worker
  // threads less a reserve of 4 (at least 1), so that health probes,
  // metrics and discovery always find a worker during an IDP outage.
  size_t max_exchanges = 0;
  size_t exchange_limit() const {
    if (max_exchanges > 0) return max_exchanges;
    return server.threads > 4 ? server.threads - 4 : 1;
  }
  Millis anonymous_probe_interval = std::chrono::seconds(PINNIPED_ANONYMOUS_PROBE_SECONDS);
  // With a cluster: one writer among replicas, elected with the Lease
  // <app>-leader in `namespace_`.
  bool leader_elect = true;
  LeaseSettings lease;  // namespace, name and identity filled in at start
  bool direct_enabled() const { return direct_port >= 0; }
  std::string direct_service() const { return app_name + "-direct"; }
};

namespace detail {

// True when the media type (parameters ignored) is JSON.
inline bool is_json_media_type(const std::string &content_type) {
  std::string mt = lower(trim(split(content_type, ';')[0]));
  return mt == "application/json";
}

// True when an Accept header lets us answer plain JSON.
inline bool accepts_json(const std::string &accept) {
  if (trim(accept).empty()) return true;
  for (const auto &entry : split(accept, ',')) {
    auto parts = split(entry, ';');
    std::string mt = lower(trim(parts[0]));
    if (mt != "application/json" && mt != "application/*" && mt != "*/*") continue;
    bool plain = true;
    for (size_t i = 1; i < parts.size(); i++) {
      std::string p = lower(trim(parts[i]));
      if (p.rfind("as=", 0) == 0 || p.rfind("g=", 0) == 0 || p.rfind("v=", 0) == 0) plain = false;
      if (p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000") plain = false;
    }
    if (plain) return true;
  }
  return false;
}

}  // namespace detail

// Prometheus counters and histograms of the concierge, rendered as text.
class Metrics {
 public:
  void request(const std::string &resource, int code) {
    std::lock_guard<std::mutex> lk(mu_);
    requests_[{resource, code}]++;
  }
  void exchange(const std::string &outcome, const std::string &reason_class) {
    std::lock_guard<std::mutex> lk(mu_);
    exchanges_[{outcome, reason_class}]++;
  }
  void webhook_latency(double seconds) {
    std::lock_guard<std::mutex> lk(mu_);
    for (size_t i = 0; i < buckets().size(); i++)
      if (seconds <= buckets()[i]) bucket_counts_[i]++;
    webhook_count_++;
    webhook_sum_ += seconds;
  }
  void authentication(const std::string &kind, const std::string &outcome) {
    std::lock_guard<std::mutex> lk(mu_);
    authentications_[{kind, outcome}]++;
  }
  void certificate_issued() { issued_++; }
  void direct_rate_limited() { rate_limited_++; }

  // The counts the logs report (the same the metrics render).
  uint64_t exchanges(const std::string &outcome) const {
    std::lock_guard<std::mutex> lk(mu_);
    uint64_t n = 0;
    for (const auto &kv : exchanges_)
      if (kv.first.first == outcome) n += kv.second;
    return n;
  }
  uint64_t certificates_issued() const { return issued_.load(); }

  // Gauges come from the caller at render time.
  std::string render(double signer_expiry_unix, uint64_t watch_reconnects, uint64_t csr_api_requests,
                     const TlsServer &server, const KeyPool &pool) const {
    std::ostringstream o;
    std::lock_guard<std::mutex> lk(mu_);
    o << "# HELP pinniped_requests_total HTTP requests served, by resource and code.\n"
         "# TYPE pinniped_requests_total counter\n";
    for (const auto &kv : requests_)
      o << "pinniped_requests_total{resource=\"" << kv.first.first << "\",code=\"" << kv.first.second << "\"} "
        << kv.second << "\n";
    o << "# HELP pinniped_exchanges_total TokenCredentialRequests by outcome and reason class.\n"
         "# TYPE pinniped_exchanges_total counter\n";
    for (const auto &kv : exchanges_)
      o << "pinniped_exchanges_total{outcome=\"" << kv.first.first << "\",reason=\"" << kv.first.second << "\"} "
        << kv.second << "\n";
    o << "# HELP pinniped_authentications_total Tokens an authenticator was asked about, by its kind and the "
         "outcome (success or the reason class).\n"
         "# TYPE pinniped_authentications_total counter\n";
    for (const auto &kv : authentications_)
      o << "pinniped_authentications_total{kind=\"" << kv.first.first << "\",outcome=\"" << kv.first.second << "\"} "
        << kv.second << "\n";
    o << "# HELP pinniped_webhook_duration_seconds Time to authenticate a token with a webhook.\n"
         "# TYPE pinniped_webhook_duration_seconds histogram\n";
    for (size_t i = 0; i < buckets().size(); i++)
      o << "pinniped_webhook_duration_seconds_bucket{le=\"" << buckets()[i] << "\"} " << bucket_counts_[i] << "\n";
    o << "pinniped_webhook_duration_seconds_bucket{le=\"+Inf\"} " << webhook_count_ << "\n"
      << "pinniped_webhook_duration_seconds_sum " << webhook_sum_ << "\n"
      << "pinniped_webhook_duration_seconds_count " << webhook_count_ << "\n";
    o << "# HELP pinniped_certificates_issued_total Client certificates issued.\n"
         "# TYPE pinniped_certificates_issued_total counter\n"
      << "pinniped_certificates_issued_total " << issued_.load() << "\n";
    o << "# HELP pinniped_signer_expiry_timestamp_seconds When the cluster signer certificate expires (0: none).\n"
         "# TYPE pinniped_signer_expiry_timestamp_seconds gauge\n"
      << "pinniped_signer_expiry_timestamp_seconds " << static_cast<int64_t>(signer_expiry_unix) << "\n";
    o << "# HELP pinniped_watch_reconnects_total Times a Kubernetes watch had to reconnect.\n"
         "# TYPE pinniped_watch_reconnects_total counter\n"
      << "pinniped_watch_reconnects_total " << watch_reconnects << "\n";
    o << "# HELP pinniped_csr_api_requests_total Kubernetes API requests the CSR strategy made for exchanges "
         "(create, approve, delete, and a read when the watch was late).\n"
         "# TYPE pinniped_csr_api_requests_total counter\n"
      << "pinniped_csr_api_requests_total " << csr_api_requests << "\n";
    o << "# HELP pinniped_direct_rate_limited_total Exchanges the direct frontend refused: too many failures from "
         "the client's address.\n"
         "# TYPE pinniped_direct_rate_limited_total counter\n"
      << "pinniped_direct_rate_limited_total " << rate_limited_.load() << "\n";
    o << "# HELP pinniped_tls_refused_connections_total Connections refused because every worker was busy.\n"
         "# TYPE pinniped_tls_refused_connections_total counter\n"
      << "pinniped_tls_refused_connections_total " << server.refused_connections() << "\n";
    o << "# HELP pinniped_tls_failed_handshakes_total TLS handshakes that failed.\n"
         "# TYPE pinniped_tls_failed_handshakes_total counter\n"
      << "pinniped_tls_failed_handshakes_total " << server.failed_handshakes() << "\n";
    o << "# HELP pinniped_key_pool_ready Client keys and presignatures (the signer's curve; none for RSA) made "
         "ahead of time and ready.\n"
         "# TYPE pinniped_key_pool_ready gauge\n"
      << "pinniped_key_pool_ready{kind=\"key\"} " << pool.ready() << "\n"
      << "pinniped_key_pool_ready{kind=\"presignature\"} " << pool.presignatures_ready() << "\n";
    o << "# HELP pinniped_key_pool_misses_total Exchanges that found none ready and made it on the request path.\n"
         "# TYPE pinniped_key_pool_misses_total counter\n"
      << "pinniped_key_pool_misses_total{kind=\"key\"} " << pool.key_misses() << "\n"
      << "pinniped_key_pool_misses_total{kind=\"presignature\"} " << pool.presignature_misses() << "\n";
    return o.str();
  }

 private:
  static const std::vector<double> &buckets() {
    static const std::vector<double> b = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    return b;
  }
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::pair<std::string, std::string>, uint64_t> exchanges_;
  std::map<std::pair<std::string, std::string>, uint64_t> authentications_;  // kind, outcome
  std::vector<uint64_t> bucket_counts_ = std::vector<uint64_t>(11, 0);
  uint64_t webhook_count_ = 0;
  double webhook_sum_ = 0;
  std::atomic<uint64_t> issued_{0};
  std::atomic<uint64_t> rate_limited_{0};
};

// The front-proxy settings kube-apiserver publishes in
// kube-system/extension-apiserver-authentication.
struct RequestHeaderConfig {
  std::string client_ca_pem;               // requestheader-client-ca-file
  std::vector<std::string> allowed_names;  // empty: any CN
  std::vector<std::string> username_headers = {"X-Remote-User"};
  std::vector<std::string> group_headers = {"X-Remote-Group"};
  std::vector<std::string> extra_prefixes = {"X-Remote-Extra-"};
  // client-ca-file: the CAs kube-apiserver trusts for client certificates
  // (the cluster signer among them); the direct frontend's WhoAmIRequest
  // trusts the same.
  std::string user_client_ca_pem;

  static RequestHeaderConfig from_configmap(const picojson::value &cm) {
    RequestHeaderConfig c;
    const auto *data = json::get_object(cm, "data", "data");
    if (!data) throw bad_request("extension-apiserver-authentication has no data");
    c.client_ca_pem = json::get_string(*data, "requestheader-client-ca-file", "data");
    c.user_client_ca_pem = json::get_string(*data, "client-ca-file", "data");
    auto list = [&](const std::string &key, std::vector<std::string> &out) {
      std::string raw = json::get_string(*data, key, "data." + key);
      if (raw.empty()) return;
      out = json::get_string_list(json::parse("{\"v\":" + raw + "}"), "v", "data." + key);
    };
    list("requestheader-allowed-names", c.allowed_names);
    list("requestheader-username-headers", c.username_headers);
    list("requestheader-group-headers", c.group_headers);
    list("requestheader-extra-headers-prefix", c.extra_prefixes);
    return c;
  }
};

inline UserInfo anonymous_user() { return {"system:anonymous", "", {"system:unauthenticated"}, {}}; }

// Who sent a request: the X-Remote-* identity when the TLS peer is the
// front proxy (certificate verified against the request-header CA, CN
// allowed); anyone else is anonymous whatever headers it sends.
inline bool is_front_proxy(const PeerCertificate &peer, const RequestHeaderConfig &c) {
  return peer.verified && !c.client_ca_pem.empty() &&
         (c.allowed_names.empty() ||
          std::find(c.allowed_names.begin(), c.allowed_names.end(), peer.common_name) != c.allowed_names.end());
}
inline UserInfo identify(const httplib::Request &req, const PeerCertificate &peer, const RequestHeaderConfig &c) {
  if (!is_front_proxy(peer, c)) return anonymous_user();
  UserInfo u;
  for (const auto &h : c.username_headers) {
    u.username = req.get_header_value(h);
    if (!u.username.empty()) break;
  }
  if (u.username.empty()) return anonymous_user();
  for (const auto &h : c.group_headers) {
    size_t n = req.get_header_value_count(h);
    for (size_t i = 0; i < n; i++) u.groups.push_back(req.get_header_value(h, i));
  }
  for (const auto &prefix : c.extra_prefixes) {
    std::string lp = detail::lower(prefix);
    for (const auto &kv : req.headers) {
      std::string lk = detail::lower(kv.first);
      if (lk.size() <= lp.size() || lk.compare(0, lp.size(), lp) != 0) continue;
      u.extra[detail::percent_decode(lk.substr(lp.size()))].push_back(kv.second);
    }
  }
  return u;
}

// On the direct frontend nobody stands in front of us to vouch for headers:
// a caller is who its client certificate says (verified against the
// cluster's client CA, read as kube-apiserver's x509 authenticator reads
// it: CN the user, each O a group), or anonymous.
inline UserInfo identify_by_certificate(const PeerCertificate &peer) {
  if (!peer.verified || peer.common_name.empty()) return anonymous_user();
  UserInfo u{peer.common_name, "", peer.organizations, {}};
  u.groups.push_back("system:authenticated");
  return u;
}

// Failed exchanges per client address, for the direct frontend: a token
// bucket of `per_minute` tries refilled evenly over a minute. A client over
// its budget is refused before the IDP is asked. IPv6 clients count per /64
// (one host usually holds a whole /64). At most `max_addresses` are
// remembered; the least recently seen are forgotten first, so memory stays
// bounded whatever a flood of addresses does.
class FailureLimiter {
 public:
  explicit FailureLimiter(int per_minute = 10, size_t max_addresses = PINNIPED_FAILURE_LIMIT_ADDRESSES)
      : per_minute_(per_minute), max_(std::max<size_t>(1, max_addresses)) {}

  bool enabled() const { return per_minute_ > 0; }
  // True when `address` may try (it has a failure left in its budget).
  bool allow(const std::string &address, Steady::time_point now = Steady::now()) {
    if (!enabled()) return true;
    std::lock_guard<std::mutex> lk(mu_);
    auto it = index_.find(key(address));
    if (it == index_.end()) return true;
    refill(*it->second, now);
    return it->second->tokens >= 1.0;
  }
  // Counts one failed exchange of `address`.
  void failed(const std::string &address, Steady::time_point now = Steady::now()) {
    if (!enabled()) return;
    std::lock_guard<std::mutex> lk(mu_);
    std::string k = key(address);
    auto it = index_.find(k);
    if (it == index_.end()) {
      if (index_.size() >= max_) {
        index_.erase(lru_.back().key);
        lru_.pop_back();
      }
      lru_.push_front({k, static_cast<double>(per_minute_), now});
      it = index_.emplace(k, lru_.begin()).first;
    } else {
      lru_.splice(lru_.begin(), lru_, it->second);
      refill(*it->second, now);
    }
    it->second->tokens = std::max(0.0, it->second->tokens - 1.0);
  }
  size_t tracked() const {
    std::lock_guard<std::mutex> lk(mu_);
    return index_.size();
  }
  static std::string key(const std::string &address) {
    in6_addr a6{};
    if (address.find(':') == std::string::npos || inet_pton(AF_INET6, address.c_str(), &a6) != 1) return address;
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a6.s6_addr, v4mapped, 12) == 0) {
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, a6.s6_addr + 12, buf, sizeof buf);
      return buf;
    }
    std::memset(a6.s6_addr + 8, 0, 8);
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6, buf, sizeof buf);
    return std::string(buf) + "/64";
  }

 private:
  struct Bucket {
    std::string key;
    double tokens;
    Steady::time_point at;
  };
  void refill(Bucket &b, Steady::time_point now) const {
    double minutes = std::chrono::duration<double>(now - b.at).count() / 60.0;
    if (minutes > 0) b.tokens = std::min<double>(per_minute_, b.tokens + minutes * per_minute_);
    b.at = std::max(b.at, now);
  }
  int per_minute_;
  size_t max_;
  mutable std::mutex mu_;
  std::list<Bucket> lru_;
  std::unordered_map<std::string, std::list<Bucket>::iterator> index_;
};

// What kube-apiserver does with an anonymous TokenCredentialRequest.
enum class AnonymousAccess { unknown, open, unauthorized, forbidden };

inline const char *anonymous_access_name(AnonymousAccess a) {
  switch (a) {
    case AnonymousAccess::open: return "open";
    case AnonymousAccess::unauthorized: return "unauthorized";
    case AnonymousAccess::forbidden: return "forbidden";
    default: return "unknown";
  }
}

// Asks kube-apiserver, with no credentials at all (as the exec plugin
// does), to create an empty TokenCredentialRequest on our aggregated path.
// 401: it refuses anonymous requests (k3s, CIS-hardened clusters); 403:
// RBAC does not let system:unauthenticated create them; an answer from the
// concierge itself (422 for the missing token) means logins get through.
// Anything else (503 while the APIService is not Available, no connection)
// tells nothing. `detail` says what was seen, for the log.
inline AnonymousAccess probe_anonymous_exchange(const KubeConfig &kc, const std::string &suffix, Millis timeout,
                                                std::string *detail = nullptr) {
  auto say = [&](const std::string &d) {
    if (detail) *detail = d;
  };
  try {
    ClientTlsOptions tls;
    tls.ca_pem = kc.tls.ca_pem;
    tls.server_name = kc.tls.server_name;
    tls.insecure_skip_verify = kc.tls.insecure_skip_verify;
    Url u = Url::parse(kc.server);
    HttpsClient c(u.base(), tls);
    std::string prefix = u.path == "/" ? "" : u.path;
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    std::string group = login_group(suffix);
    picojson::object spec, obj;
    spec["token"] = jv("");
    obj["apiVersion"] = jv(group + "/v1alpha1");
    obj["kind"] = jv("TokenCredentialRequest");
    obj["metadata"] = picojson::value(picojson::object());
    obj["spec"] = picojson::value(spec);
    auto res = c.request("POST", prefix + "/apis/" + group + "/v1alpha1/tokencredentialrequests",
                         {{"Content-Type", "application/json"},
                          {"Accept", "application/json"},
                          {"User-Agent", "pinniped-concierge/" PINNIPED_VERSION " (anonymous-probe)"}},
                         to_json_string(picojson::value(obj)), timeout, 64 * 1024);
    say("HTTP " + std::to_string(res.status));
    if (res.status == 401) return AnonymousAccess::unauthorized;
    if (res.status == 403) return AnonymousAccess::forbidden;
    // Our own answers: 422 (no token), or 201/400 from a concierge that
    // reads the empty token differently.
    if (res.status == 422 || res.status == 201 || res.status == 400) return AnonymousAccess::open;
    return AnonymousAccess::unknown;
  } catch (const std::exception &e) {
    say(e.what());
    return AnonymousAccess::unknown;
  }
}

// One writer among replicas: a coordination.k8s.io/v1 Lease, as Kubernetes
// controllers elect theirs (client-go's leaderelection): the holder renews
// it every retry period; a replica takes it over once the record it sees
// has not changed for a lease duration (measured on its own steady clock,
// so clocks need not agree); a holder that cannot renew within the renew
// deadline steps down; stop() releases the lease so a successor need not
// wait. Every replica keeps serving exchanges; only the leader writes
// status (CredentialIssuer, authenticators) and the serving Secret.
class LeaderElector {
 public:
  using OnChange = std::function<void(bool leader)>;
  LeaderElector(KubeClient &kube, Logger &log, LeaseSettings s, OnChange on_change)
      : kube_(kube), log_(log), s_(std::move(s)), on_change_(std::move(on_change)) {}
  ~LeaderElector() { stop(); }
  LeaderElector(const LeaderElector &) = delete;
  LeaderElector &operator=(const LeaderElector &) = delete;

  void start() {
    try_once();  // a lone replica leads from its first moment
    thread_ = std::thread([this] { run(); });
  }
  // Stops and, when leading, releases the lease.
  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (leader_) release();
  }
  bool is_leader() const { return leader_.load(); }
  const std::string &identity() const { return s_.identity; }

  // MicroTime as Kubernetes writes it: RFC 3339 with microseconds.
  static std::string micro_time(Clock::time_point t) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() % 1000000;
    std::string base = format_rfc3339(t);
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(us < 0 ? us + 1000000 : us));
    return base.substr(0, base.size() - 1) + frac + "Z";
  }

 private:
  std::string path() const { return "/apis/coordination.k8s.io/v1/namespaces/" + s_.namespace_ + "/leases/" + s_.name; }
  void run() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!cv_.wait_for(lk, s_.retry_period, [this] { return stop_; })) {
      lk.unlock();
      try_once();
      lk.lock();
    }
  }
  void set_leader(bool l) {
    if (leader_.exchange(l) == l) return;
    log_.info(l ? "leader election: leading" : "leader election: not leading",
              {{"lease", jv(s_.namespace_ + "/" + s_.name)}, {"identity", jv(s_.identity)}});
    if (on_change_) on_change_(l);
  }
  picojson::value spec_for_me(const picojson::value *old_spec, bool new_term) const {
    picojson::object spec =
        old_spec && old_spec->is<picojson::object>() ? old_spec->get<picojson::object>() : picojson::object();
    auto now = micro_time(Clock::now());
    spec["holderIdentity"] = jv(s_.identity);
    spec["leaseDurationSeconds"] =
        jv(static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(s_.lease_duration).count()));
    spec["renewTime"] = jv(now);
    if (new_term) {
      spec["acquireTime"] = jv(now);
      int64_t transitions = 0;
      if (old_spec) transitions = json::get_int(*old_spec, "leaseTransitions", "spec.leaseTransitions") + 1;
      spec["leaseTransitions"] = jv(transitions);
    }
    return picojson::value(spec);
  }
  void try_once() {
    auto now = Steady::now();
    try {
      auto lease = kube_.get_if_exists(path());
      if (!lease) {
        picojson::object meta{{"name", jv(s_.name)}, {"namespace", jv(s_.namespace_)}};
        picojson::object obj{{"apiVersion", jv("coordination.k8s.io/v1")},
                             {"kind", jv("Lease")},
                             {"metadata", picojson::value(meta)},
                             {"spec", spec_for_me(nullptr, true)}};
        kube_.create("/apis/coordination.k8s.io/v1/namespaces/" + s_.namespace_ + "/leases", picojson::value(obj));
        renewed(now);
        return;
      }
      const auto *spec = json::field(*lease, "spec");
      std::string holder = spec ? json::get_string(*spec, "holderIdentity", "spec.holderIdentity") : "";
      std::string record = holder + "|" + (spec ? json::get_string(*spec, "renewTime", "spec.renewTime") : "");
      if (record != observed_record_) {
        observed_record_ = record;
        observed_at_ = now;
      }
      int64_t duration_s = spec ? json::get_int(*spec, "leaseDurationSeconds", "spec.leaseDurationSeconds") : 0;
      Millis duration = duration_s > 0 ? Millis(duration_s * 1000) : s_.lease_duration;
      bool mine = holder == s_.identity;
      bool expired = holder.empty() || now - observed_at_ >= duration;
      if (!mine && !expired) {
        set_leader(false);
        return;
      }
      picojson::value obj = *lease;
      obj.get<picojson::object>()["spec"] = spec_for_me(spec, !mine);
      kube_.update(path(), obj);  // carries resourceVersion: one of two contenders wins
      if (!mine) log_.info("leader election: lease taken over", {{"from", jv(holder)}, {"identity", jv(s_.identity)}});
      renewed(now);
    } catch (const std::exception &e) {
      log_.debug("leader election: lease not renewed", {{"error", jv(e.what())}});
      if (leader_ && now - last_renew_ >= s_.renew_deadline) {
        log_.warn("leader election: could not renew the lease in time; stepping down", {{"error", jv(e.what())}});
        set_leader(false);
      }
    }
  }
  void renewed(Steady::time_point now) {
    last_renew_ = now;
    observed_record_.clear();
    set_leader(true);
  }
  void release() {
    try {
      kube_.update_with_retry(path(), [&](picojson::value &obj) {
        auto *spec = json::field(obj, "spec");
        if (!spec || json::get_string(*spec, "holderIdentity", "spec.holderIdentity") != s_.identity) return false;
        auto &o = obj.get<picojson::object>()["spec"].get<picojson::object>();
        o["holderIdentity"] = jv("");
        o["leaseDurationSeconds"] = jv(static_cast<int64_t>(1));
        o["renewTime"] = jv(micro_time(Clock::now()));
        return true;
      });
      log_.info("leader election: lease released", {{"identity", jv(s_.identity)}});
    } catch (const std::exception &e) {
      log_.warn("leader election: could not release the lease", {{"error", jv(e.what())}});
    }
    leader_ = false;
  }

  KubeClient &kube_;
  Logger &log_;
  LeaseSettings s_;
  OnChange on_change_;
  std::atomic<bool> leader_{false};
  std::string observed_record_;
  Steady::time_point observed_at_, last_renew_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// A metav1.Condition.
struct Condition {
  std::string type, status, reason, message, last_transition_time;
  int64_t observed_generation = 0;
  picojson::value to_json() const {
    picojson::object o;
    o["type"] = jv(type);
    o["status"] = jv(status);
    o["reason"] = jv(reason);
    o["message"] = jv(message);
    o["lastTransitionTime"] = jv(last_transition_time);
    o["observedGeneration"] = jv(observed_generation);
    return picojson::value(o);
  }
};

// Writes an authenticator object's status (phase and conditions) when it
// differs from what is there, keeping lastTransitionTime of the conditions
// whose status is unchanged. A deleted object is no error.
inline void write_authenticator_status(KubeClient &kube, Logger &log, const std::string &path, const std::string &phase,
                                       std::vector<Condition> conds) {
  try {
    kube.update_with_retry(
        path,
        [&](picojson::value &obj) {
          std::map<std::string, picojson::value> old;
          if (const auto *st = json::field(obj, "status"))
            if (const auto *cs = json::field(*st, "conditions"); cs && cs->is<picojson::array>())
              for (const auto &c : cs->get<picojson::array>()) old[json::get_string(c, "type", "")] = c;
          bool same = old.size() == conds.size();
          for (auto &c : conds) {
            auto it = old.find(c.type);
            if (it == old.end()) {
              same = false;
              continue;
            }
            const auto &o = it->second;
            if (json::get_string(o, "status", "") == c.status)
              c.last_transition_time = json::get_string(o, "lastTransitionTime", "");
            const auto *og = json::field(o, "observedGeneration");
            if (json::get_string(o, "status", "") != c.status || json::get_string(o, "reason", "") != c.reason ||
                json::get_string(o, "message", "") != c.message || !og || !og->is<int64_t>() ||
                og->get<int64_t>() != c.observed_generation)
              same = false;
          }
          const auto *st = json::field(obj, "status");
          if (same && st && json::get_string(*st, "phase", "") == phase) return false;
          picojson::object status;
          status["phase"] = jv(phase);
          picojson::array arr;
          for (const auto &c : conds) arr.push_back(c.to_json());
          status["conditions"] = picojson::value(arr);
          obj.get<picojson::object>()["status"] = picojson::value(status);
          return true;
        },
        true);
  } catch (const Error &e) {
    if (e.code != 404) log.warn("cannot write authenticator status", {{"path", jv(path)}, {"error", jv(e.what())}});
  }
}

// Builds the conditions of one sync in order: after the first that fails,
// the ones that depend on it are Unknown with reason UnableToValidate.
class ConditionList {
 public:
  explicit ConditionList(int64_t generation) : generation_(generation), now_(format_rfc3339(Clock::now())) {}
  bool add(const std::string &type, bool ok, const std::string &reason, const std::string &message) {
    push(type, ok ? "True" : "False", reason, message);
    return ok;
  }
  void unknown(const std::string &type) {
    push(type, "Unknown", "UnableToValidate", "unable to validate; see other conditions");
  }
  const std::vector<Condition> &list() const { return list_; }

 private:
  void push(const std::string &type, const std::string &status, const std::string &reason, const std::string &msg) {
    Condition c;
    c.type = type;
    c.status = status;
    c.reason = reason;
    c.message = msg;
    c.observed_generation = generation_;
    c.last_transition_time = now_;
    list_.push_back(std::move(c));
  }
  int64_t generation_;
  std::string now_;
  std::vector<Condition> list_;
};

// Keeps the cluster's WebhookAuthenticators in the registry and writes
// their status (phase, conditions), only when it changes.
class WebhookAuthenticatorController {
 public:
  WebhookAuthenticatorController(KubeClient &kube, AuthenticatorRegistry &registry, Logger &log,
                                 const std::string &suffix, WebhookOptions opt)
      : kube_(kube),
        registry_(registry),
        log_(log),
        opt_(opt),
        collection_("/apis/" + authentication_group(suffix) + "/v1alpha1/webhookauthenticators"),
        informer_(kube, collection_, log, [this](const std::string &t, const picojson::value &o) { on_event(t, o); }) {}

  void start() { informer_.start(); }
  void stop() { informer_.stop(); }
  bool synced() const { return informer_.synced(); }
  uint64_t reconnects() const { return informer_.reconnects(); }
  // Only the leader writes status; a new leader rebuilds every status.
  void set_may_write(std::function<bool()> f) { may_write_ = std::move(f); }
  void resync_all() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      seen_.clear();
    }
    for (const auto &kv : informer_.snapshot()) on_event("MODIFIED", kv.second);
  }

 private:
  struct Seen {
    std::string spec;  // serialised spec last built
    int64_t generation = -1;
  };

  void on_event(const std::string &type, const picojson::value &obj) {
    std::string name = object_key(obj);
    if (name.empty()) return;
    if (type == "DELETED") {
      registry_.remove(AuthenticatorRegistry::webhook_kind, name);
      std::lock_guard<std::mutex> lk(mu_);
      seen_.erase(name);
      log_.info("authenticator removed", {{"name", jv(name)}});
      return;
    }
    const auto *spec_v = json::field(obj, "spec");
    std::string spec_text = spec_v ? to_json_string(*spec_v) : "{}";
    int64_t generation = 0;
    if (const auto *m = json::field(obj, "metadata"))
      if (const auto *g = json::field(*m, "generation"); g && g->is<int64_t>()) generation = g->get<int64_t>();
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = seen_.find(name);
      // Our own status writes come back as MODIFIED with the same spec.
      if (it != seen_.end() && it->second.spec == spec_text && it->second.generation == generation) return;
    }
    ConditionList conds(generation);
    WebhookAuthenticatorObject w;
    std::string problem;
    try {
      w = WebhookAuthenticatorObject::from_json(obj);
    } catch (const Error &e) {
      problem = e.what();
    }
    bool url_ok = false, tls_ok = false, conn_ok = false;
    std::shared_ptr<WebhookAuthenticator> built;
    if (problem.empty()) {
      try {
        Url u = Url::parse(w.spec.endpoint);
        if (u.scheme != "https") throw bad_request("spec.endpoint must be an https:// URL");
        url_ok = conds.add("EndpointURLValid", true, "Success", "spec.endpoint is a valid URL");
      } catch (const Error &e) {
        conds.add("EndpointURLValid", false, "InvalidEndpointURL", e.what());
      }
    } else {
      conds.add("EndpointURLValid", false, "InvalidEndpointURL", problem);
    }
    std::string ca_pem;
    if (!w.spec.certificate_authority_data.empty()) {
      auto pem = detail::base64_decode(w.spec.certificate_authority_data);
      try {
        if (!pem) throw bad_request("spec.tls.certificateAuthorityData is not valid base64");
        CertificateChain::parse(*pem);
        ca_pem = *pem;
        tls_ok = conds.add("TLSConfigurationValid", true, "Success", "spec.tls is valid");
      } catch (const Error &e) {
        conds.add("TLSConfigurationValid", false, "InvalidTLSConfiguration", e.what());
      }
    } else {
      tls_ok = conds.add("TLSConfigurationValid", true, "Success", "spec.tls is valid: using the system roots");
    }
    if (url_ok && tls_ok) {
      try {
        built = std::make_shared<WebhookAuthenticator>(name, w.spec, opt_);
      } catch (const Error &e) {
        conds.add("AuthenticatorValid", false, "UnableToCreateClient", e.what());
      }
    }
    if (built) {
      ClientTlsOptions t;
      t.ca_pem = ca_pem;
      std::string err;
      try {
        err = HttpsClient(Url::parse(w.spec.endpoint).base(), t)
                  .probe(std::min<Millis>(opt_.timeout, std::chrono::seconds(PINNIPED_PROBE_TIMEOUT_SECONDS)));
      } catch (const Error &e) {
        err = e.what();
      }
      conn_ok = conds.add("WebhookConnectionValid", err.empty(), err.empty() ? "Success" : "UnableToDialServer",
                          err.empty() ? "successfully dialed webhook server" : err);
      conds.add("AuthenticatorValid", true, "Success", "authenticator initialized");
    } else {
      conds.unknown("WebhookConnectionValid");
      // A client that could not be built has said why (False) above.
      if (!url_ok || !tls_ok) conds.unknown("AuthenticatorValid");
    }
    bool ready = url_ok && tls_ok && conn_ok && built;
    conds.add(
        "Ready", ready, ready ? "Success" : "NotReady",
        ready ? "the WebhookAuthenticator is ready" : "the WebhookAuthenticator is not ready: see other conditions");
    if (built) {
      registry_.put(built);
    } else {
      registry_.remove(AuthenticatorRegistry::webhook_kind, name);
    }
    log_.info("authenticator synced", {{"name", jv(name)}, {"ready", jv(ready)}, {"usable", jv(built != nullptr)}});
    write_status(name, ready ? "Ready" : "Error", conds.list());
    std::lock_guard<std::mutex> lk(mu_);
    seen_[name] = {spec_text, generation};
  }

  void write_status(const std::string &name, const std::string &phase, std::vector<Condition> conds) {
    if (may_write_ && !may_write_()) return;  // the leader writes status
    write_authenticator_status(kube_, log_, collection_ + "/" + name, phase, std::move(conds));
  }

  KubeClient &kube_;
  AuthenticatorRegistry &registry_;
  Logger &log_;
  WebhookOptions opt_;
  std::string collection_;
  Informer informer_;
  std::mutex mu_;
  std::map<std::string, Seen> seen_;
  std::function<bool()> may_write_;
};

// Keeps the cluster's JWTAuthenticators in the registry and writes their
// status. A sync fetches the issuer's discovery document and JWKS, so syncs
// run on a thread of their own, one at a time: the watch only marks an
// object to sync. An authenticator that is not ready is tried again every
// PINNIPED_JWT_RETRY_SECONDS, and every one is checked again every
// PINNIPED_JWT_RESYNC_SECONDS (a CA from a Secret or ConfigMap is read
// again then; a key rotation needs no resync: an unknown kid refetches).
class JwtAuthenticatorController {
 public:
  static constexpr const char *kKind = JwtAuthenticator::kKind;
  JwtAuthenticatorController(KubeClient &kube, AuthenticatorRegistry &registry, Logger &log, const std::string &suffix,
                             std::string namespace_, JwtAuthenticatorOptions opt = JwtAuthenticatorOptions())
      : kube_(kube),
        registry_(registry),
        log_(log),
        opt_(opt),
        namespace_(std::move(namespace_)),
        collection_("/apis/" + authentication_group(suffix) + "/v1alpha1/jwtauthenticators"),
        informer_(kube, collection_, log, [this](const std::string &t, const picojson::value &o) { on_event(t, o); }) {}

  void start() {
    informer_.start();
    worker_.start(
        Millis(PINNIPED_JWT_WORKER_TICK_MS), [this] { work(); }, log_);
  }
  void stop() {
    informer_.stop();
    worker_.stop();
  }
  // Listed: readiness waits for this, not for the issuers (an IDP that is
  // down must not take the concierge's other authenticators with it).
  bool listed() const { return informer_.synced(); }
  // Listed, and every object listed then synced once.
  bool synced() const {
    if (!informer_.synced()) return false;
    std::lock_guard<std::mutex> lk(mu_);
    return dirty_.empty() && !busy_;
  }
  uint64_t reconnects() const { return informer_.reconnects(); }
  void set_may_write(std::function<bool()> f) { may_write_ = std::move(f); }
  void resync_all() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      for (auto &kv : state_) kv.second.due = Steady::time_point();
    }
    worker_.wake();
  }

 private:
  struct State {
    std::string spec;  // serialised spec last synced
    int64_t generation = -1;
    std::shared_ptr<JwtAuthenticator> current;  // registered: ready
    Steady::time_point due;                     // next sync without an event
  };

  void on_event(const std::string &type, const picojson::value &obj) {
    std::string name = object_key(obj);
    if (name.empty()) return;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (type == "DELETED") {
        state_.erase(name);
        dirty_.erase(name);
      } else {
        // Our own status writes come back as MODIFIED with the same spec.
        auto it = state_.find(name);
        if (it != state_.end() && it->second.spec == spec_text(obj) && it->second.generation == generation_of(obj))
          return;
        dirty_.insert(name);
      }
    }
    if (type == "DELETED") {
      registry_.remove(kKind, name);
      log_.info("authenticator removed", {{"kind", jv(kKind)}, {"name", jv(name)}});
      return;
    }
    worker_.wake();
  }

  static bool same_spec(const JwtAuthenticatorSpec &a, const JwtAuthenticatorSpec &b) {
    return a.issuer == b.issuer && a.audience == b.audience && a.username_claim == b.username_claim &&
           a.groups_claim == b.groups_claim && a.ca_pem == b.ca_pem;
  }
  static std::string spec_text(const picojson::value &obj) {
    const auto *s = json::field(obj, "spec");
    return s ? to_json_string(*s) : "{}";
  }
  static int64_t generation_of(const picojson::value &obj) {
    if (const auto *m = json::field(obj, "metadata"))
      if (const auto *g = json::field(*m, "generation"); g && g->is<int64_t>()) return g->get<int64_t>();
    return 0;
  }

  // The worker: objects marked by the watch, then those due.
  void work() {
    auto now = Steady::now();
    std::vector<std::string> todo;
    {
      std::lock_guard<std::mutex> lk(mu_);
      todo.assign(dirty_.begin(), dirty_.end());
      for (const auto &kv : state_)
        if (!dirty_.count(kv.first) && kv.second.due <= now) todo.push_back(kv.first);
      dirty_.clear();
      busy_ = !todo.empty();
    }
    // After the marks are taken: an event after this snapshot marks again.
    auto objects = informer_.snapshot();
    for (const auto &name : todo) {
      auto it = objects.find(name);
      if (it != objects.end()) sync(name, it->second);
    }
    std::lock_guard<std::mutex> lk(mu_);
    busy_ = false;
  }

  // The CA bundle in a key of a Secret or ConfigMap in the concierge's
  // namespace (tls.certificateAuthorityDataSource). Throws Error naming the
  // problem.
  std::string ca_from_source(const picojson::value &src) {
    std::string kind = json::get_string(src, "kind", "certificateAuthorityDataSource.kind");
    std::string name = json::get_string(src, "name", "certificateAuthorityDataSource.name");
    std::string key = json::get_string(src, "key", "certificateAuthorityDataSource.key");
    if ((kind != "Secret" && kind != "ConfigMap") || name.empty() || key.empty())
      throw bad_request("spec.tls.certificateAuthorityDataSource needs kind Secret or ConfigMap, a name and a key");
    std::string where = kind + " " + namespace_ + "/" + name;
    picojson::value o;
    try {
      o = kube_.get("/api/v1/namespaces/" + namespace_ + (kind == "Secret" ? "/secrets/" : "/configmaps/") + name);
    } catch (const Error &e) {
      throw bad_request("cannot read " + where + ": " + e.what());
    }
    const auto *data = json::get_object(o, "data", "data");
    std::string v = data ? json::get_string(*data, key, "data." + key) : "";
    if (v.empty()) throw bad_request(where + " has no key \"" + key + "\"");
    if (kind == "Secret") {
      auto d = detail::base64_decode(v);
      if (!d) throw bad_request(where + ": key \"" + key + "\" is not valid base64");
      v = *d;
    }
    CertificateChain::parse(v);
    return v;
  }

  void sync(const std::string &name, const picojson::value &obj) {
    std::string spec_json = spec_text(obj);
    int64_t generation = generation_of(obj);
    ConditionList conds(generation);
    std::shared_ptr<JwtAuthenticator> built;
    std::string failed;  // the first condition that failed
    auto fail = [&](const std::string &condition, const std::string &reason, const std::string &msg) {
      if (failed.empty()) failed = condition;
      conds.add(condition, false, reason, msg);
    };
    JwtAuthenticatorObject j;
    JwtAuthenticatorSpec &s = j.spec;
    try {
      j = JwtAuthenticatorObject::from_json(obj);
      try {
        if (!j.ca_source.is<picojson::null>()) s.ca_pem = ca_from_source(j.ca_source);
        conds.add("TLSConfigurationValid", true, "Success",
                  s.ca_pem.empty() ? "spec.tls is valid: using the system roots" : "spec.tls is valid");
      } catch (const Error &e) {
        fail("TLSConfigurationValid", "InvalidTLSConfiguration", e.what());
      }
    } catch (const Error &e) {
      fail("TLSConfigurationValid", "InvalidTLSConfiguration", e.what());
    }
    // A ready authenticator whose spec and CA are unchanged keeps its keys
    // (and its status): a resync only read the CA again.
    std::shared_ptr<JwtAuthenticator> current;
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = state_.find(name);
      if (it != state_.end() && it->second.spec == spec_json && it->second.generation == generation)
        current = it->second.current;
    }
    if (current && failed.empty() && j.unsupported.empty() && same_spec(current->spec(), s)) {
      std::lock_guard<std::mutex> lk(mu_);
      state_[name].due = Steady::now() + std::chrono::seconds(PINNIPED_JWT_RESYNC_SECONDS);
      return;
    }
    std::string issuer_problem = s.issuer.empty() ? "spec.issuer is required" : validate_issuer_url(s.issuer);
    if (!failed.empty()) {
      conds.unknown("IssuerURLValid");
    } else if (!issuer_problem.empty()) {
      fail("IssuerURLValid", "InvalidIssuerURL", "spec.issuer: " + issuer_problem);
    } else {
      conds.add("IssuerURLValid", true, "Success", "spec.issuer is a valid URL");
    }
    if (failed.empty()) {
      try {
        std::string problem = j.problem();
        if (!problem.empty()) throw JwtSetupError("AuthenticatorValid", 400, problem);
        auto a = std::make_shared<JwtAuthenticator>(name, s, log_, opt_);
        a->fetch_keys(std::chrono::seconds(PINNIPED_PROBE_TIMEOUT_SECONDS));
        built = a;
      } catch (const JwtSetupError &e) {
        failed = e.condition;
        setup_error_ = e.what();
      } catch (const Error &e) {
        failed = "AuthenticatorValid";
        setup_error_ = e.what();
      }
    }
    // Discovery, JWKS URL, JWKS fetch, authenticator: in that order, each
    // true until the failing one, Unknown after it.
    static const std::vector<std::pair<const char *, const char *>> steps = {
        {"DiscoveryURLValid", "InvalidDiscoveryProbe"},
        {"JWKSURLValid", "InvalidProviderJWKSURL"},
        {"JWKSFetchValid", "InvalidCouldNotFetchJWKS"},
        {"AuthenticatorValid", "InvalidAuthenticator"},
    };
    static const std::map<std::string, std::string> ok_message = {
        {"DiscoveryURLValid", "discovery performed successfully"},
        {"JWKSURLValid", "jwks_uri is a valid https URL"},
        {"JWKSFetchValid", "successfully fetched jwks"},
        {"AuthenticatorValid", "authenticator initialized"},
    };
    bool before_failure = !built && (failed == "TLSConfigurationValid" || failed == "IssuerURLValid");
    for (const auto &st : steps) {
      if (before_failure) {
        conds.unknown(st.first);
      } else if (!built && failed == st.first) {
        conds.add(st.first, false, st.second, setup_error_);
        before_failure = true;
      } else {
        conds.add(st.first, true, "Success", ok_message.at(st.first));
      }
    }
    bool ready = built != nullptr;
    conds.add("Ready", ready, ready ? "Success" : "NotReady",
              ready ? "the JWTAuthenticator is ready" : "the JWTAuthenticator is not ready: see other conditions");
    if (built)
      registry_.put(built);
    else
      registry_.remove(kKind, name);
    log_.info("authenticator synced", {{"kind", jv(kKind)},
                                       {"name", jv(name)},
                                       {"ready", jv(ready)},
                                       {"problem", jv(ready ? "" : failed + ": " + setup_error_)}});
    if (!may_write_ || may_write_())
      write_authenticator_status(kube_, log_, collection_ + "/" + name, ready ? "Ready" : "Error", conds.list());
    bool gone = !informer_.snapshot().count(name);
    std::lock_guard<std::mutex> lk(mu_);
    if (gone) return;  // deleted meanwhile: on_event removed it
    auto &stt = state_[name];
    stt.spec = spec_json;
    stt.generation = generation;
    stt.current = built;
    stt.due = Steady::now() + std::chrono::seconds(ready ? PINNIPED_JWT_RESYNC_SECONDS : PINNIPED_JWT_RETRY_SECONDS);
  }

  KubeClient &kube_;
  AuthenticatorRegistry &registry_;
  Logger &log_;
  JwtAuthenticatorOptions opt_;
  std::string namespace_, collection_;
  Informer informer_;
  PeriodicTask worker_;
  mutable std::mutex mu_;  // a leaf: what follows
  std::map<std::string, State> state_;
  std::set<std::string> dirty_;
  bool busy_ = false;
  std::string setup_error_;  // the worker's own
  std::function<bool()> may_write_;
};

// Publishes the CredentialIssuer: how clients reach the exchange API and
// whether the signer works. Written only when something changed.
// What the CredentialIssuer should say: the signer's state and which
// frontend clients should send their exchanges to.
struct IssuerState {
  bool signer_ok = false;  // the strategy can issue certificates
  std::string signer_problem;
  // The CSR strategy: its CredentialIssuer reason and sentence.
  bool csr = false;
  std::string csr_reason, csr_message;
  // Empty: kube-apiserver (its public address from cluster-info, else the
  // one we talk to). Else the direct frontend's URL and CA (base64 PEM).
  std::string direct_server, direct_ca_data;
  std::string note;  // appended to the success message: how logins travel
  bool operator==(const IssuerState &o) const {
    return signer_ok == o.signer_ok && signer_problem == o.signer_problem && csr == o.csr &&
           csr_reason == o.csr_reason && csr_message == o.csr_message && direct_server == o.direct_server &&
           direct_ca_data == o.direct_ca_data && note == o.note;
  }
  bool operator!=(const IssuerState &o) const { return !(*this == o); }
};

class CredentialIssuerController {
 public:
  CredentialIssuerController(KubeClient &kube, Logger &log, const std::string &suffix, std::string name)
      : kube_(kube), log_(log), group_("config.concierge." + suffix), name_(std::move(name)) {}

  // False when the write failed (logged; the caller retries).
  bool sync(const IssuerState &st) {
    try {
      sync_or_throw(st);
      return true;
    } catch (const std::exception &e) {
      log_.warn("CredentialIssuer sync failed; will retry", {{"error", jv(e.what())}});
      return false;
    }
  }

 private:
  // Server and CA for clients: kube-public/cluster-info first, else the API
  // server this process talks to.
  std::pair<std::string, std::string> frontend() {
    try {
      auto cm = kube_.get_if_exists("/api/v1/namespaces/kube-public/configmaps/cluster-info");
      if (cm) {
        const auto *data = json::field(*cm, "data");
        std::string kc = data ? json::get_string(*data, "kubeconfig", "data.kubeconfig") : "";
        if (!kc.empty()) {
          auto docs = parse_yaml_documents(kc);
          const auto *clusters = docs.empty() ? nullptr : json::field(docs[0], "clusters");
          if (clusters && clusters->is<picojson::array>() && !clusters->get<picojson::array>().empty()) {
            const auto *c = json::field(clusters->get<picojson::array>()[0], "cluster");
            if (c) {
              std::string server = json::get_string(*c, "server", "cluster.server");
              std::string ca = json::get_string(*c, "certificate-authority-data", "cluster.ca");
              if (!server.empty()) return {server, ca};
            }
          }
        }
      }
    } catch (const Error &e) {
      log_.debug("cluster-info not usable", {{"error", jv(e.what())}});
    }
    const auto &kc = kube_.config();
    std::string ca = kc.tls.ca_pem.empty() ? "" : detail::base64_encode(kc.tls.ca_pem);
    if (kc.source == "in-cluster") return {"https://kubernetes.default.svc", ca};
    return {kc.server, ca};
  }

  void sync_or_throw(const IssuerState &want) {
    bool signer_ok = want.signer_ok;
    std::string server;
    picojson::object strategy;
    std::string note = want.note.empty() ? "" : "; " + want.note;
    strategy["type"] = jv(want.csr ? "KubeCertificateSigningRequestAPI" : "KubeClusterSigningCertificate");
    strategy["status"] = jv(signer_ok ? "Success" : "Error");
    if (want.csr) {
      strategy["reason"] = jv(want.csr_reason);
      strategy["message"] = jv(signer_ok ? want.csr_message + note : want.csr_message);
    } else {
      strategy["reason"] = jv(signer_ok ? "FetchedKey" : "CouldNotFetchKey");
      strategy["message"] = jv(signer_ok ? "key was fetched successfully" + note : want.signer_problem);
    }
    strategy["lastUpdateTime"] = jv(format_rfc3339(Clock::now()));
    if (signer_ok) {
      auto fe = want.direct_server.empty() ? frontend() : std::make_pair(want.direct_server, want.direct_ca_data);
      server = fe.first;
      picojson::object info, front;
      info["server"] = jv(fe.first);
      info["certificateAuthorityData"] = jv(fe.second);
      front["type"] = jv("TokenCredentialRequestAPI");
      front["tokenCredentialRequestInfo"] = picojson::value(info);
      strategy["frontend"] = picojson::value(front);
    }
    std::string collection = "/apis/" + group_ + "/v1alpha1/credentialissuers";
    if (!kube_.get_if_exists(collection + "/" + name_)) {
      picojson::object meta, obj;
      meta["name"] = jv(name_);
      obj["apiVersion"] = jv(group_ + "/v1alpha1");
      obj["kind"] = jv("CredentialIssuer");
      obj["metadata"] = picojson::value(meta);
      obj["spec"] = picojson::value(picojson::object());
      try {
        kube_.create(collection, picojson::value(obj));
      } catch (const Error &e) {
        if (e.code != 409) throw;
      }
    }
    auto without_time = [](picojson::value v) {
      if (v.is<picojson::object>()) v.get<picojson::object>().erase("lastUpdateTime");
      return to_json_string(v);
    };
    kube_.update_with_retry(
        collection + "/" + name_,
        [&](picojson::value &obj) {
          const auto *st = json::field(obj, "status");
          const auto *ss = st ? json::field(*st, "strategies") : nullptr;
          if (ss && ss->is<picojson::array>() && ss->get<picojson::array>().size() == 1 &&
              without_time(ss->get<picojson::array>()[0]) == without_time(picojson::value(strategy)))
            return false;
          picojson::object status;
          status["strategies"] = picojson::value(picojson::array{picojson::value(strategy)});
          obj.get<picojson::object>()["status"] = picojson::value(status);
          log_.info("CredentialIssuer updated", {{"name", jv(name_)},
                                                 {"strategy", jv(want.csr ? "csr" : "signer-files")},
                                                 {"signer", jv(signer_ok ? "ok" : "error")},
                                                 {"frontend", jv(want.direct_server.empty() ? "aggregated" : "direct")},
                                                 {"server", jv(server)}});
          return true;
        },
        true);
  }

  KubeClient &kube_;
  Logger &log_;
  std::string group_, name_;
};

// The CSR strategy: certificates from the cluster's own signer through the
// CSR API (certificates.k8s.io/v1), so that the concierge holds no signing
// key. Per exchange: create a CertificateSigningRequest for
// kubernetes.io/kube-apiserver-client, approve it, wait for the certificate
// (one shared watch on our own CSRs, found by label), check it, delete the
// CSR whatever happened. Leftovers of a process that died mid-way are swept
// at start (this host's) and every minute (anyone's older than
// PINNIPED_CSR_LEFTOVER_SECONDS).
struct CsrSettings {
  std::string app = "pinniped-concierge";  // label value: who made the CSR
  std::string holder;                      // label value: which host (a restarted process sweeps its own)
  Millis wait = std::chrono::seconds(PINNIPED_CSR_WAIT_SECONDS);
};

class CsrIssuer {
 public:
  static constexpr const char *collection = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
  static constexpr const char *signer_name = "kubernetes.io/kube-apiserver-client";
  static constexpr const char *app_label = "concierge.pinniped.dev/issued-by";
  static constexpr const char *holder_label = "concierge.pinniped.dev/holder";
  // The API's minimum for spec.expirationSeconds.
  static constexpr int64_t min_expiration_seconds = 600;

  // What the last exchange through this strategy found, for the
  // CredentialIssuer: ok, a reason and a sentence.
  struct Health {
    bool ok = true;
    std::string reason = "CSRAPIReady";
    std::string message;
    bool operator==(const Health &o) const { return ok == o.ok && reason == o.reason && message == o.message; }
  };

  CsrIssuer(KubeClient &kube, Logger &log, CsrSettings s) : kube_(kube), log_(log), s_(std::move(s)) {
    s_.holder = label_value(s_.holder);
    health_.message = ready_message();
    informer_ = std::make_unique<Informer>(kube_, std::string(collection) + "?labelSelector=" + selector(), log_,
                                           [this](const std::string &t, const picojson::value &o) { on_event(t, o); });
  }
  ~CsrIssuer() { stop(); }
  CsrIssuer(const CsrIssuer &) = delete;
  CsrIssuer &operator=(const CsrIssuer &) = delete;

  // Sweeps this host's leftovers and starts the watch on our CSRs.
  void start() {
    if (started_.exchange(true)) return;
    sweep(true);
    informer_->start();
    log_.info("issuing certificates through the CSR API",
              {{"signerName", jv(signer_name)}, {"holder", jv(s_.holder)}, {"waitMs", jv(s_.wait.count())}});
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    informer_->stop();
  }
  bool started() const { return started_.load(); }
  bool synced() const { return started_ && informer_->synced(); }
  uint64_t reconnects() const { return informer_->reconnects(); }
  Health health() const {
    std::lock_guard<std::mutex> lk(mu_);
    return health_;
  }
  // True once after health() changed (the CredentialIssuer is rewritten).
  bool take_changed() {
    std::lock_guard<std::mutex> lk(mu_);
    bool c = changed_;
    changed_ = false;
    return c;
  }
  // API requests made by exchanges (create, approve, delete, and a read
  // when the watch was late), for the benchmark.
  uint64_t api_requests() const { return api_requests_.load(); }

  // Deletes leftovers: with `mine`, every CSR this holder made (at start:
  // none of them is in flight); always those older than the leftover age.
  void sweep(bool mine) {
    try {
      auto list = kube_.get(std::string(collection) + "?labelSelector=" + selector());
      const auto *items = json::field(list, "items");
      if (!items || !items->is<picojson::array>()) return;
      auto now = Clock::now();
      size_t deleted = 0;
      for (const auto &i : items->get<picojson::array>()) {
        const auto *m = json::field(i, "metadata");
        if (!m) continue;
        std::string name = json::get_string(*m, "name", "metadata.name");
        const auto *labels = json::field(*m, "labels");
        std::string holder = labels ? json::get_string(*labels, holder_label, "labels") : "";
        auto created = parse_rfc3339(json::get_string(*m, "creationTimestamp", "metadata.creationTimestamp"));
        bool old = created && now - *created > std::chrono::seconds(PINNIPED_CSR_LEFTOVER_SECONDS);
        if (name.empty() || !((mine && holder == s_.holder) || old)) continue;
        if (remove(name)) deleted++;
      }
      if (deleted) log_.info("deleted leftover CertificateSigningRequests", {{"count", jv(deleted)}});
    } catch (const std::exception &e) {
      log_.warn("could not sweep leftover CertificateSigningRequests", {{"error", jv(e.what())}});
    }
  }

  // Issues a client certificate through the CSR API; `why` names the
  // authenticator for the approval condition. Throws Error with a reason
  // for the log; the CSR is deleted in every case.
  IssuedCertificate issue(const std::string &username, const std::vector<std::string> &groups, Millis ttl,
                          const ClientKey &key, const std::string &why, const std::string &trusted_ca_pem) {
    if (username.empty()) throw bad_request("username must not be empty");
    int64_t seconds =
        std::max<int64_t>(min_expiration_seconds, (std::chrono::duration_cast<std::chrono::seconds>(ttl).count()));
    std::string pem = detail::pem_encode("CERTIFICATE REQUEST", detail::certificate_request_der(username, groups, key));
    picojson::object labels, meta, spec, obj;
    labels[app_label] = jv(label_value(s_.app));
    labels[holder_label] = jv(s_.holder);
    meta["generateName"] = jv(s_.app + "-");
    meta["labels"] = picojson::value(labels);
    spec["request"] = jv(detail::base64_encode(pem));
    spec["signerName"] = jv(signer_name);
    spec["usages"] = picojson::value(picojson::array{jv("digital signature"), jv("client auth")});
    spec["expirationSeconds"] = jv(seconds);
    obj["apiVersion"] = jv("certificates.k8s.io/v1");
    obj["kind"] = jv("CertificateSigningRequest");
    obj["metadata"] = picojson::value(meta);
    obj["spec"] = picojson::value(spec);
    picojson::value created;
    api_requests_++;
    try {
      created = kube_.create(collection, picojson::value(obj));
    } catch (const Error &e) {
      set_health({false, "CSRAPIError", std::string("creating a CertificateSigningRequest failed: ") + e.what()});
      throw Error(503, "ServiceUnavailable", std::string("cannot create a CertificateSigningRequest: ") + e.what());
    }
    const auto *m = json::field(created, "metadata");
    std::string name = m ? json::get_string(*m, "name", "metadata.name") : "";
    if (name.empty()) throw internal_error("the created CertificateSigningRequest has no name");
    struct Cleanup {
      CsrIssuer &self;
      std::string name;
      ~Cleanup() {
        self.api_requests_++;
        self.remove(name);
        std::lock_guard<std::mutex> lk(self.mu_);
        self.results_.erase(name);
      }
    } cleanup{*this, name};
    auto deadline = Steady::now() + s_.wait;
    approve(created, why);
    std::string cert_pem = wait_for(name, deadline);
    CertificateExpectation want;
    want.username = username;
    want.groups = groups;
    want.spki_der = key.spki_der;
    want.lifetime = std::chrono::seconds(seconds);
    want.trusted_ca_pem = trusted_ca_pem;
    IssuedCertificate out;
    if (auto problem = check_issued_certificate(cert_pem, want, out)) {
      set_health({false, problem->reason, problem->message});
      throw internal_error(problem->message + " (CertificateSigningRequest " + name + ")");
    }
    out.key_pem = key.key_pem;
    set_health({true, "IssuedCertificate", ready_message()});
    return out;
  }

 private:
  // Label values: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends.
  static std::string label_value(std::string v) {
    for (auto &c : v)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '-';
    if (v.size() > 63) v.resize(63);
    while (!v.empty() && !std::isalnum(static_cast<unsigned char>(v.back()))) v.pop_back();
    while (!v.empty() && !std::isalnum(static_cast<unsigned char>(v.front()))) v.erase(0, 1);
    return v.empty() ? "unknown" : v;
  }
  // app_label=<app>, escaped for a query (label values need no escaping).
  std::string selector() const { return "concierge.pinniped.dev%2Fissued-by%3D" + label_value(s_.app); }
  static std::string ready_message() {
    return std::string("certificates are issued through the Kubernetes CSR API (signer ") + signer_name +
           "); the concierge holds no signing key";
  }
  // (No CSR names in it: the status would change with every failure. The
  // exchange's log line names the CSR.)
  void set_health(Health h) {
    std::lock_guard<std::mutex> lk(mu_);
    if (!(h == health_)) {
      if (!h.ok) log_.warn("CSR strategy problem", {{"reason", jv(h.reason)}, {"message", jv(h.message)}});
      health_ = std::move(h);
      changed_ = true;
    }
  }

  bool remove(const std::string &name) {
    try {
      kube_.remove(std::string(collection) + "/" + name);
      return true;
    } catch (const Error &e) {
      if (e.code == 404) return true;
      log_.warn("could not delete CertificateSigningRequest; the sweep retries",
                {{"name", jv(name)}, {"error", jv(e.what())}});
      return false;
    }
  }
  void approve(picojson::value obj, const std::string &why) {
    picojson::object cond;
    cond["type"] = jv("Approved");
    cond["status"] = jv("True");
    cond["reason"] = jv("PinnipedConciergeExchange");
    cond["message"] = jv("approved by " + s_.app + " for a TokenCredentialRequest authenticated by " + why);
    cond["lastUpdateTime"] = jv(format_rfc3339(Clock::now()));
    auto &o = obj.get<picojson::object>();
    picojson::object status;
    if (auto it = o.find("status"); it != o.end() && it->second.is<picojson::object>())
      status = it->second.get<picojson::object>();
    status["conditions"] = picojson::value(picojson::array{picojson::value(cond)});
    o["status"] = picojson::value(status);
    const auto *m = json::field(obj, "metadata");
    std::string name = m ? json::get_string(*m, "name", "metadata.name") : "";
    api_requests_++;
    try {
      kube_.update(std::string(collection) + "/" + name + "/approval", obj);
    } catch (const Error &e) {
      set_health({false, "CSRAPIError",
                  std::string("approving a CertificateSigningRequest failed (the concierge needs the right to approve "
                              "kubernetes.io/kube-apiserver-client requests): ") +
                      e.what()});
      throw Error(503, "ServiceUnavailable", std::string("cannot approve the CertificateSigningRequest: ") + e.what());
    }
  }

 public:
  // A CSR's outcome, from the object the API returns: its certificate, or
  // why none will come (both empty: still pending).
  struct Outcome {
    std::string cert_pem, refused;
  };
  static Outcome outcome_of(const picojson::value &csr) {
    Outcome r;
    const auto *st = json::field(csr, "status");
    if (!st) return r;
    std::string cert = json::get_string(*st, "certificate", "status.certificate");
    if (!cert.empty()) {
      auto pem = detail::base64_decode(cert);
      r.cert_pem = pem && !pem->empty() ? *pem : std::string();
      if (r.cert_pem.empty()) r.refused = "status.certificate is not base64";
      return r;
    }
    const auto *conds = json::field(*st, "conditions");
    if (conds && conds->is<picojson::array>())
      for (const auto &c : conds->get<picojson::array>()) {
        std::string type = json::get_string(c, "type", "type");
        if ((type == "Denied" || type == "Failed") && json::get_string(c, "status", "status") != "False")
          r.refused =
              type + ": " + json::get_string(c, "reason", "reason") + " " + json::get_string(c, "message", "message");
      }
    return r;
  }

 private:
  void on_event(const std::string &type, const picojson::value &obj) {
    std::string name = object_key(obj);
    std::lock_guard<std::mutex> lk(mu_);
    if (type == "DELETED") {
      results_.erase(name);
      return;
    }
    Outcome o = outcome_of(obj);
    if (o.cert_pem.empty() && o.refused.empty()) return;
    // Bounded: an entry lives until its CSR is deleted (moments later).
    if (results_.size() >= 4096) results_.erase(results_.begin());
    results_[name] = std::move(o);
    cv_.notify_all();
  }
  std::string wait_for(const std::string &name, Steady::time_point deadline) {
    std::optional<Outcome> got;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait_until(lk, deadline, [&] { return stopping_ || results_.count(name); });
      if (auto it = results_.find(name); it != results_.end()) got = it->second;
    }
    if (!got) {
      // The watch may have been reconnecting: one read decides.
      try {
        api_requests_++;
        Outcome o = outcome_of(kube_.get(std::string(collection) + "/" + name));
        if (!o.cert_pem.empty() || !o.refused.empty()) got = o;
      } catch (const Error &) {
      }
    }
    if (!got) {
      std::string m = "no certificate within " + detail::describe_duration(s_.wait) +
                      ": is kube-controller-manager running with its csrsigning controller and "
                      "--cluster-signing-kube-apiserver-client-cert-file (or --cluster-signing-cert-file)?";
      set_health({false, "CSRNotSigned", "a CertificateSigningRequest got " + m});
      throw Error(503, "ServiceUnavailable", "CertificateSigningRequest " + name + " got " + m);
    }
    if (!got->refused.empty()) {
      set_health({false, "CSRRefused", "the cluster refused a CertificateSigningRequest: " + got->refused});
      throw Error(503, "ServiceUnavailable", "the CertificateSigningRequest was refused: " + got->refused);
    }
    return got->cert_pem;
  }

  KubeClient &kube_;
  Logger &log_;
  CsrSettings s_;
  std::unique_ptr<Informer> informer_;
  std::atomic<bool> started_{false};
  mutable std::mutex mu_;  // results_, health_, stopping_ (never held across API calls)
  std::condition_variable cv_;
  std::map<std::string, Outcome> results_;
  Health health_;
  bool changed_ = false;
  bool stopping_ = false;
  std::atomic<uint64_t> api_requests_{0};
};

// Watches kube-system/extension-apiserver-authentication and hands each new
// version to `apply`.
class FrontProxyController {
 public:
  FrontProxyController(KubeClient &kube, Logger &log, std::function<void(const RequestHeaderConfig &)> apply)
      : log_(log),
        apply_(std::move(apply)),
        informer_(kube,
                  "/api/v1/namespaces/kube-system/configmaps?fieldSelector=metadata.name%3D"
                  "extension-apiserver-authentication",
                  log, [this](const std::string &t, const picojson::value &o) {
                    if (t == "DELETED") return;
                    try {
                      apply_(RequestHeaderConfig::from_configmap(o));
                      log_.info("front-proxy settings loaded",
                                {{"configMap", jv("kube-system/extension-apiserver-authentication")}});
                    } catch (const Error &e) {
                      log_.error("front-proxy settings unusable", {{"error", jv(e.what())}});
                    }
                  }) {
    informer_.set_fallback_get("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
                               std::chrono::seconds(30));
  }
  void start() { informer_.start(); }
  void stop() { informer_.stop(); }
  bool synced() const { return informer_.synced(); }
  uint64_t reconnects() const { return informer_.reconnects(); }

 private:
  Logger &log_;
  std::function<void(const RequestHeaderConfig &)> apply_;
  Informer informer_;
};

// The API types the concierge serves, and their discovery and OpenAPI
// documents (kubectl api-resources, kubectl explain), made from one table.
struct ServedType {
  std::string group, resource, singular, kind;
  std::string description;
  picojson::value spec, status;  // OpenAPI schemas of spec and status
};

namespace detail {
inline picojson::value schema_object(const std::string &description,
                                     std::vector<std::pair<std::string, picojson::value>> props) {
  picojson::object o, p;
  o["type"] = jv("object");
  if (!description.empty()) o["description"] = jv(description);
  for (auto &kv : props) p[kv.first] = kv.second;
  if (!p.empty()) o["properties"] = picojson::value(p);
  return picojson::value(o);
}
inline picojson::value schema_string(const std::string &description, const std::string &format = "") {
  picojson::object o;
  o["type"] = jv("string");
  o["description"] = jv(description);
  if (!format.empty()) o["format"] = jv(format);
  return picojson::value(o);
}
inline picojson::value gvk_of(const ServedType &t) {
  picojson::object gvk;
  gvk["group"] = jv(t.group);
  gvk["kind"] = jv(t.kind);
  gvk["version"] = jv("v1alpha1");
  return picojson::value(gvk);
}
inline std::string definition_name(const ServedType &t) { return t.group + ".v1alpha1." + t.kind; }
inline picojson::value openapi_info() {
  picojson::object info;
  info["title"] = jv("Pinniped Concierge");
  info["version"] = jv(PINNIPED_VERSION);
  return picojson::value(info);
}
inline picojson::value schema_of(const ServedType &t) {
  auto schema = schema_object(
      t.description,
      {{"apiVersion", schema_string("APIVersion defines the versioned schema of this representation of an object.")},
       {"kind", schema_string("Kind is a string value representing the REST resource this object represents.")},
       {"metadata", schema_object("Standard object's metadata.", {})},
       {"spec", t.spec},
       {"status", t.status}});
  schema.get<picojson::object>()["x-kubernetes-group-version-kind"] = picojson::value(picojson::array{gvk_of(t)});
  return schema;
}
}  // namespace detail

// TokenCredentialRequest and WhoAmIRequest under `suffix`.
inline std::vector<ServedType> concierge_served_types(const std::string &suffix) {
  using detail::schema_object;
  using detail::schema_string;
  ServedType tcr{login_group(suffix),
                 "tokencredentialrequests",
                 "tokencredentialrequest",
                 "TokenCredentialRequest",
                 "TokenCredentialRequest submits an IDP-specific credential to Pinniped in exchange for "
                 "a cluster-specific credential.",
                 {},
                 {}};
  tcr.spec = schema_object(
      "Specification of the credential request.",
      {{"token", schema_string("Bearer token supplied with the credential request.")},
       {"authenticator",
        schema_object("Reference to an authenticator which can validate this credential request.",
                      {{"apiGroup", schema_string("APIGroup is the group for the resource being referenced.")},
                       {"kind", schema_string("Kind is the type of resource being referenced.")},
                       {"name", schema_string("Name is the name of resource being referenced.")}})}});
  auto cred = schema_object("A ClusterCredential, when the request was successful.",
                            {{"expirationTimestamp", schema_string("When the credential expires.", "date-time")},
                             {"token", schema_string("Bearer token (unused by this concierge).")},
                             {"clientCertificateData", schema_string("PEM-encoded client TLS certificate.")},
                             {"clientKeyData", schema_string("PEM-encoded private key for the certificate.")}});
  tcr.status =
      schema_object("Status of the credential request.",
                    {{"credential", cred}, {"message", schema_string("An error message, when the request failed.")}});
  ServedType who{"identity.concierge." + suffix,
                 "whoamirequests",
                 "whoamirequest",
                 "WhoAmIRequest",
                 "WhoAmIRequest submits a request to echo back the current authenticated user.",
                 {},
                 {}};
  auto user = schema_object(
      "The user as kube-apiserver authenticated it.",
      {{"username", schema_string("The user name.")},
       {"uid", schema_string("The user's unique identifier.")},
       {"groups", picojson::value(picojson::object{{"type", jv("array")}, {"items", schema_string("A group.")}})},
       {"extra", schema_object("Extra attributes.", {})}});
  who.spec = schema_object("Empty.", {});
  who.status = schema_object("Status of the request.",
                             {{"kubernetesUserInfo", schema_object("The identity of the caller.", {{"user", user}})}});
  return {tcr, who};
}

// GET /apis/<group>.
inline picojson::value api_group_document(const ServedType &t) {
  picojson::object gv, g;
  gv["groupVersion"] = jv(t.group + "/v1alpha1");
  gv["version"] = jv("v1alpha1");
  g["kind"] = jv("APIGroup");
  g["apiVersion"] = jv("v1");
  g["name"] = jv(t.group);
  g["versions"] = picojson::value(picojson::array{picojson::value(gv)});
  g["preferredVersion"] = picojson::value(gv);
  return picojson::value(g);
}
// GET /apis.
inline picojson::value api_group_list_document(const std::vector<ServedType> &types) {
  picojson::object o;
  o["kind"] = jv("APIGroupList");
  o["apiVersion"] = jv("v1");
  picojson::array groups;
  for (const auto &t : types) {
    picojson::object g = api_group_document(t).get<picojson::object>();
    g.erase("kind");
    g.erase("apiVersion");
    groups.push_back(picojson::value(g));
  }
  o["groups"] = picojson::value(groups);
  return picojson::value(o);
}
// GET /apis/<group>/v1alpha1.
inline picojson::value api_resource_list_document(const ServedType &t) {
  picojson::object r;
  r["name"] = jv(t.resource);
  r["singularName"] = jv(t.singular);
  r["namespaced"] = jv(false);
  r["kind"] = jv(t.kind);
  r["verbs"] = picojson::value(picojson::array{jv("create")});
  r["categories"] = picojson::value(picojson::array{jv("pinniped")});
  picojson::object o;
  o["kind"] = jv("APIResourceList");
  o["apiVersion"] = jv("v1");
  o["groupVersion"] = jv(t.group + "/v1alpha1");
  o["resources"] = picojson::value(picojson::array{picojson::value(r)});
  return picojson::value(o);
}
// GET /openapi/v2: every type.
inline picojson::value openapi_v2_document(const std::vector<ServedType> &types) {
  picojson::object defs, paths;
  for (const auto &t : types) {
    defs[detail::definition_name(t)] = detail::schema_of(t);
    picojson::object ref, body_param, ok, responses, post, item;
    ref["$ref"] = jv("#/definitions/" + detail::definition_name(t));
    body_param["name"] = jv("body");
    body_param["in"] = jv("body");
    body_param["required"] = jv(true);
    body_param["schema"] = picojson::value(ref);
    ok["description"] = jv("Created");
    ok["schema"] = picojson::value(ref);
    responses["201"] = picojson::value(ok);
    post["operationId"] = jv("create" + t.kind);
    post["consumes"] = picojson::value(picojson::array{jv("application/json")});
    post["produces"] = picojson::value(picojson::array{jv("application/json")});
    post["parameters"] = picojson::value(picojson::array{picojson::value(body_param)});
    post["responses"] = picojson::value(responses);
    post["x-kubernetes-action"] = jv("post");
    post["x-kubernetes-group-version-kind"] = detail::gvk_of(t);
    item["post"] = picojson::value(post);
    paths["/apis/" + t.group + "/v1alpha1/" + t.resource] = picojson::value(item);
  }
  picojson::object o;
  o["swagger"] = jv("2.0");
  o["info"] = detail::openapi_info();
  o["paths"] = picojson::value(paths);
  o["definitions"] = picojson::value(defs);
  return picojson::value(o);
}
// GET /openapi/v3: where each group's document is.
inline picojson::value openapi_v3_index_document(const std::vector<ServedType> &types) {
  picojson::object paths;
  for (const auto &t : types) {
    picojson::object ref;
    ref["serverRelativeURL"] = jv("/openapi/v3/apis/" + t.group + "/v1alpha1");
    paths["apis/" + t.group + "/v1alpha1"] = picojson::value(ref);
  }
  picojson::object o;
  o["paths"] = picojson::value(paths);
  return picojson::value(o);
}
// GET /openapi/v3/apis/<group>/v1alpha1.
inline picojson::value openapi_v3_document(const ServedType &t) {
  picojson::object schemas, components, o, paths, item, post, body, content, json_media, ref, responses, ok;
  schemas[detail::definition_name(t)] = detail::schema_of(t);
  ref["$ref"] = jv("#/components/schemas/" + detail::definition_name(t));
  json_media["schema"] = picojson::value(ref);
  content["application/json"] = picojson::value(json_media);
  body["content"] = picojson::value(content);
  body["required"] = jv(true);
  ok["description"] = jv("Created");
  ok["content"] = picojson::value(content);
  responses["201"] = picojson::value(ok);
  post["operationId"] = jv("create" + t.kind);
  post["requestBody"] = picojson::value(body);
  post["responses"] = picojson::value(responses);
  item["post"] = picojson::value(post);
  paths["/apis/" + t.group + "/v1alpha1/" + t.resource] = picojson::value(item);
  components["schemas"] = picojson::value(schemas);
  o["openapi"] = jv("3.0.0");
  o["info"] = detail::openapi_info();
  o["paths"] = picojson::value(paths);
  o["components"] = picojson::value(components);
  return picojson::value(o);
}

class Concierge {
 public:
  Concierge(ConciergeConfig cfg, Logger &log)
      : cfg_(std::move(cfg)),
        log_(log),
        ca_(cfg_.key_pool),
        server_(cfg_, log),
        direct_(cfg_, log),
        limiter_(cfg_.direct_failure_limit) {
    login_group_ = login_group(cfg_.api_group_suffix);
    auth_group_ = authentication_group(cfg_.api_group_suffix);
    identity_group_ = "identity.concierge." + cfg_.api_group_suffix;
    served_ = concierge_served_types(cfg_.api_group_suffix);
    install_routes(server_, Frontend::aggregated);
    if (cfg_.direct_enabled()) install_routes(direct_, Frontend::direct);
  }
  ~Concierge() {
    reloader_.stop();
    stop_controllers();
    direct_.stop();
    direct_.join();
  }

  // Where a request came in: through kube-apiserver's aggregation (or a
  // standalone concierge's only port), or on the direct frontend.
  enum class Frontend { aggregated, direct };
  Concierge(const Concierge &) = delete;
  Concierge &operator=(const Concierge &) = delete;

  // Loads serving certificate, signer and authenticators, and binds. A bad
  // serving certificate or an unusable port is fatal; a missing signer or a
  // broken authenticators file is not (not ready / retried on reload).
  void start() {
    if (cfg_.kube_mode()) start_kube();
    if (!cfg_.client_ca_file.empty()) reload_client_ca(true);
    if (!kube_ || !cfg_.tls_cert_file.empty()) load_serving_cert(true);
    if (cfg_.strategy == ConciergeConfig::Strategy::csr && !cfg_.kube_mode())
      throw bad_request("--strategy csr needs a cluster (--kubeconfig, or run in one)");
    if (cfg_.strategy != ConciergeConfig::Strategy::csr) reload_signer(true);
    start_csr_if_needed();
    if (!cfg_.authenticators_file.empty()) reload_authenticators(true);
    port_ = server_.bind(cfg_.listen_host, cfg_.port);
    if (cfg_.direct_enabled()) {
      direct_port_ = direct_.bind(cfg_.direct_listen_host, cfg_.direct_port);
      refresh_direct_cert(false);
    }
    if (ci_ctl_) {
      // The first write names the right endpoint: the direct Service's
      // address is known once its informer has listed it (bounded wait).
      auto until = Steady::now() + std::chrono::seconds(PINNIPED_START_SYNC_WAIT_SECONDS);
      while (direct_svc_ && !direct_svc_->synced() && Steady::now() < until) std::this_thread::sleep_for(Millis(20));
      probe_anonymous(true);
      sync_credential_issuer(true);
    }
    reloader_.start(
        cfg_.reload_interval, [this] { reload_tick(); }, log_);
    log_.info("serving", {{"address", jv(cfg_.listen_host)},
                          {"port", jv(port_)},
                          {"directPort", jv(direct_port_)},
                          {"apiGroupSuffix", jv(cfg_.api_group_suffix)},
                          {"authenticators", jv(authenticators_.size())},
                          {"ready", jv(ready())}});
  }
  // Serves until shutdown(); returns after in-flight requests finished.
  void run() {
    if (cfg_.direct_enabled()) direct_.run_in_background();
    server_.run();
    direct_.stop();
    direct_.join();
    reloader_.stop();
    stop_controllers();
    log_.info("stopped", {{"exchangesOk", jv(static_cast<int64_t>(metrics_.exchanges("success")))},
                          {"exchangesFailed", jv(static_cast<int64_t>(metrics_.exchanges("failed")))}});
  }
  // Graceful: /readyz fails on both frontends for --shutdown-delay while
  // requests are still answered, then no new connections are taken and
  // run() returns once the requests in progress are done.
  void shutdown() {
    log_.info("shutting down", {{"delayMs", jv(static_cast<int64_t>(cfg_.shutdown_delay.count()))}});
    server_.begin_drain();
    direct_.begin_drain();
    if (cfg_.shutdown_delay.count() > 0) std::this_thread::sleep_for(cfg_.shutdown_delay);
    server_.stop();
    if (cfg_.direct_enabled()) direct_.stop();
  }

  int port() const { return port_; }
  int direct_port() const { return direct_port_; }
  // The URL the direct frontend is published at ("" when unknown or off).
  std::string direct_endpoint() const {
    if (!cfg_.direct_enabled()) return "";
    if (!cfg_.direct_endpoint.empty()) return cfg_.direct_endpoint;
    std::lock_guard<std::mutex> lk(direct_mu_);
    if (!service_endpoint_.empty()) return service_endpoint_;
    if (cfg_.in_cluster) return "";  // a pod's own address is no use to people outside
    std::string host = cfg_.direct_listen_host;
    if (host.empty() || host == "0.0.0.0" || host == "::") {
      host.clear();
      for (const auto &a : detail::host_addresses())
        if (a.find(':') == std::string::npos && a.rfind("127.", 0) != 0) {
          host = a;
          break;
        }
    }
    if (host.empty()) return "";
    return "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(direct_port_);
  }
  // The CA (PEM) that verifies the direct frontend's certificate.
  std::string direct_ca_pem() const {
    std::lock_guard<std::mutex> lk(direct_mu_);
    return direct_ca_bundle_;
  }
  AnonymousAccess anonymous_access() const {
    std::lock_guard<std::mutex> lk(probe_mu_);
    return anonymous_;
  }
  // Ready: a signer that can still sign, a serving certificate, and (with a
  // cluster) the first list of WebhookAuthenticators done.
  bool ready() const { return not_ready_reason().empty(); }
  // Which strategy an exchange uses now.
  bool using_csr() const {
    return csr_ && csr_->started() && (cfg_.strategy == ConciergeConfig::Strategy::csr || !ca_.signer());
  }
  // The identity of the request being handled (front proxy or anonymous).
  UserInfo current_identity(const httplib::Request &req) const {
    std::lock_guard<std::mutex> lk(tls_mu_);
    return identify(req, TlsServer::peer(), request_header_);
  }
  CertificateAuthority &ca() { return ca_; }
  AuthenticatorRegistry &authenticators() { return authenticators_; }
  const Metrics &metrics() const { return metrics_; }
  TlsServer &server() { return server_.tls(); }
  std::string serving_ca_pem() const {
    std::lock_guard<std::mutex> lk(tls_mu_);
    return serving_ca_pem_;
  }

  // The exchange, without HTTP: validates, authenticates, issues. Bad input
  // throws Error (turned into a Status); an authentication that does not
  // succeed returns the object with status.message "authentication failed".
  // On the direct frontend, failures count against the client's address,
  // and an address over its budget is refused before the IDP is asked.
  // Where an exchange came from, for its audit line and the failure limit.
  struct ExchangeContext {
    Frontend frontend = Frontend::aggregated;
    std::string client;      // the client's address
    std::string user_agent;  // as the client sent it
  };
  TokenCredentialRequest exchange(const TokenCredentialRequest &in) { return exchange(in, ExchangeContext()); }
  TokenCredentialRequest exchange(const TokenCredentialRequest &in, const ExchangeContext &ctx) {
    Frontend frontend = ctx.frontend;
    const std::string &client_address = ctx.client;
    if (!in.metadata.namespace_.empty())
      throw bad_request("TokenCredentialRequest is cluster-scoped; metadata.namespace must be empty");
    if (in.token.empty())
      throw Error(422, "Invalid",
                  "TokenCredentialRequest.login.concierge." + cfg_.api_group_suffix +
                      " \"\" is invalid: spec.token.value: Required value: token must be supplied",
                  {{"FieldValueRequired", "spec.token.value", "Required value: token must be supplied"}});
    TokenCredentialRequest out;
    out.api_version = login_group_ + "/v1alpha1";
    auto started = Steady::now();
    bool direct = frontend == Frontend::direct;
    // The audit line (one per exchange, success or not): who asked, from
    // where, with which token (a SHA-256 prefix, never the token), and the
    // certificate it got.
    std::string token_id = detail::hex(detail::sha256(in.token)).substr(0, 12);
    auto audit = [&](Logger::Fields f) {
      f.push_back({"authenticator", jv(in.authenticator.kind + "/" + in.authenticator.name)});
      f.push_back({"frontend", jv(direct ? "direct" : "aggregated")});
      f.push_back({"tokenID", jv(token_id)});
      f.push_back({"client", jv(client_address)});
      f.push_back({"userAgent", jv(ctx.user_agent.substr(0, 256))});
      f.push_back({"us", jv(us_since(started))});
      log_.info("exchange", f);
    };
    auto fail = [&](const std::string &why, const std::string &cls) {
      metrics_.exchange("failed", cls);
      // What a guesser controls counts against its address; an IDP outage
      // or a signer problem does not.
      if (direct && (cls == "rejected" || cls == "invalid_user" || cls == "unknown_authenticator"))
        limiter_.failed(client_address);
      audit({{"outcome", jv("failed")}, {"reasonClass", jv(cls)}, {"reason", jv(why)}});
      out.message = "authentication failed";
      return out;
    };
    if (direct && !limiter_.allow(client_address)) {
      metrics_.direct_rate_limited();
      return fail("too many failed exchanges from this address (limit " + std::to_string(cfg_.direct_failure_limit) +
                      " a minute); the IDP was not asked",
                  "rate_limited");
    }
    if (in.authenticator.api_group != auth_group_)
      return fail("authenticator apiGroup \"" + in.authenticator.api_group + "\" is not " + auth_group_,
                  "unknown_authenticator");
    auto a = authenticators_.find(in.authenticator.kind, in.authenticator.name);
    if (!a) return fail("no such authenticator", "unknown_authenticator");
    auto webhook_started = Steady::now();
    AuthResult r = a->authenticate(in.token, client_address);
    if (std::strcmp(a->kind(), WebhookAuthenticator::kKind) == 0)
      metrics_.webhook_latency(std::chrono::duration<double>(Steady::now() - webhook_started).count());
    metrics_.authentication(a->kind(), r.authenticated ? "success" : r.reason_class);
    if (!r.authenticated) return fail(r.reason, r.reason_class);
    size_t empty_groups = std::count(r.user.groups.begin(), r.user.groups.end(), std::string());
    if (empty_groups > 0)
      // X.520 forbids an empty O; upstream's Go encoder writes one anyway.
      log_.info("empty group names dropped from the certificate",
                {{"user", jv(r.user.username)}, {"dropped", jv(empty_groups)}});
    IssuedCertificate cert;
    bool csr = using_csr();
    try {
      if (csr)
        cert = csr_->issue(r.user.username, r.user.groups, cfg_.credential_ttl, ca_.key_pool().take(),
                           in.authenticator.kind + "/" + in.authenticator.name, direct_client_ca());
      else
        cert = ca_.issue(r.user.username, r.user.groups, cfg_.credential_ttl);
    } catch (const Error &e) {
      if (csr) ci_dirty_ = true;
      return fail(std::string("cannot issue certificate: ") + e.what(), csr ? "csr_error" : "signer_error");
    }
    if (csr && csr_->take_changed()) ci_dirty_ = true;
    metrics_.exchange("success", "");
    metrics_.certificate_issued();
    picojson::array groups;
    for (const auto &g : r.user.groups)
      if (!g.empty()) groups.push_back(jv(g));
    audit({{"outcome", jv("success")},
           {"user", jv(r.user.username)},
           {"groups", picojson::value(groups)},
           {"strategy", jv(csr ? "csr" : "signer-files")},
           {"serial", jv(cert.serial_hex)},
           {"notAfter", jv(format_rfc3339(cert.not_after))}});
    ClusterCredential c;
    c.expiration_timestamp = format_rfc3339(cert.not_after);
    c.client_certificate_data = std::move(cert.cert_pem);
    c.client_key_data = std::move(cert.key_pem);
    out.credential = std::move(c);
    return out;
  }

 private:
  static int64_t us_since(Steady::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(Steady::now() - t).count();
  }

  // --- HTTP surface -------------------------------------------------------

  static void send_json(httplib::Response &res, int code, const picojson::value &v) {
    res.status = code;
    res.set_content(to_json_string(v), "application/json");
  }

  void install_routes(HttpsService &srv, Frontend f) {
    srv.handle([this, f](const httplib::Request &req, httplib::Response &res) { dispatch(req, res, f); });
    srv.serve_health([this] { return not_ready_reason(); });
    srv.on_answer([this](const httplib::Request &req, const httplib::Response &res) {
      metrics_.request(resource_of(req.path), res.status);
      if (log_.enabled(Logger::Level::debug))
        log_.debug("request", {{"method", jv(req.method)},
                               {"path", jv(req.path)},
                               {"code", jv(res.status)},
                               {"remote", jv(req.remote_addr)},
                               {"peer", jv(TlsServer::peer().verified ? TlsServer::peer().common_name : "")}});
    });
  }

  static std::string resource_of(const std::string &path) {
    if (path.find("/tokencredentialrequests") != std::string::npos) return "tokencredentialrequests";
    if (path.find("/whoamirequests") != std::string::npos) return "whoamirequests";
    if (path.rfind("/apis", 0) == 0) return "discovery";
    if (path.rfind("/openapi", 0) == 0) return "openapi";
    if (path == "/healthz" || path == "/livez" || path == "/readyz") return "health";
    if (path == "/metrics") return "metrics";
    return "other";
  }

  static Error not_found() { return Error(404, "NotFound", "the server could not find the requested resource"); }

  void dispatch(const httplib::Request &req, httplib::Response &res, Frontend frontend) {
    std::string path = req.path;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    const std::string &m = req.method;
    bool get = m == "GET" || m == "HEAD";
    auto only_get = [&] {
      if (!get) throw Error(405, "MethodNotAllowed", "method " + m + " is not allowed on " + path);
    };
    // Everything below answers JSON only: a client that accepts no JSON (a
    // protobuf OpenAPI document, aggregated discovery without a fallback)
    // gets 406, as k8s.io/apiserver answers, not JSON under another name.
    if (get && path != "/metrics" && !detail::accepts_json(req.get_header_value("Accept")))
      throw Error(406, "NotAcceptable",
                  "only the following media types are accepted: application/json (no protobuf, no aggregated "
                  "discovery)");
    if (path == "/version") {
      only_get();
      picojson::object o;
      o["gitVersion"] = jv("v" PINNIPED_VERSION);
      o["platform"] = jv("linux");
      return send_json(res, 200, picojson::value(o));
    }
    if (path == "/metrics") {
      // Not on the direct frontend, which faces people outside the cluster.
      if (frontend == Frontend::direct) throw not_found();
      only_get();
      auto s = ca_.signer();
      double expiry = s ? std::chrono::duration<double>(s->not_after().time_since_epoch()).count() : 0;
      res.status = 200;
      res.set_content(
          metrics_.render(expiry, watch_reconnects(), csr_ ? csr_->api_requests() : 0, server_.tls(), ca_.key_pool()),
          "text/plain; version=0.0.4");
      return;
    }
    if (path == "/openapi/v2") {
      only_get();
      return send_json(res, 200, openapi_v2_document(served_));
    }
    if (path == "/openapi/v3") {
      only_get();
      return send_json(res, 200, openapi_v3_index_document(served_));
    }
    if (path.rfind("/openapi/v3/apis/", 0) == 0) {
      only_get();
      for (const auto &api : served_)
        if (path == "/openapi/v3/apis/" + api.group + "/v1alpha1") return send_json(res, 200, openapi_v3_document(api));
      throw not_found();
    }
    auto parts = detail::split(path, '/');  // "", "apis", group, version, ...
    if (parts.size() < 2 || parts[1] != "apis" || !parts[0].empty()) throw not_found();
    if (!get && parts.size() <= 4) throw Error(405, "MethodNotAllowed", "method " + m + " is not allowed on " + path);
    if (parts.size() == 2) return send_json(res, 200, api_group_list_document(served_));
    const ServedType *api = nullptr;
    for (const auto &s : served_)
      if (s.group == parts[2]) api = &s;
    if (!api) throw not_found();
    if (parts.size() == 3) return send_json(res, 200, api_group_document(*api));
    if (parts[3] != "v1alpha1") throw not_found();
    if (parts.size() == 4) return send_json(res, 200, api_resource_list_document(*api));
    if (parts.size() == 7 && parts[4] == "namespaces" && parts[6] == api->resource) {
      if (m != "POST") throw Error(405, "MethodNotAllowed", api->resource + " only supports create");
      throw bad_request(api->kind + " is cluster-scoped; do not use a namespace");
    }
    if (parts[4] != api->resource) throw not_found();
    if (parts.size() > 5 || m != "POST")
      throw Error(405, "MethodNotAllowed", api->resource + " only supports create (POST to the collection)");
    create(*api, req, res, frontend);
  }

  // POST of a create-only resource: media types, dryRun, kind and
  // apiVersion checked the way kube-apiserver checks them.
  void create(const ServedType &api, const httplib::Request &req, httplib::Response &res, Frontend frontend) {
    // No Content-Type reads as JSON, as kube-apiserver does (kubectl create
    // --raw sends none); any other type than JSON is refused.
    if (req.has_header("Content-Type") && !detail::is_json_media_type(req.get_header_value("Content-Type")))
      throw Error(415, "UnsupportedMediaType",
                  "the body of the request was in an unknown format - accepted media types include: application/json");
    if (!detail::accepts_json(req.get_header_value("Accept")))
      throw Error(406, "NotAcceptable", "only the following media types are accepted: application/json");
    if (req.has_param("dryRun")) throw Error(422, "Invalid", "dryRun is not supported for " + api.resource);
    picojson::value body = json::parse(req.body);
    if (!body.is<picojson::object>()) throw bad_request("request body must be a JSON object");
    std::string want = api.group + "/v1alpha1";
    std::string av = json::get_string(body, "apiVersion", "apiVersion");
    if (!av.empty() && av != want)
      throw bad_request("the API version in the data (" + av + ") does not match the expected API version (" + want +
                        ")");
    std::string kind = json::get_string(body, "kind", "kind");
    if (!kind.empty() && kind != api.kind)
      throw bad_request("the kind in the data (" + kind + ") does not match the expected kind (" + api.kind + ")");
    if (api.kind == "WhoAmIRequest") {
      WhoAmIRequest in = WhoAmIRequest::from_json(body);
      if (!in.metadata.namespace_.empty())
        throw bad_request("WhoAmIRequest is cluster-scoped; metadata.namespace must be empty");
      WhoAmIRequest out;
      out.api_version = want;
      out.user = frontend == Frontend::direct ? identify_by_certificate(TlsServer::peer()) : current_identity(req);
      return send_json(res, 201, out.to_json());
    }
    // Over the limit, wait a moment for a slot (a fast IDP frees one within
    // milliseconds), then answer rather than hold one more worker behind a
    // slow IDP.
    struct InFlight {
      Concierge &c;
      bool held = false;
      ~InFlight() {
        if (!held) return;
        {
          std::lock_guard<std::mutex> lk(c.exchanges_mu_);
          c.exchanges_in_flight_--;
        }
        c.exchanges_cv_.notify_one();
      }
    } in_flight{*this};
    {
      std::unique_lock<std::mutex> lk(exchanges_mu_);
      in_flight.held = exchanges_cv_.wait_for(lk, Millis(PINNIPED_EXCHANGE_SLOT_WAIT_MS),
                                              [&] { return exchanges_in_flight_ < cfg_.exchange_limit(); });
      if (in_flight.held) exchanges_in_flight_++;
    }
    if (!in_flight.held) {
      metrics_.exchange("refused", "too_many_in_flight");
      res.set_header("Retry-After", "1");
      throw Error(429, "TooManyRequests",
                  "too many exchanges in progress (" + std::to_string(cfg_.exchange_limit()) +
                      " at once); try again in a moment");
    }
    ExchangeContext ctx{frontend, req.remote_addr, req.get_header_value("User-Agent")};
    // Through kube-apiserver, the client's own address is in the
    // X-Forwarded-For the front proxy adds (trusted from it alone).
    bool proxied;
    {
      std::lock_guard<std::mutex> lk(tls_mu_);
      proxied = is_front_proxy(TlsServer::peer(), request_header_);
    }
    if (frontend == Frontend::aggregated && proxied && req.has_header("X-Forwarded-For"))
      ctx.client = detail::trim(detail::split(req.get_header_value("X-Forwarded-For"), ',')[0]);
    TokenCredentialRequest out = exchange(TokenCredentialRequest::from_json(body), ctx);
    res.set_header("Cache-Control", "no-store");
    send_json(res, 201, out.to_json(false));
  }

  // --- TLS material, files and reloading ----------------------------------

  // Serving certificate plus the client CA (front proxy) make the server's
  // TLS configuration; either may change on its own.
  // Appliers take turns (apply_mu_, CPU work only), each with what is
  // current once it is its turn; tls_mu_ is held only to copy it.
  void apply_tls() {
    std::lock_guard<std::mutex> turn(apply_mu_);
    std::string cert, key, client_ca;
    {
      std::lock_guard<std::mutex> lk(tls_mu_);
      cert = serving_cert_pem_;
      key = serving_key_pem_;
      client_ca = request_header_.client_ca_pem;
    }
    if (cert.empty()) return;
    server_.set_credentials({cert, key, client_ca});
  }
  void set_serving(const std::string &cert, const std::string &key) {
    {
      std::lock_guard<std::mutex> lk(tls_mu_);
      serving_cert_pem_ = cert;
      serving_key_pem_ = key;
    }
    apply_tls();
    // Without a CA of our own (--tls-cert files), the direct frontend
    // serves the same certificate.
    if (cfg_.direct_enabled() && !cfg_.tls_cert_file.empty()) {
      std::string chain_ca;
      try {
        auto chain = CertificateChain::parse(cert);
        const mbedtls_x509_crt *last = chain->get();
        while (last->next && last->next->raw.len) last = last->next;
        chain_ca =
            detail::pem_encode("CERTIFICATE", std::string(reinterpret_cast<const char *>(last->raw.p), last->raw.len));
      } catch (const Error &) {
      }
      {
        std::lock_guard<std::mutex> lk(direct_mu_);
        direct_cert_pem_ = cert;
        direct_key_pem_ = key;
        direct_ca_bundle_ = chain_ca;
      }
      apply_direct_tls();
    }
  }
  void set_request_header(const RequestHeaderConfig &c) {
    {
      std::lock_guard<std::mutex> lk(tls_mu_);
      request_header_ = c;
    }
    apply_tls();
    apply_direct_tls();
  }

  // --- the direct frontend's TLS --------------------------------------------

  // The CA that signs the direct frontend's certificate, and the bundle
  // clients should trust (the CA, then a previous one still in use).
  void set_direct_ca(const CertificateAndKey &ca, const std::string &bundle) {
    if (!cfg_.direct_enabled()) return;
    {
      std::lock_guard<std::mutex> lk(direct_mu_);
      if (direct_ca_.cert_pem == ca.cert_pem && direct_ca_bundle_ == bundle) return;
      direct_ca_ = ca;
      direct_ca_bundle_ = bundle;
      direct_names_.clear();  // forces a new leaf
    }
    refresh_direct_cert(false);
    ci_dirty_ = true;
  }

  // Every name and address the direct frontend may be reached by.
  std::vector<std::string> direct_names() const {
    std::vector<std::string> names = cfg_.direct_sans;
    {
      std::lock_guard<std::mutex> lk(direct_mu_);
      names.insert(names.end(), service_names_.begin(), service_names_.end());
    }
    std::string svc = cfg_.direct_service(), ns = cfg_.namespace_;
    for (const auto &n : {svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local", svc + "." + ns, svc,
                          std::string("localhost")})
      names.push_back(n);
    const std::string &listen = cfg_.direct_listen_host;
    if (!listen.empty() && listen != "0.0.0.0" && listen != "::") names.push_back(listen);
    for (const auto &a : detail::host_addresses()) names.push_back(a);
    if (!cfg_.direct_endpoint.empty()) {
      try {
        names.push_back(Url::parse(cfg_.direct_endpoint).host);
      } catch (const Error &) {
      }
    }
    for (auto &n : names) n = detail::lower(n);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    names.erase(std::remove(names.begin(), names.end(), std::string()), names.end());
    return names;
  }

  // Issues the direct frontend's leaf from the serving CA when its names
  // changed, when it is due for renewal, or at start.
  void refresh_direct_cert(bool initial) {
    if (!cfg_.direct_enabled() || !cfg_.tls_cert_file.empty()) return;
    auto names = direct_names();
    CertificateAndKey ca;
    {
      std::lock_guard<std::mutex> lk(direct_mu_);
      if (direct_ca_.cert_pem.empty()) return;  // no CA yet: the serving-certificate controller brings it
      if (!initial && names == direct_names_ && Clock::now() < direct_renew_at_) return;
      ca = direct_ca_;
    }
    CertificateTemplate t;
    t.common_name = cfg_.direct_service() + "." + cfg_.namespace_ + ".svc";
    t.server_auth = true;
    t.key_usage = MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
    for (const auto &n : names) (detail::is_ip_literal(n) ? t.ip_addresses : t.dns_names).push_back(n);
    auto now = std::chrono::time_point_cast<std::chrono::seconds>(Clock::now());
    t.not_before = now - kBackdate;
    t.not_after = now + cfg_.serving_cert_validity;
    CertificateAndKey leaf;
    try {
      leaf = issue_with_ca(ca, t);
    } catch (const Error &e) {
      log_.error("cannot issue the direct frontend's certificate", {{"error", jv(e.what())}});
      return;
    }
    {
      std::lock_guard<std::mutex> lk(direct_mu_);
      direct_cert_pem_ = leaf.cert_pem;
      direct_key_pem_ = leaf.key_pem;
      direct_names_ = names;
      direct_renew_at_ = Clock::now() + cfg_.serving_cert_renew_after;
    }
    std::string list;
    for (const auto &n : names) list += (list.empty() ? "" : ",") + n;
    log_.info("direct frontend certificate issued", {{"names", jv(list)}});
    apply_direct_tls();
  }

  // The CAs a direct client's certificate must chain to: those kube-apiserver
  // trusts for client certificates (client-ca-file), else the cluster signer.
  std::string direct_client_ca() const {
    {
      std::lock_guard<std::mutex> lk(tls_mu_);
      if (!request_header_.user_client_ca_pem.empty()) return request_header_.user_client_ca_pem;
    }
    auto s = ca_.signer();
    return s ? s->bundle_pem() : "";
  }
  void apply_direct_tls() {
    if (!cfg_.direct_enabled()) return;
    std::lock_guard<std::mutex> turn(direct_apply_mu_);  // as apply_tls
    std::string client_ca = direct_client_ca(), cert, key;
    {
      std::lock_guard<std::mutex> lk(direct_mu_);
      cert = direct_cert_pem_;
      key = direct_key_pem_;
    }
    if (cert.empty() || (cert == direct_applied_cert_ && client_ca == direct_applied_ca_)) return;
    direct_applied_cert_ = cert;  // a refused one is reported once, not on every reload
    direct_applied_ca_ = client_ca;
    direct_.set_credentials({cert, key, client_ca}, "direct frontend TLS configuration");
  }

  // The direct Service as kube-apiserver stores it: LoadBalancer ingress
  // (ServiceLB puts the nodes' addresses there) and the cluster IP.
  void on_direct_service(const std::string &type, const picojson::value &svc) {
    std::vector<std::string> names;
    std::string endpoint;
    if (type != "DELETED") {
      try {
        const auto *spec = json::field(svc, "spec");
        int port = 0;
        if (const auto *ports = spec ? json::field(*spec, "ports") : nullptr; ports && ports->is<picojson::array>()) {
          for (const auto &p : ports->get<picojson::array>()) {
            int64_t n = json::get_int(p, "port", "spec.ports.port");
            if (port == 0 || json::get_string(p, "name", "spec.ports.name") == "https") port = static_cast<int>(n);
          }
        }
        std::string cluster_ip = spec ? json::get_string(*spec, "clusterIP", "spec.clusterIP") : "";
        if (!cluster_ip.empty() && cluster_ip != "None") names.push_back(cluster_ip);
        const auto *st = json::field(svc, "status");
        const auto *lb = st ? json::field(*st, "loadBalancer") : nullptr;
        const auto *ing = lb ? json::field(*lb, "ingress") : nullptr;
        if (ing && ing->is<picojson::array>()) {
          for (const auto &i : ing->get<picojson::array>()) {
            std::string h = json::get_string(i, "ip", "ingress.ip");
            if (h.empty()) h = json::get_string(i, "hostname", "ingress.hostname");
            if (h.empty()) continue;
            names.push_back(h);
            if (endpoint.empty() && port > 0)
              endpoint =
                  "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + std::to_string(port);
          }
        }
      } catch (const Error &e) {
        log_.warn("direct Service unreadable", {{"error", jv(e.what())}});
        return;
      }
    }
    bool changed;
    {
      std::lock_guard<std::mutex> lk(direct_mu_);
      changed = names != service_names_ || endpoint != service_endpoint_;
      service_names_ = names;
      service_endpoint_ = endpoint;
    }
    if (!changed) return;
    log_.info("direct Service seen", {{"service", jv(cfg_.namespace_ + "/" + cfg_.direct_service())},
                                      {"endpoint", jv(endpoint)},
                                      {"event", jv(type)}});
    refresh_direct_cert(false);
    ci_dirty_ = true;
  }

  void load_serving_cert(bool initial) {
    if (cfg_.tls_cert_file.empty() != cfg_.tls_key_file.empty())
      throw bad_request("give both --tls-cert and --tls-key, or neither");
    if (cfg_.tls_cert_file.empty()) {
      if (!initial) return;
      auto g = generate_serving_certificate("pinniped-concierge", cfg_.tls_sans,
                                            std::chrono::hours(24 * PINNIPED_GENERATED_CERT_DAYS));
      set_serving(g.leaf.cert_pem, g.leaf.key_pem);
      write_serving_ca(g.ca.cert_pem);
      set_direct_ca(g.ca, g.ca.cert_pem);
      log_.info("serving certificate generated", {{"names", jv(static_cast<int64_t>(cfg_.tls_sans.size()))}});
      return;
    }
    if (auto pair = serving_files_.poll(initial, log_)) {
      set_serving(pair->cert_pem, pair->key_pem);
      log_.info("serving certificate loaded", {{"file", jv(cfg_.tls_cert_file)}});
    }
  }
  void write_serving_ca(const std::string &pem) {
    {
      std::lock_guard<std::mutex> lk(tls_mu_);
      serving_ca_pem_ = pem;
    }
    // A CA certificate is public: readable by all.
    if (!cfg_.serving_ca_out.empty()) write_file_atomic(cfg_.serving_ca_out, pem, 0644);
  }

  // --client-ca: front-proxy CA from a file, with kube-apiserver's default
  // header names and any CN allowed.
  void reload_client_ca(bool initial) {
    try {
      std::string why;
      auto texts = client_ca_file_.take(initial, &why);
      if (!texts) {
        if (!why.empty()) log_.debug("client CA not read yet", {{"why", jv(why)}});
        return;
      }
      RequestHeaderConfig c;
      c.client_ca_pem = (*texts)[0];
      c.allowed_names = cfg_.requestheader_allowed_names;
      CertificateChain::parse(c.client_ca_pem);
      set_request_header(c);
    } catch (const Error &e) {
      if (initial) throw bad_request(std::string("--client-ca: ") + e.what());
      log_.warn("client CA not reloaded; keeping the previous one", {{"error", jv(e.what())}});
    }
  }

  void reload_signer(bool initial) {
    std::string cert = cfg_.signer_cert_file, key = cfg_.signer_key_file, where = "flags";
    if (cert.empty() != key.empty()) throw bad_request("give both --signer-cert and --signer-key, or neither");
    if (cert.empty()) {
      auto loc = find_signer(cfg_.signer_root);
      if (!loc) {
        if (initial || !signer_missing_)
          log_.warn("no cluster signer found; not ready",
                    {{"searched", jv(cfg_.signer_root)}, {"hint", jv("give --signer-cert and --signer-key")}});
        signer_missing_ = true;
        signer_files_.watch({});  // found again later: read then
        set_signer_problem("no cluster signer found under " + cfg_.signer_root +
                           " (looked for k3s, RKE2, kubeadm, k0s and MicroK8s)");
        return;
      }
      cert = loc->cert_path;
      key = loc->key_path;
      where = loc->distribution;
    }
    signer_files_.watch({cert, key});
    signer_missing_ = false;
    try {
      std::string why;
      auto pems = signer_files_.take(initial, &why);
      if (!pems) {
        if (!why.empty()) log_.debug("cluster signer not read yet", {{"why", jv(why)}});
        return;
      }
      auto s = Signer::from_pem((*pems)[0], (*pems)[1]);
      bool rotated = ca_.signer() != nullptr;
      ca_.set_signer(s);
      set_signer_problem("");
      apply_direct_tls();
      log_.info(rotated ? "cluster signer rotated" : "cluster signer loaded",
                {{"source", jv(where)},
                 {"file", jv(cert)},
                 {"subject", jv(s->subject())},
                 {"key", jv(s->key_type())},
                 {"notAfter", jv(format_rfc3339(s->not_after()))}});
    } catch (const Error &e) {
      // Mid-rotation the two files may briefly not match: keep the old
      // signer; the second file's write is a change, read again.
      log_.warn(ca_.signer() ? "cluster signer not reloaded; keeping the previous one" : "cannot load cluster signer",
                {{"file", jv(cert)}, {"error", jv(e.what())}});
      if (!ca_.signer()) set_signer_problem(std::string("cannot load the cluster signer: ") + e.what());
    }
  }
  void set_signer_problem(const std::string &p) {
    std::lock_guard<std::mutex> lk(tls_mu_);
    signer_problem_ = p;
  }
  // A strategy that can issue now: a live signer, or the CSR API's watch.
  bool can_issue() const {
    if (using_csr()) return csr_->synced();
    auto s = ca_.signer();
    return s && s->not_after() > Clock::now();
  }
  // Why /readyz fails; "" when ready: a strategy that can issue, a serving
  // certificate, and (with a cluster) the first list of WebhookAuthenticators.
  std::string not_ready_reason() const {
    if (using_csr()) {
      if (!csr_->synced()) return "the watch on CertificateSigningRequests has not listed yet";
    } else {
      auto s = ca_.signer();
      if (!s) {
        std::lock_guard<std::mutex> lk(tls_mu_);
        return signer_problem_.empty() ? "no cluster signer loaded" : signer_problem_;
      }
      if (s->not_after() <= Clock::now()) return "the cluster signer expired at " + format_rfc3339(s->not_after());
    }
    if (!server_.tls().has_credentials()) return "no serving certificate yet";
    if (wa_ctl_ && !wa_ctl_->synced()) return "WebhookAuthenticators not listed yet";
    if (jwt_ctl_ && !jwt_ctl_->listed()) return "JWTAuthenticators not listed yet";
    return "";
  }

  void reload_authenticators(bool initial) {
    try {
      std::string why;
      auto texts = authenticators_file_.take(initial, &why);
      if (!texts) {
        if (!why.empty()) log_.debug("authenticators file not read yet", {{"why", jv(why)}});
        return;
      }
      std::vector<picojson::value> jwt_objects;
      auto objs = parse_authenticators((*texts)[0], cfg_.api_group_suffix, &jwt_objects);
      std::vector<AuthenticatorRegistry::Ptr> list, jwts;
      for (auto &o : objs) {
        try {
          list.push_back(std::make_shared<WebhookAuthenticator>(o.metadata.name, o.spec, cfg_.webhook));
        } catch (const Error &e) {
          throw bad_request(o.metadata.name + ": " + e.what());
        }
      }
      for (const auto &o : jwt_objects) jwts.push_back(file_jwt_authenticator(o));
      authenticators_.replace_all(AuthenticatorRegistry::webhook_kind, std::move(list), "file");
      authenticators_.replace_all(JwtAuthenticator::kKind, std::move(jwts), "file");
      log_.info("authenticators loaded", {{"file", jv(cfg_.authenticators_file)},
                                          {"count", jv(objs.size() + jwt_objects.size())},
                                          {"jwtAuthenticators", jv(jwt_objects.size())}});
    } catch (const Error &e) {
      log_.error(initial ? "cannot load authenticators" : "authenticators not reloaded; keeping the previous ones",
                 {{"file", jv(cfg_.authenticators_file)}, {"error", jv(e.what())}});
    }
  }

  // A JWTAuthenticator of the --authenticators file. Its keys are fetched
  // now, within the probe timeout; if that fails the first token fetches
  // them (at most once every PINNIPED_JWT_REFETCH_SECONDS).
  std::shared_ptr<JwtAuthenticator> file_jwt_authenticator(const picojson::value &o) {
    auto j = JwtAuthenticatorObject::from_json(o);
    if (j.name.empty()) throw bad_request("authenticators: metadata.name is required");
    std::string problem = j.problem();
    if (problem.empty() && !j.ca_source.is<picojson::null>())
      problem = "spec.tls.certificateAuthorityDataSource needs the cluster; give certificateAuthorityData here";
    if (!problem.empty()) throw bad_request(j.name + ": " + problem);
    auto a = std::make_shared<JwtAuthenticator>(j.name, j.spec, log_);
    try {
      a->fetch_keys(std::chrono::seconds(PINNIPED_PROBE_TIMEOUT_SECONDS));
    } catch (const Error &e) {
      log_.warn("JWTAuthenticator keys not fetched yet; the first token tries again",
                {{"name", jv(j.name)}, {"error", jv(e.what())}});
    }
    return a;
  }

  // --- the cluster ----------------------------------------------------------

  void start_kube() {
    KubeConfig kc = cfg_.kubeconfig.empty() ? KubeConfig::in_cluster()
                                            : KubeConfig::from_kubeconfig_file(cfg_.kubeconfig, cfg_.kube_context);
    log_.info("using the Kubernetes API", {{"server", jv(kc.server)}, {"config", jv(kc.source)}});
    kube_ = std::make_unique<KubeClient>(kc);
    const std::string &app = cfg_.app_name;
    if (cfg_.leader_elect) {
      LeaseSettings ls = cfg_.lease;
      ls.namespace_ = cfg_.namespace_;
      if (ls.name.empty()) ls.name = app + "-leader";
      if (ls.identity.empty()) {
        char host[256] = {0};
        gethostname(host, sizeof host - 1);
        ls.identity = std::string(host) + "_" + std::to_string(::getpid()) + "_" + detail::hex(detail::random_bytes(4));
      }
      controllers_
          .add(leader_, std::make_unique<LeaderElector>(*kube_, log_, ls,
                                                        [this](bool l) {
                                                          if (l) leadership_gained_ = true;
                                                        }))
          .start();
    }
    if (cfg_.tls_cert_file.empty()) {
      ServingCertSettings s;
      s.may_write = [this] { return writer(); };
      s.namespace_ = cfg_.namespace_;
      s.service_name = app + "-api";
      s.secret_name = app + "-api-tls-serving-certificate";
      s.api_services = {"v1alpha1." + login_group_, "v1alpha1." + identity_group_};
      s.validity = cfg_.serving_cert_validity;
      s.renew_after = cfg_.serving_cert_renew_after;
      auto &sc = controllers_.add(serving_ctl_, std::make_unique<ServingCertController>(
                                                    *kube_, log_, s,
                                                    [this](const CertificateAndKey &leaf, const std::string &bundle,
                                                           const CertificateAndKey &ca) {
                                                      set_serving(leaf.cert_pem, leaf.key_pem);
                                                      write_serving_ca(bundle);
                                                      set_direct_ca(ca, bundle);
                                                    }));
      sc.sync();
      sc.start();
    }
    if (cfg_.direct_enabled()) {
      controllers_
          .add(direct_svc_,
               std::make_unique<Informer>(
                   *kube_,
                   "/api/v1/namespaces/" + cfg_.namespace_ + "/services?fieldSelector=metadata.name%3D" +
                       cfg_.direct_service(),
                   log_, [this](const std::string &t, const picojson::value &o) { on_direct_service(t, o); }))
          .start();
    }
    if (cfg_.client_ca_file.empty()) {
      controllers_
          .add(fp_ctl_, std::make_unique<FrontProxyController>(
                            *kube_, log_, [this](const RequestHeaderConfig &c) { set_request_header(c); }))
          .start();
    }
    auto &wa = controllers_.add(wa_ctl_, std::make_unique<WebhookAuthenticatorController>(
                                             *kube_, authenticators_, log_, cfg_.api_group_suffix, cfg_.webhook));
    wa.set_may_write([this] { return writer(); });
    wa.start();
    auto &ja = controllers_.add(jwt_ctl_, std::make_unique<JwtAuthenticatorController>(
                                              *kube_, authenticators_, log_, cfg_.api_group_suffix, cfg_.namespace_));
    ja.set_may_write([this] { return writer(); });
    ja.start();
    ci_ctl_ = std::make_unique<CredentialIssuerController>(*kube_, log_, cfg_.api_group_suffix, app + "-config");
    if (cfg_.strategy != ConciergeConfig::Strategy::signer_files) {
      CsrSettings cs;
      cs.app = app;
      char host[256] = {0};
      gethostname(host, sizeof host - 1);
      cs.holder = host;
      cs.wait = cfg_.csr_wait;
      controllers_.add(csr_, std::make_unique<CsrIssuer>(*kube_, log_, cs));  // started when needed
    }
  }
  // The CSR strategy starts when asked for, or (automatic) once no signer
  // files are found; a signer found later takes over again.
  void start_csr_if_needed() {
    if (!csr_ || csr_->started()) return;
    if (cfg_.strategy == ConciergeConfig::Strategy::csr || !ca_.signer()) {
      csr_->start();
      ci_dirty_ = true;
    }
  }
  // The lease goes last: released, a successor takes over at once.
  void stop_controllers() { controllers_.stop(); }
  // This replica may write shared state (no election: always).
  bool writer() const { return !leader_ || leader_->is_leader(); }

 public:
  bool is_leader() const { return writer(); }

 private:
  uint64_t watch_reconnects() const { return controllers_.reconnects(); }

  // Asks kube-apiserver whether an anonymous exchange gets through to us:
  // at start, on every tick while the answer is unknown (the APIService
  // may not be Available yet), then every anonymous_probe_interval.
  void probe_anonymous(bool force) {
    if (!kube_) return;
    auto now = Steady::now();
    {
      std::lock_guard<std::mutex> lk(probe_mu_);
      if (!force && anonymous_ != AnonymousAccess::unknown && now - probed_at_ < cfg_.anonymous_probe_interval) return;
    }
    std::string detail;
    AnonymousAccess a = probe_anonymous_exchange(kube_->config(), cfg_.api_group_suffix,
                                                 std::chrono::seconds(PINNIPED_PROBE_TIMEOUT_SECONDS), &detail);
    AnonymousAccess before;
    {
      std::lock_guard<std::mutex> lk(probe_mu_);
      before = anonymous_;
      probed_at_ = now;
      // An unknown answer (a blip) keeps what was known.
      if (a != AnonymousAccess::unknown) anonymous_ = a;
    }
    if (a != before && a != AnonymousAccess::unknown) {
      ci_dirty_ = true;
      log_.info("anonymous exchange probe", {{"result", jv(anonymous_access_name(a))}, {"seen", jv(detail)}});
    } else if (a == AnonymousAccess::unknown) {
      log_.debug("anonymous exchange probe inconclusive", {{"seen", jv(detail)}});
    }
  }

  // Which frontend the CredentialIssuer names, and why, in words.
  IssuerState issuer_state() const {
    IssuerState st;
    if (using_csr()) {
      auto h = csr_->health();
      st.csr = true;
      st.signer_ok = h.ok;
      st.csr_reason = h.reason;
      st.csr_message = h.message;
    } else {
      auto s = ca_.signer();
      st.signer_ok = s && s->not_after() > Clock::now();
      if (!st.signer_ok) st.signer_problem = not_ready_reason();
    }
    AnonymousAccess a = anonymous_access();
    if (a != AnonymousAccess::unauthorized && a != AnonymousAccess::forbidden) {
      if (a == AnonymousAccess::open)
        st.note = "logins go through kube-apiserver, which lets anonymous exchanges reach the concierge";
      return st;
    }
    std::string why =
        a == AnonymousAccess::unauthorized
            ? "kube-apiserver refuses anonymous requests (HTTP 401: it runs with --anonymous-auth=false, as k3s does)"
            : "kube-apiserver forbids anonymous TokenCredentialRequests (HTTP 403: RBAC does not let "
              "system:unauthenticated create tokencredentialrequests)";
    std::string endpoint = direct_endpoint(), ca = direct_ca_pem();
    if (!endpoint.empty() && !ca.empty()) {
      st.direct_server = endpoint;
      st.direct_ca_data = detail::base64_encode(ca);
      st.note = why + ", so logins use the concierge's direct frontend at " + endpoint;
    } else if (cfg_.direct_enabled()) {
      st.note = why +
                ", so logins through it fail; the direct frontend is on but its address is not known yet "
                "(waiting for the " +
                cfg_.namespace_ + "/" + cfg_.direct_service() +
                "Service's load-balancer address, or give --direct-endpoint)";
    } else {
      st.note = why +
                ", so logins through it fail; turn on the concierge's direct frontend (--direct-listen) or see "
                "docs/k3s.md#unauthorized";
    }
    return st;
  }

  // Writes the CredentialIssuer when what it should say changed, and once a
  // minute in any case (cluster-info may have changed).
  void sync_credential_issuer(bool force) {
    if (!writer()) return;
    IssuerState st = issuer_state();
    auto now = Steady::now();
    bool dirty = ci_dirty_.exchange(false);
    if (!force && !dirty && st == ci_last_ &&
        now - ci_last_sync_ < std::chrono::seconds(PINNIPED_ISSUER_RESYNC_SECONDS))
      return;
    if (!ci_ctl_->sync(st)) {
      ci_dirty_ = true;  // retried on the next tick
      return;
    }
    ci_last_ = st;
    ci_last_sync_ = now;
  }

  void reload_tick() {
    // A new leader writes what the last one may have left undone.
    bool gained = leadership_gained_.exchange(false);
    if (gained) {
      if (serving_ctl_) serving_ctl_->sync();
      if (wa_ctl_) wa_ctl_->resync_all();
      if (jwt_ctl_) jwt_ctl_->resync_all();
      ci_dirty_ = true;
    }
    load_serving_cert(false);
    if (!cfg_.client_ca_file.empty()) reload_client_ca(false);
    if (cfg_.strategy != ConciergeConfig::Strategy::csr) reload_signer(false);
    start_csr_if_needed();
    if (csr_ && csr_->started()) {
      if (csr_->take_changed()) ci_dirty_ = true;
      auto now = Steady::now();
      if (now - csr_swept_ >= std::chrono::seconds(PINNIPED_CSR_SWEEP_SECONDS)) {
        csr_swept_ = now;
        csr_->sweep(false);
      }
    }
    if (!cfg_.authenticators_file.empty()) reload_authenticators(false);
    if (serving_ctl_) serving_ctl_->resync_if_due();
    refresh_direct_cert(false);
    if (ci_ctl_) {
      probe_anonymous(false);
      sync_credential_issuer(false);
    }
  }

  ConciergeConfig cfg_;
  Logger &log_;
  std::string login_group_, auth_group_, identity_group_;
  std::vector<ServedType> served_;
  CertificateAuthority ca_;
  AuthenticatorRegistry authenticators_;
  HttpsService server_;
  Metrics metrics_;
  int port_ = 0;
  mutable std::mutex tls_mu_;  // serving material, request-header config, signer problem
  std::mutex apply_mu_;        // apply_tls's turns; outside tls_mu_
  std::string serving_cert_pem_, serving_key_pem_, serving_ca_pem_;
  RequestHeaderConfig request_header_;
  std::string signer_problem_;
  ServingFiles serving_files_{cfg_.tls_cert_file, cfg_.tls_key_file};
  WatchedFiles client_ca_file_{{cfg_.client_ca_file}}, authenticators_file_{{cfg_.authenticators_file}};
  WatchedFiles signer_files_;
  bool signer_missing_ = false;  // no signer files found at the last look
  std::unique_ptr<KubeClient> kube_;
  std::unique_ptr<ServingCertController> serving_ctl_;
  std::unique_ptr<FrontProxyController> fp_ctl_;
  std::unique_ptr<WebhookAuthenticatorController> wa_ctl_;
  std::unique_ptr<JwtAuthenticatorController> jwt_ctl_;
  std::unique_ptr<CredentialIssuerController> ci_ctl_;
  std::unique_ptr<Informer> direct_svc_;
  std::unique_ptr<LeaderElector> leader_;
  std::unique_ptr<CsrIssuer> csr_;
  Controllers controllers_;  // after the loops it stops: destroyed before them
  Steady::time_point csr_swept_ = Steady::now();
  std::atomic<bool> leadership_gained_{false};
  IssuerState ci_last_;
  Steady::time_point ci_last_sync_;
  std::atomic<bool> ci_dirty_{false};
  std::mutex exchanges_mu_;
  std::condition_variable exchanges_cv_;
  size_t exchanges_in_flight_ = 0;
  // The direct frontend (direct_mu_: its CA, leaf, names and the Service's
  // addresses; never held across network I/O or together with tls_mu_).
  HttpsService direct_;
  FailureLimiter limiter_;
  int direct_port_ = 0;
  mutable std::mutex direct_mu_;
  CertificateAndKey direct_ca_;
  std::string direct_ca_bundle_, direct_cert_pem_, direct_key_pem_;
  std::mutex direct_apply_mu_;  // apply_direct_tls's turns, and what it applied last
  std::string direct_applied_cert_, direct_applied_ca_;
  std::vector<std::string> direct_names_, service_names_;
  std::string service_endpoint_;
  Clock::time_point direct_renew_at_;
  mutable std::mutex probe_mu_;  // what the anonymous probe found
  AnonymousAccess anonymous_ = AnonymousAccess::unknown;
  Steady::time_point probed_at_;
  PeriodicTask reloader_;
};

// ---------------------------------------------------------------------------
// 6. The client side
// The command line (each command's flag table: parser, help, completion);
// exchanges a token for a credential through kube-apiserver (or the
// concierge directly); the kubectl exec plugin around it (ExecCredential,
// credential cache, `login static`), the kubeconfig that runs it, whoami.
// Calls 0-3 (and 3b's KubeClient).
// ---------------------------------------------------------------------------

// --- 6a. Command lines: a command's table of flags is its parser, its help
// text and its shell completion. main.cpp holds the tables; this section holds
// `login static`'s, for whoami reads those flags back from kubeconfigs.

// A mistake in how a command was called: exit status 2 at the CLI edge,
// where any other Error is exit status 1.
struct UsageError : Error {
  explicit UsageError(const std::string &message) : Error(400, "BadRequest", message) {}
};

// Where a flag's value goes. parse_flags stores every kind in one switch, so
// a table is plain data; `call` is for a flag with checks of its own.
enum class Into : unsigned char {
  nothing,      // only checked (choices)
  text,         // std::string
  maybe_text,   // std::optional<std::string>
  on,           // bool: a switch
  int_number,   // int, from min to max
  size_number,  // size_t, from min to max
  duration,     // Millis; 0 only when min is 0
  list,         // std::vector<std::string>: the first use drops its defaults
  call,         // call(row, value)
  function,     // a std::function<void(const std::string &)> (Flag::set)
};

// One row of a command's flag table: its spellings, what it takes, its help
// and where its value goes.
struct FlagRow {
  const char *name = nullptr;     // "--output"
  const char *value = "";         // what it takes, as help shows it ("FILE", "DIR"); "": a switch
  const char *help = "";          // what it does, its default and its bounds
  const char *choices = nullptr;  // its only values, "a|b" (the store may refuse one first, in its words)
  void *to = nullptr;
  void (*call)(const FlagRow &, const std::string &) = nullptr;
  bool *seen = nullptr;  // set once the flag is given
  int min = 0, max = 0;
  char short_name = 0;  // 'o': also -o VALUE, -oVALUE, -o=VALUE
  Into into = Into::nothing;
  bool repeatable = false;  // each use adds one
};

// The rows of a static table (or of a vector that outlives it).
template <class T>
struct Rows {
  const T *first = nullptr;
  size_t count = 0;
  constexpr Rows() = default;
  template <size_t N>
  constexpr Rows(const T (&a)[N]) : first(a), count(N) {}
  template <size_t N>
  constexpr Rows(const std::array<T, N> &a) : first(a.data()), count(N) {}
  Rows(const std::vector<T> &v) : first(v.data()), count(v.size()) {}
  const T *begin() const { return first; }
  const T *end() const { return first + count; }
  bool empty() const { return count == 0; }
};

// Rows that store into a field (or call a function), with the checks of
// parse_flags: numbers from `min` to `max`, durations more than 0 unless `zero_ok`.
constexpr FlagRow text_flag(const char *name, const char *value, const char *help, std::string &to,
                            const char *choices = nullptr) {
  return {name, value, help, choices, &to, nullptr, nullptr, 0, 0, 0, Into::text};
}
constexpr FlagRow maybe_text_flag(const char *name, const char *value, const char *help,
                                  std::optional<std::string> &to) {
  return {name, value, help, nullptr, &to, nullptr, nullptr, 0, 0, 0, Into::maybe_text};
}
constexpr FlagRow switch_flag(const char *name, const char *help, bool &to) {
  return {name, "", help, nullptr, &to, nullptr, nullptr, 0, 0, 0, Into::on};
}
template <class T>
constexpr FlagRow number_flag(const char *name, const char *help, T &to, int min, int max) {
  static_assert(std::is_same<T, int>::value || std::is_same<T, size_t>::value, "int or size_t");
  return {name,
          "N",
          help,
          nullptr,
          &to,
          nullptr,
          nullptr,
          min,
          max,
          0,
          std::is_same<T, int>::value ? Into::int_number : Into::size_number};
}
constexpr FlagRow duration_flag(const char *name, const char *help, Millis &to, bool zero_ok = false) {
  return {name, "DURATION", help, nullptr, &to, nullptr, nullptr, zero_ok ? 0 : 1, 0, 0, Into::duration};
}
constexpr FlagRow list_flag(const char *name, const char *value, const char *help, std::vector<std::string> &to) {
  return {name, value, help, nullptr, &to, nullptr, nullptr, 0, 0, 0, Into::list, true};
}
constexpr FlagRow call_flag(const char *name, const char *value, const char *help, void *to,
                            void (*call)(const FlagRow &, const std::string &), const char *choices = nullptr,
                            bool repeatable = false) {
  return {name, value, help, choices, to, call, nullptr, 0, 0, 0, Into::call, repeatable};
}
// `r` with a short name as well.
constexpr FlagRow short_flag(char short_name, FlagRow r) {
  r.short_name = short_name;
  return r;
}
// A call: an API group suffix (a DNS suffix) into a std::string.
// The rows of `parts` (std::arrays and arrays), one table.
template <class T>
constexpr size_t rows_in() {
  if constexpr (std::is_array<T>::value)
    return std::extent<T>::value;
  else
    return std::tuple_size<T>::value;
}
template <class... Parts>
constexpr std::array<FlagRow, (rows_in<Parts>() + ...)> concat(const Parts &...parts) {
  std::array<FlagRow, (rows_in<Parts>() + ...)> out{};
  size_t i = 0;
  auto add = [&](const auto &part) {
    for (const FlagRow &r : part) out[i++] = r;
  };
  (add(parts), ...);
  return out;
}

inline void set_api_group_suffix(const FlagRow &f, const std::string &v) {
  if (v.empty() || v.find('/') != std::string::npos)
    throw UsageError(std::string(f.name) + " must be a DNS suffix like pinniped.dev");
  *static_cast<std::string *>(f.to) = v;
}

// A flag as code rather than a row: `set` gets the value ("true" or "false"
// for a switch). For callers whose setters hold state (tests).
struct Flag {
  std::string name;
  char short_name = 0;
  std::string value;
  std::string help;
  std::function<void(const std::string &)> set;
  std::vector<std::string> choices;
  bool repeatable = false;
  FlagRow row;  // what it was made from, if a row (row.name set)

  Flag(std::string name, char short_name, std::string value, std::string help,
       std::function<void(const std::string &)> set, std::vector<std::string> choices = {}, bool repeatable = false)
      : name(std::move(name)),
        short_name(short_name),
        value(std::move(value)),
        help(std::move(help)),
        set(std::move(set)),
        choices(std::move(choices)),
        repeatable(repeatable) {}
  Flag(const FlagRow &r)
      : name(r.name),
        short_name(r.short_name),
        value(r.value),
        help(r.help),
        choices(r.choices ? detail::split(r.choices, '|') : std::vector<std::string>{}),
        repeatable(r.repeatable),
        row(r) {}
};

// A command: its help, its flags, its subcommands and what runs it. Plain
// data, so that main.cpp's tree is static.
struct Command {
  const char *name = "";         // "kubeconfig"
  const char *summary = "";      // one line, in its parent's list
  const char *usage = "";        // what follows its path in the synopsis: "[flags]", "NAME [flags]"
  const char *description = "";  // paragraphs, wrapped when printed
  Rows<FlagRow> flags;
  const char *example = "";  // command lines, printed as they are
  Rows<Command> commands;
  const char *args = "";                    // the words its arguments take, for completion: "bash zsh fish"
  size_t max_args = 0;                      // how many arguments it takes besides flags
  const char *subcommand_noun = "command";  // in "missing resource"
  // Runs it with its arguments; nullptr: only its subcommands run.
  int (*run)(const std::vector<std::string> &args) = nullptr;
};

// What parse_flags found besides flags.
struct ParsedArgs {
  bool help = false;  // -h or --help came (parsing stopped there)
  std::vector<std::string> args;
};

// A flag's value as a whole number from `min` to `max`.
inline long flag_number(const char *flag, const std::string &v, long min, long max) {
  char *end = nullptr;
  errno = 0;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || errno == ERANGE || n < min || n > max)
    throw UsageError(std::string("flag ") + flag + ": \"" + v + "\" is not a number from " + std::to_string(min) +
                     " to " + std::to_string(max));
  return n;
}

// A flag's value as a duration (parse_duration); 0 only when `zero_ok`.
inline Millis flag_duration(const char *flag, const std::string &v, bool zero_ok = false) {
  auto d = parse_duration(v);
  std::string says = std::string("flag ") + flag + ": \"" + v + "\" is not a duration like 10s";
  if (!d) throw UsageError(says);
  if (d->count() <= 0 && !zero_ok) throw UsageError(says + " (it must be more than 0)");
  return *d;
}

namespace detail {
// Stores `v` where `f` says; `first`: its first use in this command line.
inline void store_flag(const FlagRow &f, const std::string &v, bool first) {
  switch (f.into) {
    case Into::nothing: break;
    case Into::text: *static_cast<std::string *>(f.to) = v; break;
    case Into::maybe_text: *static_cast<std::optional<std::string> *>(f.to) = v; break;
    case Into::on: *static_cast<bool *>(f.to) = v == "true"; break;
    case Into::int_number: *static_cast<int *>(f.to) = static_cast<int>(flag_number(f.name, v, f.min, f.max)); break;
    case Into::size_number:
      *static_cast<size_t *>(f.to) = static_cast<size_t>(flag_number(f.name, v, f.min, f.max));
      break;
    case Into::duration: *static_cast<Millis *>(f.to) = flag_duration(f.name, v, f.min == 0); break;
    case Into::list: {
      auto &l = *static_cast<std::vector<std::string> *>(f.to);
      if (first) l.clear();
      l.push_back(v);
      break;
    }
    case Into::call: f.call(f, v); break;
    case Into::function: (*static_cast<const std::function<void(const std::string &)> *>(f.to))(v); break;
  }
  if (f.seen) *f.seen = true;
}
}  // namespace detail

// Parses `args` by `flags`: --name VALUE, --name=VALUE, -x VALUE, -xVALUE,
// -x=VALUE; a switch alone or as --name=true|false; "--" ends the flags. The
// last use of a flag wins unless it adds. Messages name flags and positions,
// never values (a value may be a token); mistakes, and Errors from a store,
// are UsageErrors. `command` is the path, for "see --help".
inline ParsedArgs parse_flags(const std::vector<std::string> &args, Rows<FlagRow> flags, const std::string &command,
                              size_t max_args = 0) {
  ParsedArgs out;
  std::string see = " (see " + command + " --help)";
  std::string used(flags.count, 0);  // which flags came already
  auto positional = [&](size_t i) {
    if (out.args.size() >= max_args) throw UsageError("unexpected argument at position " + std::to_string(i + 1) + see);
    out.args.push_back(args[i]);
  };
  for (size_t i = 0; i < args.size(); i++) {
    const std::string &a = args[i];
    if (a == "--") {
      for (size_t j = i + 1; j < args.size(); j++) positional(j);
      break;
    }
    if (a == "-h" || a == "--help") {
      out.help = true;
      return out;
    }
    if (a.size() < 2 || a[0] != '-') {
      positional(i);
      continue;
    }
    std::string name;
    std::optional<std::string> inline_value;
    const FlagRow *f = nullptr;
    bool long_name = a[1] == '-';
    size_t eq = long_name ? a.find('=') : 2;
    name = a.substr(0, eq);
    if (long_name ? eq != std::string::npos : a.size() > 2) inline_value = a.substr(eq + (long_name || a[2] == '='));
    for (const auto &x : flags)
      if (long_name ? name == x.name : x.short_name == a[1]) f = &x;
    if (!f) throw UsageError("unknown flag " + name + see);
    std::string v, flag = f->name;
    if (!*f->value) {
      v = inline_value.value_or("true");
      if (v != "true" && v != "false") throw UsageError("flag " + flag + " takes no value (or =true, =false)");
    } else if (inline_value) {
      v = *inline_value;
    } else if (i + 1 < args.size()) {
      v = args[++i];
    } else {
      throw UsageError("flag " + flag + " needs a value");
    }
    try {
      detail::store_flag(*f, v, !used[f - flags.first]);
      used[f - flags.first] = 1;
    } catch (const UsageError &) {
      throw;
    } catch (const Error &e) {
      throw UsageError(e.what());
    }
    if (!f->choices) continue;
    auto choices = detail::split(f->choices, '|');
    if (std::find(choices.begin(), choices.end(), v) == choices.end())
      throw UsageError(choices.size() == 1 ? flag + ": only \"" + choices[0] + "\" is supported"
                                           : flag + " must be " + join_words(choices) + ", not \"" + v + "\"");
  }
  return out;
}

// The same for flags as code (each Flag made from a row parses as that row).
inline ParsedArgs parse_flags(const std::vector<std::string> &args, const std::vector<Flag> &flags,
                              const std::string &command, size_t max_args = 0) {
  std::vector<FlagRow> rows;
  std::vector<std::string> choices(flags.size());
  for (const auto &f : flags) {
    std::string &c = choices[rows.size()];
    for (const auto &x : f.choices) c += (c.empty() ? "" : "|") + x;
    rows.push_back(f.row.name ? f.row
                              : FlagRow{f.name.c_str(), f.value.c_str(), "", c.empty() ? nullptr : c.c_str(),
                                        const_cast<std::function<void(const std::string &)> *>(&f.set), nullptr,
                                        nullptr, 0, 0, f.short_name, Into::function, f.repeatable});
  }
  return parse_flags(args, rows, command, max_args);
}

namespace detail {
// `text` wrapped to `width` columns, its lines after the first indented by
// `indent`; a "\n" in it breaks the line there.
inline std::string wrap_text(const std::string &text, size_t indent, size_t width = 100) {
  size_t room = width > indent + 30 ? width - indent : 30, len = 0;
  std::string out, pad(indent, ' ');
  for (size_t i = 0, n = text.size(); i < n;) {
    if (text[i] == '\n') {
      if (++i == n) break;  // a last "\n" ends the text, as getline reads it
      out += '\n';
      if (text[i] != '\n') out += pad;
      len = 0;
    } else if (std::isspace(static_cast<unsigned char>(text[i]))) {
      i++;
    } else {
      size_t e = i;
      while (e < n && !std::isspace(static_cast<unsigned char>(text[e]))) e++;
      if (len > 0 && len + 1 + (e - i) > room) {
        out += '\n' + pad;
        len = 0;
      } else if (len > 0) {
        out += ' ';
        len++;
      }
      out.append(text, i, e - i);
      len += e - i;
      i = e;
    }
  }
  return out;
}
// Rows of a two-column table: names padded to one column, text wrapped
// beside them (below them when a name is wider than `max_name`).
inline std::string table(const std::vector<std::pair<std::string, std::string>> &rows, size_t max_name) {
  size_t w = 0;
  for (const auto &r : rows)
    if (r.first.size() <= max_name) w = std::max(w, r.first.size());
  std::string out;
  for (const auto &r : rows) {
    out += "  " + r.first;
    if (r.first.size() > w)
      out += "\n" + std::string(w + 4, ' ');
    else
      out += std::string(w + 2 - r.first.size(), ' ');
    out += wrap_text(r.second, w + 4) + "\n";
  }
  return out;
}
// What a flag's value completes to: "choices", "files", "dirs" or "" (free text).
inline std::string value_kind(const FlagRow &f) {
  std::string v = f.value;
  if (f.choices) return "choices";
  if (v == "FILE" || v == "PATH") return "files";
  if (v == "DIR") return "dirs";
  return "";
}
// Its fixed values, separated by spaces.
inline std::string choice_words(const FlagRow &f) {
  std::string s = f.choices;
  std::replace(s.begin(), s.end(), '|', ' ');
  return s;
}
inline std::string flag_left(const FlagRow &f) {
  std::string v = f.choices ? f.choices : f.value;
  return (f.short_name ? std::string("-") + f.short_name + ", " : std::string("    ")) + f.name +
         (v.empty() ? "" : " " + v);
}
}  // namespace detail

// A command's help: synopsis, description, its commands, its flags (from
// their table) and examples. `path` is how it is called ("pinniped get").
inline std::string help_text(const Command &c, const std::string &path) {
  std::string out = "Usage:\n  " + path + (*c.usage ? std::string(" ") + c.usage : "") + "\n";
  if (*c.description) out += "\n" + detail::wrap_text(c.description, 0) + "\n";
  std::vector<std::pair<std::string, std::string>> rows;
  if (!c.commands.empty()) {
    for (const auto &s : c.commands) {
      if (s.run || s.commands.empty()) rows.push_back({s.name, s.summary});
      for (const auto &t : s.commands) rows.push_back({std::string(s.name) + " " + t.name, t.summary});
    }
    out += "\nCommands:\n" + detail::table(rows, 36);
  }
  rows = {{"-h, --help", "show this help"}};
  for (const auto &f : c.flags)
    rows.push_back({detail::flag_left(f), std::string(f.help) + (f.repeatable ? " (repeatable)" : "")});
  out += "\nFlags:\n" + detail::table(rows, 36);
  if (*c.example) {
    out += "\nExample:\n";
    auto lines = detail::split(c.example, '\n');
    if (lines.back().empty()) lines.pop_back();
    for (const auto &l : lines) out += "  " + l + "\n";
  }
  return out;
}

namespace detail {
// Appends `parts` to `out`, with no strings made in between.
inline void cat(std::string &out, std::initializer_list<std::string_view> parts) {
  for (auto p : parts) out.append(p.data(), p.size());
}
inline std::string shell_id(const std::string &name) {
  std::string s;
  for (char ch : name) s += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return s;
}
struct CommandAt {
  std::string id;  // a shell-safe name for the path: pinniped_get_kubeconfig
  const Command *command;
};
inline void commands_under(const Command &c, const std::string &id, std::vector<CommandAt> &out) {
  out.push_back({id, &c});
  for (const auto &s : c.commands) commands_under(s, id + "_" + shell_id(s.name), out);
}
inline std::string words_of(const Command &c) {
  std::string w;
  for (const auto &s : c.commands) cat(w, {w.empty() ? "" : " ", s.name});
  if (*c.args) cat(w, {w.empty() ? "" : " ", c.args});
  return w;
}
inline std::string flags_of(const Command &c) {
  std::string w = "-h --help";
  for (const auto &f : c.flags) {
    if (f.short_name) cat(w, {" -", {&f.short_name, 1}});
    cat(w, {" ", f.name});
  }
  return w;
}
// The first clause of a help text, for fish's one-line descriptions.
inline std::string first_clause(const std::string &help) {
  std::string s = help.substr(0, help.find_first_of(";\n"));
  bool cut = s.size() > 70;
  if (cut) s = s.substr(0, s.rfind(' ', 67));
  while (!s.empty() && (s.back() == ' ' || s.back() == '.' || s.back() == ',')) s.pop_back();
  return cut ? s + "..." : s;
}
inline std::string fish_quote(const std::string &s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' || c == '\\' ? std::string("\\") + c : std::string(1, c);
  return out + "'";
}
// The case patterns of a flag with a value: its long name, then its short one.
inline void flag_patterns(const std::string &id, const FlagRow &f, std::vector<std::string> &out) {
  out.push_back(id + " " + f.name);
  if (f.short_name) out.push_back(id + " -" + f.short_name);
}
// `p` as bash/zsh patterns ("a" | "b") or fish's ('a' 'b').
inline std::string shell_patterns(const std::vector<std::string> &p, bool fish) {
  std::string out;
  for (const auto &s : p) {
    if (!out.empty()) out += fish ? " " : " | ";
    if (fish)
      out += fish_quote(s);
    else
      cat(out, {"\"", s, "\""});
  }
  return out;
}
// The bash/zsh loop body that follows the command path through the words
// before the cursor: subcommands move `cmd` on; flags with a value skip it.
inline std::string shell_path_cases(const std::vector<CommandAt> &all, const std::string &pad, bool zsh) {
  std::string out;
  std::string open = zsh ? "(" : "";
  for (const auto &at : all) {
    for (const auto &sub : at.command->commands)
      cat(out, {pad, open, "\"", at.id, " ", sub.name, "\") cmd=", at.id, "_", shell_id(sub.name), " ;;\n"});
    std::vector<std::string> alts;
    for (const auto &f : at.command->flags)
      if (*f.value) flag_patterns(at.id, f, alts);
    if (!alts.empty()) cat(out, {pad, open, shell_patterns(alts, false), ") skip=1 ;;\n"});
  }
  return out;
}
// The value cases: what each flag with a value completes to, per command.
inline std::string value_cases(const std::vector<CommandAt> &all, const std::string &pad, bool zsh) {
  std::string out, open = zsh ? "(" : "";
  for (const auto &at : all)
    for (const auto &f : at.command->flags) {
      if (!*f.value) continue;
      std::string kind = value_kind(f);
      std::vector<std::string> pats;
      flag_patterns(at.id, f, pats);
      cat(out, {pad, open, shell_patterns(pats, false), ") "});
      if (kind == "choices")
        cat(out, {zsh ? "compadd -P \"$pre\" -- " : "COMPREPLY=($(compgen -W \"", choice_words(f),
                  zsh ? "" : "\" -- \"$cur\"))"});
      else if (kind == "files")
        out += zsh ? "_files -P \"$pre\"" : "compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\"))";
      else if (kind == "dirs")
        out +=
            zsh ? "_files -/ -P \"$pre\"" : "compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- \"$cur\"))";
      else
        out += ":";
      out += "; return ;;\n";
    }
  return out;
}
// The words after a command (zsh's own `words` is taken: `var` differs).
inline std::string word_cases(const std::vector<CommandAt> &all, const std::string &pad, bool zsh,
                              const std::string &var) {
  std::string out, open = zsh ? "(" : "";
  for (const auto &at : all)
    cat(out,
        {pad, open, at.id, ") ", var, "=\"", words_of(*at.command), "\" flags=\"", flags_of(*at.command), "\" ;;\n"});
  return out;
}
}  // namespace detail

// A completion script for bash, zsh or fish, made from the command tree:
// commands, subcommands, flags and their fixed values (files for FILE).
inline std::string completion_script(const Command &root, const std::string &shell) {
  std::vector<detail::CommandAt> all;
  detail::commands_under(root, root.name, all);
  // What the scripts below hold in braces: {prog}, {fn}, {path}, {values}, {words}.
  std::string v[5] = {root.name, "_" + std::string(root.name)};
  const std::string &prog = v[0];
  const char *script;
  if (shell == "bash" || shell == "zsh") {
    bool zsh = shell == "zsh";
    v[2] = detail::shell_path_cases(all, "      ", zsh);
    v[3] = detail::value_cases(all, "    ", zsh);
    v[4] = detail::word_cases(all, "    ", zsh, zsh ? "words_" : "words");
    script = !zsh ? "# bash completion for {prog}, made from its flag tables.\n"
                    "# Load it with: source <({prog} completion bash)\n"
                    "{fn}() {\n"
                    "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd={prog} i w skip=0 "
                    "words flags\n"
                    "  COMPREPLY=()\n"
                    "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
                    "    w=${COMP_WORDS[i]}\n"
                    "    if ((skip)); then\n"
                    "      [[ $w == = ]] || skip=0\n"
                    "      continue\n"
                    "    fi\n"
                    "    case \"$cmd $w\" in\n"
                    "{path}"
                    "    esac\n"
                    "  done\n"
                    "  # bash splits --flag=value at the '='.\n"
                    "  if [[ $cur == = ]]; then\n"
                    "    cur=\n"
                    "  elif [[ $prev == = ]]; then\n"
                    "    prev=${COMP_WORDS[COMP_CWORD-2]}\n"
                    "  fi\n"
                    "  case \"$cmd $prev\" in\n"
                    "{values}"
                    "  esac\n"
                    "  case $cmd in\n"
                    "{words}"
                    "  esac\n"
                    "  [[ $cur == -* || -z $words ]] && words=$flags\n"
                    "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
                    "}\n"
                    "complete -F {fn} {prog}\n"
                  : "#compdef {prog}\n"
                    "# zsh completion for {prog}, made from its flag tables.\n"
                    "# Load it with: source <({prog} completion zsh), or save it as {fn} in your $fpath.\n"
                    "{fn}() {\n"
                    "  local cur=${words[CURRENT]} prev=${words[CURRENT-1]} cmd={prog} pre= i w skip=0\n"
                    "  local -a wl\n"
                    "  for ((i = 2; i < CURRENT; i++)); do\n"
                    "    w=${words[i]}\n"
                    "    if ((skip)); then\n"
                    "      skip=0\n"
                    "      continue\n"
                    "    fi\n"
                    "    case \"$cmd $w\" in\n"
                    "{path}"
                    "    esac\n"
                    "  done\n"
                    "  if [[ $cur == --*=* ]]; then\n"
                    "    prev=${cur%%=*}\n"
                    "    pre=\"$prev=\"\n"
                    "  fi\n"
                    "  case \"$cmd $prev\" in\n"
                    "{values}"
                    "  esac\n"
                    "  local words_ flags\n"
                    "  case $cmd in\n"
                    "{words}"
                    "  esac\n"
                    "  [[ $cur == -* || -z $words_ ]] && words_=$flags\n"
                    "  wl=(${=words_})\n"
                    "  compadd -- $wl\n"
                    "}\n"
                    "if [[ $funcstack[1] == {fn} ]]; then\n"
                    "  {fn} \"$@\"\n"
                    "else\n"
                    "  compdef {fn} {prog}\n"
                    "fi\n";
  } else if (shell == "fish") {
    std::string &s = v[2];
    for (const auto &at : all) {
      for (const auto &sub : at.command->commands)
        detail::cat(s, {"            case ", detail::fish_quote(at.id + " " + sub.name), "\n                set cmd ",
                        at.id, "_", detail::shell_id(sub.name), "\n"});
      std::vector<std::string> alts;
      for (const auto &f : at.command->flags)
        if (*f.value) detail::flag_patterns(at.id, f, alts);
      if (!alts.empty())
        detail::cat(s, {"            case ", detail::shell_patterns(alts, true), "\n                set skip 1\n"});
    }
    std::string &w = v[4];
    for (const auto &at : all) {
      std::string complete =
          "complete -c " + prog + " -n " + detail::fish_quote("test (__" + prog + "_command) = " + at.id);
      for (const auto &sub : at.command->commands)
        detail::cat(w, {complete, " -a ", detail::fish_quote(sub.name), " -d ", detail::fish_quote(sub.summary), "\n"});
      for (const auto &a : detail::split(at.command->args, ' '))
        if (!a.empty()) detail::cat(w, {complete, " -a ", detail::fish_quote(a), "\n"});
      detail::cat(w, {complete, " -s h -l help -d 'show this help'\n"});
      for (const auto &f : at.command->flags) {
        w += complete;
        if (f.short_name) detail::cat(w, {" -s ", {&f.short_name, 1}});
        detail::cat(w, {" -l ", f.name + 2});
        std::string kind = detail::value_kind(f);
        if (kind == "choices")
          detail::cat(w, {" -x -a ", detail::fish_quote(detail::choice_words(f))});
        else if (kind == "files")
          w += " -r -F";
        else if (kind == "dirs")
          w += " -x -a '(__fish_complete_directories)'";
        else if (*f.value)
          w += " -x";
        detail::cat(w, {" -d ", detail::fish_quote(detail::first_clause(f.help)), "\n"});
      }
    }
    script =
        "# fish completion for {prog}, made from its flag tables.\n"
        "# Load it with: {prog} completion fish | source\n"
        "function __{prog}_command\n"
        "    set -l cmd {prog}\n"
        "    set -l skip 0\n"
        "    for w in (commandline -opc)[2..-1]\n"
        "        if test $skip = 1\n"
        "            set skip 0\n"
        "            continue\n"
        "        end\n"
        "        switch \"$cmd $w\"\n"
        "{path}"
        "        end\n"
        "    end\n"
        "    echo $cmd\n"
        "end\n"
        "complete -c {prog} -f\n"
        "{words}";
  } else {
    throw UsageError("no completion for shell \"" + shell + "\" (bash, zsh or fish)");
  }
  // Fills the braces; what fills them is not scanned again.
  static const char *const names[] = {"{prog}", "{fn}", "{path}", "{values}", "{words}"};
  std::string out;
  for (const char *p = script; *p;) {
    size_t i = 0;
    while (i < 5 && std::strncmp(p, names[i], std::strlen(names[i])) != 0) i++;
    if (i < 5) {
      out += v[i];
      p += std::strlen(names[i]);
    } else {
      out += *p++;
    }
  }
  return out;
}

// --- 6b. Exchanging a token for a credential.

struct ExchangeOptions {
  std::string endpoint;  // https://host:port of kube-apiserver (or the concierge)
  ClientTlsOptions tls;  // tls.ca_pem: the endpoint's CA (PEM); empty: system roots
  std::string api_group_suffix = PINNIPED_DEFAULT_API_GROUP_SUFFIX;
  std::string authenticator_kind = "WebhookAuthenticator";
  std::string authenticator_name;
  Millis timeout = std::chrono::seconds(30);
};

// Sends a TokenCredentialRequest and returns the credential. Throws Error:
// 401 when the concierge says "authentication failed", the Status of an
// HTTP error, or 503 when the endpoint cannot be reached.
inline ClusterCredential exchange_token(const ExchangeOptions &o, const std::string &token) {
  if (token.empty()) throw Error(422, "Invalid", "token must not be empty");
  if (o.authenticator_name.empty()) throw bad_request("authenticator name must not be empty");
  Url u = Url::parse(o.endpoint);
  HttpsClient client(u.base(), o.tls);
  TokenCredentialRequest req;
  req.api_version = login_group(o.api_group_suffix) + "/v1alpha1";
  req.token = token;
  req.authenticator = {authentication_group(o.api_group_suffix), o.authenticator_kind, o.authenticator_name};
  std::string prefix = u.path == "/" ? "" : u.path;
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  std::string path = prefix + "/apis/" + login_group(o.api_group_suffix) + "/v1alpha1/tokencredentialrequests";
  HttpResponse res =
      client.request("POST", path, {{"Accept", "application/json"}, {"Content-Type", "application/json"}},
                     req.to_json(true).serialize(), o.timeout);
  if (res.status == 401 || res.status == 403) {
    // kube-apiserver itself said no before the concierge saw the request:
    // never "authentication failed", which means the IDP said no.
    bool unauthorized = res.status == 401;
    throw Error(res.status, reason_for_code(res.status),
                u.host + " refused the anonymous login request (HTTP " + std::to_string(res.status) +
                    (unauthorized ? " Unauthorized: kube-apiserver does not accept anonymous requests, as with "
                                    "--anonymous-auth=false on k3s"
                                  : " Forbidden: RBAC does not let anonymous users create tokencredentialrequests") +
                    "); log in through the concierge's direct frontend, see docs/k3s.md#unauthorized");
  }
  if (res.status != 200 && res.status != 201) {
    auto st = Status::from_body(res.body);
    if (st) throw Error(res.status, st->reason.empty() ? reason_for_code(res.status) : st->reason, st->message);
    throw Error(res.status, reason_for_code(res.status),
                "the server answered HTTP " + std::to_string(res.status) + " to the credential request");
  }
  TokenCredentialRequest out;
  try {
    out = TokenCredentialRequest::from_json(json::parse(res.body));
  } catch (const Error &e) {
    throw Error(502, "InternalError", std::string("the server's answer is not a TokenCredentialRequest: ") + e.what());
  }
  if (!out.credential) {
    throw Error(401, "Unauthorized", out.message.empty() ? "no credential was issued" : out.message);
  }
  if (out.credential->client_certificate_data.empty() && out.credential->token.empty())
    throw Error(502, "InternalError", "the server's answer carries an empty credential");
  return *out.credential;
}

// --- 6c. The kubectl exec credential plugin: ExecCredential in and out, the
// credential cache, `login static`, the kubeconfig that runs it, whoami.

inline const std::string kExecCredentialV1 = "client.authentication.k8s.io/v1";
inline const std::string kExecCredentialV1beta1 = "client.authentication.k8s.io/v1beta1";

// spec.cluster of an ExecCredential, present with provideClusterInfo: true.
struct ExecClusterInfo {
  std::string server;
  std::string ca_pem;  // certificate-authority-data, decoded; empty: system roots
  std::string tls_server_name;
  bool insecure_skip_tls_verify = false;
};

// What client-go hands the plugin in KUBERNETES_EXEC_INFO.
struct ExecCredentialRequest {
  std::string api_version = kExecCredentialV1beta1;  // upstream's assumption when none is given
  bool interactive = false;
  std::optional<ExecClusterInfo> cluster;

  // Parses the variable's value; empty means "not set". Throws Error(400).
  static ExecCredentialRequest parse(const std::string &text) {
    ExecCredentialRequest r;
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return r;
    picojson::value v;
    try {
      v = json::parse(text);
    } catch (const Error &e) {
      throw bad_request(std::string("KUBERNETES_EXEC_INFO: ") + e.what());
    }
    if (!v.is<picojson::object>()) throw bad_request("KUBERNETES_EXEC_INFO: not a JSON object");
    try {
      r.api_version = json::get_string(v, "apiVersion", "apiVersion");
      std::string kind = json::get_string(v, "kind", "kind");
      if (r.api_version != kExecCredentialV1 && r.api_version != kExecCredentialV1beta1)
        throw bad_request("unsupported apiVersion \"" + r.api_version + "\" (want " + kExecCredentialV1 + " or " +
                          kExecCredentialV1beta1 + ")");
      if (kind != "ExecCredential") throw bad_request("kind must be ExecCredential, got \"" + kind + "\"");
      if (const auto *s = json::get_object(v, "spec", "spec")) {
        r.interactive = json::get_bool(*s, "interactive", "spec.interactive");
        if (const auto *c = json::get_object(*s, "cluster", "spec.cluster")) {
          ExecClusterInfo ci;
          ci.server = json::get_string(*c, "server", "spec.cluster.server");
          std::string ca =
              json::get_string(*c, "certificate-authority-data", "spec.cluster.certificate-authority-data");
          if (!ca.empty()) {
            auto pem = detail::base64_decode(ca);
            if (!pem) throw bad_request("spec.cluster.certificate-authority-data: not valid base64");
            ci.ca_pem = *pem;
          }
          ci.tls_server_name = json::get_string(*c, "tls-server-name", "spec.cluster.tls-server-name");
          ci.insecure_skip_tls_verify =
              json::get_bool(*c, "insecure-skip-tls-verify", "spec.cluster.insecure-skip-tls-verify");
          r.cluster = ci;
        }
      }
    } catch (const Error &e) {
      std::string m = e.what();
      throw bad_request(m.rfind("KUBERNETES_EXEC_INFO", 0) == 0 ? m : "KUBERNETES_EXEC_INFO: " + m);
    }
    return r;
  }
};

// The plugin's answer on stdout, in the apiVersion it was asked in.
inline std::string exec_credential_json(const std::string &api_version, const ClusterCredential &c) {
  picojson::object o, spec, status = c.to_json().get<picojson::object>();
  o["apiVersion"] = jv(api_version.empty() ? kExecCredentialV1beta1 : api_version);
  o["kind"] = jv("ExecCredential");
  spec["interactive"] = jv(false);
  o["spec"] = picojson::value(spec);
  o["status"] = picojson::value(status);
  return to_json_string(picojson::value(o));
}

// Reads a plugin's answer back (tests, in-process callers).
inline ClusterCredential parse_exec_credential(const std::string &text) {
  auto v = json::parse(text);
  if (json::get_string(v, "kind", "kind") != "ExecCredential") throw bad_request("kind must be ExecCredential");
  const auto *st = json::get_object(v, "status", "status");
  if (!st) throw bad_request("ExecCredential has no status");
  return ClusterCredential::from_json(*st);
}

namespace detail {
// mkdir -p; folders it creates get `mode`.
inline void make_dirs(const std::string &dir, mode_t mode) {
  if (dir.empty()) return;
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw internal_error(dir + " is not a directory");
    return;
  }
  auto slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) make_dirs(dir.substr(0, slash), mode);
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST)
    throw internal_error("cannot create " + dir + ": " + std::strerror(errno));
  ::chmod(dir.c_str(), mode);  // whatever the umask said
}
inline std::string parent_dir(const std::string &path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}
inline std::string env_or_empty(const char *name) {
  const char *v = std::getenv(name);
  return v ? v : "";
}
}  // namespace detail

// The credential cache of the plugin (upstream's credentials.yaml): entries
// keyed by a SHA-256 of the login inputs, token included, so the token is
// never stored. Written as JSON (which is YAML), atomically, mode 0600 in a
// 0700 folder; a corrupt or foreign file reads as empty and is replaced.
class CredentialCache {
 public:
  static constexpr std::chrono::seconds kReuseMargin{60};  // not reused within 1 minute of expiry

  explicit CredentialCache(std::string path) : path_(std::move(path)) {}
  const std::string &path() const { return path_; }

  // $XDG_CONFIG_HOME/pinniped/credentials.yaml, else ~/.config/pinniped/.
  static std::string default_path() {
    std::string base = detail::env_or_empty("XDG_CONFIG_HOME");
    if (base.empty()) {
      std::string home = detail::env_or_empty("HOME");
      if (home.empty())
        throw internal_error("neither XDG_CONFIG_HOME nor HOME is set: cannot place the credential cache");
      base = home + "/.config";
    }
    return base + "/pinniped/credentials.yaml";
  }

  // A credential still valid for more than kReuseMargin at `now`.
  std::optional<ClusterCredential> get(const std::string &key, Clock::time_point now = Clock::now()) const {
    for (const auto &e : load())
      // Compared, not subtracted: an entry dated before 1678 saturates, and
      // the difference would overflow (and read as "still valid").
      if (e.key == key && e.expires > now + kReuseMargin) return e.credential;
    return std::nullopt;
  }

  // Stores `c` under `key` and drops expired entries. Hold lock() around a
  // get-then-put, or concurrent writers lose each other's entries.
  void put(const std::string &key, const ClusterCredential &c, Clock::time_point now = Clock::now()) const {
    auto exp = parse_rfc3339(c.expiration_timestamp);
    if (!exp) throw bad_request("credential has no valid expirationTimestamp");
    picojson::array list;
    for (const auto &e : load()) {
      if (e.key == key || e.expires <= now) continue;
      list.push_back(e.raw);
    }
    picojson::object entry;
    entry["key"] = jv(key);
    entry["creationTimestamp"] = jv(format_rfc3339(now));
    entry["credential"] = c.to_json();
    list.push_back(picojson::value(entry));
    picojson::object root;
    root["apiVersion"] = jv("config.supervisor.pinniped.dev/v1alpha1");
    root["kind"] = jv("CredentialCache");
    root["credentials"] = picojson::value(list);
    detail::make_dirs(detail::parent_dir(path_), 0700);
    write_file_atomic(path_, to_json_string(picojson::value(root)) + "\n");
  }

  // An exclusive flock on "<path>.lock", released on destruction.
  class Lock {
   public:
    Lock() = default;
    explicit Lock(int fd) : fd_(fd) {}
    Lock(Lock &&o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    Lock &operator=(Lock &&o) noexcept {
      std::swap(fd_, o.fd_);
      return *this;
    }
    ~Lock() {
      if (fd_ >= 0) ::close(fd_);  // closing releases the flock
    }
    bool held() const { return fd_ >= 0; }

   private:
    int fd_ = -1;
  };
  // Waits up to `timeout`; an unheld Lock when that fails (callers go on without).
  Lock lock(Millis timeout) const {
    try {
      detail::make_dirs(detail::parent_dir(path_), 0700);
    } catch (const Error &) {
      return Lock();
    }
    int fd = ::open((path_ + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Lock();
    auto until = Steady::now() + timeout;
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if ((errno != EWOULDBLOCK && errno != EINTR) || Steady::now() >= until) {
        ::close(fd);
        return Lock();
      }
      std::this_thread::sleep_for(Millis(5));
    }
    return Lock(fd);
  }

  // The cached credential for `key`, or a new one from `exchange` stored for
  // next time. Concurrent callers with one key exchange once: the second
  // re-reads under the lock. Cache failures never fail the call.
  ClusterCredential get_or_exchange(const std::string &key, const std::function<ClusterCredential()> &exchange,
                                    Millis lock_timeout = std::chrono::seconds(60)) const {
    if (auto c = get(key)) return *c;
    Lock l = lock(lock_timeout);
    if (l.held())
      if (auto c = get(key)) return *c;
    ClusterCredential c = exchange();
    try {
      put(key, c);
    } catch (const Error &) {
    }
    return c;
  }

  // The entries in the file (tests, tools). Empty when absent or unreadable.
  struct Entry {
    std::string key;
    Clock::time_point expires;
    ClusterCredential credential;
    picojson::value raw;
  };
  std::vector<Entry> load() const {
    std::vector<Entry> out;
    std::string text;
    try {
      if (::access(path_.c_str(), F_OK) != 0) return out;
      text = read_file(path_, 16 * 1024 * 1024);
      auto docs = parse_yaml_documents(text);
      if (docs.size() != 1 || json::get_string(docs[0], "kind", "kind") != "CredentialCache") return out;
      const auto *list = json::field(docs[0], "credentials");
      if (!list || !list->is<picojson::array>()) return out;
      for (const auto &e : list->get<picojson::array>()) {
        try {
          Entry en;
          en.key = json::get_string(e, "key", "key");
          const auto *c = json::get_object(e, "credential", "credential");
          if (en.key.empty() || !c) continue;
          en.credential = ClusterCredential::from_json(*c);
          auto exp = parse_rfc3339(en.credential.expiration_timestamp);
          // No concierge issues credentials for days: an entry that claims
          // to live that long is corrupt (or planted), not a credential.
          if (!exp || *exp > Clock::now() + std::chrono::hours(24)) continue;
          en.expires = *exp;
          en.raw = e;
          out.push_back(std::move(en));
        } catch (const Error &) {
        }
      }
    } catch (const std::exception &) {
      out.clear();  // corrupt or foreign: treated as empty, replaced on the next put
    }
    return out;
  }

 private:
  std::string path_;
};

// The cache key: every input that changes the answer, the token included,
// hashed so that the file never holds the token.
inline std::string credential_cache_key(const ExchangeOptions &o, const std::string &token) {
  picojson::array a;
  for (const std::string &s : {std::string("pinniped-credential-v1"), o.endpoint, o.tls.ca_pem, o.tls.server_name,
                               std::string(o.tls.insecure_skip_verify ? "insecure" : "verified"), o.api_group_suffix,
                               o.authenticator_kind, o.authenticator_name, token})
    a.push_back(jv(s));
  return detail::hex(detail::sha256(to_json_string(picojson::value(a))));
}

namespace detail {
// --concierge-ca-bundle-data's parser: base64 of PEM certificates.
inline void set_ca_bundle_data(const FlagRow &f, const std::string &v) {
  auto pem = detail::base64_decode(v);
  if (!pem || (!v.empty() && pem->find("-----BEGIN CERTIFICATE-----") == std::string::npos))
    throw UsageError(std::string(f.name) + " must be base64-encoded PEM certificates");
  *static_cast<std::string *>(f.to) = *pem;
}
inline void set_enable_concierge(const FlagRow &, const std::string &v) {
  if (v != "true") throw UsageError("--enable-concierge: only true is supported");
}
}  // namespace detail

// What `login static` and `login oidc` share: where the token goes (the
// concierge's exchange, through kube-apiserver or directly) and the cache of
// the credential it gives.
struct ConciergeLoginOptions {
  std::string authenticator_type = "webhook";  // webhook | jwt
  std::string authenticator_name;
  std::string endpoint;  // --concierge-endpoint; empty: spec.cluster.server
  std::string ca_pem;    // --concierge-ca-bundle-data, decoded; empty: spec.cluster's CA
  std::string api_group_suffix = PINNIPED_DEFAULT_API_GROUP_SUFFIX;
  std::optional<std::string> credential_cache;  // unset: default path; "": no cache
  Millis timeout = std::chrono::seconds(30);

  std::string authenticator_kind() const {
    return authenticator_type == "jwt" ? "JWTAuthenticator" : "WebhookAuthenticator";
  }
  // Where the exchange goes: flags first, then what client-go told us.
  ExchangeOptions exchange_options(const std::optional<ExecClusterInfo> &cluster) const {
    ExchangeOptions x;
    x.endpoint = endpoint;
    if (x.endpoint.empty() && cluster) {
      x.endpoint = cluster->server;
      x.tls.server_name = cluster->tls_server_name;
      x.tls.insecure_skip_verify = cluster->insecure_skip_tls_verify;
    }
    if (x.endpoint.empty())
      throw bad_request(
          "no concierge endpoint: give --concierge-endpoint or set provideClusterInfo: true in the "
          "kubeconfig's exec section");
    x.tls.ca_pem = !ca_pem.empty() ? ca_pem : cluster ? cluster->ca_pem : "";
    x.api_group_suffix = api_group_suffix;
    x.authenticator_kind = authenticator_kind();
    x.authenticator_name = authenticator_name;
    x.timeout = timeout;
    return x;
  }
  // The flags both logins take for these fields (upstream's), after their own.
  static constexpr std::array<FlagRow, 7> concierge_flags(ConciergeLoginOptions &o, const char *type_help) {
    return {{
        text_flag("--concierge-authenticator-type", "TYPE", type_help, o.authenticator_type, "webhook|jwt"),
        text_flag("--concierge-authenticator-name", "NAME", "the authenticator (required)", o.authenticator_name),
        text_flag("--concierge-endpoint", "URL",
                  "kube-apiserver URL (default: spec.cluster.server from KUBERNETES_EXEC_INFO, with "
                  "provideClusterInfo: true)",
                  o.endpoint),
        call_flag("--concierge-ca-bundle-data", "BASE64", "its CA, base64 PEM (default: spec.cluster's CA)", &o.ca_pem,
                  detail::set_ca_bundle_data),
        call_flag("--concierge-api-group-suffix", "SUFFIX",
                  "API group suffix (default " PINNIPED_DEFAULT_API_GROUP_SUFFIX ")", &o.api_group_suffix,
                  set_api_group_suffix),
        maybe_text_flag("--credential-cache", "FILE",
                        "cache file (default $XDG_CONFIG_HOME/pinniped/credentials.yaml or "
                        "~/.config/pinniped/credentials.yaml; \"\" disables it)",
                        o.credential_cache),
        // Implied: this pinniped only logs in through a concierge.
        call_flag("--enable-concierge", "", "accepted for upstream compatibility (always on)", nullptr,
                  detail::set_enable_concierge),
    }};
  }
  // The flags of these fields, for a kubeconfig's exec args.
  void append_args(std::vector<std::string> &a) const {
    a.push_back("--concierge-api-group-suffix=" + api_group_suffix);
    a.push_back("--concierge-authenticator-name=" + authenticator_name);
    a.push_back("--concierge-authenticator-type=" + authenticator_type);
    if (!endpoint.empty()) a.push_back("--concierge-endpoint=" + endpoint);
    if (!ca_pem.empty()) a.push_back("--concierge-ca-bundle-data=" + detail::base64_encode(ca_pem));
    if (credential_cache) a.push_back("--credential-cache=" + *credential_cache);
  }
  // A cached credential for `identity` (what the login proves: the token, or
  // the OIDC session's issuer, client and scopes), else `exchange()`'s.
  ClusterCredential cached_or(const ExchangeOptions &x, const std::string &identity,
                              const std::function<ClusterCredential()> &exchange) const {
    std::string path;
    try {
      path = credential_cache ? *credential_cache : CredentialCache::default_path();
    } catch (const Error &) {
      // No HOME: log in without a cache rather than not at all.
    }
    if (path.empty()) return exchange();
    return CredentialCache(path).get_or_exchange(credential_cache_key(x, identity), exchange);
  }
};

// `pinniped login static`, as flags (upstream-compatible) and as a struct.
struct StaticLoginOptions : ConciergeLoginOptions {
  std::string token;      // --token, or the value of...
  std::string token_env;  // ...--token-env VAR

  // `login static`'s flag table, storing into `o`; `have_token` tells
  // --token="" from none. Constant for a static `o`, so main.cpp's tree is.
  static constexpr std::array<FlagRow, 9> flag_table(StaticLoginOptions &o, bool &have_token) {
    FlagRow token = text_flag("--token", "TOKEN",
                              "the static token (visible in the kubeconfig; --token-env keeps it out)", o.token);
    token.seen = &have_token;
    FlagRow own[] = {
        token,
        text_flag("--token-env", "VAR", "read the token from environment variable VAR", o.token_env),
    };
    return concat(own, concierge_flags(o,
                                       "the authenticator's type: webhook (a WebhookAuthenticator) or jwt (a "
                                       "JWTAuthenticator)"));
  }
  // The same as Flags, storing into *this.
  std::vector<Flag> flags(bool &have_token) {
    auto rows = flag_table(*this, have_token);
    return {rows.begin(), rows.end()};
  }

  // The checks after parsing; `getenv` resolves --token-env. UsageErrors.
  void finish(bool have_token, const std::function<std::optional<std::string>(const std::string &)> &getenv) {
    if (have_token && !token_env.empty()) throw UsageError("give --token or --token-env, not both");
    if (!token_env.empty()) {
      auto v = getenv(token_env);
      if (!v || v->empty()) throw UsageError("--token-env: environment variable " + token_env + " is not set");
      token = *v;
    } else if (!have_token) {
      throw UsageError("one of --token or --token-env is required");
    }
    if (token.empty()) throw UsageError("--token must not be empty");
    if (authenticator_name.empty()) throw UsageError("--concierge-authenticator-name is required");
  }

  // Parses the flags after "login static" (flags(), then finish()). Throws
  // UsageError with a message that never quotes a value.
  static StaticLoginOptions from_args(const std::vector<std::string> &args,
                                      const std::function<std::optional<std::string>(const std::string &)> &getenv) {
    StaticLoginOptions o;
    bool have_token = false;
    if (parse_flags(args, flag_table(o, have_token), "pinniped login static").help)
      throw UsageError("--help is not a login option here");
    o.finish(have_token, getenv);
    return o;
  }

  // The flags that reproduce these options (for a kubeconfig's exec args).
  std::vector<std::string> to_args() const {
    std::vector<std::string> a = {"login", "static", "--enable-concierge"};
    append_args(a);
    a.push_back(token_env.empty() ? "--token=" + token : "--token-env=" + token_env);
    return a;
  }
};

// The whole plugin: a credential from the cache or the exchange API.
inline ClusterCredential login_static(const StaticLoginOptions &o, const std::optional<ExecClusterInfo> &cluster) {
  ExchangeOptions x = o.exchange_options(cluster);
  return o.cached_or(x, o.token, [&] { return exchange_token(x, o.token); });
}

// What `pinniped login static` prints: KUBERNETES_EXEC_INFO in, ExecCredential out.
inline std::string run_exec_plugin(const StaticLoginOptions &o, const std::string &exec_info) {
  auto req = ExecCredentialRequest::parse(exec_info);
  return exec_credential_json(req.api_version, login_static(o, req.cluster));
}

namespace detail {
inline bool yaml_plain_key(const std::string &k) {
  return !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}
// Block-style YAML; strings double-quoted (JSON escapes are YAML escapes).
inline void emit_yaml(const picojson::value &v, size_t indent, std::string &out) {
  std::string pad(indent, ' ');
  auto scalar = [](const picojson::value &s) { return s.is<std::string>() ? to_json_string(s) : s.serialize(); };
  auto empty = [](const picojson::value &c) {
    return (c.is<picojson::object>() && c.get<picojson::object>().empty()) ||
           (c.is<picojson::array>() && c.get<picojson::array>().empty());
  };
  auto nested = [&](const picojson::value &c) {
    return (c.is<picojson::object>() || c.is<picojson::array>()) && !empty(c);
  };
  if (v.is<picojson::object>()) {
    for (const auto &kv : v.get<picojson::object>()) {
      out += pad + (yaml_plain_key(kv.first) ? kv.first : to_json_string(jv(kv.first))) + ":";
      if (nested(kv.second)) {
        out += "\n";
        emit_yaml(kv.second, indent + (kv.second.is<picojson::array>() ? 0 : 2), out);
      } else {
        out += " " +
               (empty(kv.second) ? std::string(kv.second.is<picojson::array>() ? "[]" : "{}") : scalar(kv.second)) +
               "\n";
      }
    }
  } else if (v.is<picojson::array>()) {
    for (const auto &e : v.get<picojson::array>()) {
      if (nested(e)) {
        std::string child;
        emit_yaml(e, indent + 2, child);
        child.replace(indent, 2, "- ");
        out += child;
      } else {
        out += pad + "- " + (empty(e) ? std::string(e.is<picojson::array>() ? "[]" : "{}") : scalar(e)) + "\n";
      }
    }
  } else {
    out += pad + scalar(v) + "\n";
  }
}
}  // namespace detail

// Block-style YAML of a JSON value (strings double-quoted).
inline std::string to_yaml(const picojson::value &v) {
  std::string out;
  detail::emit_yaml(v, 0, out);
  return out;
}

namespace detail {
// What running `cmd` as kubectl does runs: `cmd` itself when it holds a '/',
// else the first executable file of that name on $PATH; "" when none.
inline std::string find_executable(const std::string &cmd) {
  auto runnable = [](const std::string &p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (cmd.find('/') != std::string::npos) return runnable(cmd) ? cmd : "";
  std::istringstream dirs(env_or_empty("PATH"));
  for (std::string d; std::getline(dirs, d, ':');)
    if (runnable((d.empty() ? "." : d) + "/" + cmd)) return (d.empty() ? "." : d) + "/" + cmd;
  return "";
}
}  // namespace detail

// --- 6d. OIDC login: an ID token from an OpenID provider, from the session
// cache, by its refresh token, or by an interactive login (authorization code
// with PKCE through a loopback listener, or the device flow). Calls 0-3, 6c's
// cache helpers and the JWT checks of oidc_jwt.hpp.
// Threads: the caller's; during a browser login also the listener's accept
// loop and its workers (the code exchange runs on one). Locks: the browser
// login's outcome mutex, a leaf never held across I/O; the flock on
// "<sessions.yaml>.lock", held for a read and a write of the file only.

struct OidcLoginOptions {
  std::string issuer;
  std::string client_id = "pinniped-cli";
  std::vector<std::string> scopes = {"offline_access", "openid", "pinniped:request-audience", "username", "groups"};
  int listen_port = 0;        // 0: any free port on 127.0.0.1
  bool skip_browser = false;  // print the URL instead of opening a browser
  std::string ca_pem;         // the issuer's CA bundle; empty: system roots
  std::string session_cache;  // file path; empty: no cache
  // "browser", "device", or "": the device flow when there is no display
  // and the issuer offers it, else the browser.
  std::string flow;
  Millis timeout = std::chrono::minutes(5);  // the whole login, network calls included
  // Display only (the concierge decides who the token is).
  std::string username_claim = "username", groups_claim = "groups";
  // A cached ID token is used while it is valid for longer than this.
  Millis reuse_margin = std::chrono::seconds(PINNIPED_OIDC_REUSE_SECONDS);
};

struct OidcTokens {
  std::string id_token, refresh_token, access_token;
  Clock::time_point id_expiry;
  Clock::time_point access_expiry{};  // epoch: the provider said nothing
  std::string subject;                // the ID token's sub, once checked (not stored: read from the token)
};

// A session's identity in the cache, upstream's SessionCacheKey: a different
// issuer, client, scope set or callback address never reuses a session.
struct SessionCacheKey {
  std::string issuer, client_id;
  std::vector<std::string> scopes;  // sorted, as upstream keys them
  std::string redirect_uri;         // the configured one: port 0 when any port will do

  static SessionCacheKey of(const OidcLoginOptions &o) {
    SessionCacheKey k{o.issuer, o.client_id, o.scopes,
                      "http://127.0.0.1:" + std::to_string(o.listen_port) + "/callback"};
    std::sort(k.scopes.begin(), k.scopes.end());
    return k;
  }
  picojson::value to_json() const {
    picojson::object o;
    picojson::array s;
    for (const auto &x : scopes) s.push_back(jv(x));
    o["issuer"] = jv(issuer);
    o["clientID"] = jv(client_id);
    o["scopes"] = picojson::value(s);
    o["redirect_uri"] = jv(redirect_uri);
    return picojson::value(o);
  }
};

// upstream's sessions.yaml: sessions keyed by SessionCacheKey, each with its
// ID, refresh and access tokens. Written as YAML (to_yaml), atomically, mode
// 0600 in a 0700 folder, under 6c's lock file; a corrupt or foreign file
// reads as empty and is replaced. Entries of other clients (upstream's, with
// fields we do not know) are kept as they are.
class SessionCache {
 public:
  explicit SessionCache(std::string path) : path_(std::move(path)) {}
  const std::string &path() const { return path_; }

  // sessions.yaml beside the credential cache, as upstream places it.
  static std::string default_path() { return detail::parent_dir(CredentialCache::default_path()) + "/sessions.yaml"; }

  struct Entry {
    picojson::value key;  // as stored: compared whole, so an unknown field never matches
    Clock::time_point created, last_used;
    OidcTokens tokens;
    picojson::value raw;
  };

  // The session for `key`, marked as used; nullopt when there is none.
  std::optional<OidcTokens> get(const SessionCacheKey &key, Clock::time_point now = Clock::now()) const {
    std::optional<OidcTokens> out;
    try {
      update(now, [&](std::vector<Entry> &es) {
        for (auto &e : es)
          if (e.key == key.to_json()) {
            out = e.tokens;
            e.last_used = now;
            e.raw.get<picojson::object>()["lastUsedTimestamp"] = jv(format_rfc3339(now));
            return true;
          }
        return false;
      });
    } catch (const Error &) {
      // Marking it used is best effort; the session was read.
    }
    return out;
  }

  // Stores `t` as the session for `key` (replacing the one there).
  void put(const SessionCacheKey &key, const OidcTokens &t, Clock::time_point now = Clock::now()) const {
    update(now, [&](std::vector<Entry> &es) {
      Clock::time_point created = now;
      for (auto it = es.begin(); it != es.end();)
        if (it->key == key.to_json()) {
          created = it->created;
          it = es.erase(it);
        } else {
          ++it;
        }
      Entry e;
      e.key = key.to_json();
      e.created = created;
      e.last_used = now;
      e.tokens = t;
      picojson::object o, tokens, id, refresh, access;
      o["key"] = e.key;
      o["creationTimestamp"] = jv(format_rfc3339(created));
      o["lastUsedTimestamp"] = jv(format_rfc3339(now));
      id["token"] = jv(t.id_token);
      id["expiryTimestamp"] = jv(format_rfc3339(t.id_expiry));
      tokens["id"] = picojson::value(id);
      if (!t.refresh_token.empty()) {
        refresh["token"] = jv(t.refresh_token);
        tokens["refresh"] = picojson::value(refresh);
      }
      if (!t.access_token.empty()) {
        access["token"] = jv(t.access_token);
        if (t.access_expiry != Clock::time_point{}) access["expiryTimestamp"] = jv(format_rfc3339(t.access_expiry));
        tokens["access"] = picojson::value(access);
      }
      o["tokens"] = picojson::value(tokens);
      e.raw = picojson::value(o);
      es.push_back(std::move(e));
      return true;
    });
  }

  // Forgets the session for `key` if it still holds `refresh_token` (which
  // was refused); one that another login stored meanwhile stays.
  void drop(const SessionCacheKey &key, const std::string &refresh_token, Clock::time_point now = Clock::now()) const {
    update(now, [&](std::vector<Entry> &es) {
      auto n = es.size();
      es.erase(std::remove_if(
                   es.begin(), es.end(),
                   [&](const Entry &e) { return e.key == key.to_json() && e.tokens.refresh_token == refresh_token; }),
               es.end());
      return es.size() != n;
    });
  }

  // The sessions in the file. Empty when absent, corrupt or foreign.
  std::vector<Entry> load() const {
    std::vector<Entry> out;
    try {
      if (::access(path_.c_str(), F_OK) != 0) return out;
      auto docs = parse_yaml_documents(read_file(path_, 16 * 1024 * 1024));
      if (docs.size() != 1 || json::get_string(docs[0], "kind", "kind") != "SessionCache" ||
          json::get_string(docs[0], "apiVersion", "apiVersion") != kApiVersion)
        return out;
      const auto *list = json::field(docs[0], "sessions");
      if (!list || !list->is<picojson::array>()) return out;
      for (const auto &s : list->get<picojson::array>()) {
        try {
          Entry e;
          const auto *key = json::get_object(s, "key", "key");
          const auto *tokens = json::get_object(s, "tokens", "tokens");
          if (!key || !tokens) continue;
          e.key = *key;
          auto created = parse_rfc3339(json::get_string(s, "creationTimestamp", "creationTimestamp"));
          auto used = parse_rfc3339(json::get_string(s, "lastUsedTimestamp", "lastUsedTimestamp"));
          e.created = created ? *created : Clock::time_point{};
          e.last_used = used ? *used : e.created;
          if (const auto *id = json::get_object(*tokens, "id", "tokens.id")) {
            e.tokens.id_token = json::get_string(*id, "token", "tokens.id.token");
            auto exp = parse_rfc3339(json::get_string(*id, "expiryTimestamp", "tokens.id.expiryTimestamp"));
            e.tokens.id_expiry = exp ? *exp : Clock::time_point{};
          }
          if (const auto *r = json::get_object(*tokens, "refresh", "tokens.refresh"))
            e.tokens.refresh_token = json::get_string(*r, "token", "tokens.refresh.token");
          if (const auto *a = json::get_object(*tokens, "access", "tokens.access")) {
            e.tokens.access_token = json::get_string(*a, "token", "tokens.access.token");
            auto exp = parse_rfc3339(json::get_string(*a, "expiryTimestamp", "tokens.access.expiryTimestamp"));
            e.tokens.access_expiry = exp ? *exp : Clock::time_point{};
          }
          e.raw = s;
          out.push_back(std::move(e));
        } catch (const Error &) {
        }
      }
    } catch (const std::exception &) {
      out.clear();  // corrupt or foreign: replaced on the next write
    }
    return out;
  }

 private:
  static constexpr const char *kApiVersion = "config.supervisor.pinniped.dev/v1alpha1";
  // Held for a read and a write only; past this a writer goes on without it, as 6c's do.
  static constexpr std::chrono::seconds kLockWait{10};

  // Read, change, write under the lock (6c's: "<path>.lock"); `change` says
  // whether it changed anything. Sessions idle too long go on every write.
  void update(Clock::time_point now, const std::function<bool(std::vector<Entry> &)> &change) const {
    auto lock = CredentialCache(path_).lock(kLockWait);
    auto es = load();
    if (!change(es)) return;
    picojson::array list;
    for (const auto &e : es)
      if (e.last_used > now - std::chrono::hours(24 * PINNIPED_OIDC_SESSION_MAX_IDLE_DAYS)) list.push_back(e.raw);
    picojson::object root;
    root["apiVersion"] = jv(kApiVersion);
    root["kind"] = jv("SessionCache");
    root["sessions"] = picojson::value(list);
    detail::make_dirs(detail::parent_dir(path_), 0700);
    write_file_atomic(path_, to_yaml(picojson::value(root)));
  }
  std::string path_;
};

namespace detail {

// A provider's text for a terminal: invalid UTF-8 replaced, control
// characters (C0, DEL, C1: escape sequences) dropped, at most `max` bytes.
inline std::string printable(const std::string &in, size_t max = 2048) {
  std::string s = to_valid_utf8(in), out;
  for (size_t i = 0, n; i < s.size() && out.size() < max; i += n) {
    n = utf8_sequence_at(s, i);
    unsigned char c = s[i];
    if (c < 0x20 || c == 0x7f || (c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0)) continue;
    if (out.size() + n > max) break;
    out.append(s, i, n);
  }
  return out;
}
// ...quoted for a message, bounded with "..." (the JWT checks' quote_value).
inline std::string quote_untrusted(const std::string &in, size_t max = 200) {
  return quote_value(printable(in, std::string::npos), max);
}

// OAuth's scope parameter: the scopes separated by spaces.
inline std::string scope_string(const std::vector<std::string> &scopes) {
  std::string s;
  for (const auto &x : scopes) s += (s.empty() ? "" : " ") + x;
  return s;
}

// One call's time: the tunable, cut to what is left before `deadline`.
inline Millis call_timeout(Steady::time_point deadline, Millis whole) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Steady::now());
  if (left <= Millis(0)) throw Error(504, "Timeout", "the login did not complete within " + describe_duration(whole));
  return std::min<Millis>(left, std::chrono::seconds(PINNIPED_OIDC_HTTP_TIMEOUT_SECONDS));
}

// An OAuth endpoint's answer: its JSON, and `error` / `error_description`
// when it refused (RFC 6749 5.2).
struct OAuthAnswer {
  int status = 0;
  picojson::value body;
  std::string error, description;
  // "invalid_grant \"the code was used\"", for messages.
  std::string refusal() const {
    return printable(error, 64) + (description.empty() ? "" : " " + quote_untrusted(description));
  }
};

// POSTs a form to `endpoint` (https); throws on transport failures and on
// answers that are neither a success nor an OAuth error in JSON. `what`
// names the endpoint in messages. Never quotes the body: it may hold tokens;
// and an error that repeats a secret we sent has it blotted out.
inline OAuthAnswer post_form(const std::string &endpoint, const ClientTlsOptions &tls, const httplib::Params &form,
                             Millis timeout, const std::string &what, HttpsClient *reuse = nullptr) {
  Url u = Url::parse(endpoint);
  std::optional<HttpsClient> own;
  HttpsClient &c = reuse ? *reuse : own.emplace(u.base(), tls);
  HttpResponse res =
      c.request("POST", u.path, {{"Accept", "application/json"}, {"Content-Type", "application/x-www-form-urlencoded"}},
                detail::form_encode(form), timeout, 1024 * 1024);
  OAuthAnswer a;
  a.status = res.status;
  try {
    a.body = json::parse(res.body);
    if (!a.body.is<picojson::object>()) throw bad_request("not a JSON object");
    a.error = json::get_string(a.body, "error", "error");
    a.description = json::get_string(a.body, "error_description", "error_description");
  } catch (const Error &) {
    throw Error(502, "InternalError",
                what + " answered HTTP " + std::to_string(res.status) + " without an OAuth answer in JSON");
  }
  for (const char *secret : {"code", "code_verifier", "refresh_token", "device_code"}) {
    auto it = form.find(secret);
    if (it == form.end() || it->second.empty()) continue;
    for (std::string *text : {&a.error, &a.description})
      for (size_t at; (at = text->find(it->second)) != std::string::npos;)
        text->replace(at, it->second.size(), "[redacted]");
  }
  if (res.status / 100 == 2 && a.error.empty()) return a;
  if (a.error.empty())
    throw Error(502, "InternalError",
                what + " answered HTTP " + std::to_string(res.status) + " without an OAuth error");
  return a;
}

// The tokens of a token endpoint's success, the ID token checked against the
// issuer's keys: iss, aud = client_id, expiry, and `nonce` unless empty.
inline OidcTokens checked_tokens(const OAuthAnswer &a, const OidcLoginOptions &o, const OidcDiscovery &d,
                                 const std::string &nonce, Steady::time_point deadline, const std::string &what) {
  OidcTokens t;
  try {
    t.id_token = json::get_string(a.body, "id_token", "id_token");
    t.access_token = json::get_string(a.body, "access_token", "access_token");
    t.refresh_token = json::get_string(a.body, "refresh_token", "refresh_token");
    int64_t expires_in = json::get_int(a.body, "expires_in", "expires_in");
    if (expires_in > 0 && expires_in < int64_t(10) * 365 * 86400)
      t.access_expiry = Clock::now() + std::chrono::seconds(expires_in);
  } catch (const Error &e) {
    throw Error(502, "InternalError", what + "'s answer is malformed: " + e.what());
  }
  if (t.id_token.empty())
    throw Error(502, "InternalError", what + " returned no ID token (is \"openid\" among the scopes?)");
  ClientTlsOptions tls;
  tls.ca_pem = o.ca_pem;
  auto keys = fetch_jwks(d.jwks_uri, tls, call_timeout(deadline, o.timeout));
  JwtRules rules;
  rules.issuer = o.issuer;
  rules.audience = o.client_id;
  rules.username_claim = o.username_claim;
  rules.groups_claim = o.groups_claim;
  rules.nonce = nonce;
  rules.require_user = false;
  JwtCheck c = verify_jwt(t.id_token, *keys, rules, Clock::now());
  if (!c.ok) throw Error(401, "Unauthorized", "the ID token from " + what + " is not valid: " + c.reason);
  t.id_expiry = c.expiry;
  auto sub = c.claims.find("sub");
  if (sub != c.claims.end() && sub->second.is<std::string>()) t.subject = sub->second.get<std::string>();
  return t;
}

// The sub of an ID token this client checked when it got it (the session
// cache's), read without checking it again: it may have expired since.
// "" when it cannot be read.
inline std::string cached_subject(const std::string &id_token) {
  auto parts = split(id_token, '.');
  if (parts.size() != 3) return "";
  auto payload = base64url_decode(parts[1]);
  if (!payload) return "";
  try {
    return json::get_string(json::parse(*payload), "sub", "sub");
  } catch (const Error &) {
    return "";
  }
}

// Runs `program url` without a shell and without waiting for it: its output
// to /dev/null, none of our descriptors (the listener) inherited, reparented
// to init so no zombie is left. False when it could not be started.
inline bool launch_browser(const std::string &program, const std::string &url) {
  std::string path = find_executable(program);
  if (path.empty()) return false;
  // Everything the children use is made here: after fork() in a threaded
  // process only async-signal-safe calls are allowed.
  std::vector<char *> argv = {const_cast<char *>(path.c_str()), const_cast<char *>(url.c_str()), nullptr};
  sigset_t none;
  sigemptyset(&none);
  int report[2];  // the exec error, if any; closed by a successful exec
  if (::pipe2(report, O_CLOEXEC) != 0) return false;
  pid_t child = ::fork();
  if (child < 0) {
    ::close(report[0]);
    ::close(report[1]);
    return false;
  }
  if (child == 0) {
    pid_t grandchild = ::fork();  // runs the browser, and is nobody's zombie
    if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
    ::setsid();
    // Not our signal handling: main.cpp's waiter blocks signals in every thread.
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    int w = report[1];
    if (w != 3) w = ::dup3(report[1], 3, O_CLOEXEC);
    bool closed = false;
#ifdef SYS_close_range
    closed = w >= 0 && ::syscall(SYS_close_range, 4u, ~0u, 0u) == 0;
#endif
    for (int fd = 4; !closed && fd < 65536; fd++) ::close(fd);
    ::execve(path.c_str(), argv.data(), environ);
    int e = errno;
    (void)!::write(w >= 0 ? w : report[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(report[1]);
  int st = 0;
  while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  int e = 0;
  ssize_t n;
  while ((n = ::read(report[0], &e, sizeof e)) < 0 && errno == EINTR) {
  }
  ::close(report[0]);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 && n == 0;
}

// Whether a browser can be shown here: a display, or $BROWSER.
inline bool display_available() {
  return !env_or_empty("DISPLAY").empty() || !env_or_empty("WAYLAND_DISPLAY").empty() ||
         !env_or_empty("BROWSER").empty();
}

// The page the browser shows after the callback.
inline void callback_page(httplib::Response &res, int status, const std::string &title, const std::string &text) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_header("Content-Security-Policy", "default-src 'none'");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_content("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title + "</title></head><body><h1>" +
                      title + "</h1><p>" + text + "</p></body></html>\n",
                  "text/html; charset=utf-8");
}

// Authorization code with PKCE S256 through http://127.0.0.1:<port>/callback.
inline OidcTokens browser_login(const OidcLoginOptions &o, const OidcDiscovery &d, Steady::time_point deadline,
                                std::ostream &err) {
  const auto &methods = d.code_challenge_methods;
  if (!methods.empty() && std::find(methods.begin(), methods.end(), "S256") == methods.end())
    throw Error(400, "BadRequest",
                "the issuer does not support PKCE with S256 (its code_challenge_methods_supported: " +
                    printable(join_words(methods, "and"), 200) + ")");
  if (d.authorization_endpoint.empty())
    throw Error(400, "BadRequest", "the issuer's discovery has no authorization_endpoint");
  const std::string verifier = base64url_encode(random_bytes(32));  // 43 characters (RFC 7636: 43 to 128)
  const std::string state = base64url_encode(random_bytes(16)), nonce = base64url_encode(random_bytes(16));
  ClientTlsOptions tls;
  tls.ca_pem = o.ca_pem;

  struct Outcome {
    std::mutex mu;
    std::condition_variable cv;
    bool claimed = false, done = false;
    std::optional<OidcTokens> tokens;
    std::optional<Error> error;
  } out;
  std::string redirect_uri;
  httplib::Server svr;
  // One request per connection, and a browser's idle preconnection holds a
  // worker (and so the listener's closing) for a second at most.
  svr.set_keep_alive_max_count(1);
  svr.set_keep_alive_timeout(1);
  auto finish = [&](std::optional<OidcTokens> t, std::optional<Error> e) {
    std::lock_guard<std::mutex> lk(out.mu);
    out.tokens = std::move(t);
    out.error = std::move(e);
    out.done = true;
    out.cv.notify_all();
  };
  svr.Get("/callback", [&](const httplib::Request &req, httplib::Response &res) {
    // A request without our state is not the provider's answer (another
    // page may send one): refused, and the login goes on waiting.
    if (!req.has_param("state") || req.get_param_value("state") != state)
      return callback_page(res, 400, "Bad request", "This request does not belong to the login in progress.");
    {
      std::lock_guard<std::mutex> lk(out.mu);
      if (out.claimed) return callback_page(res, 400, "Bad request", "This login has already been answered.");
      out.claimed = true;
    }
    if (req.has_param("error")) {
      std::string why = "the identity provider refused the login: " + printable(req.get_param_value("error"), 64);
      std::string desc = req.get_param_value("error_description");
      if (!desc.empty()) why += " " + quote_untrusted(desc);
      callback_page(res, 403, "Login failed", "The identity provider refused the login. See the terminal.");
      return finish(std::nullopt, Error(401, "Unauthorized", why));
    }
    // RFC 9207: a provider that names itself must be ours (a mix-up attack otherwise).
    if (req.has_param("iss") && req.get_param_value("iss") != o.issuer) {
      callback_page(res, 400, "Login failed", "The answer comes from another identity provider. See the terminal.");
      return finish(std::nullopt, Error(401, "Unauthorized",
                                        "the authorization response names the issuer " +
                                            quote_untrusted(req.get_param_value("iss"), 256) + ", not " + o.issuer));
    }
    std::string code = req.get_param_value("code");
    if (code.empty()) {
      callback_page(res, 400, "Login failed", "The answer carries no authorization code. See the terminal.");
      return finish(std::nullopt, Error(502, "InternalError", "the identity provider's answer has no code"));
    }
    try {
      auto a = post_form(d.token_endpoint, tls,
                         {{"grant_type", "authorization_code"},
                          {"code", code},
                          {"redirect_uri", redirect_uri},
                          {"client_id", o.client_id},
                          {"code_verifier", verifier}},
                         call_timeout(deadline, o.timeout), "the token endpoint");
      if (!a.error.empty())
        throw Error(401, "Unauthorized", "the token endpoint refused the authorization code: " + a.refusal());
      auto t = checked_tokens(a, o, d, nonce, deadline, "the token endpoint");
      callback_page(res, 200, "Logged in", "You are logged in. You may close this tab.");
      finish(t, std::nullopt);
    } catch (const Error &e) {
      callback_page(res, 500, "Login failed", "The login could not be completed. See the terminal.");
      finish(std::nullopt, e);
    }
  });

  int port = o.listen_port;
  if (port == 0 ? (port = svr.bind_to_any_port("127.0.0.1")) <= 0 : !svr.bind_to_port("127.0.0.1", port))
    throw Error(500, "InternalError",
                "cannot listen on 127.0.0.1:" + std::to_string(o.listen_port) +
                    " for the login callback (is the port in use?)");
  redirect_uri = "http://127.0.0.1:" + std::to_string(port) + "/callback";
  std::thread listener([&] { svr.listen_after_bind(); });
  // stop() before the loop runs would be lost, and join() would hang.
  while (!svr.is_running()) std::this_thread::sleep_for(Millis(1));
  struct Closer {  // the listener ends with this function, however it ends
    httplib::Server &s;
    std::thread &t;
    ~Closer() {
      s.stop();
      t.join();
    }
  } closer{svr, listener};

  httplib::Params q = {{"response_type", "code"},
                       {"client_id", o.client_id},
                       {"redirect_uri", redirect_uri},
                       {"scope", scope_string(o.scopes)},
                       {"state", state},
                       {"nonce", nonce},
                       {"code_challenge", base64url_encode(sha256(verifier))},
                       {"code_challenge_method", "S256"}};
  std::string url =
      d.authorization_endpoint + (d.authorization_endpoint.find('?') == std::string::npos ? "?" : "&") + form_encode(q);
  std::string browser = env_or_empty("BROWSER");
  if (o.skip_browser || !launch_browser(browser.empty() ? "xdg-open" : browser, url))
    err << "Log in by visiting this link:\n\n    " << url << "\n\n" << std::flush;

  std::unique_lock<std::mutex> lk(out.mu);
  out.cv.wait_until(lk, deadline, [&] { return out.done; });
  if (!out.done && out.claimed) {
    // An exchange under way ends within its own timeout, itself cut to the deadline.
    out.cv.wait(lk, [&] { return out.done; });
  }
  if (out.tokens) return *out.tokens;
  if (out.error) throw *out.error;
  throw Error(504, "Timeout",
              "the login did not complete within " + describe_duration(o.timeout) + " (nothing came back to " +
                  redirect_uri + ")");
}

// The device flow (RFC 8628): a code the user enters on another device.
inline OidcTokens device_login(const OidcLoginOptions &o, const OidcDiscovery &d, Steady::time_point deadline,
                               std::ostream &err) {
  ClientTlsOptions tls;
  tls.ca_pem = o.ca_pem;
  auto a =
      post_form(d.device_authorization_endpoint, tls, {{"client_id", o.client_id}, {"scope", scope_string(o.scopes)}},
                call_timeout(deadline, o.timeout), "the device authorization endpoint");
  if (!a.error.empty())
    throw Error(401, "Unauthorized", "the device authorization endpoint refused the login: " + a.refusal());
  std::string device_code, user_code, uri, complete;
  int64_t expires_in = 0, interval = 0;
  try {
    device_code = json::get_string(a.body, "device_code", "device_code");
    user_code = json::get_string(a.body, "user_code", "user_code");
    uri = json::get_string(a.body, "verification_uri", "verification_uri");
    complete = json::get_string(a.body, "verification_uri_complete", "verification_uri_complete");
    expires_in = json::get_int(a.body, "expires_in", "expires_in");
    interval = json::get_int(a.body, "interval", "interval");
  } catch (const Error &e) {
    throw Error(502, "InternalError", std::string("the device authorization answer is malformed: ") + e.what());
  }
  if (device_code.empty() || user_code.empty() || uri.empty())
    throw Error(502, "InternalError",
                "the device authorization answer lacks device_code, user_code or verification_uri");
  err << "To log in, visit " << printable(uri) << " and enter the code: " << printable(user_code, 64) << "\n";
  if (!complete.empty()) err << "(or open " << printable(complete) << ")\n";
  err << std::flush;

  auto expires = Steady::now() + std::chrono::seconds(expires_in > 0 && expires_in < 86400 ? expires_in : 86400);
  Millis every =
      std::chrono::seconds(interval > 0 && interval < 3600 ? interval : PINNIPED_OIDC_DEVICE_INTERVAL_SECONDS);
  Url token_url = Url::parse(d.token_endpoint);
  HttpsClient client(token_url.base(), tls);
  for (;;) {
    if (Steady::now() + every >= std::min(deadline, expires)) break;
    std::this_thread::sleep_for(every);
    auto t = post_form(d.token_endpoint, tls,
                       {{"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
                        {"device_code", device_code},
                        {"client_id", o.client_id}},
                       call_timeout(deadline, o.timeout), "the token endpoint", &client);
    if (t.error.empty()) return checked_tokens(t, o, d, "", deadline, "the token endpoint");
    if (t.error == "authorization_pending") continue;
    if (t.error == "slow_down") {
      every += std::chrono::seconds(5);
      continue;
    }
    if (t.error == "access_denied") throw Error(401, "Unauthorized", "the login was denied at the identity provider");
    if (t.error == "expired_token")
      throw Error(504, "Timeout", "the device code expired before the login was completed; run the login again");
    throw Error(401, "Unauthorized", "the token endpoint refused the device login: " + t.refusal());
  }
  if (expires < deadline)
    throw Error(504, "Timeout", "the device code expired before the login was completed; run the login again");
  throw Error(504, "Timeout", "the login did not complete within " + describe_duration(o.timeout));
}

// The refresh grant; nullopt when the provider refused it, or its answer
// has no valid ID token, or one for another subject than `subject` (OpenID
// Connect Core 12.2; "": not known): the session is stale. Transport
// failures and the provider's own failures are thrown (the session may
// work again).
inline std::optional<OidcTokens> refresh_session(const OidcLoginOptions &o, const OidcDiscovery &d,
                                                 const std::string &refresh_token, const std::string &subject,
                                                 Steady::time_point deadline, std::ostream &err) {
  ClientTlsOptions tls;
  tls.ca_pem = o.ca_pem;
  auto a = post_form(d.token_endpoint, tls,
                     {{"grant_type", "refresh_token"}, {"refresh_token", refresh_token}, {"client_id", o.client_id}},
                     call_timeout(deadline, o.timeout), "the token endpoint");
  if (!a.error.empty() && a.status >= 500)
    throw Error(503, "ServiceUnavailable", "the token endpoint failed to refresh the session: " + a.refusal());
  std::string why = a.error.empty() ? "" : a.refusal();
  if (why.empty() && json::field(a.body, "id_token") == nullptr) why = "the answer has no ID token";
  if (why.empty()) {
    try {
      // Providers differ on whether a refreshed ID token repeats the nonce: not checked.
      auto t = checked_tokens(a, o, d, "", deadline, "the token endpoint");
      if (t.refresh_token.empty()) t.refresh_token = refresh_token;  // not rotated
      if (subject.empty() || t.subject == subject) return t;
      why = "the refreshed ID token is for another subject than the session's";
    } catch (const Error &e) {
      if (e.code != 401) throw;
      why = e.what();
    }
  }
  err << "Refreshing the session failed (" << why << "); logging in again.\n" << std::flush;
  return std::nullopt;
}

}  // namespace detail

// Logs in to `opt.issuer` and returns its tokens, in upstream's order: a
// cached ID token valid for longer than opt.reuse_margin; else the cached
// refresh token (a refused one is dropped); else an interactive login, in a
// browser or by the device flow. Keeps the session cache up to date (its
// failures are reported on `err`, never fatal). Prompts and URLs go to `err`;
// nothing is written to stdout. Messages never carry a token or a code.
inline OidcTokens oidc_login(const OidcLoginOptions &opt, std::ostream &err) {
  auto deadline = Steady::now() + opt.timeout;
  std::string bad = validate_issuer_url(opt.issuer);
  if (!bad.empty()) throw UsageError("--issuer: " + bad);
  if (opt.client_id.empty()) throw UsageError("--client-id must not be empty");
  if (opt.flow != "" && opt.flow != "browser" && opt.flow != "device")
    throw UsageError("--flow must be browser or device");
  if (opt.listen_port < 0 || opt.listen_port > 65535) throw UsageError("--listen-port must be from 0 to 65535");

  std::optional<SessionCache> cache;
  if (!opt.session_cache.empty()) cache.emplace(opt.session_cache);
  SessionCacheKey key = SessionCacheKey::of(opt);
  auto keep = [&](const std::function<void()> &f) {
    try {
      f();
    } catch (const Error &e) {
      err << "warning: the session cache " << opt.session_cache << " was not updated: " << e.what() << "\n";
    }
  };
  std::optional<OidcTokens> cached;
  if (cache) keep([&] { cached = cache->get(key); });
  if (cached && !cached->id_token.empty() && cached->id_expiry > Clock::now() + opt.reuse_margin) return *cached;

  ClientTlsOptions tls;
  tls.ca_pem = opt.ca_pem;
  OidcDiscovery d = fetch_oidc_discovery(opt.issuer, tls, detail::call_timeout(deadline, opt.timeout));
  if (d.token_endpoint.empty()) throw Error(400, "BadRequest", "the issuer's discovery has no token_endpoint");
  if (cached && !cached->refresh_token.empty()) {
    if (auto t = detail::refresh_session(opt, d, cached->refresh_token, detail::cached_subject(cached->id_token),
                                         deadline, err)) {
      keep([&] { cache->put(key, *t); });
      return *t;
    }
    // Another login may have refreshed it meanwhile (a rotated refresh token
    // is refused the second time): its session is used, else ours goes.
    std::optional<OidcTokens> again;
    keep([&] { again = cache->get(key); });
    if (again && again->refresh_token != cached->refresh_token && again->id_expiry > Clock::now() + opt.reuse_margin)
      return *again;
    keep([&] { cache->drop(key, cached->refresh_token); });
  }

  bool device = opt.flow == "device" ||
                (opt.flow.empty() && !detail::display_available() && !d.device_authorization_endpoint.empty());
  if (device && d.device_authorization_endpoint.empty())
    throw Error(400, "BadRequest",
                "the issuer does not offer the device flow (its discovery has no device_authorization_endpoint)");
  OidcTokens t = device ? detail::device_login(opt, d, deadline, err) : detail::browser_login(opt, d, deadline, err);
  if (cache) keep([&] { cache->put(key, t); });
  return t;
}

// `pinniped login oidc`, as flags (upstream's names) and as a struct: an ID
// token from the issuer (oidc_login), exchanged at the concierge for a
// certificate, both cached.
struct OidcLoginCommand : ConciergeLoginOptions {
  OidcLoginOptions oidc;
  std::optional<std::string> session_cache;  // unset: sessions.yaml beside the credential cache; "": none

  OidcLoginCommand() { authenticator_type = "jwt"; }

  static void set_scopes(const FlagRow &f, const std::string &v) {
    auto &to = *static_cast<std::vector<std::string> *>(f.to);
    to.clear();
    for (const auto &s : detail::split(v, ','))
      if (!detail::trim(s).empty()) to.push_back(detail::trim(s));
    if (to.empty()) throw UsageError("--scopes must name at least one scope");
  }
  static void add_ca_file(const FlagRow &f, const std::string &file) {
    std::string pem = read_file(file);
    if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
      throw UsageError(std::string(f.name) + ": " + file + " is not PEM certificates");
    auto &all = *static_cast<std::string *>(f.to);
    if (!all.empty() && all.back() != '\n') all += "\n";
    all += pem;
  }
  static void add_ca_data(const FlagRow &f, const std::string &v) {
    std::string pem;
    FlagRow one = f;
    one.to = &pem;
    detail::set_ca_bundle_data(one, v);
    auto &all = *static_cast<std::string *>(f.to);
    if (!all.empty() && all.back() != '\n') all += "\n";
    all += pem;
  }
  static void refuse_request_audience(const FlagRow &, const std::string &) {
    throw UsageError(
        "--request-audience needs upstream's Supervisor (a token exchange); with a JWTAuthenticator the ID token's "
        "audience is the client ID: give --client-id");
  }

  static constexpr std::array<FlagRow, 18> flag_table(OidcLoginCommand &o) {
    FlagRow own[] = {
        text_flag("--issuer", "URL", "the OpenID provider (required; https)", o.oidc.issuer),
        text_flag("--client-id", "ID", "the client ID at the provider (default pinniped-cli)", o.oidc.client_id),
        call_flag("--scopes", "LIST",
                  "scopes to ask for, comma-separated (default offline_access,openid,pinniped:request-audience,"
                  "username,groups)",
                  &o.oidc.scopes, set_scopes),
        number_flag("--listen-port", "the loopback callback's port (default 0: any free port)", o.oidc.listen_port, 0,
                    65535),
        switch_flag("--skip-browser", "print the login URL instead of opening a browser", o.oidc.skip_browser),
        text_flag("--flow", "FLOW",
                  "browser (authorization code with PKCE) or device (RFC 8628; default when there is no display and "
                  "the provider offers it)",
                  o.oidc.flow, "browser|device"),
        call_flag("--ca-bundle", "FILE", "PEM CA certificates for the provider (default: system roots)", &o.oidc.ca_pem,
                  add_ca_file, nullptr, true),
        call_flag("--ca-bundle-data", "BASE64", "the same, base64 PEM", &o.oidc.ca_pem, add_ca_data, nullptr, true),
        maybe_text_flag("--session-cache", "FILE",
                        "the ID and refresh tokens (default sessions.yaml beside the credential cache; \"\" disables "
                        "it)",
                        o.session_cache),
        call_flag("--request-audience", "AUDIENCE", "upstream's Supervisor token exchange: not supported here", nullptr,
                  refuse_request_audience),
        call_flag("--login-timeout", "DURATION", "bounds the interactive login (default 5m)", &o.oidc.timeout,
                  [](const FlagRow &f, const std::string &v) {
                    *static_cast<Millis *>(f.to) = flag_duration(f.name, v, false);
                  }),
    };
    return concat(own, concierge_flags(o,
                                       "jwt (a JWTAuthenticator, default) or webhook (the ID token goes to a "
                                       "WebhookAuthenticator)"));
  }

  // The checks after parsing. UsageErrors.
  void finish() {
    if (oidc.issuer.empty()) throw UsageError("--issuer is required");
    std::string bad = validate_issuer_url(oidc.issuer);
    if (!bad.empty()) throw UsageError("--issuer: " + bad);
    if (oidc.client_id.empty()) throw UsageError("--client-id must not be empty");
    if (authenticator_name.empty()) throw UsageError("--concierge-authenticator-name is required");
    if (session_cache) {
      oidc.session_cache = *session_cache;
    } else {
      try {
        oidc.session_cache = credential_cache && !credential_cache->empty()
                                 ? detail::parent_dir(*credential_cache) + "/sessions.yaml"
                                 : SessionCache::default_path();
      } catch (const Error &) {
        oidc.session_cache.clear();  // no HOME: log in without one
      }
    }
  }

  static OidcLoginCommand from_args(const std::vector<std::string> &args) {
    OidcLoginCommand o;
    if (parse_flags(args, flag_table(o), "pinniped login oidc").help)
      throw UsageError("--help is not a login option here");
    o.finish();
    return o;
  }

  // The flags that reproduce these options (for a kubeconfig's exec args).
  std::vector<std::string> to_args() const {
    std::vector<std::string> a = {"login", "oidc", "--enable-concierge"};
    append_args(a);
    a.push_back("--issuer=" + oidc.issuer);
    a.push_back("--client-id=" + oidc.client_id);
    std::string scopes;
    for (const auto &sc : oidc.scopes) scopes += (scopes.empty() ? "" : ",") + sc;
    a.push_back("--scopes=" + scopes);
    if (oidc.listen_port != 0) a.push_back("--listen-port=" + std::to_string(oidc.listen_port));
    if (oidc.skip_browser) a.push_back("--skip-browser");
    if (!oidc.flow.empty()) a.push_back("--flow=" + oidc.flow);
    if (!oidc.ca_pem.empty()) a.push_back("--ca-bundle-data=" + detail::base64_encode(oidc.ca_pem));
    if (session_cache) a.push_back("--session-cache=" + *session_cache);
    return a;
  }

  // What the credential in the cache proves: this issuer, client and scopes
  // (the ID token changes at every refresh; the session cache holds it).
  std::string identity() const {
    picojson::array a;
    for (const std::string &s : {std::string("oidc"), oidc.issuer, oidc.client_id}) a.push_back(jv(s));
    for (const auto &s : oidc.scopes) a.push_back(jv(s));
    return to_json_string(picojson::value(a));
  }
};

// The whole `login oidc` plugin: a cached certificate, else an ID token
// (cached, refreshed or from a new login) exchanged for one. Prompts go to
// `err`.
inline ClusterCredential login_oidc(const OidcLoginCommand &o, const std::optional<ExecClusterInfo> &cluster,
                                    std::ostream &err) {
  ExchangeOptions x = o.exchange_options(cluster);
  return o.cached_or(x, o.identity(), [&] { return exchange_token(x, oidc_login(o.oidc, err).id_token); });
}

inline std::string run_exec_plugin(const OidcLoginCommand &o, const std::string &exec_info, std::ostream &err) {
  auto req = ExecCredentialRequest::parse(exec_info);
  return exec_credential_json(req.api_version, login_oidc(o, req.cluster, err));
}

// What kubectl prints when the exec command is missing (upstream's is alike).
inline const std::string kDefaultInstallHint =
    "The pinniped CLI does not appear to be installed. Put the pinniped binary on your PATH (or ask for a "
    "kubeconfig made with --pinniped-cli-path) and try again.";

// A kubeconfig whose one user logs in through `pinniped login static`.
struct PluginKubeconfig {
  std::string name = "pinniped";  // of the cluster, the user and the context
  std::string server;
  std::string ca_pem;  // empty: system roots
  std::string tls_server_name;
  std::string command = "pinniped";  // a name kubectl finds on PATH, or a path
  std::vector<std::string> args;
  std::string exec_api_version = kExecCredentialV1beta1;
  std::string install_hint = kDefaultInstallHint;
  std::vector<std::string> warnings;  // for the person running get kubeconfig (stderr); not written

  picojson::value to_json() const {
    picojson::object cluster, exec;
    cluster["server"] = jv(server);
    if (!ca_pem.empty()) cluster["certificate-authority-data"] = jv(detail::base64_encode(ca_pem));
    if (!tls_server_name.empty()) cluster["tls-server-name"] = jv(tls_server_name);
    exec["apiVersion"] = jv(exec_api_version);
    exec["command"] = jv(command);
    picojson::array a;
    for (const auto &x : args) a.push_back(jv(x));
    exec["args"] = picojson::value(a);
    exec["env"] = picojson::value(picojson::array());
    exec["provideClusterInfo"] = jv(true);
    exec["installHint"] = jv(install_hint);
    if (exec_api_version == kExecCredentialV1) exec["interactiveMode"] = jv("Never");
    auto named = [&](const std::string &key, picojson::object body) {
      picojson::object e;
      e["name"] = jv(name);
      e[key] = picojson::value(body);
      return picojson::value(picojson::array{picojson::value(e)});
    };
    picojson::object user, ctx, root;
    user["exec"] = picojson::value(exec);
    ctx["cluster"] = jv(name);
    ctx["user"] = jv(name);
    root["apiVersion"] = jv("v1");
    root["kind"] = jv("Config");
    root["clusters"] = named("cluster", cluster);
    root["users"] = named("user", user);
    root["contexts"] = named("context", ctx);
    root["current-context"] = jv(name);
    root["preferences"] = picojson::value(picojson::object());
    return picojson::value(root);
  }
  std::string to_yaml() const { return pinniped::to_yaml(to_json()); }
};

// $KUBECONFIG's first file, else ~/.kube/config.
inline std::string default_kubeconfig_path() {
  std::string k = detail::env_or_empty("KUBECONFIG");
  if (!k.empty()) return k.substr(0, k.find(':'));
  std::string home = detail::env_or_empty("HOME");
  if (home.empty()) throw bad_request("no --kubeconfig given and neither KUBECONFIG nor HOME is set");
  return home + "/.kube/config";
}

// `pinniped get kubeconfig`: what to read and what to put in.
struct GetKubeconfigOptions {
  std::string kubeconfig;  // the admin's; empty: default_kubeconfig_path()
  std::string context;     // empty: current-context
  std::string static_token, static_token_env;
  std::string authenticator_type;  // webhook | jwt; empty: the kind of the cluster's only authenticator
  std::string authenticator_name;  // empty: the cluster's only authenticator (of that type)
  // login oidc's settings, for a JWTAuthenticator (upstream's --oidc-* flags).
  std::string oidc_issuer;     // empty: the JWTAuthenticator's spec.issuer
  std::string oidc_client_id;  // empty: its spec.audience (the ID token's aud is the client ID)
  std::vector<std::string> oidc_scopes = OidcLoginOptions().scopes;
  int oidc_listen_port = 0;
  std::string oidc_ca_pem;  // empty: its spec.tls.certificateAuthorityData
  bool oidc_skip_browser = false;
  std::string oidc_flow;
  std::optional<std::string> oidc_session_cache;
  std::string endpoint;  // empty: from the CredentialIssuer
  std::string ca_pem;    // empty: from the CredentialIssuer
  std::string api_group_suffix = PINNIPED_DEFAULT_API_GROUP_SUFFIX;
  std::string command = "pinniped";  // the exec command: kubectl finds a bare name on PATH
  std::string install_hint = kDefaultInstallHint;
  std::string name_suffix = "-pinniped";  // names = the source context's cluster name + this
  std::string exec_api_version = kExecCredentialV1beta1;
  std::optional<std::string> credential_cache;  // passed on to login static when set
  Millis timeout = std::chrono::minutes(10);    // bounds discovery and validation together
  bool skip_validation = false;                 // else the written cluster is reached once first
};

// What a concierge's CredentialIssuer publishes for clients: where to send
// exchanges, the CA to verify it with, and the strategy's message.
struct PublishedFrontend {
  std::string server, ca_pem, message;
};

// The endpoint and CA of the TokenCredentialRequest API as the concierge's
// CredentialIssuer publishes them; nullopt when it publishes none.
inline std::optional<PublishedFrontend> discover_concierge_endpoint(KubeClient &k, const std::string &suffix) {
  auto list = k.get("/apis/config.concierge." + suffix + "/v1alpha1/credentialissuers");
  const auto *items = json::field(list, "items");
  if (!items || !items->is<picojson::array>()) return std::nullopt;
  std::vector<picojson::value> ordered;
  for (const auto &i : items->get<picojson::array>())  // the upstream name first
    ordered.insert(object_key(i) == "pinniped-concierge-config" ? ordered.begin() : ordered.end(), i);
  for (const auto &ci : ordered) {
    const auto *st = json::field(ci, "status");
    const auto *ss = st ? json::field(*st, "strategies") : nullptr;
    if (!ss || !ss->is<picojson::array>()) continue;
    for (const auto &s : ss->get<picojson::array>()) {
      const auto *fe = json::field(s, "frontend");
      const auto *info = fe ? json::field(*fe, "tokenCredentialRequestInfo") : nullptr;
      if (!info || json::get_string(s, "status", "status") != "Success") continue;
      std::string server = json::get_string(*info, "server", "server");
      auto ca = detail::base64_decode(json::get_string(*info, "certificateAuthorityData", "certificateAuthorityData"));
      if (!server.empty() && ca) return PublishedFrontend{server, *ca, json::get_string(s, "message", "message")};
    }
  }
  return std::nullopt;
}

// A server only pods can reach: an in-cluster service name. A concierge
// publishes one when the cluster has no kube-public/cluster-info to read the
// public address from (k3s, RKE2 and kind do not create it).
// A loopback address: what a host service publishes when it knows no better.
inline bool loopback_host(const std::string &server) {
  std::string h;
  try {
    h = detail::lower(Url::parse(server).host);
  } catch (const Error &) {
    return false;
  }
  return h == "localhost" || h.rfind("127.", 0) == 0 || h == "::1";
}
inline bool in_cluster_only(const std::string &server) {
  std::string h;
  try {
    h = detail::lower(Url::parse(server).host);
  } catch (const Error &) {
    return false;
  }
  auto ends_with = [&](const std::string &s) {
    return h.size() >= s.size() && h.compare(h.size() - s.size(), s.size(), s) == 0;
  };
  return h == "kubernetes" || h == "kubernetes.default" || ends_with(".svc") || h.find(".svc.") != std::string::npos;
}

// The authenticator a kubeconfig logs in with: the one named (of the type
// given), else the cluster's only WebhookAuthenticator or JWTAuthenticator;
// an error listing them when there are none or several.
struct FoundAuthenticator {
  std::string type;  // webhook | jwt
  std::string name;
  picojson::value object;
};
inline FoundAuthenticator discover_authenticator(KubeClient &k, const std::string &suffix, const std::string &type,
                                                 const std::string &name) {
  std::vector<FoundAuthenticator> all;
  for (const char *t : {"webhook", "jwt"}) {
    if (!type.empty() && type != t) continue;
    std::string plural = std::string(t) == "jwt" ? "jwtauthenticators" : "webhookauthenticators";
    picojson::value list;
    try {
      list = k.get("/apis/authentication.concierge." + suffix + "/v1alpha1/" + plural);
    } catch (const Error &e) {
      if (e.code == 404 && std::string(t) == "jwt") continue;  // a concierge without JWTAuthenticators
      throw;
    }
    if (const auto *items = json::field(list, "items"); items && items->is<picojson::array>())
      for (const auto &i : items->get<picojson::array>())
        if (name.empty() || object_key(i) == name) all.push_back({t, object_key(i), i});
  }
  auto kind = [](const std::string &t) {
    return std::string(t == "jwt" ? "JWTAuthenticator" : "WebhookAuthenticator");
  };
  if (all.size() == 1) return all[0];
  if (all.empty()) {
    std::string what = type.empty() ? "WebhookAuthenticator or JWTAuthenticator" : kind(type);
    std::string hint = type == "jwt" ? " (a static token goes to a WebhookAuthenticator: give --static-token or "
                                       "--static-token-env)"
                                     : "";
    throw Error(404, "NotFound",
                name.empty()
                    ? "no " + what + " found in the cluster; create one or give --concierge-authenticator-name" + hint
                    : "no " + what + " named \"" + name + "\" found in the cluster" + hint);
  }
  bool one_kind =
      std::all_of(all.begin(), all.end(), [&](const FoundAuthenticator &a) { return a.type == all[0].type; });
  std::string names;
  for (const auto &a : all) names += (names.empty() ? "" : ", ") + (one_kind ? "" : kind(a.type) + "/") + a.name;
  throw bad_request("several " + (one_kind ? kind(all[0].type) + "s" : std::string("authenticators")) + " found (" +
                    names + "); choose one with --concierge-authenticator-name" +
                    (one_kind ? "" : " and --concierge-authenticator-type"));
}

namespace detail {
// The cluster name of a kubeconfig's context (empty: current-context).
inline std::string kubeconfig_cluster_name(const std::string &text, std::string context) {
  auto docs = parse_yaml_documents(text);
  if (docs.size() != 1) return "";
  if (context.empty()) context = json::get_string(docs[0], "current-context", "current-context");
  const auto *list = json::field(docs[0], "contexts");
  if (list && list->is<picojson::array>())
    for (const auto &e : list->get<picojson::array>())
      if (json::get_string(e, "name", "contexts.name") == context)
        if (const auto *c = json::get_object(e, "context", "contexts.context"))
          return json::get_string(*c, "cluster", "context.cluster");
  return "";
}
}  // namespace detail

// Reaches a kubeconfig's cluster once, as kubectl would: its server with its
// CA (verified), GET /healthz, else /version, without credentials: 200, 401
// and 403 all prove the address and the CA right. Throws Error saying what failed.
inline void validate_plugin_kubeconfig(const PluginKubeconfig &kc, const std::function<Millis()> &time_left) {
  std::string why;
  try {
    Url u = Url::parse(kc.server);
    std::string prefix = u.path == "/" ? "" : u.path;
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    ClientTlsOptions tls;
    tls.ca_pem = kc.ca_pem;
    tls.server_name = kc.tls_server_name;
    HttpsClient client(u.base(), tls);
    for (const char *path : {"/healthz", "/version"}) {
      auto res = client.request("GET", prefix + path, {{"Accept", "application/json"}}, "", time_left());
      if (res.status == 200 || res.status == 401 || res.status == 403) return;
      why += (why.empty() ? "it answered HTTP " : " and HTTP ") + std::to_string(res.status) + " to " + path;
    }
  } catch (const Error &e) {
    why = e.what();
  }
  throw Error(503, "ServiceUnavailable",
              "the new kubeconfig does not reach its cluster " + kc.server + " with its CA: " + why +
                  " (nothing written; --skip-validation writes it all the same)");
}

// Builds the kubeconfig for `pinniped get kubeconfig`, reading the admin's
// kubeconfig and the cluster's concierge objects through KubeClient, and
// tries it unless told not to; o.timeout bounds all of it.
inline PluginKubeconfig build_plugin_kubeconfig(const GetKubeconfigOptions &o) {
  auto deadline = Steady::now() + o.timeout;
  auto time_left = [&] {
    auto left = std::chrono::duration_cast<Millis>(deadline - Steady::now());
    if (left.count() <= 0) throw Error(504, "Timeout", "--timeout passed before the kubeconfig was ready");
    return left;
  };
  std::vector<std::string> notes;
  std::string path = o.kubeconfig.empty() ? default_kubeconfig_path() : o.kubeconfig;
  std::string text = read_file(path);
  KubeConfig admin = KubeConfig::from_kubeconfig(text, detail::parent_dir(path), o.context);
  admin.source = path + "#" + admin.source;
  std::string cluster_name = detail::kubeconfig_cluster_name(text, o.context);
  auto kube = [&] { return std::make_unique<KubeClient>(admin, time_left()); };
  bool have_static = !o.static_token.empty() || !o.static_token_env.empty();
  FoundAuthenticator found_auth;
  // The object is read unless what the kubeconfig needs is given.
  bool need_object = o.authenticator_name.empty() || (!have_static && o.authenticator_type != "webhook" &&
                                                      (o.oidc_issuer.empty() || o.oidc_client_id.empty()));
  if (!need_object) {
    found_auth = {o.authenticator_type.empty() ? "webhook" : o.authenticator_type, o.authenticator_name,
                  picojson::value()};
  } else {
    // Unless told: a static token goes to a WebhookAuthenticator, none
    // means an OIDC login for a JWTAuthenticator.
    std::string type = !o.authenticator_type.empty() ? o.authenticator_type : have_static ? "webhook" : "jwt";
    found_auth = discover_authenticator(*kube(), o.api_group_suffix, type, o.authenticator_name);
  }
  StaticLoginOptions static_login;
  OidcLoginCommand oidc_login_cmd;
  bool oidc = found_auth.type == "jwt" && !have_static;
  ConciergeLoginOptions &login = oidc ? static_cast<ConciergeLoginOptions &>(oidc_login_cmd) : static_login;
  if (oidc) {
    // A JWTAuthenticator: the user logs in at its issuer, as the audience.
    const picojson::value *spec = json::field(found_auth.object, "spec");
    std::string issuer = spec ? json::get_string(*spec, "issuer", "spec.issuer") : "";
    std::string audience = spec ? json::get_string(*spec, "audience", "spec.audience") : "";
    std::string ca;
    if (const auto *tls = spec ? json::get_object(*spec, "tls", "spec.tls") : nullptr) {
      auto pem = detail::base64_decode(json::get_string(*tls, "certificateAuthorityData", "certificateAuthorityData"));
      if (pem) ca = *pem;
    }
    auto &oc = oidc_login_cmd.oidc;
    oc.issuer = o.oidc_issuer.empty() ? issuer : o.oidc_issuer;
    oc.client_id = o.oidc_client_id.empty() ? audience : o.oidc_client_id;
    if (oc.issuer.empty() || oc.client_id.empty())
      throw bad_request("JWTAuthenticator " + found_auth.name + " has no spec.issuer or spec.audience");
    if (!o.oidc_client_id.empty() && o.oidc_client_id != audience)
      notes.push_back("--oidc-client-id " + o.oidc_client_id + " differs from the JWTAuthenticator's audience " +
                      audience + ": the concierge refuses ID tokens whose aud does not hold the audience");
    oc.scopes = o.oidc_scopes;
    oc.listen_port = o.oidc_listen_port;
    oc.ca_pem = o.oidc_ca_pem.empty() ? ca : o.oidc_ca_pem;
    oc.skip_browser = o.oidc_skip_browser;
    oc.flow = o.oidc_flow;
    oidc_login_cmd.session_cache = o.oidc_session_cache;
  } else {
    if (o.static_token.empty() == o.static_token_env.empty())
      throw bad_request(found_auth.type == "jwt"
                            ? "give exactly one of --static-token or --static-token-env, or neither to log in at the "
                              "JWTAuthenticator's issuer"
                            : "give exactly one of --static-token or --static-token-env");
    static_login.token = o.static_token;
    static_login.token_env = o.static_token_env;
  }
  login.authenticator_type = found_auth.type;
  login.api_group_suffix = o.api_group_suffix;
  login.credential_cache = o.credential_cache;
  login.authenticator_name = found_auth.name;
  login.endpoint = o.endpoint;
  login.ca_pem = o.ca_pem;
  if (login.endpoint.empty() || login.ca_pem.empty()) {
    auto found = discover_concierge_endpoint(*kube(), o.api_group_suffix);
    // An address only pods reach is of no use to the kubeconfig's user: the
    // API server they reach it through is (with its CA).
    if (found && in_cluster_only(found->server)) {
      found->server = admin.server;
      found->ca_pem = admin.tls.ca_pem;
    }
    // A loopback address is the host the admin reaches the cluster at, as
    // seen from there: the host's name or address in the admin kubeconfig
    // is the one people use (the certificate carries the host's addresses).
    if (found && loopback_host(found->server) && !loopback_host(admin.server)) {
      Url pub = Url::parse(found->server), adm = Url::parse(admin.server);
      pub.host = adm.host;
      found->server = pub.base() + (pub.path == "/" ? "" : pub.path);
    }
    if (!found && login.endpoint.empty())
      throw Error(404, "NotFound",
                  "the CredentialIssuer publishes no TokenCredentialRequest endpoint yet; give --concierge-endpoint");
    if (found && login.endpoint.empty()) login.endpoint = found->server;
    if (found && login.ca_pem.empty()) login.ca_pem = found->ca_pem;
    // The concierge says when logins through what it publishes cannot work.
    if (found && found->message.find("so logins through it fail") != std::string::npos)
      notes.push_back("the concierge reports: " + found->message);
  }
  PluginKubeconfig kc;
  if (!cluster_name.empty()) kc.name = cluster_name + o.name_suffix;
  kc.server = admin.server;
  kc.ca_pem = admin.tls.ca_pem;
  kc.tls_server_name = admin.tls.server_name;
  kc.command = o.command;
  kc.install_hint = o.install_hint;
  kc.args = oidc ? oidc_login_cmd.to_args() : static_login.to_args();
  kc.exec_api_version = o.exec_api_version;
  if (detail::find_executable(o.command).empty())
    notes.push_back(
        (o.command.find('/') == std::string::npos ? "\"" + o.command + "\" is not on PATH here"
                                                  : o.command + " is not an executable file here") +
        ", and kubectl runs the kubeconfig's exec command by that name; give --pinniped-cli-path with the path its "
        "users have pinniped at");
  kc.warnings = notes;
  if (!o.skip_validation) validate_plugin_kubeconfig(kc, time_left);
  return kc;
}

// `pinniped whoami`.
struct WhoAmIOptions {
  std::string kubeconfig;  // empty: default_kubeconfig_path()
  std::string context;
  std::string api_group_suffix = PINNIPED_DEFAULT_API_GROUP_SUFFIX;
  Millis timeout = std::chrono::seconds(20);
};
struct WhoAmIResult {
  std::string cluster_name;
  std::string server;
  UserInfo user;
  picojson::value response;  // the WhoAmIRequest kube-apiserver returned
};

namespace detail {
// True when an exec section runs our `login static` or `login oidc` (any pinniped binary).
inline bool is_our_login(const picojson::value &exec) {
  std::string cmd = json::get_string(exec, "command", "exec.command");
  auto args = json::get_string_list(exec, "args", "exec.args");
  std::string base = cmd.substr(cmd.find_last_of('/') == std::string::npos ? 0 : cmd.find_last_of('/') + 1);
  return args.size() >= 2 && args[0] == "login" && (args[1] == "static" || args[1] == "oidc") &&
         base.rfind("pinniped", 0) == 0;
}
}  // namespace detail

// Asks kube-apiserver who the kubeconfig's credentials are. An exec user of
// ours is logged in in-process (same flags, same cache); `getenv` resolves
// --token-env after the exec section's own env.
inline WhoAmIResult whoami(const WhoAmIOptions &o,
                           const std::function<std::optional<std::string>(const std::string &)> &getenv) {
  std::string path = o.kubeconfig.empty() ? default_kubeconfig_path() : o.kubeconfig;
  auto docs = parse_yaml_documents(read_file(path));
  if (docs.size() != 1 || !docs[0].is<picojson::object>()) throw bad_request("kubeconfig: not a single YAML object");
  picojson::value root = docs[0];
  std::string context = o.context.empty() ? json::get_string(root, "current-context", "current-context") : o.context;
  WhoAmIResult r;
  picojson::value *user = nullptr;
  auto find = [&](const std::string &list, const std::string &name, const std::string &inner) -> picojson::value * {
    auto *l = root.get<picojson::object>().count(list) ? &root.get<picojson::object>()[list] : nullptr;
    if (l && l->is<picojson::array>())
      for (auto &e : l->get<picojson::array>())
        if (e.is<picojson::object>() && json::get_string(e, "name", list + ".name") == name &&
            e.get<picojson::object>().count(inner))
          return &e.get<picojson::object>()[inner];
    return nullptr;
  };
  if (auto *ctx = find("contexts", context, "context")) {
    r.cluster_name = json::get_string(*ctx, "cluster", "context.cluster");
    user = find("users", json::get_string(*ctx, "user", "context.user"), "user");
  }
  picojson::value exec;
  if (user && json::field(*user, "exec")) {
    exec = *json::field(*user, "exec");
    if (!detail::is_our_login(exec))
      throw bad_request("kubeconfig user runs exec plugin \"" + json::get_string(exec, "command", "command") +
                        "\", which pinniped whoami cannot run in-process");
    *user = picojson::value(picojson::object());  // credentials come from the login below
  }
  std::string dir = detail::parent_dir(path);
  KubeConfig kc = KubeConfig::from_kubeconfig(to_json_string(root), dir, context);
  r.server = kc.server;
  if (exec.is<picojson::object>()) {
    std::map<std::string, std::string> env;
    if (const auto *e = json::field(exec, "env"); e && e->is<picojson::array>())
      for (const auto &x : e->get<picojson::array>())
        env[json::get_string(x, "name", "env.name")] = json::get_string(x, "value", "env.value");
    auto args = json::get_string_list(exec, "args", "exec.args");
    std::vector<std::string> flags(args.begin() + 2, args.end());
    ExecClusterInfo ci;
    ci.server = kc.server;
    ci.ca_pem = kc.tls.ca_pem;
    ci.tls_server_name = kc.tls.server_name;
    ci.insecure_skip_tls_verify = kc.tls.insecure_skip_verify;
    bool provide = json::get_bool(exec, "provideClusterInfo", "exec.provideClusterInfo");
    auto cluster = provide ? std::optional<ExecClusterInfo>(ci) : std::nullopt;
    ClusterCredential cred;
    if (args[1] == "oidc") {
      // Prompts (a login URL, a device code) go to stderr, as kubectl shows them.
      cred = login_oidc(OidcLoginCommand::from_args(flags), cluster, std::cerr);
    } else {
      cred = login_static(
          StaticLoginOptions::from_args(flags,
                                        [&](const std::string &n) -> std::optional<std::string> {
                                          auto it = env.find(n);
                                          return it != env.end() ? std::optional<std::string>(it->second) : getenv(n);
                                        }),
          cluster);
    }
    kc.tls.client_cert_pem = cred.client_certificate_data;
    kc.tls.client_key_pem = cred.client_key_data;
  }
  KubeClient k(kc, o.timeout);
  WhoAmIRequest req;
  req.api_version = WhoAmIRequest::api_version_for(o.api_group_suffix);
  r.response = k.create("/apis/" + req.api_version + "/whoamirequests", req.to_json());
  try {
    r.user = *WhoAmIRequest::from_json(r.response, true).user;
  } catch (const Error &e) {
    throw Error(502, "InternalError", e.what());
  }
  return r;
}

// whoami's text form, as upstream prints it.
inline std::string whoami_text(const WhoAmIResult &r) {
  std::string groups;
  for (const auto &g : r.user.groups) groups += (groups.empty() ? "" : ", ") + g;
  return "Current cluster info:\n\nName: " + r.cluster_name + "\nURL: " + r.server +
         "\n\nCurrent user info:\n\nUsername: " + r.user.username + "\nGroups: " + groups + "\n";
}

// ---------------------------------------------------------------------------
// 7. local-user-authenticator
// Owns the TokenReview IDP for tests and small sites: users from Secrets or a
// file, bcrypt, the brute-force brake and its HTTPS surface. Calls 0-4, and
// section 5's ServingCertController and string/media-type helpers.
// ---------------------------------------------------------------------------

inline const std::string kLocalUserNamespace = "local-user-authenticator";

namespace detail {

// Equality in a time that depends on the lengths only (hashes have a public
// length), so a comparison leaks no prefix of the stored hash.
inline bool constant_time_equal(const std::string &a, const std::string &b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); i++) diff = diff | static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// crypt(3) of `password` with `setting` (a salt or a whole hash); "" when
// libcrypt refuses (bad setting, NUL in the password, too long).
inline std::string crypt_with(const std::string &password, const std::string &setting) {
  if (password.find('\0') != std::string::npos) return "";
  auto data = std::make_unique<crypt_data>();  // zeroed: crypt_rn wants that on first use
  const char *out = crypt_rn(password.c_str(), setting.c_str(), data.get(), sizeof(crypt_data));
  std::string r = out && out[0] != '*' ? out : "";
  mbedtls_platform_zeroize(data.get(), sizeof(crypt_data));  // held password-derived state
  return r;
}

}  // namespace detail

// The cost of a bcrypt hash ($2a$, $2b$ or $2y$, as htpasswd and Go write
// them), or -1 when `hash` is not one.
inline int bcrypt_cost(const std::string &hash) {
  static const std::string alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  if (hash.size() != 60 || hash.compare(0, 2, "$2") != 0 || hash[3] != '$' || hash[6] != '$') return -1;
  if (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') return -1;
  if (!std::isdigit(static_cast<unsigned char>(hash[4])) || !std::isdigit(static_cast<unsigned char>(hash[5])))
    return -1;
  int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  if (cost < 4 || cost > 31) return -1;
  if (hash.find_first_not_of(alphabet, 7) != std::string::npos) return -1;
  return cost;
}

// A new bcrypt hash ("$2y$", as htpasswd writes it) of `password`.
inline std::string bcrypt_hash(const std::string &password, int cost = PINNIPED_LOCAL_USER_DEFAULT_COST) {
  if (cost < 4 || cost > 31) throw bad_request("the bcrypt cost must be from 4 to 31");
  if (password.find('\0') != std::string::npos) throw bad_request("a password cannot contain a NUL byte");
  std::string rnd = detail::random_bytes(16);
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (!crypt_gensalt_rn("$2y$", static_cast<unsigned long>(cost), rnd.data(), static_cast<int>(rnd.size()), salt,
                        sizeof salt))
    throw internal_error("cannot make a bcrypt salt");
  std::string h = detail::crypt_with(password, salt);
  if (bcrypt_cost(h) != cost) throw internal_error("bcrypt hashing failed");
  return h;
}

// True when `password` matches `hash`. Takes the hash's full cost whatever
// the outcome; the final comparison is constant-time.
inline bool bcrypt_verify(const std::string &password, const std::string &hash) {
  if (bcrypt_cost(hash) < 0) return false;  // libcrypt knows more schemes than we accept
  std::string out = detail::crypt_with(password, hash);
  return !out.empty() && detail::constant_time_equal(out, hash);
}

namespace detail {
inline std::string read_line_fd(int fd) {
  std::string line;
  char c;
  for (;;) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    line += c;
    if (line.size() > 4096) throw bad_request("the password line is too long");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}
}  // namespace detail

// A password for `add-user`: on a terminal, asked twice on stderr without
// echo; else the first line of stdin. Never from a command line.
inline std::string read_password(const std::string &who) {
  if (!isatty(0)) return detail::read_line_fd(0);
  termios old{};
  tcgetattr(0, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  auto ask = [&](const std::string &prompt) {
    (void)!::write(2, prompt.data(), prompt.size());
    tcsetattr(0, TCSAFLUSH, &quiet);
    std::string line;
    try {
      line = detail::read_line_fd(0);
    } catch (...) {
      tcsetattr(0, TCSAFLUSH, &old);
      throw;
    }
    tcsetattr(0, TCSAFLUSH, &old);
    (void)!::write(2, "\n", 1);
    return line;
  };
  std::string first = ask("Password for " + who + ": ");
  if (first != ask("Again: ")) throw bad_request("the passwords do not match");
  return first;
}

// One user: a bcrypt password hash and the groups it belongs to.
struct LocalUser {
  std::string name;
  std::string password_hash;
  std::vector<std::string> groups;
};

// "a, b,,c" -> {"a", "b", "c"}: comma-separated, trimmed, empties dropped.
inline std::vector<std::string> parse_groups(const std::string &csv) {
  std::vector<std::string> out;
  for (const auto &g : detail::split(csv, ',')) {
    std::string t = detail::trim(g);
    if (!t.empty()) out.push_back(t);
  }
  return out;
}

namespace detail {
inline bool printable_text(const std::string &s) {
  return valid_utf8(s) &&
         std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}
}  // namespace detail

// The users file: one user per line, `name:bcrypt-hash[:group1,group2]`.
// Blank lines and lines starting with # are ignored, so htpasswd's own
// output (`name:hash`) is a valid file. Errors name the line, never a hash.
inline std::vector<LocalUser> parse_users_file(const std::string &text) {
  std::vector<LocalUser> out;
  std::set<std::string> seen;
  auto lines = detail::split(text, '\n');
  for (size_t i = 0; i < lines.size(); i++) {
    std::string line = lines[i];
    if (!line.empty() && line.back() == '\r') line.pop_back();
    line = detail::trim(line);
    if (line.empty() || line[0] == '#') continue;
    std::string where = "users file line " + std::to_string(i + 1) + ": ";
    auto c1 = line.find(':');
    if (c1 == std::string::npos) throw bad_request(where + "expected name:bcrypt-hash[:group1,group2]");
    auto c2 = line.find(':', c1 + 1);
    LocalUser u;
    u.name = detail::trim(line.substr(0, c1));
    u.password_hash = detail::trim(line.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1));
    if (c2 != std::string::npos) u.groups = parse_groups(line.substr(c2 + 1));
    if (u.name.empty()) throw bad_request(where + "the user name is empty");
    if (!detail::printable_text(u.name)) throw bad_request(where + "the user name is not printable UTF-8");
    for (const auto &g : u.groups)
      if (!detail::printable_text(g)) throw bad_request(where + "a group is not printable UTF-8");
    if (bcrypt_cost(u.password_hash) < 0)
      throw bad_request(where + "the password hash of \"" + u.name + "\" is not bcrypt ($2a$, $2b$ or $2y$)");
    if (!seen.insert(u.name).second) throw bad_request(where + "user \"" + u.name + "\" appears twice");
    out.push_back(std::move(u));
  }
  return out;
}

// One line of the users file.
inline std::string users_file_line(const LocalUser &u) {
  std::string line = u.name + ":" + u.password_hash;
  if (!u.groups.empty()) {
    line += ":";
    for (size_t i = 0; i < u.groups.size(); i++) line += (i ? "," : "") + u.groups[i];
  }
  return line;
}

// A name a users file can hold: no ':' (the separator), no leading '#' (a
// comment), no blanks around it.
inline bool valid_users_file_name(const std::string &n) {
  return !n.empty() && n.find(':') == std::string::npos && n == detail::trim(n) && n[0] != '#';
}

// A Secret name: a DNS subdomain (lowercase letters, digits, '-', '.').
inline bool valid_secret_name(const std::string &n) {
  if (n.empty() || n.size() > 253) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(n.front()) || !alnum(n.back())) return false;
  return std::all_of(n.begin(), n.end(), [&](char c) { return alnum(c) || c == '-' || c == '.'; });
}

// A user Secret as upstream's local-user-authenticator reads it: the name is
// the user, data.passwordHash the bcrypt hash, data.groups comma-separated.
// nullopt: not a user Secret (no passwordHash). Throws on a bad hash.
inline std::optional<LocalUser> user_from_secret(const picojson::value &secret) {
  const auto *data = json::get_object(secret, "data", "data");
  if (!data) return std::nullopt;
  std::string hash64 = json::get_string(*data, "passwordHash", "data.passwordHash");
  if (hash64.empty()) return std::nullopt;
  LocalUser u;
  if (const auto *m = json::get_object(secret, "metadata", "metadata"))
    u.name = json::get_string(*m, "name", "metadata.name");
  auto hash = detail::base64_decode(hash64);
  if (!hash) throw bad_request("Secret " + u.name + ": data.passwordHash is not base64");
  // `echo $(htpasswd ...)` and editors leave a newline behind.
  u.password_hash = detail::trim(*hash);
  while (!u.password_hash.empty() && (u.password_hash.back() == '\n' || u.password_hash.back() == '\r'))
    u.password_hash.pop_back();
  if (bcrypt_cost(u.password_hash) < 0)
    throw bad_request("Secret " + u.name + ": data.passwordHash is not a bcrypt hash");
  auto groups = detail::base64_decode(json::get_string(*data, "groups", "data.groups"));
  if (!groups) throw bad_request("Secret " + u.name + ": data.groups is not base64");
  u.groups = parse_groups(*groups);
  return u;
}

// The user as a Secret manifest (YAML) in namespace `ns`.
inline std::string user_secret_yaml(const LocalUser &u, const std::string &ns = kLocalUserNamespace) {
  std::string groups;
  for (size_t i = 0; i < u.groups.size(); i++) groups += (i ? "," : "") + u.groups[i];
  return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + u.name + "\n  namespace: " + ns +
         "\ntype: Opaque\ndata:\n  passwordHash: " + detail::base64_encode(u.password_hash) +
         "\n  groups: " + to_json_string(jv(detail::base64_encode(groups))) + "\n";
}

// The brute-force brake: failed attempts per user name, as token buckets of
// `burst` attempts refilled one per `refill`. Names are kept as SHA-256 in a
// table of at most `max_names`; refilled entries (same as none) give way
// first, and while the table is full of live ones, names it does not hold
// share one bucket, so a flood of names cannot push a braked name out.
struct BrakeOptions {
  size_t burst = 10;                        // failed attempts in a row; 0 turns the brake off
  Millis refill = std::chrono::seconds(6);  // one more attempt per this time
  size_t max_names = 10000;
};

class FailureBrake {
 public:
  explicit FailureBrake(BrakeOptions o = BrakeOptions()) : o_(o) { overflow_.tokens = static_cast<double>(o_.burst); }

  // Takes one attempt for `name`; false when the name's budget is used up.
  bool acquire(const std::string &name, Steady::time_point now = Steady::now()) {
    if (o_.burst == 0) return true;
    std::string key = detail::sha256(name);
    std::lock_guard<std::mutex> lk(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) {
      while (map_.size() >= o_.max_names && !lru_.empty() && refilled(map_.at(lru_.back()), now)) {
        map_.erase(lru_.back());
        lru_.pop_back();
      }
      if (map_.size() >= o_.max_names) {
        overflowed_++;
        return take(overflow_, now);
      }
      lru_.push_front(key);
      Entry e;
      e.tokens = static_cast<double>(o_.burst);
      e.at = now;
      e.pos = lru_.begin();
      it = map_.emplace(key, e).first;
    } else {
      lru_.splice(lru_.begin(), lru_, it->second.pos);
    }
    return take(it->second, now);
  }
  // A success forgets the name's failures.
  void succeeded(const std::string &name) {
    if (o_.burst == 0) return;
    std::string key = detail::sha256(name);
    std::lock_guard<std::mutex> lk(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return;
    lru_.erase(it->second.pos);
    map_.erase(it);
  }
  size_t tracked() const {
    std::lock_guard<std::mutex> lk(mu_);
    return map_.size();
  }
  // Attempts charged to the shared bucket because the table was full.
  uint64_t overflowed() const {
    std::lock_guard<std::mutex> lk(mu_);
    return overflowed_;
  }

 private:
  struct Entry {
    double tokens = 0;
    Steady::time_point at;
    std::list<std::string>::iterator pos;
  };
  double refilled_tokens(const Entry &e, Steady::time_point now) const {
    double add = std::chrono::duration<double>(now - e.at).count() /
                 std::max(1e-9, std::chrono::duration<double>(o_.refill).count());
    return std::min(static_cast<double>(o_.burst), e.tokens + std::max(0.0, add));
  }
  bool refilled(const Entry &e, Steady::time_point now) const {
    return refilled_tokens(e, now) >= static_cast<double>(o_.burst);
  }
  bool take(Entry &e, Steady::time_point now) {
    e.tokens = refilled_tokens(e, now);
    e.at = std::max(e.at, now);
    if (e.tokens < 1) return false;
    e.tokens -= 1;
    return true;
  }

  BrakeOptions o_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  std::list<std::string> lru_;  // most recently used first
  Entry overflow_;
  uint64_t overflowed_ = 0;
};

struct LocalUserStats {
  std::atomic<uint64_t> authenticated{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> braked{0};
  std::atomic<uint64_t> verifications{0};        // bcrypt against a user's hash
  std::atomic<uint64_t> dummy_verifications{0};  // bcrypt against the dummy hash (unknown users)
};

// The user directory and the password check. Thread-safe. An unknown user
// costs a full bcrypt against a dummy hash whose cost is the most common
// cost among the users, so timing does not tell who exists (a user whose
// hash has another cost still answers in that cost's time: keep one cost).
//
// The brake slows the guesser, not the user: failures count per source
// address and user name together (the source is X-Forwarded-For, which the
// concierge sends, else the TCP peer), so a stranger's wrong tries do not
// lock alice out from her own address. A second, per-name brake with ten
// times the burst, refilled ten times faster, bounds a spray from many
// (or forged) sources.
class LocalUsers {
 public:
  explicit LocalUsers(BrakeOptions brake = BrakeOptions(), int default_cost = PINNIPED_LOCAL_USER_DEFAULT_COST)
      : brake_(brake), name_brake_(per_name(brake)), default_cost_(default_cost) {
    refresh_dummy();
  }

  void replace_all(const std::vector<LocalUser> &users) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      users_.clear();
      for (const auto &u : users) users_[u.name] = u;
    }
    refresh_dummy();
  }
  void upsert(const LocalUser &u) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      users_[u.name] = u;
    }
    refresh_dummy();
  }
  void remove(const std::string &name) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      users_.erase(name);
    }
    refresh_dummy();
  }
  size_t size() const {
    std::lock_guard<std::mutex> lk(mu_);
    return users_.size();
  }
  std::optional<LocalUser> find(const std::string &name) const {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = users_.find(name);
    if (it == users_.end()) return std::nullopt;
    return it->second;
  }
  int dummy_cost() const {
    std::lock_guard<std::mutex> lk(mu_);
    return dummy_cost_;
  }

  // Checks `username` and `password` from `source`, brakes first. `reason`
  // is for logs.
  AuthResult authenticate(const std::string &username, const std::string &password, const std::string &source = "") {
    AuthResult r;
    std::optional<LocalUser> u;
    std::string dummy;
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = users_.find(username);
      if (it != users_.end()) u = it->second;
      dummy = dummies_.at(dummy_cost_);
    }
    if (u) r.user.username = u->name;  // for the log only, even when it fails
    std::string pair = source + "\n" + username;
    bool pair_ok = brake_.acquire(pair);
    if (!pair_ok || !name_brake_.acquire(username)) {
      stats_.braked++;
      r.reason = pair_ok ? "too many failed attempts for this user name from many sources; braked"
                         : "too many failed attempts for this user name from this source; braked";
      r.reason_class = "braked";
      return r;
    }
    bool ok = bcrypt_verify(password, u ? u->password_hash : dummy);
    (u ? stats_.verifications : stats_.dummy_verifications)++;
    if (u && ok) {
      brake_.succeeded(pair);
      name_brake_.succeeded(username);
      stats_.authenticated++;
      r.authenticated = true;
      r.user = {u->name, "", u->groups, {}};
      return r;
    }
    stats_.rejected++;
    r.reason = u ? "wrong password" : "unknown user";
    r.reason_class = u ? "wrong_password" : "unknown_user";
    return r;
  }

  const LocalUserStats &stats() const { return stats_; }
  FailureBrake &brake() { return brake_; }

 private:
  static BrakeOptions per_name(BrakeOptions o) {
    o.burst *= 10;
    o.refill /= 10;
    return o;
  }
  // Makes the dummy hash follow the users' most common cost; a new cost is
  // hashed outside the lock (it takes that cost's time, once).
  void refresh_dummy() {
    int cost = default_cost_;
    {
      std::lock_guard<std::mutex> lk(mu_);
      std::map<int, size_t> count;
      for (const auto &kv : users_) count[bcrypt_cost(kv.second.password_hash)]++;
      size_t best = 0;
      for (const auto &kv : count)
        if (kv.first > 0 && kv.second >= best) {
          best = kv.second;
          cost = kv.first;
        }
      if (dummies_.count(cost)) {
        dummy_cost_ = cost;
        return;
      }
    }
    std::string h = bcrypt_hash(detail::hex(detail::random_bytes(16)), cost);
    std::lock_guard<std::mutex> lk(mu_);
    dummies_[cost] = h;
    dummy_cost_ = cost;
  }

  mutable std::mutex mu_;
  std::map<std::string, LocalUser> users_;
  std::map<int, std::string> dummies_;  // by cost; at most 28
  int dummy_cost_ = 0;
  FailureBrake brake_;       // per source and user name
  FailureBrake name_brake_;  // per user name, over all sources
  int default_cost_;
  LocalUserStats stats_;
};

struct LocalUserAuthenticatorConfig : ServingOptions {
  LocalUserAuthenticatorConfig() {
    port = 8443;
    namespace_ = kLocalUserNamespace;
    serving_cert_validity = std::chrono::hours(24 * 365);
    serving_cert_renew_after = std::chrono::hours(24 * 300);
  }
  // Users from this file (reloaded when it changes); else from the Secrets
  // of `namespace_`, which needs a cluster.
  std::string users_file;
  BrakeOptions brake;
};

// `pinniped local-user-authenticator`: POST /authenticate with a TokenReview
// (v1 or v1beta1) whose token is `username:password`.
class LocalUserAuthenticator {
 public:
  static constexpr const char *kServingSecret = "local-user-authenticator-tls-serving-certificate";

  LocalUserAuthenticator(LocalUserAuthenticatorConfig cfg, Logger &log)
      : cfg_(std::move(cfg)), log_(log), users_(cfg_.brake), server_(cfg_, log) {
    install_routes();
  }
  ~LocalUserAuthenticator() { stop_background(); }
  LocalUserAuthenticator(const LocalUserAuthenticator &) = delete;
  LocalUserAuthenticator &operator=(const LocalUserAuthenticator &) = delete;

  // Loads users and the serving certificate, then binds. A bad users file,
  // bad certificate files or an unusable port are fatal.
  void start() {
    if (cfg_.tls_cert_file.empty() != cfg_.tls_key_file.empty())
      throw bad_request("give both --tls-cert and --tls-key, or neither");
    if (cfg_.users_file.empty() && !cfg_.kube_mode())
      throw bad_request(
          "no users: give --users-file FILE, or --kubeconfig FILE (in a pod: the service account) "
          "to read user Secrets");
    if (cfg_.kube_mode()) start_kube();
    if (!cfg_.users_file.empty()) reload_users(true);
    if (!cfg_.tls_cert_file.empty())
      load_serving_files(true);
    else if (!serving_ctl_)
      generate_serving();
    port_ = server_.bind(cfg_.listen_host, cfg_.port);
    reloader_.start(
        cfg_.reload_interval, [this] { reload_tick(); }, log_);
    log_.info("serving", {{"address", jv(cfg_.listen_host)},
                          {"port", jv(port_)},
                          {"users", jv(cfg_.users_file.empty() ? "secrets in " + cfg_.namespace_ : cfg_.users_file)},
                          {"count", jv(users_.size())}});
  }
  void run() {
    server_.run();
    stop_background();
    log_.info("stopped", {{"authenticated", jv(static_cast<int64_t>(users_.stats().authenticated.load()))},
                          {"rejected", jv(static_cast<int64_t>(users_.stats().rejected.load()))}});
  }
  // As the concierge's: not ready for --shutdown-delay, then closed.
  void shutdown() {
    log_.info("shutting down", {{"delayMs", jv(static_cast<int64_t>(cfg_.shutdown_delay.count()))}});
    server_.begin_drain();
    if (cfg_.shutdown_delay.count() > 0) std::this_thread::sleep_for(cfg_.shutdown_delay);
    server_.stop();
  }

  int port() const { return port_; }
  LocalUsers &users() { return users_; }
  bool synced() const { return !informer_ || informer_->synced(); }
  std::string serving_ca_pem() const {
    std::lock_guard<std::mutex> lk(mu_);
    return serving_ca_pem_;
  }

  // The TokenReview answer to a request body, without HTTP. Bad input
  // throws Error(400); unknown users and wrong passwords answer
  // authenticated: false.
  TokenReview review(const std::string &body, const std::string &source = "") {
    auto started = Steady::now();
    TokenReview in = TokenReview::from_json(json::parse(body));
    if (in.api_version != "authentication.k8s.io/v1" && in.api_version != "authentication.k8s.io/v1beta1")
      throw bad_request("apiVersion must be authentication.k8s.io/v1 or authentication.k8s.io/v1beta1");
    auto colon = in.token.find(':');
    if (colon == std::string::npos) throw bad_request("spec.token must be username:password");
    if (!synced()) throw Error(503, "ServiceUnavailable", "user Secrets are not listed yet");
    AuthResult r = users_.authenticate(in.token.substr(0, colon), in.token.substr(colon + 1), source);
    TokenReview out;
    out.api_version = in.api_version;
    out.authenticated = r.authenticated;
    if (r.authenticated) out.user = r.user;
    // User names only of known users: an unknown "name" may be a password
    // typed into the wrong field. Never the password or the token.
    Logger::Fields f{{"outcome", jv(r.authenticated ? "success" : "failed")}};
    if (!r.authenticated) {
      f.push_back({"reasonClass", jv(r.reason_class)});
      f.push_back({"reason", jv(r.reason)});
    }
    if (!r.user.username.empty()) f.push_back({"user", jv(r.user.username)});
    f.push_back({"us", jv(static_cast<int64_t>(
                           std::chrono::duration_cast<std::chrono::microseconds>(Steady::now() - started).count()))});
    log_.info("authenticate", f);
    return out;
  }

 private:
  void install_routes() {
    // No health endpoints: upstream's answers 404 there too.
    server_.handle([this](const httplib::Request &req, httplib::Response &res) { handle(req, res); });
    // TRACE and CONNECT have no route in cpp-httplib: answer them here.
    server_.tls().set_pre_routing_handler([](const httplib::Request &req, httplib::Response &res) {
      static const std::set<std::string> routed = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
      if (routed.count(req.method)) return httplib::Server::HandlerResponse::Unhandled;
      try {
        check_route(req);
      } catch (const Error &e) {
        send_status(res, e);
      }
      return httplib::Server::HandlerResponse::Handled;
    });
  }

  static void check_route(const httplib::Request &req) {
    if (req.path != "/authenticate") throw Error(404, "NotFound", "the server could not find the requested resource");
    if (req.method != "POST") throw Error(405, "MethodNotAllowed", "only POST is allowed on /authenticate");
  }

  // Upstream's order: path (404), method (405), media types (415), body (400).
  void handle(const httplib::Request &req, httplib::Response &res) {
    check_route(req);
    if (!detail::is_json_media_type(req.get_header_value("Content-Type")))
      throw Error(415, "UnsupportedMediaType", "Content-Type must be application/json");
    // As upstream: some listed type must be application/json, application/*
    // or */*, parameters ignored; no Accept header is refused too.
    bool accepted = false;
    for (const auto &t : detail::split(req.get_header_value("Accept"), ',')) {
      std::string mt = detail::lower(detail::trim(detail::split(t, ';')[0]));
      accepted = accepted || mt == "application/json" || mt == "application/*" || mt == "*/*";
    }
    if (!accepted) throw Error(415, "UnsupportedMediaType", "Accept must allow application/json");
    // The client of the exchange, as the concierge passes it on; else the peer.
    std::string source = req.remote_addr;
    if (req.has_header("X-Forwarded-For"))
      source = detail::trim(detail::split(req.get_header_value("X-Forwarded-For"), ',')[0]);
    TokenReview out = review(req.body, source);
    res.status = 200;
    res.set_header("Cache-Control", "no-store");
    res.set_content(to_json_string(out.to_json(false)), "application/json");
  }

  // --- users ------------------------------------------------------------------

  void reload_users(bool initial) {
    try {
      std::string why, version = users_file_.version();
      auto texts = users_file_.take(initial, &why);
      if (!texts) {
        // Logged once per version it waits for, not on every tick.
        if (!why.empty() && version != users_waiting_version_)
          log_.info("users file is changing; keeping the previous users until it is whole",
                    {{"file", jv(cfg_.users_file)}, {"why", jv(why)}});
        if (!why.empty()) users_waiting_version_ = version;
        return;
      }
      auto list = parse_users_file((*texts)[0]);
      users_.replace_all(list);
      log_.info("users loaded", {{"file", jv(cfg_.users_file)}, {"count", jv(list.size())}});
    } catch (const Error &e) {
      if (initial) throw;
      log_.error("users not reloaded; keeping the previous ones",
                 {{"file", jv(cfg_.users_file)}, {"error", jv(e.what())}});
    }
  }

  void on_secret(const std::string &type, const picojson::value &secret) {
    std::string name;
    if (const auto *m = json::field(secret, "metadata")) name = json::get_string(*m, "name", "metadata.name");
    if (name.empty()) return;
    if (type == "DELETED") {
      if (users_.find(name)) log_.info("user removed", {{"user", jv(name)}});
      users_.remove(name);
      return;
    }
    try {
      auto u = user_from_secret(secret);
      if (!u) {
        users_.remove(name);
        return;
      }
      users_.upsert(*u);
      log_.info(type == "ADDED" ? "user added" : "user updated",
                {{"user", jv(name)}, {"groups", jv(u->groups.size())}});
    } catch (const Error &e) {
      users_.remove(name);
      log_.warn("user Secret ignored", {{"secret", jv(name)}, {"error", jv(e.what())}});
    }
  }

  // --- the cluster and the serving certificate --------------------------------

  void start_kube() {
    KubeConfig kc = cfg_.kubeconfig.empty() ? KubeConfig::in_cluster()
                                            : KubeConfig::from_kubeconfig_file(cfg_.kubeconfig, cfg_.kube_context);
    log_.info("using the Kubernetes API", {{"server", jv(kc.server)}, {"config", jv(kc.source)}});
    kube_ = std::make_unique<KubeClient>(kc);
    if (cfg_.tls_cert_file.empty()) {
      ServingCertSettings s;
      s.namespace_ = cfg_.namespace_;
      s.secret_name = kServingSecret;
      s.service_name = "local-user-authenticator";
      s.validity = cfg_.serving_cert_validity;
      s.renew_after = cfg_.serving_cert_renew_after;
      auto &sc = controllers_.add(serving_ctl_, std::make_unique<ServingCertController>(
                                                    *kube_, log_, s,
                                                    [this](const CertificateAndKey &leaf, const std::string &ca,
                                                           const CertificateAndKey &) { set_serving(leaf, ca); }));
      sc.sync();
      sc.start();
    }
    if (cfg_.users_file.empty()) {
      controllers_
          .add(informer_,
               std::make_unique<Informer>(*kube_, "/api/v1/namespaces/" + cfg_.namespace_ + "/secrets", log_,
                                          [this](const std::string &t, const picojson::value &o) { on_secret(t, o); }))
          .start();
      auto until = Steady::now() + std::chrono::seconds(2 * PINNIPED_START_SYNC_WAIT_SECONDS);
      while (!informer_->synced() && Steady::now() < until) std::this_thread::sleep_for(Millis(20));
      if (!informer_->synced()) log_.warn("user Secrets not listed yet; answering 503 until they are");
    }
  }

  void set_serving(const CertificateAndKey &leaf, const std::string &ca_pem) {
    if (!server_.set_credentials({leaf.cert_pem, leaf.key_pem, ""})) return;
    if (ca_pem.empty()) return;
    {
      std::lock_guard<std::mutex> lk(mu_);
      serving_ca_pem_ = ca_pem;
    }
    // The CA is public: logged so that a WebhookAuthenticator can copy it.
    log_.info("serving CA", {{"certificateAuthorityData", jv(detail::base64_encode(ca_pem))}});
    if (!cfg_.serving_ca_out.empty()) write_file_atomic(cfg_.serving_ca_out, ca_pem, 0644);
  }

  void generate_serving() {
    auto g = generate_serving_certificate("local-user-authenticator", cfg_.tls_sans, cfg_.serving_cert_validity);
    set_serving(g.leaf, g.ca.cert_pem);
    log_.info("serving certificate generated", {{"names", jv(cfg_.tls_sans.size())}});
  }

  void load_serving_files(bool initial) {
    if (auto leaf = serving_files_.poll(initial, log_)) {
      set_serving(*leaf, "");
      log_.info("serving certificate loaded", {{"file", jv(cfg_.tls_cert_file)}});
    }
  }

  void reload_tick() {
    if (!cfg_.users_file.empty()) reload_users(false);
    if (!cfg_.tls_cert_file.empty()) load_serving_files(false);
    if (serving_ctl_) serving_ctl_->resync_if_due();
  }
  void stop_background() {
    reloader_.stop();
    controllers_.stop();
  }

  LocalUserAuthenticatorConfig cfg_;
  Logger &log_;
  LocalUsers users_;
  HttpsService server_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::string serving_ca_pem_;
  ServingFiles serving_files_{cfg_.tls_cert_file, cfg_.tls_key_file};
  WatchedFiles users_file_{{cfg_.users_file}};
  std::string users_waiting_version_;
  std::unique_ptr<KubeClient> kube_;
  std::unique_ptr<ServingCertController> serving_ctl_;
  std::unique_ptr<Informer> informer_;
  Controllers controllers_;  // after the loops it stops: destroyed before them
  PeriodicTask reloader_;
};

}  // namespace pinniped
