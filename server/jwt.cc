#include "server/jwt.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_watch.h"
#include "common/status_macros.h"
#include "google/protobuf/struct.pb.h"

namespace agate::server {
namespace {

using ::google::protobuf::Struct;
using ::google::protobuf::Value;

// The cache's shards: at most kMaxShards, each for at least kMinShardEntries tokens (a small
// cache is one shard, so its bound is exact).
constexpr size_t kMaxShards = 16;
constexpr size_t kMinShardEntries = 64;
// The longest claim a reason quotes: the token's author chose it.
constexpr size_t kMaxQuotedBytes = 64;
// NumericDate bounds: the epoch to the end of year 9999.
constexpr double kMaxNumericDate = 253402300799.0;

std::string Quote(absl::string_view claim) {
  if (claim.size() <= kMaxQuotedBytes) return absl::CHexEscape(claim);
  return absl::StrCat(absl::CHexEscape(claim.substr(0, kMaxQuotedBytes)), "...");
}

template <typename... Args>
absl::Status Refuse(const Args&... args) {
  return absl::UnauthenticatedError(absl::StrCat(args...));
}

template <typename... Args>
absl::Status Malformed(const Args&... args) {
  return Refuse("malformed token: ", args...);
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

const Value* Member(const Struct& object, absl::string_view name) {
  const auto it = object.fields().find(std::string(name));
  return it == object.fields().end() ? nullptr : &it->second;
}

// DecodeJson decodes one base64url part of the token (what names it) into a JSON object.
absl::Status DecodeJson(absl::string_view part, absl::string_view what, Struct* out) {
  std::string json;
  if (!Base64UrlDecode(part, &json)) return Malformed(what, " is not base64url");
  if (absl::Status status = ParseJsonObject(json, out); !status.ok()) {
    return Malformed(what, " is ", status.message());
  }
  return absl::OkStatus();
}

// StringClaim returns claim name of object (nullopt when absent).
absl::StatusOr<std::optional<std::string>> StringClaim(const Struct& object,
                                                       absl::string_view name) {
  const Value* value = Member(object, name);
  if (value == nullptr) return std::nullopt;
  if (value->kind_case() != Value::kStringValue) return Malformed(name, " is not a string");
  return value->string_value();
}

// TimeClaim returns NumericDate claim name (RFC 7519 section 2), nullopt when absent.
absl::StatusOr<std::optional<absl::Time>> TimeClaim(const Struct& claims, absl::string_view name) {
  const Value* value = Member(claims, name);
  if (value == nullptr) return std::nullopt;
  if (value->kind_case() != Value::kNumberValue || !(value->number_value() >= 0) ||
      value->number_value() > kMaxNumericDate) {
    return Malformed(name, " is not a NumericDate");
  }
  return absl::UnixEpoch() + absl::Seconds(value->number_value());
}

// The verified header: the algorithm it names and its kid.
struct Header {
  JwsAlgorithm algorithm;
  std::string kid;
};

absl::StatusOr<Header> CheckHeader(const Struct& header) {
  ASSIGN_OR_RETURN(const std::optional<std::string> alg, StringClaim(header, "alg"));
  if (!alg.has_value()) return Malformed("the header has no alg");
  Header out;
  if (*alg == "RS256") {
    out.algorithm = JwsAlgorithm::kRs256;
  } else if (*alg == "ES256") {
    out.algorithm = JwsAlgorithm::kEs256;
  } else if (*alg == "EdDSA") {
    out.algorithm = JwsAlgorithm::kEdDsa;
  } else if (absl::EqualsIgnoreCase(*alg, "none")) {
    return Refuse("alg none is refused");
  } else if (absl::StartsWithIgnoreCase(*alg, "HS")) {
    return Refuse("alg ", Quote(*alg),
                  " is refused (an HMAC needs a shared secret; agate holds public keys only)");
  } else {
    return Refuse("alg ", Quote(*alg), " is not supported (RS256, ES256, EdDSA)");
  }
  if (Member(header, "crit") != nullptr) {
    return Refuse("the crit header is refused (agate understands no extension)");
  }
  ASSIGN_OR_RETURN(const std::optional<std::string> typ, StringClaim(header, "typ"));
  if (typ.has_value() && !absl::EqualsIgnoreCase(*typ, "JWT")) {
    return Refuse("typ ", Quote(*typ), " is not JWT");
  }
  ASSIGN_OR_RETURN(std::optional<std::string> kid, StringClaim(header, "kid"));
  if (!kid.has_value()) return Malformed("the header has no kid");
  out.kid = *std::move(kid);
  return out;
}

// AudienceContains returns whether aud (a string or an array of strings) holds audience.
absl::StatusOr<bool> AudienceContains(const Value& aud, absl::string_view audience) {
  if (aud.kind_case() == Value::kStringValue) return aud.string_value() == audience;
  if (aud.kind_case() != Value::kListValue) {
    return Malformed("aud is not a string or an array of strings");
  }
  bool found = false;
  for (const Value& value : aud.list_value().values()) {
    if (value.kind_case() != Value::kStringValue) {
      return Malformed("aud is not a string or an array of strings");
    }
    found = found || value.string_value() == audience;
  }
  return found;
}

absl::StatusOr<std::vector<std::string>> Groups(const Struct& claims, absl::string_view name) {
  std::vector<std::string> groups;
  const Value* value = Member(claims, name);
  if (value == nullptr) return groups;
  const auto not_strings = [&] {
    return Malformed("groups claim ", Quote(name), " is not an array of strings");
  };
  if (value->kind_case() != Value::kListValue) return not_strings();
  for (const Value& group : value->list_value().values()) {
    if (group.kind_case() != Value::kStringValue) return not_strings();
    groups.push_back(group.string_value());
  }
  return groups;
}

}  // namespace

struct JwtVerifier::Issuer {
  JwtIssuer config;
  std::atomic<std::shared_ptr<const JwkSet>> keys;
  FileStamp stamp;  // the JWKS file as the last read saw it; guarded by reload_mu_
};

// What VerifyUncached proves, and what the cache needs to keep it.
struct JwtVerifier::Verified {
  std::shared_ptr<const VerifiedToken> token;
  size_t issuer;
  std::shared_ptr<const JwkSet> keys;  // the snapshot the signature was checked with
  absl::Time valid_until;              // exp + leeway
};

struct JwtVerifier::Shard {
  struct Entry {
    std::shared_ptr<const VerifiedToken> token;
    absl::Time valid_until;
    size_t issuer;
    uint64_t sequence;  // insertion order, for evicting the oldest
  };
  absl::Mutex mu;
  // By token text: find(absl::string_view) hashes the view, no std::string is built on a hit.
  absl::flat_hash_map<std::string, Entry> entries ABSL_GUARDED_BY(mu);
  uint64_t next_sequence ABSL_GUARDED_BY(mu) = 0;
};

JwtVerifier::JwtVerifier(const Clock& clock, JwtVerifierOptions options)
    : clock_(clock), options_(options) {}

JwtVerifier::~JwtVerifier() = default;

absl::StatusOr<std::unique_ptr<JwtVerifier>> JwtVerifier::Create(std::vector<JwtIssuer> issuers,
                                                                 const Clock& clock,
                                                                 JwtVerifierOptions options) {
  if (issuers.empty()) return absl::InvalidArgumentError("no token issuer is configured");
  if (options.leeway < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the token leeway is negative");
  }
  if (options.max_lifetime <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the token max_lifetime is not positive");
  }
  std::unique_ptr<JwtVerifier> verifier(new JwtVerifier(clock, options));
  for (JwtIssuer& config : issuers) {
    const size_t index = verifier->issuers_.size();
    for (const auto& [field, value] :
         {std::pair<absl::string_view, absl::string_view>{"issuer", config.issuer},
          {"audience", config.audience},
          {"jwks_path", config.jwks_path},
          {"groups_claim", config.groups_claim}}) {
      if (value.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("token issuer ", index, ": ", field, " is empty"));
      }
    }
    if (!verifier->issuer_index_.emplace(config.issuer, index).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("token issuer ", config.issuer, " is listed twice"));
    }
    auto issuer = std::make_unique<Issuer>();
    issuer->stamp = StatFile(config.jwks_path);
    ASSIGN_OR_RETURN(std::shared_ptr<const JwkSet> keys, JwkSet::Load(config.jwks_path));
    issuer->keys.store(std::move(keys));
    issuer->config = std::move(config);
    verifier->issuers_.push_back(std::move(issuer));
  }
  if (options.cache_entries > 0) {
    verifier->shard_count_ =
        std::clamp<size_t>(options.cache_entries / kMinShardEntries, 1, kMaxShards);
    verifier->shard_capacity_ =
        (options.cache_entries + verifier->shard_count_ - 1) / verifier->shard_count_;
    verifier->shards_ = std::make_unique<Shard[]>(verifier->shard_count_);
  }
  return verifier;
}

