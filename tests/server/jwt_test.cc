// JwkSet and JwtVerifier: the three algorithms, every refusal with its reason (the classic
// attacks among them: alg none, HS256 signed with the public key, an algorithm that does not
// match the key, a tampered header or payload), JWKS files that are refused, key reloads, and the
// cache (expiry, removed keys, its bound, concurrent reloads).
#include "server/jwt.h"

#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/jwks.h"
#include "tests/testing/pki.h"
#include "tests/testing/process.h"
#include "tests/testing/status_matchers.h"

namespace agate::server {
namespace {

using ::agate::testing::Base64Url;
using ::agate::testing::HmacJwt;
using ::agate::testing::Jwks;
using ::agate::testing::KeyType;
using ::agate::testing::SignJwt;
using ::agate::testing::StatusIs;
using ::agate::testing::TestKey;
using ::agate::testing::WriteFileOrDie;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kIssuer[] = "https://idp.example.com";
constexpr char kAudience[] = "agate";
// FakeClock's start, 1'800'000'000: 2027-01-15T08:00:00Z.
constexpr int64_t kNow = 1'800'000'000;

// The keys every test shares (an RSA key takes a while to generate).
struct Keys {
  TestKey rsa = TestKey::Generate(KeyType::kRsa2048);
  TestKey ec = TestKey::Generate(KeyType::kEcP256);
  TestKey ed = TestKey::Generate(KeyType::kEd25519);
  TestKey other_ec = TestKey::Generate(KeyType::kEcP256);  // in no JWKS
};
const Keys& keys() {
  static const Keys* keys = new Keys();
  return *keys;
}

// Header is a JWS header with alg and kid (and typ JWT).
std::string Header(absl::string_view alg, absl::string_view kid) {
  return absl::StrCat(R"({"alg":")", alg, R"(","kid":")", kid, R"(","typ":"JWT"})");
}

// Payload is the claims of a valid token for kIssuer at kNow, with changes applied in order: each
// sets a claim to a raw JSON value, or removes it when the value is empty.
std::string Payload(const std::vector<std::pair<std::string, std::string>>& changes = {}) {
  std::vector<std::pair<std::string, std::string>> claims = {
      {"iss", absl::StrCat("\"", kIssuer, "\"")},
      {"sub", "\"alice@example.com\""},
      {"aud", "\"agate\""},
      {"exp", absl::StrCat(kNow + 600)},
      {"nbf", absl::StrCat(kNow - 60)},
      {"iat", absl::StrCat(kNow - 60)},
      {"jti", "\"token-1\""},
      {"groups", R"(["approvers","ops"])"},
  };
  for (const auto& [name, value] : changes) {
    auto it = std::find_if(claims.begin(), claims.end(),
                           [&](const auto& claim) { return claim.first == name; });
    if (it != claims.end()) claims.erase(it);
    if (!value.empty()) claims.emplace_back(name, value);
  }
  return absl::StrCat("{",
                      absl::StrJoin(claims, ",",
                                    [](std::string* out, const auto& claim) {
                                      absl::StrAppend(out, "\"", claim.first, "\":", claim.second);
                                    }),
                      "}");
}

// Token is a token signed by key under kid, with Payload(changes).
std::string Token(const TestKey& key, absl::string_view kid,
                  const std::vector<std::pair<std::string, std::string>>& changes = {}) {
  return SignJwt(key, Header(key.Algorithm(), kid), Payload(changes));
}

// Part returns the i-th dot-separated part of token.
std::string Part(absl::string_view token, int i) {
  return std::vector<std::string>(absl::StrSplit(token, '.'))[i];
}

// ---------------------------------------------------------------------------------------------
// Base64UrlDecode

TEST(Base64UrlTest, DecodesUnpaddedBase64UrlAndNothingElse) {
  struct Case {
    std::string in;
    bool ok;
    std::string want;
  };
  const Case cases[] = {
      {"", true, ""},        {"QQ", true, "A"},
      {"QUI", true, "AB"},   {"QUJD", true, "ABC"},
      {"-w", true, "\xfb"},  {"_w", true, "\xff"},
      {"Q", false, ""},      // a lone character carries no byte
      {"QQ==", false, ""},   // padding
      {"QR", false, ""},     // non-zero unused bits: a second spelling of "A"
      {"Q+", false, ""},     // base64, not base64url
      {"QU JD", false, ""},  // whitespace
      {"QU\nJD", false, ""}, {std::string("Q\0", 2), false, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    std::string out;
    EXPECT_EQ(Base64UrlDecode(c.in, &out), c.ok);
    if (c.ok) {
      EXPECT_EQ(out, c.want);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// JwkSet

TEST(JwkSetTest, ReadsEachKeyTypeAndSkipsEncryptionKeys) {
  const Keys& k = keys();
  const std::string json = absl::StrCat(
      R"({"keys":[)", k.rsa.Jwk("rsa-1"), ",", k.ec.Jwk("ec-1"), ",", k.ed.Jwk("ed-1"), ",",
      absl::StrReplaceAll(k.other_ec.Jwk("enc-1"), {{R"("use":"sig")", R"("use":"enc")"}}),
      R"(,{"kid":"x5c-only","kty":"RSA","use":"enc"}]})");
  absl::StatusOr<std::shared_ptr<const JwkSet>> set = JwkSet::Parse(json, "test.jwks");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->keys().size(), 3);
  ASSERT_NE((*set)->Find("rsa-1"), nullptr);
  EXPECT_EQ((*set)->Find("rsa-1")->algorithm(), JwsAlgorithm::kRs256);
  EXPECT_EQ((*set)->Find("ec-1")->algorithm(), JwsAlgorithm::kEs256);
  EXPECT_EQ((*set)->Find("ed-1")->algorithm(), JwsAlgorithm::kEdDsa);
  EXPECT_EQ((*set)->Find("enc-1"), nullptr);
  EXPECT_EQ((*set)->Find("nope"), nullptr);
  EXPECT_EQ((*set)->source(), "test.jwks");
}

TEST(JwkSetTest, KeysVerifyTheirOwnSignaturesOnly) {
  const Keys& k = keys();
  absl::StatusOr<std::shared_ptr<const JwkSet>> set =
      JwkSet::Parse(Jwks({{&k.rsa, "rsa-1"}, {&k.ec, "ec-1"}, {&k.ed, "ed-1"}}), "test.jwks");
  ASSERT_TRUE(set.ok()) << set.status();
  for (const auto& [key, kid] : {std::pair{&k.rsa, "rsa-1"}, {&k.ec, "ec-1"}, {&k.ed, "ed-1"}}) {
    SCOPED_TRACE(kid);
    const JwkSet::Key* jwk = (*set)->Find(kid);
    ASSERT_NE(jwk, nullptr);
    const std::string signature = key->Sign("hello");
    EXPECT_TRUE(jwk->VerifySignature("hello", signature));
    EXPECT_FALSE(jwk->VerifySignature("hellO", signature));
    EXPECT_FALSE(jwk->VerifySignature("hello", k.other_ec.Sign("hello")));
    EXPECT_FALSE(jwk->VerifySignature("hello", ""));
    EXPECT_FALSE(jwk->VerifySignature("hello", signature.substr(1)));
  }
}

TEST(JwkSetTest, RefusesBadKeysNamingTheSourceAndTheKey) {
  const Keys& k = keys();
  const std::string ec = k.ec.Jwk("ec-1");
  // A JWK member's value replaced ("\"x\":\"...\"" -> replacement).
  auto with = [&](const std::string& jwk, absl::string_view member, absl::string_view value) {
    const size_t start = jwk.find(absl::StrCat("\"", member, "\":\""));
    const size_t end = jwk.find('"', start + member.size() + 4);
    return absl::StrCat(jwk.substr(0, start), "\"", member, "\":", value, jwk.substr(end + 1));
  };
  auto set = [](absl::string_view key) { return absl::StrCat(R"({"keys":[)", key, "]}"); };
  struct Case {
    std::string name;
    std::string json;
    std::string want;
  };
  const Case cases[] = {
      {"not json", "keys", "test.jwks: not a JSON object ("},
      {"no keys array", R"({"keys":{}})", R"(test.jwks: not a JWKS (no "keys" array))"},
      {"a key that is not an object", R"({"keys":[1]})", "test.jwks: key 0: not a JSON object"},
      {"no kid", set(R"({"kty":"EC"})"), "test.jwks: key 0: has no kid"},
      {"kid not a string", set(R"({"kid":7,"kty":"EC"})"), "test.jwks: key 0: kid is not a string"},
      {"empty kid", set(R"({"kid":"","kty":"EC"})"), R"(key 0 (kid ""): kid is empty)"},
      {"private EC key", set(absl::StrCat(ec.substr(0, ec.size() - 1), R"(,"d":"AAAA"})")),
       R"(test.jwks: key 0 (kid "ec-1"): has the private member "d": a public JWKS must not )"
       "hold private keys"},
      {"private key on an encryption key",
       set(R"({"kid":"e","use":"enc","kty":"RSA","n":"AQAB","e":"AQAB","p":"AQAB"})"),
       R"(key 0 (kid "e"): has the private member "p")"},
      {"symmetric key", set(R"({"kid":"s","kty":"oct","k":"c2VjcmV0"})"),
       R"(key 0 (kid "s"): has the private member "k")"},
      {"unsupported kty", set(R"({"kid":"s","kty":"oct"})"),
       R"(key 0 (kid "s"): unsupported kty "oct" (RSA, EC or OKP))"},
      {"no kty", set(R"({"kid":"s"})"), R"(key 0 (kid "s"): has no kty)"},
      {"unsupported crv", set(with(ec, "crv", "\"P-384\"")),
       R"(key 0 (kid "ec-1"): unsupported crv "P-384" (P-256))"},
      {"Ed25519 with an EC curve", set(with(k.ed.Jwk("ed-1"), "crv", "\"X25519\"")),
       R"(key 0 (kid "ed-1"): unsupported crv "X25519" (Ed25519))"},
      {"bad base64url", set(with(ec, "x", "\"ab+c\"")),
       R"(key 0 (kid "ec-1"): x is not base64url)"},
      {"x not a string", set(with(ec, "x", "12")), R"(key 0 (kid "ec-1"): x is not a string)"},
      {"no y", set(with(ec, "y", "null")), R"(key 0 (kid "ec-1"): y is not a string)"},
      {"short x", set(with(ec, "x", absl::StrCat("\"", Base64Url(std::string(31, 'x')), "\""))),
       R"(key 0 (kid "ec-1"): x is 31 bytes, not 32)"},
      {"point not on the curve",
       set(with(with(ec, "x", absl::StrCat("\"", Base64Url(std::string(32, '\1')), "\"")), "y",
                absl::StrCat("\"", Base64Url(std::string(32, '\2')), "\""))),
       R"(key 0 (kid "ec-1"): x and y are not a point on P-256)"},
      {"long Ed25519 key",
       set(with(k.ed.Jwk("ed-1"), "x", absl::StrCat("\"", Base64Url(std::string(33, 'x')), "\""))),
       R"(key 0 (kid "ed-1"): x is 33 bytes, not 32)"},
      {"short RSA modulus",
       set(with(
           k.rsa.Jwk("rsa-1"), "n",
           absl::StrCat("\"", Base64Url(absl::StrCat("\xc1", std::string(127, '\x35'))), "\""))),
       R"(key 0 (kid "rsa-1"): n is a 1024-bit modulus (2048 to 16384 bits))"},
      {"alg of another key type", set(with(ec, "alg", "\"RS256\"")),
       R"(key 0 (kid "ec-1"): alg "RS256" contradicts kty EC (ES256))"},
      {"alg none", set(with(k.rsa.Jwk("rsa-1"), "alg", "\"none\"")),
       R"(key 0 (kid "rsa-1"): alg "none" contradicts kty RSA (RS256))"},
      {"duplicate kid", absl::StrCat(R"({"keys":[)", ec, ",", k.ed.Jwk("ec-1"), "]}"),
       R"(test.jwks: key 1 (kid "ec-1"): duplicate kid (key 0 has it too))"},
      {"no signature key", R"({"keys":[]})", "test.jwks: no signature key"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(JwkSet::Parse(c.json, "test.jwks"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.want)));
  }
}

TEST(JwkSetTest, LoadNamesTheFileItCannotRead) {
  testing::TempDir dir;
  const std::string missing = dir.path() + "/missing.json";
  EXPECT_THAT(JwkSet::Load(missing), StatusIs(absl::StatusCode::kNotFound,
                                              HasSubstr(absl::StrCat(missing, ": cannot read"))));
  const std::string big = dir.path() + "/big.json";
  WriteFileOrDie(big, std::string(JwkSet::kMaxFileBytes + 1, ' '));
  EXPECT_THAT(JwkSet::Load(big),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat(big, ": larger than 1 MiB (1048577 bytes)"))));
  const std::string bad = dir.path() + "/bad.json";
  WriteFileOrDie(bad, "{");
  EXPECT_THAT(JwkSet::Load(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr(absl::StrCat(bad, ": not a JSON object"))));
}

// ---------------------------------------------------------------------------------------------
// JwtVerifier

class JwtVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    jwks_path_ = dir_.path() + "/idp.jwks.json";
    WriteJwks({{&keys().rsa, "rsa-1"}, {&keys().ec, "ec-1"}, {&keys().ed, "ed-1"}});
    verifier_ = MakeVerifier({});
  }

