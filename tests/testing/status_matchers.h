// StatusIs: matches an absl::Status or absl::StatusOr<T> with a code and a message matcher.
//
//   EXPECT_THAT(store->Get("x"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("case x")));
#ifndef AGATE_TESTS_TESTING_STATUS_MATCHERS_H_
#define AGATE_TESTS_TESTING_STATUS_MATCHERS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"

namespace agate::testing {

inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER_P2(StatusIs, code, message_matcher,
           absl::StrCat(negation ? "not " : "", "status ", absl::StatusCodeToString(code),
                        " whose message ",
                        ::testing::DescribeMatcher<std::string>(message_matcher))) {
  const absl::Status& status = ::agate::testing::StatusOf(arg);
  *result_listener << "status " << status;
  return status.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(status.message()),
                                       result_listener);
}

}  // namespace agate::testing

#endif  // AGATE_TESTS_TESTING_STATUS_MATCHERS_H_
