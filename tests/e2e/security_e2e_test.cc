// The attack suite: the real agate-server over TLS with an access policy, every attack of the
// identity issue refused with the right status and leaving nothing changed, and what was allowed
// and refused in the hash-chained decision log with the verified principal.
//
// Keys, certificates and tokens are generated here (tests/testing/pki.h), never committed.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "agate/v1/agate.grpc.pb.h"
#include "client/client.h"
#include "client/grpc_status.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/pki.h"
#include "tests/testing/process.h"
#include "tests/testing/status_matchers.h"

namespace agate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::StatusIs;

constexpr char kIssuer[] = "https://idp.test";
constexpr char kAgent[] = "spiffe://example.org/agent/support-bot";
// The bundled matrix with a financial lane that needs two approvers (the quorum attack).
constexpr char kQuorumLane[] = R"(
  financial:
    owner: finance-approver
    backup: controller
    sla: 4h
    verdict: BLOCK
    scope: item
    approvals: 2
    agent_action: block
    operator_action: approve
    evidence: [proposed_action]
    on_timeout: expire
)";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

v1::EvaluateRequest Refund(const std::string& id, const std::string& tenant = "acme",
                           const std::string& agent = "support-bot") {
  v1::EvaluateRequest r;
  r.set_request_id(id);
  r.set_tenant_id(tenant);
  r.set_agent_id(agent);
  r.set_workflow_id("refunds");
  r.set_item_id("order-" + id);
  r.mutable_action()->set_type("refund");
  r.mutable_action()->set_amount(400);
  return r;
}

class SecurityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string& dir = dir_.path();
    // The server's certificate, the agent's client certificate, and a rogue CA's.
    const testing::TestCa ca = testing::TestCa::Create();
    server_cert_ = testing::WritePem(dir, "server", testing::LocalhostServerCert(ca));
    testing::WriteFileOrDie(dir + "/ca.crt", ca.pem().cert_pem);
    testing::WritePem(dir, "agent",
                      testing::IssueCert(ca, {.common_name = "support-bot",
                                              .uri_sans = {kAgent},
                                              .usage = testing::CertUsage::kClient}));
    const testing::TestCa rogue = testing::TestCa::Create("rogue CA");
    testing::WritePem(dir, "rogue",
                      testing::IssueCert(rogue, {.common_name = "support-bot",
                                                 .uri_sans = {kAgent},
                                                 .usage = testing::CertUsage::kClient}));
    // The identity provider's keys: the JWKS names rsa-1; other-key signs nothing it knows.
    testing::WriteFileOrDie(dir + "/jwks.json", testing::Jwks({{&idp_key_, "rsa-1"}}));
    testing::WriteFileOrDie(dir + "/access.yaml", R"(version: 1
issuers:
  - issuer: https://idp.test
    audience: agate
    jwks: jwks.json
agents:
  - principal: spiffe://example.org/agent/support-bot
    tenants: [acme]
    agent_ids: [support-bot]
  - principal: globex-bot
    tenants: [globex]
operators:
  - group: finance-approver
    tenants: [acme]
  - group: controller
    tenants: [acme]
  - group: globex-finance
    tenants: [globex]
admins:
  - subject: root@example.com
)");
    std::string matrix = ReadFile(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml");
    const size_t financial = matrix.find("\n  financial:");
    const size_t triggers = matrix.find("\ntriggers:");
    ASSERT_NE(financial, std::string::npos);
    matrix.replace(financial, triggers - financial, kQuorumLane);
    testing::WriteFileOrDie(dir + "/matrix.yaml", matrix);

    ASSERT_TRUE(server_.Start(
        AGATE_SERVER_BIN,
        {"--matrix", dir + "/matrix.yaml", "--access", dir + "/access.yaml", "--tls-cert",
         dir + "/server.crt", "--tls-key", dir + "/server.key", "--client-ca", dir + "/ca.crt",
         "--listen", "127.0.0.1:0", "--mtls-listen", "127.0.0.1:0", "--data-dir", dir + "/data"},
        /*listeners=*/2))
        << server_.log();
    address_ = server_.address(0);
    mtls_address_ = server_.address(1);
  }

  // Token signs a JWT for subject with groups, expiring expires_in from now; extra adds claims
  // (a JSON fragment starting with a comma).
  std::string Token(const std::string& subject, const std::string& groups = "[]",
                    const std::string& extra = "", int64_t expires_in = 600) const {
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    return testing::SignJwt(idp_key_, R"({"alg":"RS256","kid":"rsa-1","typ":"JWT"})",
                            absl::StrCat(R"({"iss":")", kIssuer, R"(","aud":"agate","sub":")",
                                         subject, R"(","groups":)", groups, R"(,"iat":)", now,
                                         R"(,"exp":)", now + expires_in, extra, "}"));
  }

  // Connect returns a client on address: the agent's certificate (cert "agent"), a token, or
  // neither.
  std::unique_ptr<client::Client> Connect(const std::string& token, const std::string& cert = "",
                                          const std::string& address = "") const {
    const std::string& dir = dir_.path();
    absl::StatusOr<std::unique_ptr<client::Client>> c =
        client::Client::Create({.target = address.empty() ? address_ : address,
                                .timeout = absl::Seconds(10),
                                .tls_ca = dir + "/ca.crt",
                                .tls_cert = cert.empty() ? "" : dir + "/" + cert + ".crt",
                                .tls_key = cert.empty() ? "" : dir + "/" + cert + ".key",
                                .token = token});
    EXPECT_TRUE(c.ok()) << c.status();
    return *std::move(c);
  }

  absl::StatusOr<v1::Case> Ack(client::Client& c, const std::string& id, v1::Decision decision) {
    v1::AcknowledgeRequest request;
    request.set_case_id(id);
    request.set_decision(decision);
    v1::AcknowledgeResponse response;
    std::unique_ptr<grpc::ClientContext> context = c.NewContext();
    absl::Status s =
        client::FromGrpcStatus(c.stub().Acknowledge(context.get(), request, &response));
    if (!s.ok()) return s;
    return response.case_();
  }
  absl::StatusOr<v1::Case> Get(client::Client& c, const std::string& id) {
    v1::GetCaseRequest request;
    request.set_case_id(id);
    v1::GetCaseResponse response;
    std::unique_ptr<grpc::ClientContext> context = c.NewContext();
    absl::Status s = client::FromGrpcStatus(c.stub().GetCase(context.get(), request, &response));
    if (!s.ok()) return s;
    return response.case_();
  }
  absl::Status ListStatus(client::Client& c) {
    v1::ListCasesResponse response;
    std::unique_ptr<grpc::ClientContext> context = c.NewContext();
    return client::FromGrpcStatus(
        c.stub().ListCases(context.get(), v1::ListCasesRequest(), &response));
  }
  // OpenCase has the agent escalate a refund and returns its case id.
  std::string OpenCase(const std::string& id) {
    absl::StatusOr<v1::EvaluateResponse> r = agent_->Evaluate(Refund(id));
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->verdict(), v1::VERDICT_BLOCK) << r->reason();
    return r->case_id();
  }
  // StateOf reads a case as the admin (who sees every tenant).
  v1::CaseState StateOf(const std::string& id) {
    absl::StatusOr<v1::Case> c = Get(*admin_, id);
    EXPECT_TRUE(c.ok()) << c.status();
    return c->state();
  }

  testing::TempDir dir_;
  const testing::TestKey idp_key_ = testing::TestKey::Generate(testing::KeyType::kRsa2048);
  std::string server_cert_;
  testing::ServerProcess server_;
  std::string address_;
  std::string mtls_address_;
  std::unique_ptr<client::Client> agent_ = nullptr;
  std::unique_ptr<client::Client> admin_ = nullptr;

  void Clients() {
    agent_ = Connect("", "agent");
    admin_ = Connect(Token("root@example.com"));
  }
};

