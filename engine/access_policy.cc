#include "engine/access_policy.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/yaml_reader.h"

namespace agate::engine {
namespace {

constexpr size_t kMaxPolicyBytes = size_t{4} << 20;
constexpr absl::string_view kTopKeys[] = {"version", "issuers", "agents", "operators", "admins"};
constexpr absl::string_view kIssuerKeys[] = {"issuer", "audience", "jwks", "groups_claim"};
constexpr absl::string_view kAgentKeys[] = {"principal", "tenants", "agent_ids"};
constexpr absl::string_view kOperatorKeys[] = {"group", "tenants"};
constexpr absl::string_view kAdminKeys[] = {"subject"};

using Entry = YamlReader::Entry;
using Fields = YamlReader::Fields;

class PolicyParser {
 public:
  PolicyParser(absl::string_view yaml, absl::string_view file)
      : reader_(yaml, file, "the access policy", kMaxPolicyBytes), file_(file) {}

  std::shared_ptr<const AccessPolicy> Parse() {
    std::optional<YAML::Node> root = reader_.Load();
    if (!root.has_value()) return nullptr;
    try {
      return Build(*root);
    } catch (const std::exception& e) {
      reader_.Error({}, absl::StrCat("cannot parse the access policy: ", e.what()));
    }
    return nullptr;
  }

  std::vector<Diagnostic> Diagnostics() && { return std::move(reader_).TakeDiagnostics(); }

 private:
  std::shared_ptr<const AccessPolicy> Build(const YAML::Node& root) {
    const absl::string_view context = "the access policy";
    if (root.IsNull()) {
      reader_.Error({1, 1},
                    "the access policy is empty; expected a mapping with version, "
                    "issuers, agents, operators and admins");
      return nullptr;
    }
    if (!root.IsMap()) {
      reader_.Error(YamlReader::At(root), "the access policy must be a mapping");
      return nullptr;
    }
    Fields fields = reader_.ReadFields(root, kTopKeys, context);
    if (std::optional<std::string> version = reader_.Required(fields, "version", root, context);
        version.has_value() && *version != "1") {
      reader_.Error(YamlReader::ValueAt(*YamlReader::Find(fields, "version")),
                    absl::StrCat("unsupported version ", Quote(*version), "; this agate reads 1"));
    }
    ForEachItem(fields, "issuers", [&](const YAML::Node& item, const std::string& item_context) {
      ReadIssuer(item, item_context);
    });
    ForEachItem(fields, "agents", [&](const YAML::Node& item, const std::string& item_context) {
      ReadAgent(item, item_context);
    });
    ForEachItem(fields, "operators", [&](const YAML::Node& item, const std::string& item_context) {
      ReadOperator(item, item_context);
    });
    ForEachItem(fields, "admins", [&](const YAML::Node& item, const std::string& item_context) {
      Fields f = reader_.ReadFields(item, kAdminKeys, item_context);
      if (std::optional<std::string> s = reader_.Required(f, "subject", item, item_context)) {
        if (std::find(admins_.begin(), admins_.end(), *s) != admins_.end()) {
          reader_.Error(YamlReader::At(item), absl::StrCat("admin ", Quote(*s), " listed twice"));
        }
        admins_.push_back(*s);
      }
    });
    if (issuers_.empty() && (!operators_.empty() || !admins_.empty())) {
      reader_.Warning(YamlReader::At(root),
                      "operators or admins are listed but no issuer signs their tokens: nobody "
                      "can act as them");
    }
    if (reader_.has_errors()) return nullptr;
    return std::make_shared<const AccessPolicy>(std::string(file_), std::move(issuers_),
                                                std::move(agents_), std::move(operators_),
                                                std::move(admins_));
  }

