// Keys made here and JWS signatures made with them, for the suites that mint
// their own ID tokens (test_jwt, test_oidc_login). mbedTLS directly: the
// product only verifies.
#pragma once

#include <string>
#include <vector>

#include "pinniped.hpp"

namespace testing {
namespace jwt_keys {

using namespace pinniped;

inline std::string b64url(const std::string &raw) { return detail::base64url_encode(raw); }

inline std::string mpi_bytes(const mbedtls_mpi &x) {
  std::string b(mbedtls_mpi_size(&x), '\0');
  mbedtls_mpi_write_binary(&x, reinterpret_cast<unsigned char *>(&b[0]), b.size());
  return b;
}

// A key pair made here, its public half as a JWK.
struct TestKey {
  std::string kid, crv;  // crv empty: RSA
  std::unique_ptr<PrivateKey> key;
  std::string n, e, x, y;  // public parts, raw bytes

  std::string jwk(const std::string &extra = "") const { return jwk_as(kid, extra); }
  std::string jwk_as(const std::string &kid, const std::string &extra = "") const {
    if (crv.empty())
      return "{\"kty\":\"RSA\",\"kid\":\"" + kid + "\",\"use\":\"sig\",\"n\":\"" + b64url(n) + "\",\"e\":\"" +
             b64url(e) + "\"" + extra + "}";
    return "{\"kty\":\"EC\",\"kid\":\"" + kid + "\",\"crv\":\"" + crv + "\",\"x\":\"" + b64url(x) + "\",\"y\":\"" +
           b64url(y) + "\"" + extra + "}";
  }
};

inline TestKey make_rsa(const std::string &kid, unsigned bits) {
  TestKey k;
  k.kid = kid;
  k.key = PrivateKey::generate_rsa(bits);
  mbedtls_rsa_context *rsa = mbedtls_pk_rsa(*k.key->get());
  mbedtls_mpi n, e;
  mbedtls_mpi_init(&n);
  mbedtls_mpi_init(&e);
  mbedtls_rsa_export(rsa, &n, nullptr, nullptr, nullptr, &e);
  k.n = mpi_bytes(n);
  k.e = mpi_bytes(e);
  mbedtls_mpi_free(&n);
  mbedtls_mpi_free(&e);
  return k;
}

inline TestKey make_ec(const std::string &kid, mbedtls_ecp_group_id curve) {
  TestKey k;
  k.kid = kid;
  k.crv = curve == MBEDTLS_ECP_DP_SECP256R1 ? "P-256" : "P-384";
  k.key = PrivateKey::generate_ec(curve);
  const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(*k.key->get());
  unsigned char buf[200];
  size_t len = 0;
  mbedtls_ecp_point_write_binary(&kp->grp, &kp->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &len, buf, sizeof buf);
  size_t half = (len - 1) / 2;
  k.x.assign(reinterpret_cast<char *>(buf) + 1, half);
  k.y.assign(reinterpret_cast<char *>(buf) + 1 + half, half);
  return k;
}

inline std::string jwks(const std::vector<std::string> &keys) {
  std::string out = "{\"keys\":[";
  for (size_t i = 0; i < keys.size(); i++) out += (i ? "," : "") + keys[i];
  return out + "]}";
}

// The JWS signature of `input` with `k` for `alg`, as JWS carries it
// (ECDSA as raw r||s; PSS with a salt as long as the hash unless told).
inline std::string sign(const TestKey &k, const std::string &alg, const std::string &input, int pss_salt = -1) {
  mbedtls_md_type_t md = alg.substr(2) == "384"   ? MBEDTLS_MD_SHA384
                         : alg.substr(2) == "512" ? MBEDTLS_MD_SHA512
                                                  : MBEDTLS_MD_SHA256;
  const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md);
  unsigned char hash[64];
  mbedtls_md(info, reinterpret_cast<const unsigned char *>(input.data()), input.size(), hash);
  auto hl = mbedtls_md_get_size(info);
  const mbedtls_pk_context &pk = *k.key->get();
  int ret;
  std::string sig;
  if (alg[0] == 'E') {
    const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(pk);
    size_t half = (kp->grp.pbits + 7) / 8;
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    ret = mbedtls_ecdsa_sign(detail::prepared_group(kp->grp.id), &r, &s, &kp->d, hash, hl, detail::rng_fill, nullptr);
    sig.assign(2 * half, '\0');
    auto *out = reinterpret_cast<unsigned char *>(&sig[0]);
    if (ret == 0) ret = mbedtls_mpi_write_binary(&r, out, half);
    if (ret == 0) ret = mbedtls_mpi_write_binary(&s, out + half, half);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
  } else {
    mbedtls_rsa_context *rsa = mbedtls_pk_rsa(pk);
    sig.assign(mbedtls_rsa_get_len(rsa), '\0');
    auto *out = reinterpret_cast<unsigned char *>(&sig[0]);
    if (alg[0] == 'P') {
      mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, md);
      ret = mbedtls_rsa_rsassa_pss_sign_ext(rsa, detail::rng_fill, nullptr, md, static_cast<unsigned>(hl), hash,
                                            pss_salt < 0 ? static_cast<int>(hl) : pss_salt, out);
      mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V15, MBEDTLS_MD_NONE);
    } else {
      ret = mbedtls_rsa_rsassa_pkcs1_v15_sign(rsa, detail::rng_fill, nullptr, MBEDTLS_RSA_PRIVATE, md,
                                              static_cast<unsigned>(hl), hash, out);
    }
  }
  if (ret != 0) throw std::runtime_error("signing failed: " + detail::mbed_error(ret));
  return sig;
}

inline std::string hmac_sha256(const std::string &secret, const std::string &input) {
  unsigned char mac[32];
  mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), reinterpret_cast<const unsigned char *>(secret.data()),
                  secret.size(), reinterpret_cast<const unsigned char *>(input.data()), input.size(), mac);
  return std::string(reinterpret_cast<char *>(mac), 32);
}

inline int64_t secs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

inline std::string header_for_kid(const std::string &alg, const std::string &kid) {
  return "{\"alg\":\"" + alg + "\",\"kid\":\"" + kid + "\",\"typ\":\"JWT\"}";
}

// header.payload.signature from raw JSON texts.
inline std::string token_from(const TestKey &k, const std::string &alg, const std::string &header_json,
                              const std::string &payload_json) {
  std::string input = b64url(header_json) + "." + b64url(payload_json);
  return input + "." + b64url(sign(k, alg, input));
}

}  // namespace jwt_keys
}  // namespace testing
