// Identity micro-benchmarks: verifying a bearer token (server/jwt.h) per algorithm, on keys and
// tokens the test PKI generates at start-up (tests/testing/pki.h).
//
//   build/bench/identity_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// BM_VerifyCached: the same token again, the per-call cost once a token is known (a cache hit;
// the budget is 5 us). BM_VerifyUncached: a first verification (the cache off): base64url, two
// JSON parses, the signature. Numbers and the machine they were measured on belong in
// docs/perf.md.
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "common/clock.h"
#include "server/jwt.h"
#include "tests/testing/pki.h"
#include "tests/testing/process.h"

namespace agate::server {
namespace {

using ::agate::testing::KeyType;
using ::agate::testing::TestKey;

constexpr char kIssuer[] = "https://idp.example.com";

// One issuer whose JWKS holds one key of each type, and a token of typical size for each.
struct Setup {
  testing::TempDir dir;
  TestKey rsa = TestKey::Generate(KeyType::kRsa2048);
  TestKey ec = TestKey::Generate(KeyType::kEcP256);
  TestKey ed = TestKey::Generate(KeyType::kEd25519);
  std::string jwks_path = dir.path() + "/jwks.json";

  Setup() {
    testing::WriteFileOrDie(jwks_path, testing::Jwks({{&rsa, "rsa"}, {&ec, "ec"}, {&ed, "ed"}}));
  }

  const TestKey& Key(KeyType type) const {
    return type == KeyType::kRsa2048 ? rsa : type == KeyType::kEcP256 ? ec : ed;
  }

  // Token is an OIDC-style token of about a kilobyte, valid for an hour.
  std::string Token(KeyType type) const {
    const TestKey& key = Key(type);
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    const std::string kid = type == KeyType::kRsa2048  ? "rsa"
                            : type == KeyType::kEcP256 ? "ec"
                                                       : "ed";
    return testing::SignJwt(
        key, absl::StrCat(R"({"alg":")", key.Algorithm(), R"(","kid":")", kid, R"(","typ":"JWT"})"),
        absl::StrCat(
            R"({"iss":")", kIssuer,
            R"(","sub":"00u1a2b3c4d5e6f7g8h9","aud":["agate","account"],"exp":)", now + 3600,
            R"(,"iat":)", now, R"(,"nbf":)", now,
            R"(,"jti":"6f1c2d9e-4b7a-4c1e-9f3a-0d2b8c7e5a41","email":"alice@example.com",)",
            R"("name":"Alice Example","groups":["approvers","ops","support-leads"]})"));
  }

  std::unique_ptr<JwtVerifier> Verifier(size_t cache_entries) const {
    absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier =
        JwtVerifier::Create({{.issuer = kIssuer, .audience = "agate", .jwks_path = jwks_path}},
                            RealClock(), {.cache_entries = cache_entries});
    if (!verifier.ok()) std::abort();
    return *std::move(verifier);
  }
};

const Setup& GetSetup() {
  static const Setup setup;  // destroyed at exit, with its directory
  return setup;
}

void BM_VerifyCached(benchmark::State& state, KeyType type) {
  static JwtVerifier* verifier = GetSetup().Verifier(10'000).release();
  const std::string token = GetSetup().Token(type);
  if (!verifier->Verify(token).ok()) state.SkipWithError("the token does not verify");
  for (auto _ : state) {
    absl::StatusOr<std::shared_ptr<const VerifiedToken>> verified = verifier->Verify(token);
    benchmark::DoNotOptimize(verified);
  }
  state.counters["token_bytes"] = benchmark::Counter(token.size(), benchmark::Counter::kAvgThreads);
}
BENCHMARK_CAPTURE(BM_VerifyCached, RS256, KeyType::kRsa2048)->Threads(1)->Threads(2);
BENCHMARK_CAPTURE(BM_VerifyCached, ES256, KeyType::kEcP256)->Threads(1)->Threads(2);
BENCHMARK_CAPTURE(BM_VerifyCached, EdDSA, KeyType::kEd25519)->Threads(1)->Threads(2);

void BM_VerifyUncached(benchmark::State& state, KeyType type) {
  const std::unique_ptr<JwtVerifier> verifier = GetSetup().Verifier(0);
  const std::string token = GetSetup().Token(type);
  for (auto _ : state) {
    absl::StatusOr<std::shared_ptr<const VerifiedToken>> verified = verifier->Verify(token);
    if (!verified.ok()) state.SkipWithError("the token does not verify");
    benchmark::DoNotOptimize(verified);
  }
  state.counters["token_bytes"] = benchmark::Counter(token.size(), benchmark::Counter::kAvgThreads);
}
BENCHMARK_CAPTURE(BM_VerifyUncached, RS256, KeyType::kRsa2048);
BENCHMARK_CAPTURE(BM_VerifyUncached, ES256, KeyType::kEcP256);
BENCHMARK_CAPTURE(BM_VerifyUncached, EdDSA, KeyType::kEd25519);

}  // namespace
}  // namespace agate::server