  void WriteJwks(const std::vector<std::pair<const TestKey*, std::string>>& set) {
    WriteFileOrDie(jwks_path_, Jwks(set));
  }

  std::unique_ptr<JwtVerifier> MakeVerifier(JwtVerifierOptions options) {
    absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier = JwtVerifier::Create(
        {{.issuer = kIssuer, .audience = kAudience, .jwks_path = jwks_path_}}, clock_, options);
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    return verifier.ok() ? *std::move(verifier) : nullptr;
  }

  // ExpectRefused checks that token is refused with want in the reason, which never holds the
  // token's payload or signature.
  void ExpectRefused(const std::string& token, const std::string& want) {
    const absl::StatusOr<std::shared_ptr<const VerifiedToken>> result = verifier_->Verify(token);
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr(want)));
    for (absl::string_view part : absl::StrSplit(token, '.')) {
      if (part.size() >= 8) {
        EXPECT_THAT(std::string(result.status().message()), Not(HasSubstr(std::string(part))));
      }
    }
  }

  testing::TempDir dir_;
  std::string jwks_path_;
  FakeClock clock_{absl::FromUnixSeconds(kNow)};
  std::unique_ptr<JwtVerifier> verifier_;
};

TEST_F(JwtVerifierTest, AcceptsEachAlgorithmAndReadsTheClaims) {
  const Keys& k = keys();
  for (const auto& [key, kid] : {std::pair{&k.rsa, "rsa-1"}, {&k.ec, "ec-1"}, {&k.ed, "ed-1"}}) {
    SCOPED_TRACE(kid);
    absl::StatusOr<std::shared_ptr<const VerifiedToken>> token =
        verifier_->Verify(Token(*key, kid));
    ASSERT_TRUE(token.ok()) << token.status();
    const VerifiedToken& t = **token;
    EXPECT_EQ(t.issuer, kIssuer);
    EXPECT_EQ(t.subject, "alice@example.com");
    EXPECT_EQ(t.token_id, "token-1");
    EXPECT_EQ(t.algorithm, key->Algorithm());
    EXPECT_EQ(t.key_id, kid);
    EXPECT_THAT(t.groups, ElementsAre("approvers", "ops"));
    EXPECT_EQ(t.expires, absl::FromUnixSeconds(kNow + 600));
    EXPECT_EQ(t.not_before, absl::FromUnixSeconds(kNow - 60));
    EXPECT_EQ(t.issued_at, absl::FromUnixSeconds(kNow - 60));
  }
}