  // ForEachItem reads an optional sequence of mappings under key.
  template <typename F>
  void ForEachItem(const Fields& fields, absl::string_view key, F read) {
    const Entry* entry = YamlReader::Find(fields, key);
    if (entry == nullptr || entry->value.IsNull()) return;
    if (!entry->value.IsSequence()) {
      reader_.Error(YamlReader::ValueAt(*entry), absl::StrCat(key, " must be a sequence"));
      return;
    }
    size_t number = 0;
    for (YAML::const_iterator it = entry->value.begin(); it != entry->value.end(); ++it) {
      ++number;
      const YAML::Node& item = *it;
      const std::string item_context = absl::StrCat(key, " #", number);
      if (!item.IsMap()) {
        reader_.Error(item.IsNull() ? YamlReader::At(entry->value) : YamlReader::At(item),
                      absl::StrCat(item_context, " must be a mapping"));
        continue;
      }
      read(item, item_context);
    }
  }

  // Tenants reads a required, non-empty tenants list.
  std::vector<std::string> Tenants(const Fields& fields, const YAML::Node& map,
                                   absl::string_view context) {
    const Entry* entry = YamlReader::Find(fields, "tenants");
    if (entry == nullptr) {
      reader_.Error(YamlReader::At(map), absl::StrCat(context, ": missing required key 'tenants'"));
      return {};
    }
    std::vector<std::string> tenants = reader_.StringList(*entry, "tenants", context);
    if (entry->value.IsNull() || (entry->value.IsSequence() && entry->value.size() == 0)) {
      reader_.Error(YamlReader::ValueAt(*entry), absl::StrCat(context, ": tenants is empty"));
    }
    return tenants;
  }

  void ReadIssuer(const YAML::Node& map, const std::string& context) {
    Fields f = reader_.ReadFields(map, kIssuerKeys, context);
    AccessPolicy::Issuer issuer;
    issuer.issuer = reader_.Required(f, "issuer", map, context).value_or("");
    issuer.audience = reader_.Required(f, "audience", map, context).value_or("");
    if (std::optional<std::string> jwks = reader_.Required(f, "jwks", map, context)) {
      issuer.jwks_path = Resolve(*jwks);
    }
    if (const std::string claim = reader_.Optional(f, "groups_claim"); !claim.empty()) {
      issuer.groups_claim = claim;
    }
    for (const AccessPolicy::Issuer& other : issuers_) {
      if (!issuer.issuer.empty() && other.issuer == issuer.issuer) {
        reader_.Error(YamlReader::At(map),
                      absl::StrCat("issuer ", Quote(issuer.issuer), " listed twice"));
      }
    }
    issuers_.push_back(std::move(issuer));
  }

  void ReadAgent(const YAML::Node& map, const std::string& context) {
    Fields f = reader_.ReadFields(map, kAgentKeys, context);
    AccessPolicy::Agent agent;
    agent.principal = reader_.Required(f, "principal", map, context).value_or("");
    agent.tenants = Tenants(f, map, context);
    if (const Entry* ids = YamlReader::Find(f, "agent_ids")) {
      agent.agent_ids = reader_.StringList(*ids, "agent_ids", context);
    }
    for (const AccessPolicy::Agent& other : agents_) {
      if (!agent.principal.empty() && other.principal == agent.principal) {
        reader_.Error(YamlReader::At(map),
                      absl::StrCat("agent ", Quote(agent.principal), " listed twice"));
      }
    }
    agents_.push_back(std::move(agent));
  }

  void ReadOperator(const YAML::Node& map, const std::string& context) {
    Fields f = reader_.ReadFields(map, kOperatorKeys, context);
    AccessPolicy::Operator op;
    op.group = reader_.Required(f, "group", map, context).value_or("");
    op.tenants = Tenants(f, map, context);
    operators_.push_back(std::move(op));
  }

  // Resolve makes a JWKS path relative to the policy file's directory.
  std::string Resolve(const std::string& path) const {
    if (absl::StartsWith(path, "/")) return path;
    const size_t slash = file_.rfind('/');
    if (slash == std::string::npos) return path;
    return absl::StrCat(file_.substr(0, slash + 1), path);
  }