absl::StatusOr<std::shared_ptr<const VerifiedToken>> JwtVerifier::Verify(
    absl::string_view token) const {
  if (token.size() > kMaxTokenBytes) {
    return Malformed("longer than ", kMaxTokenBytes, " bytes");
  }
  const absl::Time now = clock_.Now();
  if (shards_ != nullptr) {
    Shard& shard = ShardFor(token);
    absl::MutexLock lock(&shard.mu);
    if (const auto it = shard.entries.find(token); it != shard.entries.end()) {
      if (now < it->second.valid_until) return it->second.token;
      shard.entries.erase(it);  // expired: verified again below, to say so
    }
  }
  ASSIGN_OR_RETURN(Verified verified, VerifyUncached(token, now));
  if (shards_ != nullptr) Remember(token, verified, now);
  return std::move(verified.token);
}

absl::StatusOr<JwtVerifier::Verified> JwtVerifier::VerifyUncached(absl::string_view token,
                                                                  absl::Time now) const {
  // header.payload.signature; the header is read first, so that an unsigned token (alg none,
  // with or without its empty signature part) is refused as such.
  const size_t header_end = token.find('.');
  if (header_end == absl::string_view::npos) {
    return Malformed("not a JWS compact token (header.payload.signature)");
  }
  Struct header_json;
  RETURN_IF_ERROR(DecodeJson(token.substr(0, header_end), "the header", &header_json));
  ASSIGN_OR_RETURN(const Header header, CheckHeader(header_json));

  const size_t payload_end = token.find('.', header_end + 1);
  if (payload_end == absl::string_view::npos) return Malformed("no signature part");
  const absl::string_view signature_part = token.substr(payload_end + 1);
  if (absl::StrContains(signature_part, '.')) {
    return Malformed("more than three parts (an encrypted JWE is not supported)");
  }
  Struct claims;
  RETURN_IF_ERROR(DecodeJson(token.substr(header_end + 1, payload_end - header_end - 1),
                             "the payload", &claims));

  // The issuer the (not yet verified) claims name picks the keys; the signature then proves it.
  ASSIGN_OR_RETURN(const std::optional<std::string> iss, StringClaim(claims, "iss"));
  if (!iss.has_value()) return Refuse("the token has no iss");
  const auto issuer_it = issuer_index_.find(*iss);
  if (issuer_it == issuer_index_.end()) return Refuse("unknown issuer ", Quote(*iss));
  const Issuer& issuer = *issuers_[issuer_it->second];
  std::shared_ptr<const JwkSet> keys = issuer.keys.load(std::memory_order_acquire);
  const JwkSet::Key* key = keys->Find(header.kid);
  if (key == nullptr) {
    return Refuse("kid ", Quote(header.kid), " is not among the keys of issuer ",
                  Quote(issuer.config.issuer));
  }
  if (key->algorithm() != header.algorithm) {
    return Refuse("alg ", JwsAlgorithmName(header.algorithm), " does not match key ",
                  Quote(header.kid), " (", JwsAlgorithmName(key->algorithm()), ")");
  }
  std::string signature;
  if (!Base64UrlDecode(signature_part, &signature)) {
    return Malformed("the signature is not base64url");
  }
  if (!key->VerifySignature(token.substr(0, payload_end), signature)) {
    return Refuse("signature does not verify");
  }

  auto verified = std::make_shared<VerifiedToken>();
  ASSIGN_OR_RETURN(const std::optional<absl::Time> exp, TimeClaim(claims, "exp"));
  if (!exp.has_value()) return Refuse("the token has no exp");
  if (now >= *exp + options_.leeway) return Refuse("token expired at ", Rfc3339(*exp));
  verified->expires = *exp;
  ASSIGN_OR_RETURN(const std::optional<absl::Time> nbf, TimeClaim(claims, "nbf"));
  if (nbf.has_value()) {
    if (now + options_.leeway < *nbf) return Refuse("not valid before ", Rfc3339(*nbf));
    verified->not_before = *nbf;
  }
  ASSIGN_OR_RETURN(const std::optional<absl::Time> iat, TimeClaim(claims, "iat"));
  if (iat.has_value()) verified->issued_at = *iat;
  if (const absl::Duration lifetime = *exp - iat.value_or(now); lifetime > options_.max_lifetime) {
    return Refuse("token lifetime ", absl::FormatDuration(lifetime), " exceeds the maximum ",
                  absl::FormatDuration(options_.max_lifetime));
  }
  const Value* aud = Member(claims, "aud");
  if (aud == nullptr) return Refuse("the token has no aud");
  ASSIGN_OR_RETURN(const bool audience_ok, AudienceContains(*aud, issuer.config.audience));
  if (!audience_ok) return Refuse("audience ", issuer.config.audience, " not in the token's aud");
  ASSIGN_OR_RETURN(std::optional<std::string> sub, StringClaim(claims, "sub"));
  if (!sub.has_value() || sub->empty()) return Refuse("the token has no sub");
  ASSIGN_OR_RETURN(std::optional<std::string> jti, StringClaim(claims, "jti"));
  ASSIGN_OR_RETURN(verified->groups, Groups(claims, issuer.config.groups_claim));

  verified->issuer = *iss;
  verified->subject = *std::move(sub);
  verified->token_id = std::move(jti).value_or("");
  verified->algorithm = std::string(JwsAlgorithmName(header.algorithm));
  verified->key_id = header.kid;
  return Verified{.token = std::move(verified),
                  .issuer = issuer_it->second,
                  .keys = std::move(keys),
                  .valid_until = *exp + options_.leeway};
}

