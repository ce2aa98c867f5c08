// Spin-then-sleep thread pool on C++20 atomic wait/notify (futex-backed on Linux).
#include "arle/core/thread_pool.h"

#include <algorithm>
#include <climits>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ARLE_CPU_RELAX() _mm_pause()
#else
#define ARLE_CPU_RELAX() ((void)0)
#endif

namespace arle::core {
namespace {

// Busy-wait this many pause instructions (~tens of microseconds) before yielding the core, then
// yield a few times before sleeping on a futex. Pure spinning is fastest on an idle machine but
// collapses when the machine is oversubscribed (other processes, or more threads than cores): the
// spinner then burns the time slice the thread it waits for needs, and each parallel region costs
// a scheduler tick.
constexpr int kSpinIterations = 2000;
constexpr int kYieldIterations = 50;

}  // namespace

int ThreadPool::DefaultThreadCount() {
  std::set<std::pair<std::string, std::string>> cores;
  const unsigned n_cpu = std::thread::hardware_concurrency();
  for (unsigned cpu = 0; cpu < n_cpu; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream core_file(base + "core_id"), pkg_file(base + "physical_package_id");
    std::string core, pkg;
    if (!(core_file >> core) || !(pkg_file >> pkg)) {
      cores.clear();
      break;
    }
    cores.emplace(pkg, core);
  }
  if (!cores.empty()) return static_cast<int>(cores.size());
  return n_cpu > 0 ? static_cast<int>(n_cpu) : 1;
}

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(n_threads >= 1 ? n_threads : DefaultThreadCount()) {
  workers_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Run(const std::function<void(int)>& fn) {
  if (n_threads_ == 1) {
    fn(0);
    return;
  }
  task_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  fn(0);
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < kSpinIterations) {
      ARLE_CPU_RELAX();
    } else if (spin < kSpinIterations + kYieldIterations) {
      std::this_thread::yield();
    } else {
      int left = pending_.load(std::memory_order_acquire);
      if (left != 0) pending_.wait(left, std::memory_order_acquire);
    }
  }
  task_ = nullptr;
}

int ThreadPool::WorkersFor(int64_t n, int64_t work_per_item) const {
  const int64_t total = work_per_item > 0 && n > INT64_MAX / work_per_item ? INT64_MAX
                                                                           : n * work_per_item;
  return static_cast<int>(std::clamp<int64_t>(total / kMinWorkPerWorker, 1, n_threads_));
}

void ThreadPool::ParallelFor(int64_t n, int64_t work_per_item,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  RunSplit(n, WorkersFor(n, work_per_item), fn);
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  RunSplit(n, n_threads_, fn);
}

void ThreadPool::ParallelForChunks(int64_t n, int64_t work_per_item, int64_t chunk,
                                   const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (chunk < 1) chunk = 1;
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  const int workers = static_cast<int>(std::min<int64_t>(WorkersFor(n, work_per_item), n_chunks));
  if (workers == 1) {
    fn(0, n);
    return;
  }
  std::atomic<int64_t> next{0};
  Run([&](int index) {
    if (index >= workers) return;
    for (int64_t begin = next.fetch_add(chunk, std::memory_order_relaxed); begin < n;
         begin = next.fetch_add(chunk, std::memory_order_relaxed)) {
      fn(begin, std::min(n, begin + chunk));
    }
  });
}

void ThreadPool::RunSplit(int64_t n, int max_workers,
                          const std::function<void(int64_t, int64_t)>& fn) {
  const int workers = n < max_workers ? static_cast<int>(n) : max_workers;
  if (workers == 1) {
    fn(0, n);
    return;
  }
  Run([&](int index) {
    if (index >= workers) return;
    int64_t begin, end;
    SplitRange(n, workers, index, &begin, &end);
    if (begin < end) fn(begin, end);
  });
}

void ThreadPool::WorkerLoop(int index) {
  uint32_t seen = 0;
  while (true) {
    uint32_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < kSpinIterations + kYieldIterations; ++spin) {
      if (spin < kSpinIterations) {
        ARLE_CPU_RELAX();
      } else {
        std::this_thread::yield();
      }
      gen = generation_.load(std::memory_order_acquire);
    }
    while (gen == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load(std::memory_order_acquire)) return;
    (*task_)(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

Status RunOnThreads(size_t n, const std::function<Status(size_t)>& fn) {
  std::vector<Status> results(n);
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (size_t k = 0; k < n; ++k) threads.emplace_back([&, k] { results[k] = fn(k); });
  for (std::thread& t : threads) t.join();
  for (Status& st : results) {
    if (!st.ok()) return st;
  }
  return OkStatus();
}

}  // namespace arle::core
