// agate-noop-server: the floor agate's Evaluate is compared with. Same proto, same gRPC server
// options as agate-server (callback API, SO_REUSEPORT off, 1 MiB message limit), and an
// Evaluate that answers a fixed ALLOW response of the same shape without deciding anything.
//
//   agate-noop-server --listen 127.0.0.1:0 [--listen unix:/tmp/noop.sock]
#include <signal.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "agate/v1/agate.grpc.pb.h"
#include "common/command_line.h"
#include "common/listen_address.h"
#include "grpcpp/grpcpp.h"

namespace {

class NoopService final : public agate::v1::Agate::CallbackService {
 public:
  NoopService() {
    fixed_.set_decision_id("01M871D531XSD7ZVR000000000");
    fixed_.set_verdict(agate::v1::VERDICT_ALLOW);
    fixed_.set_matrix_version("1");
  }
  grpc::ServerUnaryReactor* Evaluate(grpc::CallbackServerContext* context,
                                     const agate::v1::EvaluateRequest* request,
                                     agate::v1::EvaluateResponse* response) override {
    *response = fixed_;
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  agate::v1::EvaluateResponse fixed_;
};

}  // namespace

int main(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<agate::CommandLine> cl = agate::CommandLine::Parse(
      std::vector<std::string>(argv + 1, argv + argc), {.values = {"listen"}, .booleans = {}});
  if (!cl.ok()) {
    std::cerr << "agate-noop-server: " << cl.status().message() << "\n";
    return 2;
  }
  std::vector<std::string> listen = cl->All("listen");
  if (listen.empty()) listen.push_back("127.0.0.1:7879");
  NoopService service;
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(1 << 20);
  std::vector<agate::ListenAddress> addresses;
  std::vector<int> ports(listen.size(), 0);
  for (size_t i = 0; i < listen.size(); ++i) {
    absl::StatusOr<agate::ListenAddress> a = agate::ParseListenAddress(listen[i]);
    if (!a.ok()) {
      std::cerr << "agate-noop-server: " << a.status().message() << "\n";
      return 2;
    }
    addresses.push_back(*a);
    builder.AddListeningPort(a->grpc_uri(), grpc::InsecureServerCredentials(), &ports[i]);
  }
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::cerr << "agate-noop-server: cannot listen\n";
    return 1;
  }
  for (size_t i = 0; i < addresses.size(); ++i) {
    std::cerr << "listening on " << addresses[i].ToString(ports[i]) << std::endl;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  server->Shutdown();
  return 0;
}
