// BlockPool: the bookkeeping half of the paged KV cache. It hands out block ids (each block holds
// kBlockSize tokens of every layer's K and V; the storage itself lives in models::PagedKvStorage),
// counts references, and keeps the prefix index: full blocks registered under a hash chain of their
// token ids, so a later prompt that starts with the same tokens attaches them instead of
// recomputing.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace arle::kv {

inline constexpr int kBlockSize = 16;  // tokens per block
using BlockId = int32_t;
// Hash of a full block's tokens chained with its parent's hash (0 for the first block).
using BlockHash = uint64_t;

// Returns the chain hash of one full block: a 64-bit mix of `parent` and the kBlockSize token ids.
// The function is fixed (documented in block_pool.cc and pinned by a test), so hashes are stable
// across runs and platforms. It is not cryptographic. REQUIRES: tokens.size() == kBlockSize.
BlockHash HashBlock(BlockHash parent, std::span<const int32_t> tokens);

struct BlockPoolStats {
  int32_t n_blocks = 0;  // total
  int32_t n_used = 0;    // referenced by at least one sequence
  int32_t n_cached = 0;  // registered in the prefix index and unreferenced (evictable)
  int32_t n_free = 0;    // never registered or evicted, unreferenced
  int64_t n_evictions = 0;
  int64_t prefix_queried_tokens = 0;  // tokens looked up by Match()
  int64_t prefix_hit_tokens = 0;  // of those, tokens found in registered (used or cached) blocks
};

// Block states: free (refcount 0, no hash) -> used (refcount > 0, maybe hashed) -> on the last
// Release either free again (no hash) or cached (hash kept, in LRU order; still matchable). A
// cached block is reused by Match/Acquire (back to used) or evicted, least recently released
// first, when Allocate needs room (its hash is dropped). Referenced blocks are never evicted.
//
// Thread safety: none, not even for const calls (Match updates the lookup counters); the engine
// thread owns the pool. Every operation except ResetPrefixCache is O(1) per block it touches.
class BlockPool {
 public:
  // REQUIRES: n_blocks >= 1.
  explicit BlockPool(int32_t n_blocks);
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  int32_t n_blocks() const;
  // Blocks Allocate can hand out now: free + cached (evictable).
  int32_t n_available() const;
  int32_t refcount(BlockId id) const;
  BlockPoolStats stats() const;

  // Allocates n blocks with refcount 1 (free ones first, then evicting the least recently released
  // cached ones) and appends their ids to *out. Returns false and changes nothing (*out included)
  // when n > n_available(). REQUIRES: n >= 0, out != nullptr.
  bool Allocate(int32_t n, std::vector<BlockId>* out);

  // Adds one reference. REQUIRES: id is used or cached (a cached block leaves the LRU list).
  void Acquire(BlockId id);
  // Drops one reference. REQUIRES: refcount(id) > 0.
  void Release(BlockId id);
  // Release for each id, in reverse order (so a sequence's tail blocks are evicted before its
  // head when they reach the LRU list together).
  void ReleaseAll(std::span<const BlockId> ids);

  // Looks up the longest prefix of `tokens` made of registered full blocks, following the hash
  // chain from the first block, and returns their ids in order (only whole blocks: at most
  // tokens.size() / kBlockSize). Each block's stored token ids and parent hash are compared too, so
  // a collision of one block's hash is a miss, never a wrong hit (what remains is a 64-bit
  // collision of a whole earlier chain, see README.md). Does not take references (call Acquire on
  // each id to use them before any Allocate). Counts the lookup in prefix_queried_tokens
  // (tokens.size()) and prefix_hit_tokens (returned blocks * kBlockSize) when count_stats.
  std::vector<BlockId> Match(std::span<const int32_t> tokens, bool count_stats = true) const;
  // Counts a lookup whose hits the caller decided (a Match without count_stats, then cut shorter:
  // a model with recurrent layers can only reuse a prefix that ends at a state snapshot).
  void CountLookup(int64_t queried_tokens, int64_t hit_tokens);

  // Registers the used block `id`, now full with `tokens` (kBlockSize ids) after the chain hash
  // `parent` (0 for a sequence's first block), and returns its hash. When another block already
  // holds the same hash and tokens, nothing is registered (the existing one stays canonical) and
  // the same hash is returned; `id` stays unregistered and becomes free on its last Release. The
  // same happens on a genuine hash collision (another block holds the hash with other tokens or
  // another parent). Registering an already registered block again with the same parent and tokens
  // is a no-op. REQUIRES: refcount(id) > 0, tokens.size() == kBlockSize, and a registered `id` is
  // not registered again with other contents.
  BlockHash Register(BlockId id, BlockHash parent, std::span<const int32_t> tokens);

  // Drops every cached block's registration (they become free). Used blocks keep theirs.
  void ResetPrefixCache();
  // ResetPrefixCache, and used blocks lose their registration too: nothing matches any more (the
  // K/V was computed with weights that have since changed). They stay used by their holders and
  // become free on their last Release.
  void ForgetAllPrefixes();

 private:
  friend class BlockPoolTestPeer;  // tests forge hash collisions through RegisterWithHash

  static constexpr BlockId kNone = -1;

  struct Block {
    int32_t refcount = 0;
    bool registered = false;  // index_[hash] == this block
    BlockHash hash = 0;       // valid while registered
    BlockHash parent = 0;     // the chain hash before this block; valid while registered
    std::array<int32_t, kBlockSize> tokens{};  // valid while registered
    // Intrusive LRU links, valid while cached (registered and refcount 0).
    BlockId lru_prev = kNone;
    BlockId lru_next = kNone;
  };

  void CheckId(BlockId id) const;
  // Whether `block` was registered after `parent` with exactly `tokens`.
  static bool Holds(const Block& block, BlockHash parent, std::span<const int32_t> tokens);
  // Register with a given hash (Register passes HashBlock(parent, tokens)).
  BlockHash RegisterWithHash(BlockId id, BlockHash hash, BlockHash parent,
                             std::span<const int32_t> tokens);
  // Drops a registered block's index entry.
  void Unregister(BlockId id);
  void LruPushBack(BlockId id);
  void LruUnlink(BlockId id);

  std::vector<Block> blocks_;
  std::vector<BlockId> free_;  // a stack of free block ids; back() is handed out next
  BlockId lru_head_ = kNone;   // least recently released cached block (evicted first)
  BlockId lru_tail_ = kNone;   // most recently released
  std::unordered_map<BlockHash, BlockId> index_;  // registered blocks (used or cached)
  int32_t n_used_ = 0;
  int32_t n_cached_ = 0;
  int64_t n_evictions_ = 0;
  mutable int64_t prefix_queried_tokens_ = 0;
  mutable int64_t prefix_hit_tokens_ = 0;
};

}  // namespace arle::kv
