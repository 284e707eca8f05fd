// The crypto floor of an exchange, in instructions: P-256 key generation
// and the certificate signature, each the way pinniped does it (one
// prepared curve group per thread) and the way a plain mbedTLS call does it
// (a curve group loaded per operation: mbedtls_ecp_gen_key, mbedtls_pk_sign).
// `bench-crypto-floor MODE N` does N operations of MODE; tools/instructions.sh
// runs it under callgrind with N = 1 and N = 1 + COUNT and prints the
// difference per operation, which repeats from run to run (time does not,
// on these shared cores). Modes: keygen, keygen-plain, sign, sign-plain.
#include <cstdio>

#include "pinniped.hpp"

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: bench-crypto-floor keygen|keygen-plain|sign|sign-plain N\n");
    return 2;
  }
  std::string mode = argv[1];
  int n = std::atoi(argv[2]);
  auto ca = pinniped::make_self_signed_ca("bench-signer", std::chrono::hours(24));
  auto signer = pinniped::Signer::from_pem(ca.cert_pem, ca.key_pem);
  auto key = pinniped::PrivateKey::parse(ca.key_pem);
  auto client = pinniped::ClientKey::generate();
  unsigned char hash[32] = {1};
  for (int i = 0; i < n; i++) {
    if (mode == "keygen") {
      (void)pinniped::PrivateKey::generate_ec();
    } else if (mode == "keygen-plain") {
      mbedtls_ecp_keypair kp;
      mbedtls_ecp_keypair_init(&kp);
      if (mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &kp, pinniped::detail::rng_fill, nullptr) != 0) return 1;
      mbedtls_ecp_keypair_free(&kp);
    } else if (mode == "sign") {
      // The whole certificate, as an exchange issues it.
      (void)signer->issue("alice", {"devs"}, std::chrono::minutes(5), client);
    } else if (mode == "sign-plain") {
      unsigned char sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
      size_t len = 0;
      if (mbedtls_pk_sign(key->get(), MBEDTLS_MD_SHA256, hash, sizeof hash, sig, &len, pinniped::detail::rng_fill,
                          nullptr) != 0)
        return 1;
    } else {
      std::fprintf(stderr, "bench-crypto-floor: unknown mode %s\n", mode.c_str());
      return 2;
    }
  }
  return 0;
}
