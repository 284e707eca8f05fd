// ID-token validation against its own floor: verify_jwt on a warm key set
// (base64url, two JSON parses, the claims, SHA-256 and the signature) and a
// bare mbedtls_pk_verify loop of the same algorithm (a hash made once, the
// signature only), for RS256 and ES256, and their ratio; then RS256 on every
// core, one key: ours (a copy of the RSA context per thread slot) against one
// shared mbedtls context (safe, but its mutex lets one thread in at a time).
// `bench-jwt` prints operations per second, the best of 5 rounds of 0.5 s.
// `bench-jwt MODE N` does N operations of MODE (jwt-rs256, verify-rs256,
// jwt-es256, verify-es256, floor-es256) for callgrind, as tools/instructions.sh counts:
// keys and signatures come from a fixed-seed DRBG, so runs repeat exactly.
#include <cstdio>

#include "pinniped.hpp"

using namespace pinniped;

namespace {

int fixed_entropy(void *, unsigned char *out, size_t n) {
  std::memset(out, 0x5a, n);
  return 0;
}

std::string b64url(const std::string &raw) { return detail::base64url_encode(raw); }
std::string mpi_bytes(const mbedtls_mpi &x, size_t len) {
  std::string b(len, '\0');
  mbedtls_mpi_write_binary(&x, reinterpret_cast<unsigned char *>(&b[0]), len);
  return b;
}

// One algorithm's material: a public-only pk context for the bare loop, its
// JWK, a signed ID token, and the signing input's hash and signature in the
// form mbedtls_pk_verify takes.
struct Case {
  mbedtls_pk_context pub;
  std::string jwk, token, hash, pk_sig, pub_der, raw_sig;
  Case() { mbedtls_pk_init(&pub); }
  ~Case() { mbedtls_pk_free(&pub); }
};

const Clock::time_point kNow = clock_from_time_t(1900000000);

std::string payload() {
  return R"({"iss":"https://dex.example.com:5556/dex","sub":"CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs",)"
         R"("aud":"pinniped-cli","exp":1900000600,"iat":1900000000,"nonce":"n-0S6_WzA2Mj","at_hash":"iKx9N0uAzCO3sRsXrjwf4Q",)"
         R"("email":"alice@example.com","email_verified":true,"name":"Alice Example","username":"alice",)"
         R"("groups":["devs","ops","system:masters-not","team-platform"]})";
}

void parse_public(mbedtls_pk_context *pk, const std::string &der) {
  if (mbedtls_pk_parse_public_key(pk, reinterpret_cast<const unsigned char *>(der.data()), der.size()) != 0)
    throw std::runtime_error("cannot parse the public key");
}

void make_case(Case &c, bool rsa, mbedtls_ctr_drbg_context *drbg) {
  mbedtls_pk_context priv;
  mbedtls_pk_init(&priv);
  auto rng = mbedtls_ctr_drbg_random;
  int ret = mbedtls_pk_setup(&priv, mbedtls_pk_info_from_type(rsa ? MBEDTLS_PK_RSA : MBEDTLS_PK_ECKEY));
  if (ret == 0)
    ret = rsa ? mbedtls_rsa_gen_key(mbedtls_pk_rsa(priv), rng, drbg, 2048, 65537)
              : mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(priv), rng, drbg);
  if (ret != 0) throw std::runtime_error("key generation failed");
  std::string kid = rsa ? "rsa-2048" : "ec-p256";
  std::string input =
      b64url("{\"alg\":\"" + std::string(rsa ? "RS256" : "ES256") + "\",\"kid\":\"" + kid + "\",\"typ\":\"JWT\"}") +
      "." + b64url(payload());
  c.hash = detail::sha256(input);
  auto *h = reinterpret_cast<const unsigned char *>(c.hash.data());
  std::string jws_sig;
  if (rsa) {
    mbedtls_rsa_context *r = mbedtls_pk_rsa(priv);
    mbedtls_mpi n, e;
    mbedtls_mpi_init(&n);
    mbedtls_mpi_init(&e);
    mbedtls_rsa_export(r, &n, nullptr, nullptr, nullptr, &e);
    c.jwk = "{\"kty\":\"RSA\",\"kid\":\"" + kid + "\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\"" +
            b64url(mpi_bytes(n, mbedtls_mpi_size(&n))) + "\",\"e\":\"" + b64url(mpi_bytes(e, mbedtls_mpi_size(&e))) +
            "\"}";
    mbedtls_mpi_free(&n);
    mbedtls_mpi_free(&e);
    jws_sig.assign(mbedtls_rsa_get_len(r), '\0');
    ret = mbedtls_rsa_rsassa_pkcs1_v15_sign(r, rng, drbg, MBEDTLS_RSA_PRIVATE, MBEDTLS_MD_SHA256, 32, h,
                                            reinterpret_cast<unsigned char *>(&jws_sig[0]));
    c.pk_sig = jws_sig;
  } else {
    mbedtls_ecp_keypair *kp = mbedtls_pk_ec(priv);
    unsigned char q[65];
    size_t qlen = 0;
    mbedtls_ecp_point_write_binary(&kp->grp, &kp->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &qlen, q, sizeof q);
    c.jwk = "{\"kty\":\"EC\",\"kid\":\"" + kid + "\",\"use\":\"sig\",\"crv\":\"P-256\",\"x\":\"" +
            b64url(std::string(reinterpret_cast<char *>(q) + 1, 32)) + "\",\"y\":\"" +
            b64url(std::string(reinterpret_cast<char *>(q) + 33, 32)) + "\"}";
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    ret = mbedtls_ecdsa_sign(&kp->grp, &r, &s, &kp->d, h, 32, rng, drbg);
    jws_sig = mpi_bytes(r, 32) + mpi_bytes(s, 32);
    namespace der = detail::der;
    c.pk_sig = der::seq(der::uint(mpi_bytes(r, mbedtls_mpi_size(&r))) + der::uint(mpi_bytes(s, mbedtls_mpi_size(&s))));
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
  }
  if (ret != 0) throw std::runtime_error("signing failed");
  c.raw_sig = jws_sig;
  c.token = input + "." + b64url(jws_sig);
  // The bare loop's key knows nothing private, as a JWKS key.
  unsigned char der_buf[1024];
  int n = mbedtls_pk_write_pubkey_der(&priv, der_buf, sizeof der_buf);
  if (n < 0) throw std::runtime_error("cannot write the public key");
  c.pub_der.assign(reinterpret_cast<char *>(der_buf + sizeof der_buf - n), static_cast<size_t>(n));
  parse_public(&c.pub, c.pub_der);
  mbedtls_pk_free(&priv);
}

