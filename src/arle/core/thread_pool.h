// ThreadPool: the compute pool that runs kernels. The calling thread takes part as worker 0, so a
// pool of size 1 runs everything inline. Workers spin briefly on each dispatch (a parallel region
// per op costs microseconds that matter for small models) and then sleep.
// Thread safety: Run/ParallelFor may be called from one thread at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "arle/core/status.h"

namespace arle::core {

class ThreadPool {
 public:
  // `n_threads` total workers including the caller; values < 1 mean DefaultThreadCount().
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(worker_index) once on every worker (0 .. size()-1) and returns when all are done.
  void Run(const std::function<void(int)>& fn);

  // Splits [0, n) into size() contiguous, balanced ranges and calls fn(begin, end) for each
  // non-empty one. The split depends only on n and size(), never on timing.
  void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

  // Like ParallelFor, but uses only as many workers as the work pays for: about one per
  // kMinWorkPerWorker units, where an item costs `work_per_item` units (for example the multiply-
  // adds of one output row). Waking a worker costs microseconds; a 64-wide matmul of a tiny model
  // is cheaper than that. The split still depends only on (n, work_per_item, size()).
  void ParallelFor(int64_t n, int64_t work_per_item,
                   const std::function<void(int64_t, int64_t)>& fn);
  static constexpr int64_t kMinWorkPerWorker = 1 << 15;

  // Like ParallelFor(n, work_per_item, fn), but the workers claim chunks of `chunk` items from a
  // shared counter until none are left, so a worker slowed by the OS (another process, an
  // interrupt) does less and nobody waits for it. Which worker runs which chunk depends on timing:
  // use it only where an item's result does not depend on the worker (every kernel here). When the
  // work pays for one worker only (or the pool has one), fn(0, n) is called once on the caller.
  void ParallelForChunks(int64_t n, int64_t work_per_item, int64_t chunk,
                         const std::function<void(int64_t, int64_t)>& fn);

  // One worker per physical core (hyperthread siblings counted once), at least 1.
  static int DefaultThreadCount();

 private:
  void WorkerLoop(int index);
  // Workers n items of work_per_item units pay for: about one per kMinWorkPerWorker, 1..size().
  int WorkersFor(int64_t n, int64_t work_per_item) const;
  void RunSplit(int64_t n, int max_workers, const std::function<void(int64_t, int64_t)>& fn);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* task_ = nullptr;
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

// The range of [0, n) that worker `index` of `n_workers` gets in ParallelFor.
inline void SplitRange(int64_t n, int n_workers, int index, int64_t* begin, int64_t* end) {
  const int64_t base = n / n_workers;
  const int64_t extra = n % n_workers;
  *begin = index * base + (index < extra ? index : extra);
  *end = *begin + base + (index < extra ? 1 : 0);
}

// Runs fn(k) for every k in [0, n), each on its own thread, and returns the first error by k (OK
// when all succeed). For blocking work the compute pool must not hold: HTTP requests in flight,
// agent episodes waiting on the engine and on tools. Joins every thread before returning.
Status RunOnThreads(size_t n, const std::function<Status(size_t)>& fn);

}  // namespace arle::core