JwtVerifier::Shard& JwtVerifier::ShardFor(absl::string_view token) const {
  // The high bits: the map inside the shard uses the low ones of the same hash.
  return shards_[(absl::Hash<absl::string_view>{}(token) >> 32) % shard_count_];
}

void JwtVerifier::Remember(absl::string_view token, const Verified& verified,
                           absl::Time now) const {
  Shard& shard = ShardFor(token);
  absl::MutexLock lock(&shard.mu);
  // A ReloadKeys that replaced these keys after the signature check may have swept this shard
  // already: only tokens verified with the keys in force go in (it swaps, then sweeps under
  // each shard's lock, so a token inserted before its sweep is swept).
  if (issuers_[verified.issuer]->keys.load(std::memory_order_acquire) != verified.keys) return;
  auto& entries = shard.entries;
  if (entries.size() >= shard_capacity_ && !entries.contains(token)) {
    for (auto it = entries.begin(); it != entries.end();) {
      if (it->second.valid_until <= now) {
        entries.erase(it++);
      } else {
        ++it;
      }
    }
    if (entries.size() >= shard_capacity_) {
      entries.erase(std::min_element(
          entries.begin(), entries.end(),
          [](const auto& a, const auto& b) { return a.second.sequence < b.second.sequence; }));
    }
  }
  entries.try_emplace(std::string(token), Shard::Entry{.token = verified.token,
                                                       .valid_until = verified.valid_until,
                                                       .issuer = verified.issuer,
                                                       .sequence = shard.next_sequence++});
}

