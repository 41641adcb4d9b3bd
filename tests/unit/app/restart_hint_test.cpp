// The restart hint (restart::hint_from): the main process takes "this SIGTERM is a restart"
// only from the unit's ExecStop hook, i.e. SIGUSR2 queued by root with a value. Anything else
// (kill -USR2 by anyone, a queued signal from another uid) must not arm it: a later stop would
// then throw the sessions into an fd store that systemd releases.
#include <gtest/gtest.h>
#include <signal.h>

#include "ringway/app/restart.hpp"

namespace ringway::app::restart {
namespace {

siginfo_t queued(int signo, int code, uid_t uid, int value) {
  siginfo_t info{};
  info.si_signo = signo;
  info.si_code = code;
  info.si_uid = uid;
  info.si_value.sival_int = value;
  return info;
}

TEST(RestartHint, QueuedByRootCarriesTheStoreSize) {
  const auto before = std::chrono::steady_clock::now();
  const auto hint = hint_from(queued(kHintSignal, SI_QUEUE, 0, 65536));
  ASSERT_TRUE(hint.has_value());
  EXPECT_EQ(hint->fd_store_max, 65536U);
  EXPECT_GE(hint->at, before);
}

TEST(RestartHint, PlainKillIsIgnored) {
  EXPECT_FALSE(hint_from(queued(kHintSignal, SI_USER, 0, 65536)).has_value());
}

TEST(RestartHint, QueuedByAnotherUserIsIgnored) {
  EXPECT_FALSE(hint_from(queued(kHintSignal, SI_QUEUE, 1000, 65536)).has_value());
}

TEST(RestartHint, OtherSignalIsIgnored) {
  EXPECT_FALSE(hint_from(queued(SIGUSR1, SI_QUEUE, 0, 65536)).has_value());
}

TEST(RestartHint, NegativeStoreSizeReadsAsEmpty) {
  const auto hint = hint_from(queued(kHintSignal, SI_QUEUE, 0, -5));
  ASSERT_TRUE(hint.has_value());
  EXPECT_EQ(hint->fd_store_max, 0U);
}

}  // namespace
}  // namespace ringway::app::restart
