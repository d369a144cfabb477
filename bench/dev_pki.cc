// dev_pki DIR: a throwaway PKI and identity provider for trying identity locally and for the
// TLS benchmarks (bench/identity_compare.sh). Writes into DIR:
//   ca.crt                  the CA of the server's and the agent's certificates
//   server.crt server.key   for localhost and 127.0.0.1
//   agent.crt agent.key     URI SAN spiffe://example.org/agent/support-bot
//   jwks.json               the identity provider's public key (issuer https://idp.local)
//   bob.token               a person in group finance-approver (valid 24 h)
//   carol.token             a person in group support-lead (valid 24 h)
//   agent.token             the agent's bearer token, for the HTTP API (valid 24 h)
//   admin.token             an admin (valid 24 h)
//   access.yaml             an access policy naming all of them, tenant acme
// Keys are generated on every run; nothing here is a real secret.
#include <filesystem>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/pki.h"

int main(int argc, char** argv) {
  using namespace agate::testing;  // NOLINT: a tool of test helpers
  if (argc != 2) {
    std::cerr << "usage: dev_pki DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  std::filesystem::create_directories(dir);
  const TestCa ca = TestCa::Create("agate dev CA");
  WriteFileOrDie(dir + "/ca.crt", ca.pem().cert_pem);
  WritePem(dir, "server",
           IssueCert(ca, {.common_name = "localhost",
                          .dns_sans = {"localhost"},
                          .ip_sans = {"127.0.0.1"},
                          .usage = CertUsage::kServer,
                          .validity = absl::Hours(24 * 30)}));
  WritePem(dir, "agent",
           IssueCert(ca, {.common_name = "support-bot",
                          .uri_sans = {"spiffe://example.org/agent/support-bot"},
                          .usage = CertUsage::kClient,
                          .validity = absl::Hours(24 * 30)}));
  const TestKey idp = TestKey::Generate(KeyType::kEcP256);
  WriteFileOrDie(dir + "/jwks.json", Jwks({{&idp, "dev-1"}}));
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  auto token = [&](const std::string& subject, const std::string& groups) {
    return SignJwt(
        idp, R"({"alg":"ES256","kid":"dev-1","typ":"JWT"})",
        absl::StrCat(R"({"iss":"https://idp.local","aud":"agate","sub":")", subject,
                     R"(","groups":)", groups, R"(,"iat":)", now, R"(,"exp":)", now + 86400, "}"));
  };
  WriteFileOrDie(dir + "/bob.token", token("bob@example.com", R"(["finance-approver"])") + "\n");
  WriteFileOrDie(dir + "/carol.token", token("carol@example.com", R"(["support-lead"])") + "\n");
  WriteFileOrDie(dir + "/agent.token",
                 token("spiffe://example.org/agent/support-bot", "[]") + "\n");
  WriteFileOrDie(dir + "/admin.token", token("root@example.com", "[]") + "\n");
  WriteFileOrDie(dir + "/access.yaml", R"(version: 1
issuers:
  - issuer: https://idp.local
    audience: agate
    jwks: jwks.json
agents:
  - principal: spiffe://example.org/agent/support-bot
    tenants: [acme]
    agent_ids: [support-bot]
operators:
  - group: finance-approver
    tenants: [acme]
  - group: controller
    tenants: [acme]
  - group: support-lead
    tenants: [acme]
admins:
  - subject: root@example.com
)");
  std::cout << "dev_pki: wrote ca.crt, server.*, agent.*, jwks.json, bob.token, carol.token, "
               "agent.token, admin.token and access.yaml to "
            << dir << "\n";
  return 0;
}
