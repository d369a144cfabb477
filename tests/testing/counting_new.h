// counting_new.cc replaces the global operator new to count heap allocations. A count is
// deterministic where a time is not: "the ALLOW path allocates nothing" is a test, not a benchmark.
//
// Compile counting_new.cc into the test binary itself (SOURCES, never a library: every binary
// linking it would count), then:
//   const long before = testing::Allocations();
//   ... the path under test ...
//   EXPECT_EQ(testing::Allocations() - before, 0);
#ifndef AGATE_TESTS_TESTING_COUNTING_NEW_H_
#define AGATE_TESTS_TESTING_COUNTING_NEW_H_

namespace agate::testing {

// Allocations returns how many times operator new (any form) has been called in this process.
long Allocations();

}  // namespace agate::testing

#endif  // AGATE_TESTS_TESTING_COUNTING_NEW_H_
