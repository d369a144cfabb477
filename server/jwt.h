// JwtVerifier: who a person is, from an OIDC-style JWT bearer token, verified locally against the
// JWKS file the access policy names for the token's issuer. No network, no hand-written crypto
// (OpenSSL's EVP through server/jwks.h).
//
// A token is accepted when all of these hold, checked in this order:
//   - it is a JWS compact token (header.payload.signature, base64url, at most 16 KiB);
//   - its header's alg is RS256, ES256 or EdDSA (`none` and every HS* are refused: this verifier
//     holds public keys only, so an HMAC "signed" with a public key's bytes proves nothing), it
//     has a kid, no crit, and typ is absent or JWT (any case);
//   - its iss is a configured issuer, its kid is in that issuer's JWKS, and the header's alg is
//     the key's algorithm (an RS256 header on an EC key is refused);
//   - the signature verifies;
//   - exp is after now - leeway; nbf, if present, is before now + leeway; exp - iat (without
//     iat: exp - now) is at most max_lifetime; aud (a string or an array of strings) contains the
//     issuer's audience; sub is a non-empty string; the groups claim, if present, is an array of
//     strings.
// Anything else is UNAUTHENTICATED with one reason ("token expired at 2027-01-15T08:00:00Z",
// "unknown issuer https://x", "signature does not verify", "kid k9 is not in /etc/jwks.json",
// "malformed token: ..."). Reasons never contain the token; claims they quote (iss, kid, alg) are
// C-escaped and cut to 64 bytes, since the token's author chose them.
//
// Cache: a verified token is kept by its text until exp + leeway (so a hit costs a hash lookup
// under a shard's lock, no allocation, no signature check; bench/identity_bench.cc measures it),
// at most cache_entries tokens (expired ones go first, then the oldest). ReloadKeys drops the
// tokens whose key left the JWKS or changed. Failed verifications are not cached: each costs at
// most one signature check, which a fresh forged token costs too, so caching them would save an
// attacker nothing and let junk evict good tokens.
//
// Keys: Create reads every JWKS file. ReloadKeys re-reads each file whose stamp (inode, size,
// mtime, ctime: common/file_watch.h's FileStamp) changed since it was last read; a file that
// is missing or invalid keeps the keys its issuer had, and is not read again until it changes.
// Call it periodically (a stat per issuer when nothing changed) or on SIGHUP.
//
// Thread-safe: Verify from any number of threads, concurrently with ReloadKeys (a key set is an
// immutable snapshot swapped atomically; a Verify finishes on the snapshot it started with).
// The clock must outlive the verifier.
//
// Example:
//   ASSIGN_OR_RETURN(std::unique_ptr<JwtVerifier> verifier,
//                    JwtVerifier::Create({{.issuer = "https://idp.example.com",
//                                          .audience = "agate",
//                                          .jwks_path = "/etc/agate/idp.jwks.json"}},
//                                         RealClock()));
//   absl::StatusOr<std::shared_ptr<const VerifiedToken>> who = verifier->Verify(bearer);
//   if (!who.ok()) return who.status();           // UNAUTHENTICATED, with the reason
//   if (absl::c_linear_search((*who)->groups, "approvers")) { ... }
//   ...every few seconds: if (absl::Status s = verifier->ReloadKeys(); !s.ok()) log(s);
#ifndef AGATE_SERVER_JWT_H_
#define AGATE_SERVER_JWT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/jwks.h"

namespace agate::server {

// JwtIssuer is one trusted issuer, as the access policy names it.
struct JwtIssuer {
  std::string issuer;                   // must equal the token's iss
  std::string audience;                 // must be in the token's aud
  std::string jwks_path;                // its public keys (server/jwks.h); re-read when changed
  std::string groups_claim = "groups";  // an array of strings (absent: no groups)
};

// VerifiedToken is what a token proves.
struct VerifiedToken {
  std::string issuer;
  std::string subject;
  std::string token_id;   // jti; empty when absent
  std::string algorithm;  // "RS256", "ES256" or "EdDSA"
  std::string key_id;     // the header's kid
  std::vector<std::string> groups;
  absl::Time expires;
  absl::Time not_before = absl::InfinitePast();  // when absent
  absl::Time issued_at = absl::InfinitePast();   // when absent
};

struct JwtVerifierOptions {
  // How far exp and nbf may be off the clock (the issuer's and agate's clocks disagree a little).
  absl::Duration leeway = absl::Seconds(30);
  // The most verified tokens kept; 0 turns the cache off.
  size_t cache_entries = 10'000;
  // The longest lifetime (exp - iat, or exp - now without iat) a token may claim: a long-lived
  // token that leaks stays usable for that long. Infinite: no limit.
  absl::Duration max_lifetime = absl::InfiniteDuration();
};

class JwtVerifier {
 public:
  static constexpr size_t kMaxTokenBytes = 16 * 1024;

  // Create reads every issuer's JWKS file. INVALID_ARGUMENT for no issuers, an issuer named twice,
  // an empty issuer, audience, jwks_path or groups_claim, or a negative leeway or max_lifetime;
  // a JWKS file's error (JwkSet::Load: it names the file) as it is.
  static absl::StatusOr<std::unique_ptr<JwtVerifier>> Create(std::vector<JwtIssuer> issuers,
                                                             const Clock& clock,
                                                             JwtVerifierOptions options = {});
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // Verify returns what token proves, or UNAUTHENTICATED with the reason (see above). token is
  // the bearer token itself, without "Bearer ".
  absl::StatusOr<std::shared_ptr<const VerifiedToken>> Verify(absl::string_view token) const;

  // ReloadKeys re-reads the JWKS files that changed on disk. Returns OK when every changed file
  // loaded (or none changed); otherwise the errors of those that did not, joined by "; ", whose
  // issuers keep their previous keys (the caller logs it). Cached tokens signed by a key that is
  // gone or different are dropped.
  absl::Status ReloadKeys() ABSL_LOCKS_EXCLUDED(reload_mu_);

 private:
  struct Issuer;
  struct Verified;
  struct Shard;

  JwtVerifier(const Clock& clock, JwtVerifierOptions options);
  absl::StatusOr<Verified> VerifyUncached(absl::string_view token, absl::Time now) const;
  Shard& ShardFor(absl::string_view token) const;
  void Remember(absl::string_view token, const Verified& verified, absl::Time now) const;
  // DropReplacedKeys removes the cached tokens of issuer whose kid is not a key of both sets.
  void DropReplacedKeys(size_t issuer, const JwkSet& before, const JwkSet& after);

  const Clock& clock_;
  const JwtVerifierOptions options_;
  std::vector<std::unique_ptr<Issuer>> issuers_;
  absl::flat_hash_map<std::string, size_t> issuer_index_;  // iss -> index in issuers_
  std::unique_ptr<Shard[]> shards_;                        // null when the cache is off
  size_t shard_count_ = 0;
  size_t shard_capacity_ = 0;
  absl::Mutex reload_mu_;  // serializes ReloadKeys
};

}  // namespace agate::server

#endif  // AGATE_SERVER_JWT_H_