  YamlReader reader_;
  std::string file_;
  std::vector<AccessPolicy::Issuer> issuers_;
  std::vector<AccessPolicy::Agent> agents_;
  std::vector<AccessPolicy::Operator> operators_;
  std::vector<std::string> admins_;
};

}  // namespace

bool AccessPolicy::Agent::MayAct(absl::string_view tenant) const {
  return std::find(tenants.begin(), tenants.end(), tenant) != tenants.end();
}

bool AccessPolicy::Agent::MayClaim(absl::string_view agent_id) const {
  return agent_ids.empty() ||
         std::find(agent_ids.begin(), agent_ids.end(), agent_id) != agent_ids.end();
}

AccessPolicy::AccessPolicy(std::string file, std::vector<Issuer> issuers, std::vector<Agent> agents,
                           std::vector<Operator> operators, std::vector<std::string> admins)
    : file_(std::move(file)),
      issuers_(std::move(issuers)),
      agents_(std::move(agents)),
      operators_(std::move(operators)),
      admins_(admins.begin(), admins.end()) {
  for (size_t i = 0; i < agents_.size(); ++i) agent_by_principal_[agents_[i].principal] = i;
  for (const Operator& op : operators_) {
    tenants_by_group_[op.group].insert(op.tenants.begin(), op.tenants.end());
  }
}

const AccessPolicy::Agent* AccessPolicy::FindAgent(absl::string_view principal) const {
  auto it = agent_by_principal_.find(principal);
  return it == agent_by_principal_.end() ? nullptr : &agents_[it->second];
}

std::vector<std::string> AccessPolicy::TenantsOperatedBy(
    const std::vector<std::string>& groups) const {
  absl::flat_hash_set<std::string> tenants;
  for (const std::string& group : groups) {
    auto it = tenants_by_group_.find(group);
    if (it != tenants_by_group_.end()) tenants.insert(it->second.begin(), it->second.end());
  }
  std::vector<std::string> out(tenants.begin(), tenants.end());
  std::sort(out.begin(), out.end());
  return out;
}

bool AccessPolicy::Operates(absl::string_view group, absl::string_view tenant) const {
  auto it = tenants_by_group_.find(group);
  return it != tenants_by_group_.end() && it->second.contains(tenant);
}

absl::StatusOr<std::shared_ptr<const AccessPolicy>> ParseAccessPolicy(
    absl::string_view yaml, absl::string_view file_name, std::vector<Diagnostic>* diagnostics) {
  PolicyParser parser(yaml, file_name);
  std::shared_ptr<const AccessPolicy> policy = parser.Parse();
  std::vector<Diagnostic> found = std::move(parser).Diagnostics();
  absl::Status status = ErrorsToStatus(found);
  if (diagnostics != nullptr) {
    diagnostics->insert(diagnostics->end(), std::make_move_iterator(found.begin()),
                        std::make_move_iterator(found.end()));
  }
  if (!status.ok()) return status;
  if (policy == nullptr) return absl::InternalError("access policy parser failed without an error");
  return policy;
}

absl::StatusOr<std::shared_ptr<const AccessPolicy>> LoadAccessPolicyFile(
    const std::string& path, std::vector<Diagnostic>* diagnostics) {
  absl::StatusOr<std::string> text =
      ReadYamlFile(path, kMaxPolicyBytes, "the access policy", diagnostics);
  if (!text.ok()) return text.status();
  return ParseAccessPolicy(*text, path, diagnostics);
}

bool LooksLikeAccessPolicy(absl::string_view yaml) {
  YamlReader reader(yaml, "", "the file", kMaxPolicyBytes);
  std::optional<YAML::Node> root = reader.Load();  // guarded: size, nesting, never throws
  if (!root.has_value() || !root->IsMap()) return false;
  const YAML::Node& map = *root;
  if (map["lanes"]) return false;
  return map["issuers"] || map["agents"] || map["operators"] || map["admins"];
}

}  // namespace agate::engine
