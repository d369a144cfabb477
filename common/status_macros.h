// Status propagation macros that keep call sites flat.
//
//   RETURN_IF_ERROR(expr);           // returns expr's status when it is not OK
//   ASSIGN_OR_RETURN(lhs, expr);     // lhs = *expr, or returns expr's status
//
// Both work in any function returning absl::Status or absl::StatusOr<T>.
#ifndef AGATE_COMMON_STATUS_MACROS_H_
#define AGATE_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define AGATE_STATUS_CONCAT_INNER_(a, b) a##b
#define AGATE_STATUS_CONCAT_(a, b) AGATE_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                                       \
  do {                                                              \
    if (absl::Status agate_status_ = (expr); !agate_status_.ok()) { \
      return agate_status_;                                         \
    }                                                               \
  } while (false)

#define ASSIGN_OR_RETURN(lhs, expr) \
  AGATE_ASSIGN_OR_RETURN_IMPL_(AGATE_STATUS_CONCAT_(agate_statusor_, __LINE__), lhs, expr)

#define AGATE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)  \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = *std::move(statusor)

#endif  // AGATE_COMMON_STATUS_MACROS_H_