absl::Status JwtVerifier::ReloadKeys() {
  absl::MutexLock lock(&reload_mu_);
  absl::StatusCode code = absl::StatusCode::kOk;
  std::vector<std::string> errors;
  for (size_t i = 0; i < issuers_.size(); ++i) {
    Issuer& issuer = *issuers_[i];
    const FileStamp stamp = StatFile(issuer.config.jwks_path);
    if (stamp == issuer.stamp) continue;
    // Stamped before reading: a file that changes while it is read is read again next time.
    issuer.stamp = stamp;
    absl::StatusOr<std::shared_ptr<const JwkSet>> keys = JwkSet::Load(issuer.config.jwks_path);
    if (!keys.ok()) {
      if (code == absl::StatusCode::kOk) code = keys.status().code();
      errors.push_back(absl::StrCat(keys.status().message(), " (issuer ", issuer.config.issuer,
                                    " keeps its previous keys)"));
      continue;
    }
    const std::shared_ptr<const JwkSet> before =
        issuer.keys.exchange(*keys, std::memory_order_acq_rel);
    DropReplacedKeys(i, *before, **keys);
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::Status(code, absl::StrJoin(errors, "; "));
}

void JwtVerifier::DropReplacedKeys(size_t issuer, const JwkSet& before, const JwkSet& after) {
  if (shards_ == nullptr) return;
  absl::flat_hash_set<std::string> kept;
  for (const JwkSet::Key& key : after.keys()) {
    const JwkSet::Key* was = before.Find(key.kid());
    if (was != nullptr && was->SameKey(key)) kept.insert(key.kid());
  }
  for (size_t i = 0; i < shard_count_; ++i) {
    Shard& shard = shards_[i];
    absl::MutexLock lock(&shard.mu);
    for (auto it = shard.entries.begin(); it != shard.entries.end();) {
      if (it->second.issuer == issuer && !kept.contains(it->second.token->key_id)) {
        shard.entries.erase(it++);
      } else {
        ++it;
      }
    }
  }
}

}  // namespace agate::server