TEST_F(JwtVerifierTest, OptionalClaimsMayBeAbsentAndAudMayBeAnArray) {
  absl::StatusOr<std::shared_ptr<const VerifiedToken>> token =
      verifier_->Verify(Token(keys().ec, "ec-1",
                              {{"nbf", ""},
                               {"iat", ""},
                               {"jti", ""},
                               {"groups", ""},
                               {"aud", R"(["other","agate"])"},
                               {"exp", absl::StrCat(kNow, ".5")}}));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ((*token)->token_id, "");
  EXPECT_THAT((*token)->groups, IsEmpty());
  EXPECT_EQ((*token)->not_before, absl::InfinitePast());
  EXPECT_EQ((*token)->issued_at, absl::InfinitePast());
  EXPECT_EQ((*token)->expires, absl::FromUnixMillis(kNow * 1000 + 500));
}

TEST_F(JwtVerifierTest, TheLeewayCountsBothWays) {
  // 30 s of leeway: exp 29 s ago and nbf 29 s ahead pass; 30 s is out.
  EXPECT_TRUE(verifier_->Verify(Token(keys().ec, "ec-1", {{"exp", absl::StrCat(kNow - 29)}})).ok());
  EXPECT_TRUE(verifier_->Verify(Token(keys().ec, "ec-1", {{"nbf", absl::StrCat(kNow + 29)}})).ok());
  ExpectRefused(Token(keys().ec, "ec-1", {{"exp", absl::StrCat(kNow - 30)}}),
                "token expired at 2027-01-15T07:59:30Z");
  ExpectRefused(Token(keys().ec, "ec-1", {{"nbf", absl::StrCat(kNow + 31)}}),
                "not valid before 2027-01-15T08:00:31Z");
}