TEST_F(SecurityE2eTest, AnApprovalByTheOwnersQuorumIsRedeemedOnceByTheAgent) {
  Clients();
  const std::string id = OpenCase("r1");
  auto bob = Connect(Token("bob@example.com", R"(["finance-approver"])"));
  auto carol = Connect(Token("carol@example.com", R"(["controller"])"));
  absl::StatusOr<v1::Case> one = Ack(*bob, id, v1::DECISION_APPROVE);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->state(), v1::CASE_STATE_OPEN);  // 1 of 2
  ASSERT_EQ(one->votes_size(), 1);
  EXPECT_EQ(one->votes(0).principal().subject(), "bob@example.com");
  EXPECT_EQ(one->votes(0).principal().issuer(), kIssuer);
  absl::StatusOr<v1::Case> two = Ack(*carol, id, v1::DECISION_APPROVE);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->state(), v1::CASE_STATE_APPROVED);
  EXPECT_EQ(two->history().rbegin()->principal().subject(), "carol@example.com");

  v1::EvaluateRequest redeem = Refund("r1-redeem");
  redeem.set_item_id("order-r1");
  redeem.mutable_approval()->set_case_id(id);
  absl::StatusOr<v1::EvaluateResponse> allowed = agent_->Evaluate(redeem);
  ASSERT_TRUE(allowed.ok());
  EXPECT_EQ(allowed->verdict(), v1::VERDICT_ALLOW) << allowed->reason();
  redeem.set_request_id("r1-again");
  EXPECT_EQ(agent_->Evaluate(redeem)->verdict(), v1::VERDICT_BLOCK);
}

TEST_F(SecurityE2eTest, ACallWithoutACredentialIsUnauthenticated) {
  auto nobody = Connect("");
  EXPECT_THAT(nobody->Evaluate(Refund("x")),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("no credential")));
  EXPECT_THAT(ListStatus(*nobody), StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("")));
}

TEST_F(SecurityE2eTest, EveryBadTokenIsUnauthenticated) {
  Clients();
  const std::string id = OpenCase("r1");
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  const testing::TestKey other = testing::TestKey::Generate(testing::KeyType::kEcP256);
  const std::string good = Token("bob@example.com", R"(["finance-approver"])");
  std::string tampered = good;
  {
    // Swap the payload for one that claims more, keeping the signature.
    const size_t a = tampered.find('.'), b = tampered.rfind('.');
    const std::string payload = testing::Base64Url(
        absl::StrCat(R"({"iss":"https://idp.test","aud":"agate","sub":"root@example.com","exp":)",
                     now + 600, "}"));
    tampered = tampered.substr(0, a + 1) + payload + tampered.substr(b);
  }
  const std::string claims = absl::StrCat(
      R"({"iss":"https://idp.test","aud":"agate",)",
      R"("sub":"bob@example.com","groups":["finance-approver"],)", R"("exp":)", now + 600, "}");
  const struct {
    std::string name;
    std::string token;
    std::string message;
  } attacks[] = {
      {"expired", Token("bob@example.com", "[]", "", -3600), "expired"},
      {"not yet valid", Token("bob@example.com", "[]", absl::StrCat(R"(,"nbf":)", now + 3600)),
       "not valid before"},
      {"wrong issuer",
       testing::SignJwt(idp_key_, R"({"alg":"RS256","kid":"rsa-1"})",
                        absl::StrReplaceAll(claims, {{"https://idp.test", "https://evil.test"}})),
       "issuer"},
      {"wrong audience",
       testing::SignJwt(idp_key_, R"({"alg":"RS256","kid":"rsa-1"})",
                        absl::StrReplaceAll(claims, {{R"("aud":"agate")", R"("aud":"other")"}})),
       "audience"},
      {"unknown kid", testing::SignJwt(other, R"({"alg":"ES256","kid":"ec-9"})", claims), "kid"},
      {"tampered payload", tampered, "signature"},
      {"alg none",
       absl::StrCat(testing::Base64Url(R"({"alg":"none","kid":"rsa-1"})"), ".",
                    testing::Base64Url(claims), "."),
       "none"},
      {"HS256 with the public key",
       testing::HmacJwt(idp_key_.PublicPem(), R"({"alg":"HS256","kid":"rsa-1"})", claims), "HS256"},
  };
  for (const auto& attack : attacks) {
    SCOPED_TRACE(attack.name);
    auto c = Connect(attack.token);
    EXPECT_THAT(Ack(*c, id, v1::DECISION_APPROVE),
                StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr(attack.message)));
    EXPECT_THAT(ListStatus(*c), StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("")));
  }
  EXPECT_EQ(StateOf(id), v1::CASE_STATE_OPEN);  // nothing changed
}

