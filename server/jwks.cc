#include "server/jwks.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <array>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/bounded_file.h"
#include "common/status_macros.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace agate::server {
namespace {

using ::google::protobuf::Struct;
using ::google::protobuf::Value;

constexpr size_t kP256FieldBytes = 32;
constexpr size_t kEd25519KeyBytes = 32;
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 16384;

// Members that only a private (or symmetric) JWK has (RFC 7518 sections 6.2.2, 6.3.2, 6.4).
constexpr absl::string_view kPrivateMembers[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

// -1: not a base64url character.
constexpr std::array<int8_t, 256> kBase64UrlValues = [] {
  std::array<int8_t, 256> values{};
  values.fill(-1);
  constexpr absl::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (size_t i = 0; i < kAlphabet.size(); ++i) {
    values[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  }
  return values;
}();

struct BnFree {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* bld) const { OSSL_PARAM_BLD_free(bld); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* params) const { OSSL_PARAM_free(params); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// FromData builds a public key of key_type ("RSA", "EC") from params, then checks it the way
// OpenSSL checks a peer's key (EVP_PKEY_public_check: the point is on the curve, the modulus
// and exponent are sane). Returns null on failure, with the thread's OpenSSL errors cleared so
// they cannot confuse the next TLS call on this thread.
JwkSet::Pkey FromData(const char* key_type, OSSL_PARAM* params) {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, key_type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  JwkSet::Pkey pkey(raw);
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  return pkey;
}

// Builds one JWK of a set: knows where it is (for errors) and reads its members.
class JwkReader {
 public:
  JwkReader(const Struct& jwk, absl::string_view source, size_t index)
      : jwk_(jwk), source_(source), index_(index) {}

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(kid_.has_value()
                                          ? absl::StrCat(source_, ": key ", index_, " (kid \"",
                                                         absl::CHexEscape(*kid_), "\"): ", what)
                                          : absl::StrCat(source_, ": key ", index_, ": ", what));
  }

  // Read returns the key, or nullopt for a key that is not for signatures.
  absl::StatusOr<std::optional<JwkSet::Key>> Read() {
    // The kid first, to name the key in every error; a missing one is reported below.
    if (const auto it = jwk_.fields().find("kid");
        it != jwk_.fields().end() && it->second.kind_case() == Value::kStringValue) {
      kid_ = it->second.string_value();
    }
    for (absl::string_view member : kPrivateMembers) {
      if (jwk_.fields().contains(std::string(member))) {
        return Error(absl::StrCat("has the private member \"", member,
                                  "\": a public JWKS must not hold private keys (remove it, and "
                                  "replace the leaked key)"));
      }
    }
    ASSIGN_OR_RETURN(kid_, Required("kid"));
    if (kid_->empty()) return Error("kid is empty");
    ASSIGN_OR_RETURN(const std::optional<std::string> use, Optional("use"));
    if (use.has_value() && *use != "sig") return std::nullopt;
    ASSIGN_OR_RETURN(const std::string kty, Required("kty"));
    ASSIGN_OR_RETURN(const std::optional<std::string> alg, Optional("alg"));

    JwsAlgorithm algorithm;
    if (kty == "RSA") {
      algorithm = JwsAlgorithm::kRs256;
    } else if (kty == "EC") {
      algorithm = JwsAlgorithm::kEs256;
    } else if (kty == "OKP") {
      algorithm = JwsAlgorithm::kEdDsa;
    } else {
      return Error(
          absl::StrCat("unsupported kty \"", absl::CHexEscape(kty), "\" (RSA, EC or OKP)"));
    }
    if (alg.has_value() && *alg != JwsAlgorithmName(algorithm)) {
      return Error(absl::StrCat("alg \"", absl::CHexEscape(*alg), "\" contradicts kty ", kty, " (",
                                JwsAlgorithmName(algorithm), ")"));
    }
    ASSIGN_OR_RETURN(JwkSet::Pkey pkey, algorithm == JwsAlgorithm::kRs256   ? Rsa()
                                        : algorithm == JwsAlgorithm::kEs256 ? Ec()
                                                                            : Ed25519());
    return JwkSet::Key(*kid_, algorithm, std::move(pkey));
  }

 private:
  // Optional returns member name as a string, nullopt when it is absent.
  absl::StatusOr<std::optional<std::string>> Optional(const std::string& name) {
    const auto it = jwk_.fields().find(name);
    if (it == jwk_.fields().end()) return std::nullopt;
    if (it->second.kind_case() != Value::kStringValue) {
      return Error(absl::StrCat(name, " is not a string"));
    }
    return it->second.string_value();
  }

  // Required returns member name as a string.
  absl::StatusOr<std::string> Required(const std::string& name) {
    ASSIGN_OR_RETURN(std::optional<std::string> value, Optional(name));
    if (!value.has_value()) return Error(absl::StrCat("has no ", name));
    return *std::move(value);
  }

  // Base64Url returns member name decoded; required.
  absl::StatusOr<std::string> Base64Url(const std::string& name) {
    ASSIGN_OR_RETURN(const std::string text, Required(name));
    std::string bytes;
    if (!Base64UrlDecode(text, &bytes)) return Error(absl::StrCat(name, " is not base64url"));
    return bytes;
  }

  absl::StatusOr<std::string> FixedSize(const std::string& name, size_t size) {
    ASSIGN_OR_RETURN(std::string bytes, Base64Url(name));
    if (bytes.size() != size) {
      return Error(absl::StrCat(name, " is ", bytes.size(), " bytes, not ", size));
    }
    return bytes;
  }

  absl::Status Curve(absl::string_view want) {
    ASSIGN_OR_RETURN(const std::string crv, Required("crv"));
    if (crv != want) {
      return Error(absl::StrCat("unsupported crv \"", absl::CHexEscape(crv), "\" (", want, ")"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<JwkSet::Pkey> Rsa() {
    ASSIGN_OR_RETURN(const std::string n_bytes, Base64Url("n"));
    ASSIGN_OR_RETURN(const std::string e_bytes, Base64Url("e"));
    std::unique_ptr<BIGNUM, BnFree> n(BN_bin2bn(Bytes(n_bytes), n_bytes.size(), nullptr));
    std::unique_ptr<BIGNUM, BnFree> e(BN_bin2bn(Bytes(e_bytes), e_bytes.size(), nullptr));
    if (n == nullptr || e == nullptr) return absl::ResourceExhaustedError("BN_bin2bn failed");
    const int bits = BN_num_bits(n.get());
    if (bits < kMinRsaBits || bits > kMaxRsaBits) {
      return Error(absl::StrCat("n is a ", bits, "-bit modulus (", kMinRsaBits, " to ", kMaxRsaBits,
                                " bits)"));
    }
    std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
    if (bld == nullptr || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
      ERR_clear_error();
      return absl::ResourceExhaustedError("OSSL_PARAM_BLD failed");
    }
    std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
    JwkSet::Pkey pkey = FromData("RSA", params.get());
    if (pkey == nullptr) return Error("n and e are not a valid RSA public key");
    return pkey;
  }

  absl::StatusOr<JwkSet::Pkey> Ec() {
    RETURN_IF_ERROR(Curve("P-256"));
    ASSIGN_OR_RETURN(const std::string x, FixedSize("x", kP256FieldBytes));
    ASSIGN_OR_RETURN(const std::string y, FixedSize("y", kP256FieldBytes));
    std::string point = absl::StrCat("\x04", x, y);  // uncompressed (SEC 1 section 2.3.3)
    char group[] = "prime256v1";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
        OSSL_PARAM_construct_end()};
    JwkSet::Pkey pkey = FromData("EC", params);
    if (pkey == nullptr) return Error("x and y are not a point on P-256");
    return pkey;
  }

  absl::StatusOr<JwkSet::Pkey> Ed25519() {
    RETURN_IF_ERROR(Curve("Ed25519"));
    ASSIGN_OR_RETURN(const std::string x, FixedSize("x", kEd25519KeyBytes));
    JwkSet::Pkey pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, Bytes(x), x.size()));
    if (pkey == nullptr) {
      ERR_clear_error();
      return Error("x is not an Ed25519 public key");
    }
    return pkey;
  }

  const Struct& jwk_;
  const absl::string_view source_;
  const size_t index_;
  std::optional<std::string> kid_;
};

}  // namespace

absl::string_view JwsAlgorithmName(JwsAlgorithm algorithm) {
  switch (algorithm) {
    case JwsAlgorithm::kRs256:
      return "RS256";
    case JwsAlgorithm::kEs256:
      return "ES256";
    case JwsAlgorithm::kEdDsa:
      return "EdDSA";
  }
  return "?";
}

bool Base64UrlDecode(absl::string_view in, std::string* out) {
  // Four characters carry three bytes; a last group of one character cannot carry any.
  if (in.size() % 4 == 1) return false;
  out->clear();
  out->reserve(in.size() / 4 * 3 + 2);
  uint32_t bits = 0;
  int bit_count = 0;
  for (const char c : in) {
    const int value = kBase64UrlValues[static_cast<unsigned char>(c)];
    if (value < 0) return false;
    bits = (bits << 6) | static_cast<uint32_t>(value);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out->push_back(static_cast<char>((bits >> bit_count) & 0xff));
    }
  }
  // The 2 or 4 bits left over are padding and must be zero.
  return (bits & ((1u << bit_count) - 1)) == 0;
}

absl::Status ParseJsonObject(absl::string_view json, Struct* out) {
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), out);
  if (status.ok()) return absl::OkStatus();
  // The parser's message goes on with the input and a caret on later lines: keep the reason.
  absl::string_view reason(status.message().data(), status.message().size());
  reason = reason.substr(0, reason.find('\n'));
  return absl::InvalidArgumentError(absl::StrCat("not a JSON object (", reason, ")"));
}