TEST_F(JwtVerifierTest, RefusesEveryBadTokenWithItsReason) {
  const Keys& k = keys();
  const std::string good = Token(k.rsa, "rsa-1");
  const std::string payload = Payload();
  auto with_header = [&](absl::string_view header) { return SignJwt(k.rsa, header, payload); };
  struct Case {
    std::string name;
    std::string token;
    std::string want;
  };
  const Case cases[] = {
      // The shape.
      {"not a JWS", "abcdef", "malformed token: not a JWS compact token"},
      {"too long", std::string(JwtVerifier::kMaxTokenBytes + 1, 'a'),
       "malformed token: longer than 16384 bytes"},
      {"header not base64url", absl::StrCat("!", good),
       "malformed token: the header is not base64url"},
      {"header not JSON",
       absl::StrCat(Base64Url("{\"alg\""), ".", Part(good, 1), ".", Part(good, 2)),
       "malformed token: the header is not a JSON object ("},
      {"payload padded", absl::StrCat(Part(good, 0), ".", Part(good, 1), "=.", Part(good, 2)),
       "malformed token: the payload is not base64url"},
      {"payload not JSON", SignJwt(k.rsa, Header("RS256", "rsa-1"), "[1]"),
       "malformed token: the payload is not a JSON object ("},
      {"a claim twice",
       SignJwt(k.rsa, Header("RS256", "rsa-1"),
               absl::StrCat(payload.substr(0, payload.size() - 1), R"(,"sub":"mallory"})")),
       "malformed token: the payload is not a JSON object ("},
      {"signature not base64url", absl::StrCat(good, "+"),
       "malformed token: the signature is not base64url"},
      {"no signature part", absl::StrCat(Part(good, 0), ".", Part(good, 1)),
       "malformed token: no signature part"},
      {"five parts (JWE)", absl::StrCat(good, ".", Part(good, 2), ".x"),
       "malformed token: more than three parts"},
      // The header.
      {"alg none",
       absl::StrCat(Base64Url(R"({"alg":"none","kid":"rsa-1"})"), ".", Part(good, 1), "."),
       "alg none is refused"},
      {"alg none without a signature part",
       absl::StrCat(Base64Url(R"({"alg":"none"})"), ".", Part(good, 1)), "alg none is refused"},
      {"alg NONE",
       absl::StrCat(Base64Url(R"({"alg":"NONE","kid":"rsa-1"})"), ".", Part(good, 1), "."),
       "alg none is refused"},
      {"HS256 with the RSA public key as its secret",
       HmacJwt(k.rsa.PublicPem(), Header("HS256", "rsa-1"), payload),
       "alg HS256 is refused (an HMAC needs a shared secret; agate holds public keys only)"},
      {"HS512", HmacJwt("secret", Header("HS512", "rsa-1"), payload), "alg HS512 is refused"},
      {"PS256", with_header(Header("PS256", "rsa-1")),
       "alg PS256 is not supported (RS256, ES256, EdDSA)"},
      {"no alg", with_header(R"({"kid":"rsa-1"})"), "malformed token: the header has no alg"},
      {"alg not a string", with_header(R"({"alg":1,"kid":"rsa-1"})"),
       "malformed token: alg is not a string"},
      {"no kid", with_header(R"({"alg":"RS256"})"), "malformed token: the header has no kid"},
      {"crit", with_header(R"({"alg":"RS256","kid":"rsa-1","crit":["exp"],"exp":1})"),
       "the crit header is refused"},
      {"typ of another kind", with_header(R"({"alg":"RS256","kid":"rsa-1","typ":"at+jwt"})"),
       "typ at+jwt is not JWT"},
      // The issuer and the key.
      {"unknown issuer", Token(k.rsa, "rsa-1", {{"iss", R"("https://evil.example.com")"}}),
       "unknown issuer https://evil.example.com"},
      {"no iss", Token(k.rsa, "rsa-1", {{"iss", ""}}), "the token has no iss"},
      {"unknown kid", Token(k.rsa, "k9"),
       "kid k9 is not among the keys of issuer https://idp.example.com"},
      {"RS256 header on an EC key", SignJwt(k.ec, Header("RS256", "ec-1"), payload),
       "alg RS256 does not match key ec-1 (ES256)"},
      {"ES256 header on an Ed25519 key", SignJwt(k.ed, Header("ES256", "ed-1"), payload),
       "alg ES256 does not match key ed-1 (EdDSA)"},
      // The signature.
      {"signed by another key", Token(k.other_ec, "ec-1"), "signature does not verify"},
      {"tampered payload",
       absl::StrCat(Part(good, 0), ".", Base64Url(Payload({{"sub", "\"mallory@example.com\""}})),
                    ".", Part(good, 2)),
       "signature does not verify"},
      {"tampered header",
       absl::StrCat(Base64Url(R"({"alg":"RS256","kid":"rsa-1","typ":"jwt"})"), ".", Part(good, 1),
                    ".", Part(good, 2)),
       "signature does not verify"},
      {"empty signature", absl::StrCat(Part(good, 0), ".", Part(good, 1), "."),
       "signature does not verify"},
      {"ES256 signature in DER",
       absl::StrCat(Part(Token(k.ec, "ec-1"), 0), ".", Part(Token(k.ec, "ec-1"), 1), ".",
                    Base64Url(std::string(72, '\x30'))),
       "signature does not verify"},
      // The claims.
      {"expired", Token(k.ed, "ed-1", {{"exp", absl::StrCat(kNow - 31)}}),
       "token expired at 2027-01-15T07:59:29Z"},
      {"not yet valid", Token(k.ed, "ed-1", {{"nbf", absl::StrCat(kNow + 3600)}}),
       "not valid before 2027-01-15T09:00:00Z"},
      {"no exp", Token(k.ed, "ed-1", {{"exp", ""}}), "the token has no exp"},
      {"exp a string", Token(k.ed, "ed-1", {{"exp", "\"tomorrow\""}}),
       "malformed token: exp is not a NumericDate"},
      {"nbf negative", Token(k.ed, "ed-1", {{"nbf", "-1"}}),
       "malformed token: nbf is not a NumericDate"},
      {"wrong audience", Token(k.ed, "ed-1", {{"aud", R"("billing")"}}),
       "audience agate not in the token's aud"},
      {"wrong audiences", Token(k.ed, "ed-1", {{"aud", R"(["billing","agate2"])"}}),
       "audience agate not in the token's aud"},
      {"no aud", Token(k.ed, "ed-1", {{"aud", ""}}), "the token has no aud"},
      {"aud a number", Token(k.ed, "ed-1", {{"aud", "1"}}),
       "malformed token: aud is not a string or an array of strings"},
      {"aud with a number", Token(k.ed, "ed-1", {{"aud", R"(["agate",1])"}}),
       "malformed token: aud is not a string or an array of strings"},
      {"no sub", Token(k.ed, "ed-1", {{"sub", ""}}), "the token has no sub"},
      {"empty sub", Token(k.ed, "ed-1", {{"sub", R"("")"}}), "the token has no sub"},
      {"sub not a string", Token(k.ed, "ed-1", {{"sub", "42"}}),
       "malformed token: sub is not a string"},
      {"jti not a string", Token(k.ed, "ed-1", {{"jti", "42"}}),
       "malformed token: jti is not a string"},
      {"groups a string", Token(k.ed, "ed-1", {{"groups", R"("admins")"}}),
       "malformed token: groups claim groups is not an array of strings"},
      {"groups with an object", Token(k.ed, "ed-1", {{"groups", R"(["a",{}])"}}),
       "malformed token: groups claim groups is not an array of strings"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ExpectRefused(c.token, c.want);
  }
}

TEST_F(JwtVerifierTest, TypMayBeJwtInAnyCase) {
  EXPECT_TRUE(
      verifier_
          ->Verify(SignJwt(keys().rsa, R"({"alg":"RS256","kid":"rsa-1","typ":"jwt"})", Payload()))
          .ok());
  EXPECT_TRUE(
      verifier_->Verify(SignJwt(keys().rsa, R"({"alg":"RS256","kid":"rsa-1"})", Payload())).ok());
}

TEST_F(JwtVerifierTest, QuotesTheClaimsItNamesEscapedAndCut) {
  ExpectRefused(Token(keys().ed, "ed-1",
                      {{"iss", absl::StrCat("\"https://evil\\n", std::string(100, 'x'), "\"")}}),
                absl::StrCat("unknown issuer https://evil\\n", std::string(51, 'x'), "..."));
}

TEST_F(JwtVerifierTest, MaxLifetimeRefusesLongLivedTokens) {
  verifier_ = MakeVerifier({.max_lifetime = absl::Hours(1)});
  EXPECT_TRUE(verifier_->Verify(Token(keys().ec, "ec-1")).ok());
  ExpectRefused(
      Token(keys().ec, "ec-1", {{"iat", absl::StrCat(kNow)}, {"exp", absl::StrCat(kNow + 7200)}}),
      "token lifetime 2h exceeds the maximum 1h");
  // Without iat, from now.
  ExpectRefused(Token(keys().ec, "ec-1", {{"iat", ""}, {"exp", absl::StrCat(kNow + 3601)}}),
                "token lifetime 1h1s exceeds the maximum 1h");
}

TEST_F(JwtVerifierTest, EachIssuerUsesOnlyItsOwnKeysAndGroupsClaim) {
  const std::string other_path = dir_.path() + "/other.jwks.json";
  WriteFileOrDie(other_path, Jwks({{&keys().other_ec, "other-1"}}));
  absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier =
      JwtVerifier::Create({{.issuer = kIssuer, .audience = kAudience, .jwks_path = jwks_path_},
                           {.issuer = "https://other.example.com",
                            .audience = "agate-prod",
                            .jwks_path = other_path,
                            .groups_claim = "roles"}},
                          clock_);
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  const std::vector<std::pair<std::string, std::string>> other = {
      {"iss", R"("https://other.example.com")"},
      {"aud", R"("agate-prod")"},
      {"roles", R"(["admin"])"}};
  absl::StatusOr<std::shared_ptr<const VerifiedToken>> token =
      (*verifier)->Verify(Token(keys().other_ec, "other-1", other));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ((*token)->issuer, "https://other.example.com");
  EXPECT_THAT((*token)->groups, ElementsAre("admin"));
  // The first issuer's key does not vouch for the second issuer's tokens.
  EXPECT_THAT(
      (*verifier)->Verify(Token(keys().ec, "ec-1", other)),
      StatusIs(absl::StatusCode::kUnauthenticated,
               HasSubstr("kid ec-1 is not among the keys of issuer https://other.example.com")));
  // Each issuer's audience.
  EXPECT_THAT((*verifier)->Verify(Token(keys().ec, "ec-1", {{"aud", R"("agate-prod")"}})),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("audience agate not in the token's aud")));
}

TEST_F(JwtVerifierTest, CreateRefusesABadConfigurationNamingIt) {
  const JwtIssuer good{.issuer = kIssuer, .audience = kAudience, .jwks_path = jwks_path_};
  auto create = [&](std::vector<JwtIssuer> issuers, JwtVerifierOptions options = {}) {
    return JwtVerifier::Create(std::move(issuers), clock_, options);
  };
  EXPECT_THAT(create({}), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("no token issuer is configured")));
  EXPECT_THAT(create({good, good}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("token issuer https://idp.example.com is listed twice")));
  JwtIssuer no_audience = good;
  no_audience.audience = "";
  EXPECT_THAT(create({no_audience}), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("token issuer 0: audience is empty")));
  EXPECT_THAT(create({good}, {.leeway = absl::Seconds(-1)}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("leeway is negative")));
  JwtIssuer missing = good;
  missing.jwks_path = dir_.path() + "/missing.json";
  EXPECT_THAT(create({missing}),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr(absl::StrCat(missing.jwks_path, ": cannot read"))));
  WriteFileOrDie(jwks_path_, absl::StrCat(R"({"keys":[)", keys().ec.Jwk("ec-1"), ",",
                                          keys().ec.Jwk("ec-1"), "]}"));
  EXPECT_THAT(create({good}), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr(absl::StrCat(jwks_path_, ": key 1"))));
}

