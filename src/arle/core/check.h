// ARLE_CHECK (always on) and ARLE_DCHECK (debug builds only): assertions for bugs, never for user
// input. A failed check prints file:line, the condition, the compared values and any streamed
// message, then aborts.
#pragma once

#include <sstream>
#include <string>

namespace arle::core::internal {

// Collects the streamed message; its destructor reports the failure and aborts.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `cond ? (void)0 : Voidify() & stream` compile to a void expression.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace arle::core::internal

#define ARLE_CHECK(cond)                 \
  (cond) ? (void)0                       \
         : ::arle::core::internal::Voidify() & \
               ::arle::core::internal::CheckFailure(__FILE__, __LINE__, #cond).stream()

#define ARLE_CHECK_OP_(a, b, op)                                                         \
  ((a)op(b)) ? (void)0                                                                   \
             : ::arle::core::internal::Voidify() &                                       \
                   ::arle::core::internal::CheckFailure(__FILE__, __LINE__, #a " " #op " " #b) \
                           .stream()                                                     \
                       << "(" << (a) << " vs " << (b) << ") "

#define ARLE_CHECK_EQ(a, b) ARLE_CHECK_OP_(a, b, ==)
#define ARLE_CHECK_NE(a, b) ARLE_CHECK_OP_(a, b, !=)
#define ARLE_CHECK_LT(a, b) ARLE_CHECK_OP_(a, b, <)
#define ARLE_CHECK_LE(a, b) ARLE_CHECK_OP_(a, b, <=)
#define ARLE_CHECK_GT(a, b) ARLE_CHECK_OP_(a, b, >)
#define ARLE_CHECK_GE(a, b) ARLE_CHECK_OP_(a, b, >=)

#ifdef NDEBUG
#define ARLE_DCHECK(cond) \
  while (false) ARLE_CHECK(cond)
#define ARLE_DCHECK_EQ(a, b) \
  while (false) ARLE_CHECK_EQ(a, b)
#define ARLE_DCHECK_LT(a, b) \
  while (false) ARLE_CHECK_LT(a, b)
#define ARLE_DCHECK_LE(a, b) \
  while (false) ARLE_CHECK_LE(a, b)
#else
#define ARLE_DCHECK(cond) ARLE_CHECK(cond)
#define ARLE_DCHECK_EQ(a, b) ARLE_CHECK_EQ(a, b)
#define ARLE_DCHECK_LT(a, b) ARLE_CHECK_LT(a, b)
#define ARLE_DCHECK_LE(a, b) ARLE_CHECK_LE(a, b)
#endif
