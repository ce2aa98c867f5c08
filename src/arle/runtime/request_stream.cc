// RequestStream: the engine callback pushes into a queue shared with the reader (kept alive by
// both, since the engine may still be inside the callback when the reader is done).
#include "arle/runtime/request_stream.h"

namespace arle::runtime {

core::StatusOr<std::unique_ptr<RequestStream>> RequestStream::Submit(Engine& engine,
                                                                     EngineRequest request) {
  std::unique_ptr<RequestStream> stream(new RequestStream(engine, request.n));
  std::shared_ptr<Shared> shared = stream->shared_;
  stream->submitted_ = Clock::now();
  ARLE_ASSIGN_OR_RETURN(stream->id_,
                        engine.Submit(std::move(request), [shared](const EngineOutput& out) {
                          {
                            std::lock_guard<std::mutex> lock(shared->mu);
                            shared->queue.emplace_back(out, Clock::now());
                          }
                          shared->cv.notify_one();
                        }));
  return stream;
}

RequestStream::~RequestStream() {
  if (n_open_ > 0) engine_.Cancel(id_);
}

std::optional<EngineOutput> RequestStream::Next() {
  if (n_open_ == 0) return std::nullopt;
  std::unique_lock<std::mutex> lock(shared_->mu);
  shared_->cv.wait(lock, [&] { return !shared_->queue.empty(); });
  auto [out, at] = std::move(shared_->queue.front());
  shared_->queue.pop_front();
  if (!first_token_ && !out.tokens.empty()) first_token_ = at;
  if (out.finish_reason != FinishReason::kNone && --n_open_ == 0) finished_ = at;
  return std::move(out);
}

void RequestStream::Cancel() { engine_.Cancel(id_); }

}  // namespace arle::runtime