// ---------------------------------------------------------------------------------------------
// Reloads and the cache

TEST_F(JwtVerifierTest, ReloadKeysPicksUpANewKey) {
  const std::string token = Token(keys().other_ec, "ec-2");
  ExpectRefused(token, "kid ec-2 is not among the keys");
  WriteJwks({{&keys().rsa, "rsa-1"}, {&keys().other_ec, "ec-2"}});
  ASSERT_TRUE(verifier_->ReloadKeys().ok());
  EXPECT_TRUE(verifier_->Verify(token).ok());
  // Nothing changed: nothing is read, nothing is dropped.
  EXPECT_TRUE(verifier_->ReloadKeys().ok());
}

TEST_F(JwtVerifierTest, ABrokenNewFileKeepsTheOldKeysAndSaysWhy) {
  const std::string token = Token(keys().ec, "ec-1");
  ASSERT_TRUE(verifier_->Verify(token).ok());
  WriteFileOrDie(jwks_path_, R"({"keys":[{"kid":"x","kty":"EC","crv":"P-256","x":"@"}]})");
  EXPECT_THAT(verifier_->ReloadKeys(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat(jwks_path_,
                                              R"(: key 0 (kid "x"): x is not base64url (issuer )",
                                              kIssuer, " keeps its previous keys)"))));
  EXPECT_TRUE(verifier_->Verify(token).ok());
  // A fresh token (not cached) still verifies with the old keys.
  EXPECT_TRUE(verifier_->Verify(Token(keys().ed, "ed-1", {{"jti", R"("fresh")"}})).ok());
  // The broken file is not read again until it changes.
  EXPECT_TRUE(verifier_->ReloadKeys().ok());
  // A missing file keeps them too.
  ASSERT_EQ(unlink(jwks_path_.c_str()), 0);
  EXPECT_THAT(
      verifier_->ReloadKeys(),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr(absl::StrCat(jwks_path_, ": cannot read"))));
  EXPECT_TRUE(verifier_->Verify(Token(keys().rsa, "rsa-1")).ok());
  // Fixed: read again.
  WriteJwks({{&keys().ed, "ed-1"}});
  EXPECT_TRUE(verifier_->ReloadKeys().ok());
  ExpectRefused(token, "kid ec-1 is not among the keys");
}