TEST_F(SecurityE2eTest, AnAgentNeverApprovesItsOwnCase) {
  Clients();
  const std::string id = OpenCase("r1");
  EXPECT_THAT(Ack(*agent_, id, v1::DECISION_APPROVE),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("agent")));
  // Claiming to be the owner in the metadata changes nothing: the approver is the caller.
  auto claiming = Connect(Token("mallory@example.com"));
  v1::AcknowledgeRequest request;
  request.set_case_id(id);
  request.set_decision(v1::DECISION_APPROVE);
  request.set_approver("finance-approver");
  v1::AcknowledgeResponse response;
  std::unique_ptr<grpc::ClientContext> context = claiming->NewContext();
  context->AddMetadata("x-agate-approver", "finance-approver");
  EXPECT_THAT(
      client::FromGrpcStatus(claiming->stub().Acknowledge(context.get(), request, &response)),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("the verified caller")));
  EXPECT_EQ(StateOf(id), v1::CASE_STATE_OPEN);
}

TEST_F(SecurityE2eTest, AnotherTenantsOperatorCannotReadWatchAcknowledgeOrRedeem) {
  Clients();
  const std::string id = OpenCase("r1");
  // gina operates globex only.
  auto globex = Connect(Token("gina@example.com", R"(["globex-finance"])"));
  EXPECT_THAT(Get(*globex, id), StatusIs(absl::StatusCode::kNotFound, HasSubstr("not found")));
  EXPECT_THAT(Ack(*globex, id, v1::DECISION_APPROVE),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("not found")));
  v1::ListCasesResponse listed;
  std::unique_ptr<grpc::ClientContext> list_context = globex->NewContext();
  ASSERT_TRUE(globex->stub().ListCases(list_context.get(), v1::ListCasesRequest(), &listed).ok());
  EXPECT_EQ(listed.cases_size(), 0);
  // Watching: gina's stream carries no acme event while one happens.
  std::unique_ptr<grpc::ClientContext> watch_context = globex->NewContext();
  watch_context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  auto reader = globex->stub().WatchCases(watch_context.get(), v1::WatchCasesRequest());
  absl::SleepFor(absl::Milliseconds(300));
  OpenCase("r2");
  v1::CaseEvent event;
  EXPECT_FALSE(reader->Read(&event)) << event.case_().tenant_id();
  // Redeeming from another tenant: the globex agent cannot act for acme at all.
  auto globex_agent = Connect(Token("globex-bot"));
  v1::EvaluateRequest redeem = Refund("r3", "acme", "");
  redeem.mutable_approval()->set_case_id(id);
  EXPECT_THAT(globex_agent->Evaluate(redeem),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("tenant_id")));
  // Nor can it squat an acme request_id.
  EXPECT_THAT(globex_agent->Evaluate(Refund("r1", "acme", "")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("tenant_id")));
  EXPECT_EQ(StateOf(id), v1::CASE_STATE_OPEN);
}