void JwkSet::PkeyFree::operator()(EVP_PKEY* pkey) const { EVP_PKEY_free(pkey); }

bool JwkSet::Key::VerifySignature(absl::string_view signing_input,
                                  absl::string_view signature) const {
  std::string der;
  if (algorithm_ == JwsAlgorithm::kEs256) {
    // JWS carries r||s (RFC 7518 section 3.4); OpenSSL verifies the DER ECDSA-Sig-Value.
    if (signature.size() != 2 * kP256FieldBytes) return false;
    std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(Bytes(signature), kP256FieldBytes, nullptr);
    BIGNUM* s = BN_bin2bn(Bytes(signature) + kP256FieldBytes, kP256FieldBytes, nullptr);
    if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      ERR_clear_error();
      return false;
    }
    unsigned char* encoded = nullptr;
    const int length = i2d_ECDSA_SIG(sig.get(), &encoded);
    if (length <= 0) {
      ERR_clear_error();
      return false;
    }
    der.assign(reinterpret_cast<const char*>(encoded), length);
    OPENSSL_free(encoded);
    signature = der;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  const char* digest = algorithm_ == JwsAlgorithm::kEdDsa ? nullptr : "SHA256";
  const bool ok = ctx != nullptr &&
                  EVP_DigestVerifyInit_ex(ctx.get(), nullptr, digest, nullptr, nullptr, pkey_.get(),
                                          nullptr) == 1 &&
                  EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(),
                                   Bytes(signing_input), signing_input.size()) == 1;
  if (!ok) ERR_clear_error();
  return ok;
}

