// BPE over one pre-token: initial symbols, then a priority queue of adjacent pairs merged by rank
// (tokenizer.json merges) or by best merged-piece score (SentencePiece / llama2.c), leftmost first.
#include <algorithm>
#include <vector>

#include "arle/tokenizer/tokenizer_impl.h"
#include "arle/tokenizer/unicode.h"

namespace arle::tokenizer::internal {
namespace {

struct Symbol {
  int32_t id;
  uint32_t start;  // byte range in the word
  uint32_t len;    // 0: merged away
  int prev;
  int next;
  bool mergeable;
};

struct Candidate {
  double priority;  // lower merges first
  int left;
  int32_t left_id;
  int32_t right_id;
  int32_t merged_id;
  bool operator<(const Candidate& o) const {  // the heap pops the largest: lowest priority value
    if (priority != o.priority) return priority > o.priority;
    return left > o.left;
  }
};

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

void BpeModel::EncodeWord(std::string_view word, const TokenMap& vocab,
                          std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (ignore_merges) {
    auto it = byte_level ? vocab.find(BytesToByteLevel(word)) : vocab.find(word);
    if (it != vocab.end()) {
      out->push_back(it->second);
      return;
    }
  }
  // Per-thread scratch: EncodeWord runs once per uncached pre-token, so avoid reallocating.
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  symbols.clear();
  heap.clear();
  auto push = [&](int32_t id, size_t start, size_t len, bool mergeable) {
    int index = static_cast<int>(symbols.size());
    symbols.push_back({id, static_cast<uint32_t>(start), static_cast<uint32_t>(len), index - 1,
                       -1, mergeable});
    if (index > 0) symbols[index - 1].next = index;
  };
  auto push_unknown = [&](size_t start, size_t len) {
    if (byte_fallback) {
      bool all = true;
      for (size_t k = 0; k < len; ++k) {
        all = all && fallback_ids[static_cast<uint8_t>(word[start + k])] >= 0;
      }
      if (all) {
        for (size_t k = 0; k < len; ++k) {
          push(fallback_ids[static_cast<uint8_t>(word[start + k])], start + k, 1, false);
        }
        return;
      }
    }
    if (!unk_id) return;  // no unk token: the character is dropped (as Hugging Face does)
    if (fuse_unk && !symbols.empty() && symbols.back().id == *unk_id && !symbols.back().mergeable) {
      symbols.back().len += static_cast<uint32_t>(len);
      return;
    }
    push(*unk_id, start, len, false);
  };
  if (byte_level) {
    for (size_t i = 0; i < word.size(); ++i) {
      int32_t id = byte_ids[static_cast<uint8_t>(word[i])];
      if (id >= 0) {
        push(id, i, 1, true);
      } else {
        push_unknown(i, 1);
      }
    }
  } else {
    size_t i = 0;
    while (i < word.size()) {
      int len = Utf8SequenceLength(word.substr(i));
      if (len == 0) len = 1;  // an invalid byte is its own character
      auto it = vocab.find(word.substr(i, len));
      if (it != vocab.end()) {
        push(it->second, i, len, true);
      } else {
        push_unknown(i, len);
      }
      i += len;
    }
  }

  auto push_candidate = [&](const Candidate& c) {
    heap.push_back(c);
    std::push_heap(heap.begin(), heap.end());
  };
  auto consider = [&](int left) {
    if (left < 0) return;
    int right = symbols[left].next;
    if (right < 0) return;
    const Symbol& a = symbols[left];
    const Symbol& b = symbols[right];
    if (!a.mergeable || !b.mergeable) return;
    if (mode == Mode::kRanks) {
      auto it = merges.find(PairKey(a.id, b.id));
      if (it == merges.end()) return;
      push_candidate({static_cast<double>(it->second >> 32), left, a.id, b.id,
                      static_cast<int32_t>(it->second & 0xFFFFFFFFu)});
    } else {
      auto it = vocab.find(word.substr(a.start, a.len + b.len));
      if (it == vocab.end()) return;
      int32_t id = it->second;
      double score = id >= 0 && static_cast<size_t>(id) < scores.size() ? scores[id] : -1e30;
      push_candidate({-score, left, a.id, b.id, id});
    }
  };
  for (int i = 0; i + 1 < static_cast<int>(symbols.size()); ++i) consider(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    Candidate c = heap.back();
    heap.pop_back();
    Symbol& a = symbols[c.left];
    if (a.len == 0 || a.next < 0 || a.id != c.left_id) continue;
    Symbol& b = symbols[a.next];
    if (b.id != c.right_id) continue;
    a.id = c.merged_id;
    a.len += b.len;
    b.len = 0;
    a.next = b.next;
    if (a.next >= 0) symbols[a.next].prev = c.left;
    consider(a.prev);
    consider(c.left);
  }
  for (const Symbol& s : symbols) {
    if (s.len > 0) out->push_back(s.id);
  }
}

bool WordCache::Lookup(std::string_view word, std::vector<int32_t>* out) const {
  Shard& shard = shards_[StringHash{}(word) % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.map.find(word);
  if (it == shard.map.end()) return false;
  out->insert(out->end(), it->second.begin(), it->second.end());
  return true;
}

void WordCache::Insert(std::string_view word, const std::vector<int32_t>& ids) const {
  Shard& shard = shards_[StringHash{}(word) % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.map.size() >= kMaxEntriesPerShard) shard.map.clear();
  shard.map.emplace(std::string(word), ids);
}

}  // namespace arle::tokenizer::internal