TEST_F(SecurityE2eTest, TheSameApproverCountsOnceTowardAQuorum) {
  Clients();
  const std::string id = OpenCase("r1");
  auto bob = Connect(Token("bob@example.com", R"(["finance-approver"])"));
  ASSERT_TRUE(Ack(*bob, id, v1::DECISION_APPROVE).ok());
  auto bob_again = Connect(Token("bob@example.com", R"(["finance-approver"])", R"(,"jti":"t2")"));
  EXPECT_THAT(Ack(*bob_again, id, v1::DECISION_APPROVE),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already approved")));
  absl::StatusOr<v1::Case> c = Get(*admin_, id);
  EXPECT_EQ(c->state(), v1::CASE_STATE_OPEN);
  EXPECT_EQ(c->votes_size(), 1);
}

TEST_F(SecurityE2eTest, AnAgentCannotClaimAnotherAgentId) {
  Clients();
  EXPECT_THAT(agent_->Evaluate(Refund("r1", "acme", "billing-bot")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("agent_id")));
  EXPECT_THAT(agent_->Evaluate(Refund("r2", "globex")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("tenant_id")));
  // A person is not an agent.
  auto bob = Connect(Token("bob@example.com", R"(["finance-approver"])"));
  EXPECT_THAT(bob->Evaluate(Refund("r3")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not an agent")));
}

TEST_F(SecurityE2eTest, ARetryIsAuthorizedLikeTheFirstCall) {
  Clients();
  // The agent's call, then the same bytes again: the retry is answered from the cache.
  const v1::EvaluateRequest request = Refund("retry-1");
  absl::StatusOr<v1::EvaluateResponse> first = agent_->Evaluate(request);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<v1::EvaluateResponse> again = agent_->Evaluate(request);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->replayed());
  EXPECT_EQ(again->decision_id(), first->decision_id());
  // Anyone else sending those bytes is refused as on a first call, never answered.
  auto globex_bot = Connect(Token("globex-bot"));
  EXPECT_THAT(globex_bot->Evaluate(request),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("tenant_id")));
  auto bob = Connect(Token("bob@example.com", R"(["finance-approver"])"));
  EXPECT_THAT(bob->Evaluate(request),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not an agent")));
  EXPECT_THAT(Connect("")->Evaluate(request),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("credential")));
}

TEST_F(SecurityE2eTest, PlaintextToATlsListenerAndAForeignCertificateGetNoAnswer) {
  absl::StatusOr<std::unique_ptr<client::Client>> plaintext =
      client::Client::Create({.target = address_, .timeout = absl::Seconds(3)});
  ASSERT_TRUE(plaintext.ok());
  absl::StatusOr<v1::EvaluateResponse> r = (*plaintext)->Evaluate(Refund("x"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->failed_closed());  // no answer: the client fails closed
  // A client certificate from another CA: the handshake fails on either listener.
  for (const std::string& address : {address_, mtls_address_}) {
    auto rogue = Connect("", "rogue", address);
    absl::StatusOr<v1::EvaluateResponse> answer = rogue->Evaluate(Refund("y"));
    ASSERT_TRUE(answer.ok());
    EXPECT_TRUE(answer->failed_closed()) << address;
  }
  // The agents-only listener refuses a connection without a client certificate.
  auto token_only = Connect(Token("bob@example.com"), "", mtls_address_);
  EXPECT_TRUE(token_only->Evaluate(Refund("z"))->failed_closed());
  // And the agent's own certificate works there.
  auto agent = Connect("", "agent", mtls_address_);
  EXPECT_EQ(agent->Evaluate(Refund("w"))->verdict(), v1::VERDICT_BLOCK);
}

TEST_F(SecurityE2eTest, OnlyAnAdminSetsAKillSwitchAndItDeniesAtOnce) {
  Clients();
  auto bob = Connect(Token("bob@example.com", R"(["finance-approver"])"));
  v1::SetKillSwitchRequest kill;
  kill.set_scope(v1::KILL_SCOPE_TENANT);
  kill.set_tenant_id("acme");
  kill.set_reason("incident 42");
  kill.set_engaged(true);
  v1::KillSwitch response;
  {
    std::unique_ptr<grpc::ClientContext> context = bob->NewContext();
    EXPECT_THAT(client::FromGrpcStatus(bob->stub().SetKillSwitch(context.get(), kill, &response)),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not an admin")));
  }
  {
    std::unique_ptr<grpc::ClientContext> context = agent_->NewContext();
    EXPECT_THAT(
        client::FromGrpcStatus(agent_->stub().SetKillSwitch(context.get(), kill, &response)),
        StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not an admin")));
  }
  v1::EvaluateRequest small = Refund("s1");
  small.mutable_action()->set_amount(5);
  EXPECT_EQ(agent_->Evaluate(small)->verdict(), v1::VERDICT_ALLOW);
  {
    std::unique_ptr<grpc::ClientContext> context = admin_->NewContext();
    ASSERT_TRUE(admin_->stub().SetKillSwitch(context.get(), kill, &response).ok());
  }
  small.set_request_id("s2");
  absl::StatusOr<v1::EvaluateResponse> denied = agent_->Evaluate(small);
  EXPECT_EQ(denied->verdict(), v1::VERDICT_DENY);
  EXPECT_THAT(denied->reason(), HasSubstr("kill switch"));
  EXPECT_THAT(denied->reason(), HasSubstr("incident 42"));
  kill.set_engaged(false);
  {
    std::unique_ptr<grpc::ClientContext> context = admin_->NewContext();
    ASSERT_TRUE(admin_->stub().SetKillSwitch(context.get(), kill, &response).ok());
  }
  small.set_request_id("s3");
  EXPECT_EQ(agent_->Evaluate(small)->verdict(), v1::VERDICT_ALLOW);
}

TEST_F(SecurityE2eTest, TheDecisionLogRecordsWhoDidWhatAndWhatWasRefused) {
  Clients();
  const std::string id = OpenCase("r1");
  auto bob = Connect(Token("bob@example.com", R"(["finance-approver"])", R"(,"jti":"tok-7")"));
  ASSERT_TRUE(Ack(*bob, id, v1::DECISION_REJECT).ok());
  EXPECT_FALSE(Ack(*agent_, OpenCase("r2"), v1::DECISION_APPROVE).ok());
  server_.Signal(SIGTERM);
  ASSERT_EQ(server_.Wait(), 0);
  const std::string log_dir = dir_.path() + "/data/decisions";
  const std::string log = ReadFile(log_dir + "/decisions-000001.jsonl");
  EXPECT_THAT(log, HasSubstr(R"("event":"case","case_id":")" + id));
  EXPECT_THAT(log, HasSubstr(R"("transition":"rejected")"));
  EXPECT_THAT(log,
              HasSubstr(R"("principal":{"subject":"bob@example.com","issuer":"https://idp.test",)"
                        R"("token_id":"tok-7")"));
  EXPECT_THAT(log,
              HasSubstr(R"("event":"refused","method":"Acknowledge","code":"PERMISSION_DENIED")"));
  EXPECT_THAT(log, HasSubstr(absl::StrCat(R"("subject":")", kAgent)));
  testing::RunResult verify = testing::Run({AGATE_CLI_BIN, "verify-log", log_dir});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_THAT(verify.out, HasSubstr("chain intact"));
}

TEST(SecurityUnixTest, AUnixSocketPeerIsItsUid) {
  testing::TempDir dir;
  const std::string socket = dir.path() + "/agate.sock";
  testing::WriteFileOrDie(dir.path() + "/access.yaml",
                          absl::StrCat("version: 1\nagents:\n  - principal: uid:", getuid(),
                                       "\n    tenants: [acme]\n"));
  testing::ServerProcess server;
  ASSERT_TRUE(server.Start(AGATE_SERVER_BIN,
                           {"--matrix", AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml",
                            "--access", dir.path() + "/access.yaml", "--listen", "unix:" + socket,
                            "--store", "memory", "--socket-mode", "0600"}))
      << server.log();
  struct stat st;
  ASSERT_EQ(stat(socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  absl::StatusOr<std::unique_ptr<client::Client>> c =
      client::Client::Create({.target = "unix:" + socket, .timeout = absl::Seconds(10)});
  ASSERT_TRUE(c.ok());
  absl::StatusOr<v1::EvaluateResponse> r = (*c)->Evaluate(Refund("u1", "acme", ""));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->verdict(), v1::VERDICT_BLOCK);
  EXPECT_THAT((*c)->Evaluate(Refund("u2", "globex", "")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("uid:")));
}

TEST(SecurityStartTest, PlaintextOffLoopbackAndAuthNoneWithAPolicyAreStartErrors) {
  testing::RunResult open = testing::Run(
      {AGATE_SERVER_BIN, "--matrix", AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml",
       "--listen", "0.0.0.0:0", "--store", "memory"});
  EXPECT_EQ(open.exit_code, 2);
  EXPECT_THAT(open.err, HasSubstr("add --tls-cert FILE --tls-key FILE"));
  testing::RunResult both = testing::Run(
      {AGATE_SERVER_BIN, "--matrix", AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml",
       "--access", "/nonexistent.yaml", "--auth", "none"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_THAT(both.err, HasSubstr("contradict"));
  testing::RunResult no_tls = testing::Run(
      {AGATE_SERVER_BIN, "--matrix", AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml",
       "--access", "/nonexistent.yaml", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(no_tls.exit_code, 2);
  EXPECT_THAT(no_tls.err, HasSubstr("with --access every TCP listener uses TLS"));
}

}  // namespace
}  // namespace agate