JwtRules bench_rules() {
  JwtRules r;
  r.issuer = "https://dex.example.com:5556/dex";
  r.audience = "pinniped-cli";
  return r;
}

bool bare_verify(mbedtls_pk_context *pk, const Case &c) {
  return mbedtls_pk_verify(pk, MBEDTLS_MD_SHA256, reinterpret_cast<const unsigned char *>(c.hash.data()), 32,
                           reinterpret_cast<const unsigned char *>(c.pk_sig.data()), c.pk_sig.size()) == 0;
}

// ECDSA's floor: mbedtls_ecdsa_verify with the thread's prepared group
// (mbedtls_pk_verify loads the curve, and so rebuilds its table, each time).
bool ecdsa_floor(const Case &c) {
  const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(c.pub);
  mbedtls_mpi r, s;
  mbedtls_mpi_init(&r);
  mbedtls_mpi_init(&s);
  const auto *sig = reinterpret_cast<const unsigned char *>(c.raw_sig.data());
  int ret = mbedtls_mpi_read_binary(&r, sig, 32);
  if (ret == 0) ret = mbedtls_mpi_read_binary(&s, sig + 32, 32);
  if (ret == 0)
    ret = mbedtls_ecdsa_verify(detail::prepared_group(kp->grp.id),
                               reinterpret_cast<const unsigned char *>(c.hash.data()), 32, &kp->Q, &r, &s);
  mbedtls_mpi_free(&r);
  mbedtls_mpi_free(&s);
  return ret == 0;
}

// Operations per second of `op` on `threads` threads, best of 5 rounds.
double rate(int threads, const std::function<bool(int thread)> &op) {
  double best = 0;
  for (int round = 0; round < 5; round++) {
    std::atomic<long> done{0};
    std::atomic<bool> failed{false};
    auto start = Steady::now(), until = start + Millis(500);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++)
      ts.emplace_back([&, t] {
        long n = 0;
        while (Steady::now() < until)
          for (int i = 0; i < 16; i++, n++)
            if (!op(t)) failed = true;
        done += n;
      });
    for (auto &t : ts) t.join();
    if (failed) throw std::runtime_error("an operation failed");
    best = std::max(best, done / std::chrono::duration<double>(Steady::now() - start).count());
  }
  return best;
}

}  // namespace

