// ReloadMatrix: the test matrices of the hot-reload tests (server/matrix_reloader_test.cc and the
// end-to-end tests/e2e/reload_test.cc). ReloadMatrix(v, strict) is a valid one-lane matrix of
// version v that disagrees with its other flavour about a $200 refund and about who owns the lane:
// strict = false allows it (limit 250.0, owner alice), strict = true blocks it (limit 100.0, owner
// carol). Both flavours of one version have the same length.
#ifndef AGATE_TESTS_RELOAD_MATRICES_H_
#define AGATE_TESTS_RELOAD_MATRICES_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace agate::testing {

inline std::string ReloadMatrix(absl::string_view version, bool strict) {
  return absl::StrCat("version: ", version, R"(
name: reload-test
lanes:
  financial: {owner: )",
                      strict ? "carol" : "alice",
                      R"(, backup: bob, sla: 4h, verdict: BLOCK, scope: item, on_timeout: expire,
              evidence: [justification], agent_action: wait, operator_action: check}
triggers:
  - id: refund-over-limit
    lane: financial
    when: action.type == "refund" && action.amount > )",
                      strict ? "100.0" : "250.0", "\n");
}

}  // namespace agate::testing

#endif  // AGATE_TESTS_RELOAD_MATRICES_H_
