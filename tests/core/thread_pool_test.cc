// Tests for the thread pool: every index runs exactly once, ranges cover [0, n) without overlap.
#include "arle/core/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace arle::core {
namespace {

TEST(ThreadPoolTest, ParallelForCoversRangeOnce) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 5, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      for (int rep = 0; rep < 50; ++rep) {
        pool.ParallelFor(n, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
      }
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 50) << threads << " " << n;
    }
  }
}

TEST(ThreadPoolTest, RunCallsEveryWorker) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> seen(3);
  for (int rep = 0; rep < 1000; ++rep) pool.Run([&](int i) { seen[i].fetch_add(1); });
  for (auto& s : seen) EXPECT_EQ(s.load(), 1000);
}

TEST(ThreadPoolTest, SplitIsBalanced) {
  int64_t b, e;
  SplitRange(10, 3, 0, &b, &e);
  EXPECT_EQ(b, 0);
  EXPECT_EQ(e, 4);
  SplitRange(10, 3, 2, &b, &e);
  EXPECT_EQ(b, 7);
  EXPECT_EQ(e, 10);
  EXPECT_GE(ThreadPool::DefaultThreadCount(), 1);
}

}  // namespace
}  // namespace arle::core

namespace arle::core {
namespace {

TEST(ThreadPoolTest, CostAwareParallelForUsesFewWorkersForSmallWork) {
  ThreadPool pool(4);
  std::atomic<int> calls{0};
  std::vector<std::atomic<int>> hits(64);
  pool.ParallelFor(64, 8, [&](int64_t b, int64_t e) {
    calls.fetch_add(1);
    for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
  });
  EXPECT_EQ(calls.load(), 1);  // 512 units of work: one worker
  calls = 0;
  pool.ParallelFor(64, ThreadPool::kMinWorkPerWorker, [&](int64_t b, int64_t e) {
    calls.fetch_add(1);
    for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
  });
  EXPECT_EQ(calls.load(), 4);
  for (auto& h : hits) EXPECT_EQ(h.load(), 2);
}

// Chunks claimed from a shared counter: every item exactly once, chunks no longer than asked (one
// call for everything when a single worker runs), and a slow worker does not get an equal share.
TEST(ThreadPoolTest, ParallelForChunksCoversRangeOnceWhoeverClaimsIt) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 7, 1000}) {
      for (int64_t chunk : {0, 1, 3, 64, 5000}) {
        std::vector<std::atomic<int>> hits(n);
        std::atomic<bool> too_long{false};
        pool.ParallelForChunks(n, ThreadPool::kMinWorkPerWorker, chunk, [&](int64_t b, int64_t e) {
          if (threads > 1 && e - b > std::max<int64_t>(chunk, 1)) too_long = true;
          for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << threads << " " << n;
        EXPECT_FALSE(too_long.load());
      }
    }
  }
  ThreadPool pool(2);
  std::atomic<int> calls{0};
  pool.ParallelForChunks(64, 8, 4, [&](int64_t, int64_t) { calls.fetch_add(1); });
  EXPECT_EQ(calls.load(), 1);  // 512 units of work: the caller alone, in one call
  // One worker sleeps in its first chunk; the other takes the rest.
  std::atomic<int> chunks_of_sleeper{0}, chunks_total{0};
  std::atomic<bool> slept{false};
  thread_local bool is_sleeper = false;
  pool.ParallelForChunks(40, ThreadPool::kMinWorkPerWorker, 1, [&](int64_t, int64_t) {
    chunks_total.fetch_add(1);
    if (!slept.exchange(true)) {
      is_sleeper = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (is_sleeper) chunks_of_sleeper.fetch_add(1);
  });
  is_sleeper = false;
  EXPECT_EQ(chunks_total.load(), 40);
  EXPECT_LT(chunks_of_sleeper.load(), 20);
}

// RunOnThreads: every k runs (each on its own thread, so blocking work overlaps), and the first
// error by k comes back whatever order the threads finish in.
TEST(RunOnThreadsTest, RunsEveryIndexAndReturnsTheFirstErrorByIndex) {
  std::vector<std::atomic<int>> ran(16);
  std::atomic<int> waiting{0};
  const Status ok = RunOnThreads(16, [&](size_t k) {
    ++ran[k];
    // Every thread waits for all the others: only concurrent threads get past this.
    ++waiting;
    while (waiting.load() < 16) std::this_thread::yield();
    return OkStatus();
  });
  EXPECT_TRUE(ok.ok());
  for (const auto& r : ran) EXPECT_EQ(r.load(), 1);
  const Status bad = RunOnThreads(8, [](size_t k) {
    if (k == 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // finishes last
      return InvalidArgumentError("two");
    }
    if (k == 5) return InvalidArgumentError("five");
    return OkStatus();
  });
  EXPECT_EQ(bad.message(), "two");
  EXPECT_TRUE(RunOnThreads(0, [](size_t) { return InternalError("never"); }).ok());
}

}  // namespace
}  // namespace arle::core