int main(int argc, char **argv) {
  mbedtls_ctr_drbg_context drbg;
  mbedtls_ctr_drbg_init(&drbg);
  static const unsigned char pers[] = "bench-jwt";
  mbedtls_ctr_drbg_seed(&drbg, fixed_entropy, nullptr, pers, sizeof pers - 1);
  Case rs, es;
  make_case(rs, true, &drbg);
  make_case(es, false, &drbg);
  mbedtls_ctr_drbg_free(&drbg);
  auto keys = JsonWebKeySet::parse("{\"keys\":[" + rs.jwk + "," + es.jwk + "]}");
  JwtRules rules = bench_rules();
  auto jwt = [&](const Case &c) { return verify_jwt(c.token, *keys, rules, kNow).ok; };

  if (argc == 3) {
    std::string mode = argv[1];
    long n = std::atol(argv[2]);
    for (long i = 0; i < n; i++) {
      bool ok = mode == "jwt-rs256"      ? jwt(rs)
                : mode == "verify-rs256" ? bare_verify(&rs.pub, rs)
                : mode == "jwt-es256"    ? jwt(es)
                : mode == "verify-es256" ? bare_verify(&es.pub, es)
                : mode == "floor-es256"  ? ecdsa_floor(es)
                                         : (std::fprintf(stderr, "bench-jwt: unknown mode %s\n", mode.c_str()), false);
      if (!ok) return 1;
    }
    return 0;
  }
  if (argc != 1) {
    std::fprintf(stderr, "usage: bench-jwt [jwt-rs256|verify-rs256|jwt-es256|verify-es256|floor-es256 N]\n");
    return 2;
  }
  if (!jwt(rs) || !jwt(es)) {
    std::fprintf(stderr, "bench-jwt: a token does not verify: %s\n",
                 verify_jwt(rs.token, *keys, rules, kNow).reason.c_str());
    return 1;
  }
  std::printf("ID token validation, one thread (token %zu bytes), best of 5 rounds of 0.5 s:\n", rs.token.size());
  for (const Case *c : {&rs, &es}) {
    const char *alg = c == &rs ? "RS256" : "ES256";
    mbedtls_pk_context *pk = const_cast<mbedtls_pk_context *>(&c->pub);
    bare_verify(pk, *c);  // warm: RSA's Montgomery constant, EC's comb table
    double v = rate(1, [&](int) { return bare_verify(pk, *c); });
    double j = rate(1, [&](int) { return jwt(*c); });
    std::printf("  %s  verify_jwt %8.0f/s   bare mbedtls_pk_verify %8.0f/s   ratio %.2f\n", alg, j, v, j / v);
    if (c == &es) {
      double f = rate(1, [&](int) { return ecdsa_floor(*c); });
      std::printf("  %s  mbedtls_ecdsa_verify, prepared group %8.0f/s   ratio %.2f\n", alg, f, j / f);
    }
  }
  int threads = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  std::vector<mbedtls_pk_context> own(static_cast<size_t>(threads));
  for (auto &pk : own) {
    mbedtls_pk_init(&pk);
    parse_public(&pk, rs.pub_der);
  }
  double single = rate(1, [&](int) { return jwt(rs); });
  double ours = rate(threads, [&](int) { return jwt(rs); });
  double shared = rate(threads, [&](int) { return bare_verify(&rs.pub, rs); });
  double separate = rate(threads, [&](int t) { return bare_verify(&own[static_cast<size_t>(t)], rs); });
  for (auto &pk : own) mbedtls_pk_free(&pk);
  std::printf("RS256 on %d threads, one key (%d cores):\n", threads,
              static_cast<int>(std::thread::hardware_concurrency()));
  std::printf("  verify_jwt, one key set (a context copy per thread slot)   %8.0f/s  (%.2fx one thread)\n", ours,
              ours / single);
  std::printf("  mbedtls_pk_verify, one shared context (its mutex)          %8.0f/s\n", shared);
  std::printf("  mbedtls_pk_verify, a context per thread                    %8.0f/s\n", separate);
  return 0;
}