bool JwkSet::Key::SameKey(const Key& other) const {
  return algorithm_ == other.algorithm_ && EVP_PKEY_eq(pkey_.get(), other.pkey_.get()) == 1;
}

JwkSet::JwkSet(std::string source, std::vector<Key> keys)
    : source_(std::move(source)), keys_(std::move(keys)) {
  for (size_t i = 0; i < keys_.size(); ++i) by_kid_.emplace(keys_[i].kid(), i);
}

absl::StatusOr<std::shared_ptr<const JwkSet>> JwkSet::Parse(absl::string_view json,
                                                            absl::string_view source) {
  Struct root;
  if (absl::Status status = ParseJsonObject(json, &root); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", status.message()));
  }
  const auto keys_it = root.fields().find("keys");
  if (keys_it == root.fields().end() || keys_it->second.kind_case() != Value::kListValue) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JWKS (no \"keys\" array)"));
  }
  std::vector<Key> keys;
  absl::flat_hash_map<std::string, size_t> seen;  // kid -> index in the file
  const auto& values = keys_it->second.list_value().values();
  for (int i = 0; i < values.size(); ++i) {
    if (values[i].kind_case() != Value::kStructValue) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": key ", i, ": not a JSON object"));
    }
    JwkReader reader(values[i].struct_value(), source, i);
    ASSIGN_OR_RETURN(std::optional<Key> key, reader.Read());
    if (!key.has_value()) continue;
    if (const auto [it, inserted] = seen.emplace(key->kid(), i); !inserted) {
      return reader.Error(absl::StrCat("duplicate kid (key ", it->second, " has it too)"));
    }
    keys.push_back(*std::move(key));
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no signature key"));
  }
  return std::shared_ptr<const JwkSet>(new JwkSet(std::string(source), std::move(keys)));
}

absl::StatusOr<std::shared_ptr<const JwkSet>> JwkSet::Load(const std::string& path) {
  absl::StatusOr<std::string> json = ReadBoundedFile(path, kMaxFileBytes);
  if (!json.ok()) {
    return absl::Status(absl::IsOutOfRange(json.status()) ? absl::StatusCode::kInvalidArgument
                                                          : json.status().code(),
                        absl::StrCat(path, ": ", json.status().message()));
  }
  return Parse(*json, path);
}

const JwkSet::Key* JwkSet::Find(absl::string_view kid) const {
  const auto it = by_kid_.find(kid);
  return it == by_kid_.end() ? nullptr : &keys_[it->second];
}

}  // namespace agate::server