TEST_F(JwtVerifierTest, TheCacheReturnsTheSameVerificationUntilExpiry) {
  const std::string token = Token(keys().rsa, "rsa-1", {{"exp", absl::StrCat(kNow + 60)}});
  absl::StatusOr<std::shared_ptr<const VerifiedToken>> first = verifier_->Verify(token);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::shared_ptr<const VerifiedToken>> second = verifier_->Verify(token);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->get(), second->get());  // a hit
  clock_.Advance(absl::Seconds(60 + 29));
  EXPECT_TRUE(verifier_->Verify(token).ok());
  clock_.Advance(absl::Seconds(1));
  ExpectRefused(token, "token expired at 2027-01-15T08:01:00Z");
  ExpectRefused(token, "token expired at 2027-01-15T08:01:00Z");
}

TEST_F(JwtVerifierTest, ACachedTokenIsRefusedOnceItsKeyIsRemovedOrReplaced) {
  const std::string ec_token = Token(keys().ec, "ec-1");
  const std::string ed_token = Token(keys().ed, "ed-1");
  const std::string rsa_token = Token(keys().rsa, "rsa-1");
  absl::StatusOr<std::shared_ptr<const VerifiedToken>> rsa_first = verifier_->Verify(rsa_token);
  ASSERT_TRUE(rsa_first.ok());
  ASSERT_TRUE(verifier_->Verify(ec_token).ok());
  ASSERT_TRUE(verifier_->Verify(ed_token).ok());
  // ec-1 removed; ed-1 is now another key under the same kid; rsa-1 stays.
  const TestKey new_ed = TestKey::Generate(KeyType::kEd25519);
  WriteJwks({{&keys().rsa, "rsa-1"}, {&new_ed, "ed-1"}});
  ASSERT_TRUE(verifier_->ReloadKeys().ok());
  ExpectRefused(ec_token, "kid ec-1 is not among the keys of issuer https://idp.example.com");
  ExpectRefused(ed_token, "signature does not verify");
  absl::StatusOr<std::shared_ptr<const VerifiedToken>> rsa_again = verifier_->Verify(rsa_token);
  ASSERT_TRUE(rsa_again.ok());
  EXPECT_EQ(rsa_first->get(), rsa_again->get());  // still cached
  EXPECT_TRUE(verifier_->Verify(Token(new_ed, "ed-1")).ok());
}

