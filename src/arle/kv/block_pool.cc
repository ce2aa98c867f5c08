// BlockPool: refcounted KV block ids, a free stack, an intrusive LRU list of cached blocks and the
// hash-chain prefix index (see block_pool.h for the contract and README.md for the design).
#include "arle/kv/block_pool.h"

#include <algorithm>

#include "arle/core/check.h"

namespace arle::kv {
namespace {

// The splitmix64 finalizer: a bijective 64-bit mix with full avalanche.
constexpr uint64_t Mix64(uint64_t z) {
  z ^= z >> 30;
  z *= 0xBF58476D1CE4E5B9ULL;
  z ^= z >> 27;
  z *= 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return z;
}

// Domain separation ("arlekv01"), so a first block (parent 0) does not start from Mix64(0) == 0.
constexpr uint64_t kHashSeed = 0x61726C656B763031ULL;

}  // namespace

// The hash, fixed forever because hashes may outlive the process (disk/shared KV tiers later):
//   h = Mix64(parent ^ kHashSeed)
//   for k in 0..7: h = Mix64(h ^ (uint32(tokens[2k]) | uint64(uint32(tokens[2k+1])) << 32))
// All arithmetic is on fixed-width unsigned integers, so it is the same on every platform.
// tests/kv/block_pool_test.cc pins values computed independently in Python.
BlockHash HashBlock(BlockHash parent, std::span<const int32_t> tokens) {
  ARLE_CHECK_EQ(tokens.size(), static_cast<size_t>(kBlockSize));
  uint64_t h = Mix64(parent ^ kHashSeed);
  for (int k = 0; k < kBlockSize; k += 2) {
    const uint64_t word = static_cast<uint64_t>(static_cast<uint32_t>(tokens[k])) |
                          static_cast<uint64_t>(static_cast<uint32_t>(tokens[k + 1])) << 32;
    h = Mix64(h ^ word);
  }
  return h;
}

BlockPool::BlockPool(int32_t n_blocks) {
  ARLE_CHECK_GE(n_blocks, 1);
  blocks_.resize(n_blocks);
  free_.reserve(n_blocks);
  // Reverse order so blocks are handed out 0, 1, 2, ... from a fresh pool.
  for (BlockId id = n_blocks - 1; id >= 0; --id) free_.push_back(id);
  index_.reserve(n_blocks);
}

int32_t BlockPool::n_blocks() const { return static_cast<int32_t>(blocks_.size()); }

int32_t BlockPool::n_available() const { return static_cast<int32_t>(free_.size()) + n_cached_; }

int32_t BlockPool::refcount(BlockId id) const {
  CheckId(id);
  return blocks_[id].refcount;
}

BlockPoolStats BlockPool::stats() const {
  BlockPoolStats s;
  s.n_blocks = n_blocks();
  s.n_used = n_used_;
  s.n_cached = n_cached_;
  s.n_free = static_cast<int32_t>(free_.size());
  s.n_evictions = n_evictions_;
  s.prefix_queried_tokens = prefix_queried_tokens_;
  s.prefix_hit_tokens = prefix_hit_tokens_;
  return s;
}

bool BlockPool::Allocate(int32_t n, std::vector<BlockId>* out) {
  ARLE_CHECK_GE(n, 0);
  ARLE_CHECK(out != nullptr);
  if (n > n_available()) return false;
  out->reserve(out->size() + n);
  for (int32_t i = 0; i < n; ++i) {
    BlockId id;
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
    } else {
      // Free blocks first: evicting a cached block throws away a possible prefix hit.
      id = lru_head_;
      ARLE_CHECK_NE(id, kNone);
      LruUnlink(id);
      Unregister(id);
      --n_cached_;
      ++n_evictions_;
    }
    Block& block = blocks_[id];
    ARLE_DCHECK(block.refcount == 0 && !block.registered);
    block.refcount = 1;
    ++n_used_;
    out->push_back(id);
  }
  return true;
}

void BlockPool::Acquire(BlockId id) {
  CheckId(id);
  Block& block = blocks_[id];
  if (block.refcount == 0) {
    ARLE_CHECK(block.registered) << "Acquire of free block " << id;
    LruUnlink(id);
    --n_cached_;
    ++n_used_;
  }
  ++block.refcount;
}

void BlockPool::Release(BlockId id) {
  CheckId(id);
  Block& block = blocks_[id];
  ARLE_CHECK_GT(block.refcount, 0) << "Release of unreferenced block " << id;
  if (--block.refcount > 0) return;
  --n_used_;
  if (block.registered) {
    LruPushBack(id);
    ++n_cached_;
  } else {
    free_.push_back(id);
  }
}

void BlockPool::ReleaseAll(std::span<const BlockId> ids) {
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) Release(*it);
}

