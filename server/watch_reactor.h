// WatchReactor: the server side of WatchCases, a stream of case events.
//
// It holds a WatcherQuota slot for as long as the stream is open (released in OnDone, whichever
// way the stream ended). It subscribes a CaseWatcher (bounded buffer: a slow client loses events,
// counted in CaseEvent.dropped, and never slows Evaluate) and writes one event at a time, as the
// bytes the case store serialized once for every watcher; with a batch_window, at most one
// message per window carrying every event it gathered (CaseEvent.more), which is what makes
// hundreds of watchers cheap: the cost of a stream is per write, not per byte. It ends when the
// client cancels or disconnects, or when the server shuts down (the drain deadline cancels it).
#ifndef AGATE_SERVER_WATCH_REACTOR_H_
#define AGATE_SERVER_WATCH_REACTOR_H_

#include "agate/v1/agate.pb.h"
#include "cases/case_store.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "server/watcher_quota.h"

namespace agate::server {

// NewWatchReactor starts streaming store's events matching request within scope; the reactor
// gives slot back when the stream ends and deletes itself.
grpc::ServerWriteReactor<grpc::ByteBuffer>* NewWatchReactor(cases::CaseStore& store,
                                                            const v1::WatchCasesRequest& request,
                                                            cases::TenantScope scope,
                                                            WatcherQuota::Slot slot);

}  // namespace agate::server

#endif  // AGATE_SERVER_WATCH_REACTOR_H_