TEST_F(JwtVerifierTest, TheCacheIsBoundedExpiredFirstThenOldest) {
  verifier_ = MakeVerifier({.cache_entries = 2});
  auto token = [](absl::string_view jti, int64_t exp) {
    return Token(keys().ed, "ed-1",
                 {{"jti", absl::StrCat("\"", jti, "\"")}, {"exp", absl::StrCat(exp)}});
  };
  const std::string a = token("a", kNow + 3600), b = token("b", kNow + 10);
  const std::string c = token("c", kNow + 3600), d = token("d", kNow + 3600);
  auto verify = [&](const std::string& t) {
    absl::StatusOr<std::shared_ptr<const VerifiedToken>> v = verifier_->Verify(t);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : nullptr;
  };
  const auto a1 = verify(a);
  verify(b);
  clock_.Advance(absl::Seconds(41));  // b is expired, a is the oldest
  verify(c);                          // b goes
  EXPECT_EQ(verify(a), a1);
  verify(d);  // full, none expired: a, the oldest, goes
  EXPECT_NE(verify(a), a1);
}

TEST_F(JwtVerifierTest, WithoutACacheEveryCallVerifies) {
  verifier_ = MakeVerifier({.cache_entries = 0});
  const std::string token = Token(keys().ec, "ec-1");
  absl::StatusOr<std::shared_ptr<const VerifiedToken>> first = verifier_->Verify(token);
  absl::StatusOr<std::shared_ptr<const VerifiedToken>> second = verifier_->Verify(token);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first->get(), second->get());
}