std::vector<BlockId> BlockPool::Match(std::span<const int32_t> tokens, bool count_stats) const {
  std::vector<BlockId> matched;
  const size_t n_full = tokens.size() / kBlockSize;
  BlockHash parent = 0;
  for (size_t i = 0; i < n_full; ++i) {
    const auto chunk = tokens.subspan(i * kBlockSize, kBlockSize);
    const BlockHash hash = HashBlock(parent, chunk);
    const auto it = index_.find(hash);
    if (it == index_.end() || !Holds(blocks_[it->second], parent, chunk)) break;
    matched.push_back(it->second);
    parent = hash;
  }
  if (count_stats) {
    prefix_queried_tokens_ += static_cast<int64_t>(tokens.size());
    prefix_hit_tokens_ += static_cast<int64_t>(matched.size()) * kBlockSize;
  }
  return matched;
}

void BlockPool::CountLookup(int64_t queried_tokens, int64_t hit_tokens) {
  prefix_queried_tokens_ += queried_tokens;
  prefix_hit_tokens_ += hit_tokens;
}

BlockHash BlockPool::Register(BlockId id, BlockHash parent, std::span<const int32_t> tokens) {
  ARLE_CHECK_EQ(tokens.size(), static_cast<size_t>(kBlockSize));
  return RegisterWithHash(id, HashBlock(parent, tokens), parent, tokens);
}

BlockHash BlockPool::RegisterWithHash(BlockId id, BlockHash hash, BlockHash parent,
                                      std::span<const int32_t> tokens) {
  CheckId(id);
  ARLE_CHECK_EQ(tokens.size(), static_cast<size_t>(kBlockSize));
  Block& block = blocks_[id];
  ARLE_CHECK_GT(block.refcount, 0) << "Register of unreferenced block " << id;
  if (block.registered) {
    // A full block's contents never change, so the only legal repeat is the same registration.
    ARLE_CHECK(block.hash == hash && Holds(block, parent, tokens))
        << "block " << id << " registered again with other contents";
    return hash;
  }
  // An existing entry wins whether it is a duplicate (same parent and tokens) or a collision: the
  // duplicate's KV is identical, and replacing a colliding entry would orphan its cached children.
  const auto [it, inserted] = index_.try_emplace(hash, id);
  if (!inserted) return hash;
  block.registered = true;
  block.hash = hash;
  block.parent = parent;
  std::copy(tokens.begin(), tokens.end(), block.tokens.begin());
  return hash;
}

void BlockPool::ResetPrefixCache() {
  for (BlockId id = lru_head_; id != kNone;) {
    const BlockId next = blocks_[id].lru_next;
    Unregister(id);
    blocks_[id].lru_prev = blocks_[id].lru_next = kNone;
    free_.push_back(id);
    id = next;
  }
  lru_head_ = lru_tail_ = kNone;
  n_cached_ = 0;
}

void BlockPool::ForgetAllPrefixes() {
  ResetPrefixCache();
  for (BlockId id = 0; id < n_blocks(); ++id) {
    if (blocks_[id].registered) Unregister(id);
  }
}

void BlockPool::CheckId(BlockId id) const {
  ARLE_CHECK(id >= 0 && id < n_blocks())
      << "block id " << id << " out of [0, " << n_blocks() << ")";
}

bool BlockPool::Holds(const Block& block, BlockHash parent, std::span<const int32_t> tokens) {
  return block.registered && block.parent == parent &&
         std::equal(tokens.begin(), tokens.end(), block.tokens.begin(), block.tokens.end());
}

void BlockPool::Unregister(BlockId id) {
  Block& block = blocks_[id];
  ARLE_DCHECK(block.registered);
  const auto it = index_.find(block.hash);
  ARLE_CHECK(it != index_.end() && it->second == id) << "prefix index lost block " << id;
  index_.erase(it);
  block.registered = false;
}

void BlockPool::LruPushBack(BlockId id) {
  Block& block = blocks_[id];
  block.lru_prev = lru_tail_;
  block.lru_next = kNone;
  if (lru_tail_ != kNone) {
    blocks_[lru_tail_].lru_next = id;
  } else {
    lru_head_ = id;
  }
  lru_tail_ = id;
}

void BlockPool::LruUnlink(BlockId id) {
  Block& block = blocks_[id];
  if (block.lru_prev != kNone) {
    blocks_[block.lru_prev].lru_next = block.lru_next;
  } else {
    lru_head_ = block.lru_next;
  }
  if (block.lru_next != kNone) {
    blocks_[block.lru_next].lru_prev = block.lru_prev;
  } else {
    lru_tail_ = block.lru_prev;
  }
  block.lru_prev = block.lru_next = kNone;
}

}  // namespace arle::kv