TEST_F(JwtVerifierTest, ConcurrentVerifiesWhileKeysReloadStayConsistent) {
  // Readers verify a token whose key stays and two whose key comes and goes, while this thread
  // rewrites the JWKS and reloads. A two-entry cache for three tokens keeps evicting, so most
  // calls verify in full and some are in flight on the old keys when a reload swaps them: such a
  // verification must not be cached past the reload. The stable token always passes; the others
  // pass or are refused for their kid, nothing else; once a reload that removed their key has
  // returned (and the verifications in flight have finished), they are refused.
  verifier_ = MakeVerifier({.cache_entries = 2});
  const std::string stable = Token(keys().rsa, "rsa-1");
  const std::string flipping[] = {Token(keys().ec, "ec-1", {{"jti", R"("a")"}}),
                                  Token(keys().ec, "ec-1", {{"jti", R"("b")"}})};
  std::atomic<bool> stop{false};
  std::atomic<int> unexpected{0}, verified{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      for (int i = 0; !stop.load(); ++i) {
        if (!verifier_->Verify(stable).ok()) unexpected++;
        absl::StatusOr<std::shared_ptr<const VerifiedToken>> v = verifier_->Verify(flipping[i % 2]);
        if (v.ok()) {
          verified++;
        } else if (!absl::StrContains(v.status().message(), "kid ec-1 is not among the keys")) {
          unexpected++;
        }
      }
    });
  }
  int wrong_after_reload = 0;
  for (int round = 0; round < 40; ++round) {
    const bool removed = round % 2 == 0;
    if (removed) {
      WriteJwks({{&keys().rsa, "rsa-1"}});
    } else {
      WriteJwks({{&keys().rsa, "rsa-1"}, {&keys().ec, "ec-1"}});
    }
    ASSERT_TRUE(verifier_->ReloadKeys().ok());
    absl::SleepFor(absl::Milliseconds(2));
    for (const std::string& token : flipping) {
      wrong_after_reload += verifier_->Verify(token).ok() == removed;
    }
  }
  stop = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_GT(verified.load(), 0);
  EXPECT_EQ(wrong_after_reload, 0);
}

}  // namespace
}  // namespace agate::server
