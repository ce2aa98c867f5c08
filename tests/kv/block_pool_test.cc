// Tests for kv::BlockPool: refcounts, allocation without over-commit, LRU eviction of unreferenced
// blocks only, hash-chain prefix matching (collisions are misses), duplicate registration, reset,
// and a long randomized run against a simple reference model of the block states.
#include "arle/kv/block_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <list>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

namespace arle::kv {

// Reaches BlockPool's private RegisterWithHash to forge hash collisions, which the public API
// cannot produce (it always hashes with HashBlock).
class BlockPoolTestPeer {
 public:
  static BlockHash RegisterWithHash(BlockPool& pool, BlockId id, BlockHash hash, BlockHash parent,
                                    std::span<const int32_t> tokens) {
    return pool.RegisterWithHash(id, hash, parent, tokens);
  }
};

namespace {

// A full block whose token ids are base, base + 1, ..., base + 15.
std::vector<int32_t> BlockTokens(int32_t base) {
  std::vector<int32_t> tokens(kBlockSize);
  std::iota(tokens.begin(), tokens.end(), base);
  return tokens;
}

std::vector<int32_t> Concat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> all;
  for (const auto& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

void ExpectBalanced(const BlockPool& pool) {
  const BlockPoolStats s = pool.stats();
  EXPECT_EQ(s.n_used + s.n_cached + s.n_free, s.n_blocks);
  EXPECT_EQ(pool.n_available(), s.n_free + s.n_cached);
}

TEST(HashBlockTest, ValuesArePinned) {
  // Computed independently in Python from the formula documented in block_pool.cc; these values
  // must never change (hashes may be stored by later KV tiers).
  const BlockHash first = HashBlock(0, BlockTokens(0));
  EXPECT_EQ(first, 0x309d343fb0fae47eULL);
  EXPECT_EQ(HashBlock(first, BlockTokens(16)), 0x4d0c4565f86b74a4ULL);
  std::vector<int32_t> odd(kBlockSize, 0);
  std::fill(odd.begin(), odd.begin() + 8, -1);
  odd[8] = 151643;
  odd[9] = 2147483647;
  EXPECT_EQ(HashBlock(0, odd), 0x6b9dd6d6a018b9c0ULL);
}

TEST(HashBlockTest, DependsOnParentEveryTokenAndOrder) {
  const std::vector<int32_t> base = BlockTokens(100);
  const BlockHash h = HashBlock(7, base);
  EXPECT_NE(HashBlock(8, base), h);
  std::set<BlockHash> seen = {h};
  for (int i = 0; i < kBlockSize; ++i) {
    std::vector<int32_t> changed = base;
    changed[i] += 1;
    EXPECT_TRUE(seen.insert(HashBlock(7, changed)).second) << i;
  }
  std::vector<int32_t> swapped = base;
  std::swap(swapped[0], swapped[1]);
  EXPECT_NE(HashBlock(7, swapped), h);
}

TEST(BlockPoolTest, FreshPool) {
  BlockPool pool(5);
  EXPECT_EQ(pool.n_blocks(), 5);
  EXPECT_EQ(pool.n_available(), 5);
  const BlockPoolStats s = pool.stats();
  EXPECT_EQ(s.n_blocks, 5);
  EXPECT_EQ(s.n_free, 5);
  EXPECT_EQ(s.n_used, 0);
  EXPECT_EQ(s.n_cached, 0);
  for (BlockId id = 0; id < 5; ++id) EXPECT_EQ(pool.refcount(id), 0);
}

TEST(BlockPoolTest, AllocateAppendsDistinctBlocksAndNeverOverCommits) {
  BlockPool pool(6);
  std::vector<BlockId> out = {42};  // Allocate appends
  ASSERT_TRUE(pool.Allocate(4, &out));
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0], 42);
  std::set<BlockId> distinct(out.begin() + 1, out.end());
  EXPECT_EQ(distinct.size(), 4u);
  for (BlockId id : distinct) EXPECT_EQ(pool.refcount(id), 1);
  EXPECT_EQ(pool.n_available(), 2);
  ExpectBalanced(pool);

  const BlockPoolStats before = pool.stats();
  const std::vector<BlockId> out_before = out;
  EXPECT_FALSE(pool.Allocate(3, &out));
  EXPECT_EQ(out, out_before);  // nothing changed
  EXPECT_EQ(pool.stats().n_used, before.n_used);
  EXPECT_EQ(pool.stats().n_free, before.n_free);

  EXPECT_TRUE(pool.Allocate(0, &out));
  EXPECT_EQ(out, out_before);
  EXPECT_TRUE(pool.Allocate(2, &out));
  EXPECT_EQ(pool.n_available(), 0);
  EXPECT_FALSE(pool.Allocate(1, &out));
  ExpectBalanced(pool);
}

TEST(BlockPoolTest, RefcountsReturnToZero) {
  BlockPool pool(4);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.Allocate(3, &ids));
  pool.Acquire(ids[1]);
  pool.Acquire(ids[1]);
  EXPECT_EQ(pool.refcount(ids[1]), 3);
  pool.Release(ids[1]);
  EXPECT_EQ(pool.refcount(ids[1]), 2);
  EXPECT_EQ(pool.stats().n_used, 3);
  pool.ReleaseAll(ids);
  pool.Release(ids[1]);
  for (BlockId id = 0; id < 4; ++id) EXPECT_EQ(pool.refcount(id), 0);
  const BlockPoolStats s = pool.stats();
  EXPECT_EQ(s.n_used, 0);
  EXPECT_EQ(s.n_free, 4);  // never registered: free, not cached
  EXPECT_EQ(s.n_cached, 0);
}

TEST(BlockPoolTest, RegisteredBlockIsCachedAfterReleaseAndReusable) {
  BlockPool pool(3);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.Allocate(1, &ids));
  const std::vector<int32_t> tokens = BlockTokens(0);
  const BlockHash h = pool.Register(ids[0], 0, tokens);
  EXPECT_EQ(h, HashBlock(0, tokens));
  pool.Release(ids[0]);
  EXPECT_EQ(pool.stats().n_cached, 1);
  EXPECT_EQ(pool.stats().n_free, 2);
  EXPECT_EQ(pool.n_available(), 3);

  const std::vector<BlockId> matched = pool.Match(tokens);
  ASSERT_EQ(matched, std::vector<BlockId>{ids[0]});
  pool.Acquire(matched[0]);  // cached -> used, leaves the LRU list
  EXPECT_EQ(pool.refcount(ids[0]), 1);
  EXPECT_EQ(pool.stats().n_cached, 0);
  EXPECT_EQ(pool.stats().n_used, 1);
  std::vector<BlockId> rest;
  ASSERT_TRUE(pool.Allocate(2, &rest));
  EXPECT_EQ(std::count(rest.begin(), rest.end(), ids[0]), 0);  // a used block is never handed out
  EXPECT_FALSE(pool.Allocate(1, &rest));
  EXPECT_EQ(pool.stats().n_evictions, 0);
  ExpectBalanced(pool);
}

TEST(BlockPoolTest, EvictionIsLeastRecentlyReleasedAndSkipsReferenced) {
  BlockPool pool(6);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.Allocate(4, &ids));
  for (int i = 0; i < 4; ++i) pool.Register(ids[i], 0, BlockTokens(1000 * (i + 1)));
  // Release order 2, 0, 3; block 1 stays referenced.
  pool.Release(ids[2]);
  pool.Release(ids[0]);
  pool.Release(ids[3]);
  EXPECT_EQ(pool.stats().n_cached, 3);
  EXPECT_EQ(pool.n_available(), 5);

  std::vector<BlockId> got;
  ASSERT_TRUE(pool.Allocate(2, &got));  // the two free blocks first: no eviction
  EXPECT_EQ(pool.stats().n_evictions, 0);
  for (BlockId id : got) EXPECT_EQ(std::count(ids.begin(), ids.end(), id), 0);

  const std::vector<BlockId> expected_order = {ids[2], ids[0], ids[3]};
  for (int i = 0; i < 3; ++i) {
    std::vector<BlockId> one;
    ASSERT_TRUE(pool.Allocate(1, &one));
    EXPECT_EQ(one[0], expected_order[i]) << i;
    EXPECT_EQ(pool.stats().n_evictions, i + 1);
    // The evicted block's prefix is gone.
    const int original = static_cast<int>(std::find(ids.begin(), ids.end(), one[0]) - ids.begin());
    EXPECT_TRUE(pool.Match(BlockTokens(1000 * (original + 1))).empty());
  }
  std::vector<BlockId> none;
  EXPECT_FALSE(pool.Allocate(1, &none));  // block 1 is referenced, never evicted
  EXPECT_EQ(pool.refcount(ids[1]), 1);
  EXPECT_EQ(pool.Match(BlockTokens(2000)), std::vector<BlockId>{ids[1]});
  ExpectBalanced(pool);
}

TEST(BlockPoolTest, AcquireRefreshesLruPosition) {
  BlockPool pool(2);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.Allocate(2, &ids));
  pool.Register(ids[0], 0, BlockTokens(0));
  pool.Register(ids[1], 0, BlockTokens(100));
  pool.Release(ids[0]);
  pool.Release(ids[1]);
  // Reuse block 0 and release it again: it is now the most recently released.
  pool.Acquire(ids[0]);
  pool.Release(ids[0]);
  std::vector<BlockId> one;
  ASSERT_TRUE(pool.Allocate(1, &one));
  EXPECT_EQ(one[0], ids[1]);
}

TEST(BlockPoolTest, ReleaseAllEvictsTailBeforeHead) {
  BlockPool pool(3);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.Allocate(3, &ids));
  const auto b0 = BlockTokens(0), b1 = BlockTokens(16), b2 = BlockTokens(32);
  BlockHash h = pool.Register(ids[0], 0, b0);
  h = pool.Register(ids[1], h, b1);
  pool.Register(ids[2], h, b2);
  pool.ReleaseAll(ids);
  EXPECT_EQ(pool.stats().n_cached, 3);
  std::vector<BlockId> one;
  ASSERT_TRUE(pool.Allocate(1, &one));
  EXPECT_EQ(one[0], ids[2]);
  EXPECT_EQ(pool.Match(Concat({b0, b1, b2})), (std::vector<BlockId>{ids[0], ids[1]}));
  ASSERT_TRUE(pool.Allocate(1, &one));
  EXPECT_EQ(one[1], ids[1]);
}

TEST(BlockPoolTest, MatchReturnsLongestChainPrefixAndStopsAtFirstMiss) {
  BlockPool pool(8);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.Allocate(3, &ids));
  const auto b0 = BlockTokens(0), b1 = BlockTokens(16), b2 = BlockTokens(32);
  const BlockHash h0 = pool.Register(ids[0], 0, b0);
  const BlockHash h1 = pool.Register(ids[1], h0, b1);
  pool.Register(ids[2], h1, b2);

  const std::vector<int32_t> tail = {7, 8, 9};  // a partial block is never matched
  EXPECT_EQ(pool.Match(Concat({b0, b1, b2, tail})), ids);
  EXPECT_EQ(pool.Match(Concat({b0, b1})), (std::vector<BlockId>{ids[0], ids[1]}));
  EXPECT_EQ(pool.Match(Concat({b0, BlockTokens(999), b2})), std::vector<BlockId>{ids[0]});
  EXPECT_TRUE(pool.Match(Concat({b1, b2})).empty());  // b1 was registered after b0, not first
  EXPECT_TRUE(pool.Match(tail).empty());
  EXPECT_TRUE(pool.Match(std::span<const int32_t>()).empty());
  std::vector<int32_t> almost = b0;
  almost.pop_back();
  EXPECT_TRUE(pool.Match(almost).empty());

  // Evict the middle block while the last one stays cached: Match stops at the hole.
  pool.Release(ids[1]);
  std::vector<BlockId> fill;
  ASSERT_TRUE(pool.Allocate(5, &fill));  // the 5 free blocks
  ASSERT_TRUE(pool.Allocate(1, &fill));  // evicts ids[1], the only cached block
  EXPECT_EQ(fill.back(), ids[1]);
  EXPECT_EQ(pool.Match(Concat({b0, b1, b2})), std::vector<BlockId>{ids[0]});

  // Recomputing the middle block into another block reconnects the chain to the cached tail.
  const BlockId again = fill[0];
  EXPECT_EQ(pool.Register(again, h0, b1), h1);
  EXPECT_EQ(pool.Match(Concat({b0, b1, b2})), (std::vector<BlockId>{ids[0], again, ids[2]}));
}

TEST(BlockPoolTest, MatchCountsStats) {
  BlockPool pool(2);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.Allocate(1, &ids));
  const auto b0 = BlockTokens(0);
  pool.Register(ids[0], 0, b0);
  pool.Match(Concat({b0, BlockTokens(50), {1, 2}}));  // 34 tokens, 16 hit
  pool.Match(b0, /*count_stats=*/false);
  pool.Match(BlockTokens(99));  // 16 tokens, 0 hit
  const BlockPoolStats s = pool.stats();
  EXPECT_EQ(s.prefix_queried_tokens, 50);
  EXPECT_EQ(s.prefix_hit_tokens, 16);
}

TEST(BlockPoolTest, ForgedHashCollisionIsAMissNotAWrongHit) {
  BlockPool pool(4);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.Allocate(3, &ids));
  const auto wanted = BlockTokens(0), other = BlockTokens(500);
  // Block 0 holds `other` but sits under the hash a lookup of `wanted` computes.
  const BlockHash wanted_hash = HashBlock(0, wanted);
  EXPECT_EQ(BlockPoolTestPeer::RegisterWithHash(pool, ids[0], wanted_hash, 0, other), wanted_hash);
  EXPECT_TRUE(pool.Match(wanted).empty());
  EXPECT_TRUE(pool.Match(other).empty());

  // Registering the real `wanted` block collides: the existing entry stays, the new block does not
  // become registered (it is free, not cached, after its release).
  EXPECT_EQ(pool.Register(ids[1], 0, wanted), wanted_hash);
  EXPECT_TRUE(pool.Match(wanted).empty());
  pool.Release(ids[1]);
  EXPECT_EQ(pool.stats().n_cached, 0);
  EXPECT_EQ(pool.stats().n_free, 2);

  // Same tokens but a different parent under the right hash: also a miss.
  const auto root = BlockTokens(1000);
  const BlockHash root_hash = pool.Register(ids[2], 0, root);
  const BlockHash child_hash = HashBlock(root_hash, wanted);
  std::vector<BlockId> more;
  ASSERT_TRUE(pool.Allocate(1, &more));
  BlockPoolTestPeer::RegisterWithHash(pool, more[0], child_hash, root_hash ^ 1, wanted);
  EXPECT_EQ(pool.Match(Concat({root, wanted})), std::vector<BlockId>{ids[2]});
}

TEST(BlockPoolTest, DifferentBlocksUnderOneParentNeverMatchEachOther) {
  constexpr int kN = 2 * kBlockSize;
  BlockPool pool(kN + 1);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.Allocate(kN + 1, &ids));
  const auto root = BlockTokens(7);
  const BlockHash parent = pool.Register(ids[kN], 0, root);
  std::vector<std::vector<int32_t>> blocks;
  for (int i = 0; i < kN; ++i) {
    // Blocks differing from each other in one position (and by one id).
    std::vector<int32_t> tokens = BlockTokens(3000);
    tokens[i % kBlockSize] += 1 + i / kBlockSize;
    pool.Register(ids[i], parent, tokens);
    blocks.push_back(tokens);
  }
  pool.ReleaseAll(ids);
  EXPECT_EQ(pool.stats().n_cached, kN + 1);
  for (int i = 0; i < kN; ++i) {
    EXPECT_EQ(pool.Match(Concat({root, blocks[i]})), (std::vector<BlockId>{ids[kN], ids[i]})) << i;
  }
  EXPECT_EQ(pool.Match(Concat({root, BlockTokens(3000)})), std::vector<BlockId>{ids[kN]});
}

TEST(BlockPoolTest, RegisterDuplicateKeepsCanonicalBlock) {
  BlockPool pool(4);
  std::vector<BlockId> a, b;
  ASSERT_TRUE(pool.Allocate(1, &a));
  ASSERT_TRUE(pool.Allocate(1, &b));
  const auto tokens = BlockTokens(40);
  const BlockHash h = pool.Register(a[0], 0, tokens);
  EXPECT_EQ(pool.Register(b[0], 0, tokens), h);  // computed twice (two prefills at once)
  EXPECT_EQ(pool.Match(tokens), a);
  EXPECT_EQ(pool.Register(a[0], 0, tokens), h);  // registering the canonical block again: no-op
  pool.Release(b[0]);                            // the duplicate becomes free, not cached
  EXPECT_EQ(pool.stats().n_cached, 0);
  EXPECT_EQ(pool.stats().n_free, 3);
  pool.Release(a[0]);
  EXPECT_EQ(pool.stats().n_cached, 1);
  EXPECT_EQ(pool.Match(tokens), a);
}

TEST(BlockPoolTest, ResetPrefixCacheFreesCachedAndKeepsUsed) {
  BlockPool pool(4);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.Allocate(3, &ids));
  for (int i = 0; i < 3; ++i) pool.Register(ids[i], 0, BlockTokens(100 * i));
  pool.Release(ids[0]);
  pool.Release(ids[1]);
  EXPECT_EQ(pool.stats().n_cached, 2);
  pool.ResetPrefixCache();
  BlockPoolStats s = pool.stats();
  EXPECT_EQ(s.n_cached, 0);
  EXPECT_EQ(s.n_free, 3);
  EXPECT_EQ(s.n_used, 1);
  EXPECT_EQ(s.n_evictions, 0);
  EXPECT_TRUE(pool.Match(BlockTokens(0)).empty());
  EXPECT_TRUE(pool.Match(BlockTokens(100)).empty());
  EXPECT_EQ(pool.Match(BlockTokens(200)), std::vector<BlockId>{ids[2]});  // used: kept
  pool.Release(ids[2]);
  EXPECT_EQ(pool.stats().n_cached, 1);
  std::vector<BlockId> all;
  ASSERT_TRUE(pool.Allocate(3, &all));  // the freed blocks are handed out before the cached one
  EXPECT_EQ(pool.stats().n_evictions, 0);
  EXPECT_EQ(pool.Match(BlockTokens(200)), std::vector<BlockId>{ids[2]});
  pool.ResetPrefixCache();  // also fine with nothing (or only one block) cached
  pool.ResetPrefixCache();
  ExpectBalanced(pool);
  EXPECT_EQ(pool.n_available(), 1);
}

TEST(BlockPoolDeathTest, BrokenRequirementsAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  BlockPool pool(2);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.Allocate(1, &ids));
  const auto tokens = BlockTokens(0);
  EXPECT_DEATH(pool.Release(1), "unreferenced");
  EXPECT_DEATH(pool.Acquire(1), "free block");
  EXPECT_DEATH(pool.Register(1, 0, tokens), "unreferenced");
  EXPECT_DEATH(pool.refcount(2), "out of");
  EXPECT_DEATH(pool.Acquire(-1), "out of");
  EXPECT_DEATH(pool.Allocate(-1, &ids), "n >= 0");
  EXPECT_DEATH(pool.Allocate(1, nullptr), "nullptr");
  EXPECT_DEATH(pool.Register(ids[0], 0, std::span<const int32_t>(tokens).first(3)), "kBlockSize");
  EXPECT_DEATH(HashBlock(0, std::vector<int32_t>(17)), "kBlockSize");
  pool.Register(ids[0], 0, tokens);
  EXPECT_DEATH(pool.Register(ids[0], 0, BlockTokens(1)), "other contents");
  EXPECT_DEATH(BlockPool(0), "n_blocks >= 1");
}

// ---- Randomized run against a reference model --------------------------------------------------

// The states written the obvious (slow) way: a set of free ids, a list in release order, a map.
class ReferencePool {
 public:
  struct Block {
    int refcount = 0;
    bool registered = false;
    BlockHash hash = 0;
    BlockHash parent = 0;
    std::vector<int32_t> tokens;
  };

  explicit ReferencePool(int n) : blocks(n) {
    for (int i = 0; i < n; ++i) free.insert(i);
  }

  int available() const { return static_cast<int>(free.size() + lru.size()); }

  // Checks the pool's choice of ids (free ones first, then the LRU front in order) and applies it.
  void ApplyAllocate(int n, const std::vector<BlockId>& got) {
    ASSERT_EQ(static_cast<int>(got.size()), n);
    const int from_free = std::min<int>(n, static_cast<int>(free.size()));
    for (int i = 0; i < from_free; ++i) {
      ASSERT_EQ(free.erase(got[i]), 1u) << "block " << got[i] << " was not free";
    }
    for (int i = from_free; i < n; ++i) {
      ASSERT_FALSE(lru.empty());
      ASSERT_EQ(got[i], lru.front()) << "eviction is not least recently released";
      lru.pop_front();
      Block& b = blocks[got[i]];
      ASSERT_TRUE(b.registered);
      index.erase(b.hash);
      b.registered = false;
      ++evictions;
    }
    for (BlockId id : got) {
      ASSERT_EQ(blocks[id].refcount, 0);
      blocks[id].refcount = 1;
    }
  }

  void Acquire(BlockId id) {
    Block& b = blocks[id];
    if (b.refcount == 0) lru.remove(id);
    ++b.refcount;
  }

  void Release(BlockId id) {
    Block& b = blocks[id];
    if (--b.refcount > 0) return;
    if (b.registered) {
      lru.push_back(id);
    } else {
      free.insert(id);
    }
  }

  BlockHash Register(BlockId id, BlockHash parent, const std::vector<int32_t>& tokens) {
    const BlockHash hash = HashBlock(parent, tokens);
    Block& b = blocks[id];
    if (b.registered || index.count(hash)) return hash;
    b.registered = true;
    b.hash = hash;
    b.parent = parent;
    b.tokens = tokens;
    index[hash] = id;
    return hash;
  }

  std::vector<BlockId> Match(const std::vector<int32_t>& tokens, bool count_stats) {
    std::vector<BlockId> out;
    BlockHash parent = 0;
    for (size_t i = 0; i + kBlockSize <= tokens.size(); i += kBlockSize) {
      const std::vector<int32_t> chunk(tokens.begin() + i, tokens.begin() + i + kBlockSize);
      const BlockHash hash = HashBlock(parent, chunk);
      const auto it = index.find(hash);
      if (it == index.end()) break;
      const Block& b = blocks[it->second];
      if (b.parent != parent || b.tokens != chunk) break;
      out.push_back(it->second);
      parent = hash;
    }
    if (count_stats) {
      queried += static_cast<int64_t>(tokens.size());
      hit += static_cast<int64_t>(out.size()) * kBlockSize;
    }
    return out;
  }

  void ResetPrefixCache() {
    for (BlockId id : lru) {
      index.erase(blocks[id].hash);
      blocks[id].registered = false;
      free.insert(id);
    }
    lru.clear();
  }

  std::vector<Block> blocks;
  std::set<BlockId> free;
  std::list<BlockId> lru;  // front: least recently released
  std::map<BlockHash, BlockId> index;
  int64_t evictions = 0;
  int64_t queried = 0;
  int64_t hit = 0;
};

// A sequence holding blocks: its tokens cover them (the last block may be partial), and its first
// n_registered full blocks are registered.
struct Sequence {
  std::vector<int32_t> tokens;
  std::vector<BlockId> blocks;
  int n_registered = 0;
  BlockHash last_hash = 0;  // the chain hash of block n_registered - 1
};

class RandomizedRun {
 public:
  static constexpr int kBlocks = 40;

  RandomizedRun() : pool_(kBlocks), model_(kBlocks), rng_(20240611) {}

  void Run(int n_ops) {
    for (int op = 0; op < n_ops; ++op) {
      const int kind = Uniform(0, 99);
      if (kind < 30) {
        Admit();
      } else if (kind < 48) {
        Finish();
      } else if (kind < 62) {
        RegisterNext();
      } else if (kind < 68) {
        Fork();
      } else if (kind < 76) {
        Truncate();
      } else if (kind < 84) {
        RawAllocate();
      } else if (kind < 92) {
        MatchOnly();
      } else if (kind < 99) {
        ReRegister();
      } else if (Uniform(0, 9) == 0) {
        pool_.ResetPrefixCache();
        model_.ResetPrefixCache();
        ++resets_;
      }
      CheckInvariants();
      if (::testing::Test::HasFailure()) {
        FAIL() << "after op " << op;
      }
    }
    while (!seqs_.empty()) {
      FinishAt(0);
      CheckInvariants();
    }
    for (BlockId id = 0; id < kBlocks; ++id) ASSERT_EQ(pool_.refcount(id), 0);
    ASSERT_EQ(pool_.stats().n_used, 0);
    // The run must have exercised every path, or it proves little.
    const BlockPoolStats s = pool_.stats();
    EXPECT_GT(s.n_evictions, 1000);
    EXPECT_GT(s.prefix_hit_tokens, 10000);
    EXPECT_GT(failed_allocations_, 100);
    EXPECT_GT(duplicates_, 100);
    EXPECT_GT(resets_, 10);
  }

 private:
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  // Prompts drawn from few block variants so they share prefixes often, plus a partial tail.
  std::vector<int32_t> RandomTokens(int n_full, int tail) {
    std::vector<int32_t> tokens;
    for (int i = 0; i < n_full; ++i) {
      const int variant = Uniform(0, i == 0 ? 2 : 3);
      for (int j = 0; j < kBlockSize; ++j) tokens.push_back(variant * 100 + j);
    }
    for (int j = 0; j < tail; ++j) tokens.push_back(Uniform(0, 5));
    return tokens;
  }

  int RandomSeq() { return Uniform(0, static_cast<int>(seqs_.size()) - 1); }

  std::vector<int32_t> FullBlock(const Sequence& seq, int i) {
    return {seq.tokens.begin() + i * kBlockSize, seq.tokens.begin() + (i + 1) * kBlockSize};
  }

  int FullBlocks(const Sequence& seq) {
    return std::min(static_cast<int>(seq.tokens.size()) / kBlockSize,
                    static_cast<int>(seq.blocks.size()));
  }

  bool Allocate(int n, std::vector<BlockId>* out) {
    const size_t before = out->size();
    const bool expect_ok = n <= model_.available();
    const bool ok = pool_.Allocate(n, out);
    EXPECT_EQ(ok, expect_ok);
    if (!ok) {
      EXPECT_EQ(out->size(), before);
      ++failed_allocations_;
      return false;
    }
    model_.ApplyAllocate(n, std::vector<BlockId>(out->begin() + before, out->end()));
    return true;
  }

  void Admit() {
    if (seqs_.size() >= 10) return FinishAt(RandomSeq());
    Sequence seq;
    seq.tokens = RandomTokens(Uniform(0, 6), Uniform(0, kBlockSize - 1));
    const bool count = Uniform(0, 3) != 0;
    const std::vector<BlockId> matched = pool_.Match(seq.tokens, count);
    ASSERT_EQ(matched, model_.Match(seq.tokens, count));
    for (BlockId id : matched) {
      pool_.Acquire(id);
      model_.Acquire(id);
    }
    seq.blocks = matched;
    seq.n_registered = static_cast<int>(matched.size());
    if (!matched.empty()) {
      seq.last_hash = HashBlock(0, FullBlock(seq, 0));
      for (int i = 1; i < seq.n_registered; ++i)
        seq.last_hash = HashBlock(seq.last_hash, FullBlock(seq, i));
    }
    const int need = static_cast<int>((seq.tokens.size() + kBlockSize - 1) / kBlockSize) -
                     static_cast<int>(matched.size());
    if (!Allocate(need, &seq.blocks)) {
      pool_.ReleaseAll(matched);
      for (auto it = matched.rbegin(); it != matched.rend(); ++it) model_.Release(*it);
      return;
    }
    seqs_.push_back(std::move(seq));
  }

  void FinishAt(int i) {
    Sequence& seq = seqs_[i];
    pool_.ReleaseAll(seq.blocks);
    for (auto it = seq.blocks.rbegin(); it != seq.blocks.rend(); ++it) model_.Release(*it);
    seqs_.erase(seqs_.begin() + i);
  }

  void Finish() {
    if (!seqs_.empty()) FinishAt(RandomSeq());
  }

  void RegisterNext() {
    if (seqs_.empty()) return;
    Sequence& seq = seqs_[RandomSeq()];
    if (seq.n_registered >= FullBlocks(seq)) return;
    const std::vector<int32_t> block = FullBlock(seq, seq.n_registered);
    const BlockId id = seq.blocks[seq.n_registered];
    const bool duplicate =
        !model_.blocks[id].registered && model_.index.count(HashBlock(seq.last_hash, block)) > 0;
    const BlockHash hash = pool_.Register(id, seq.last_hash, block);
    ASSERT_EQ(hash, model_.Register(id, seq.last_hash, block));
    duplicates_ += duplicate;
    seq.last_hash = hash;
    ++seq.n_registered;
  }

  void ReRegister() {
    if (seqs_.empty()) return;
    Sequence& seq = seqs_[RandomSeq()];
    if (seq.n_registered == 0) return;
    const int i = Uniform(0, seq.n_registered - 1);
    BlockHash parent = 0;
    for (int k = 0; k < i; ++k) parent = HashBlock(parent, FullBlock(seq, k));
    const std::vector<int32_t> block = FullBlock(seq, i);
    ASSERT_EQ(pool_.Register(seq.blocks[i], parent, block),
              model_.Register(seq.blocks[i], parent, block));
  }

  void Fork() {
    if (seqs_.empty() || seqs_.size() >= 10) return;
    Sequence copy = seqs_[RandomSeq()];
    for (BlockId id : copy.blocks) {
      pool_.Acquire(id);
      model_.Acquire(id);
    }
    seqs_.push_back(std::move(copy));
  }

  void Truncate() {
    if (seqs_.empty()) return;
    Sequence& seq = seqs_[RandomSeq()];
    if (seq.blocks.empty()) return;
    pool_.Release(seq.blocks.back());
    model_.Release(seq.blocks.back());
    seq.blocks.pop_back();
    seq.tokens.resize(std::min(seq.tokens.size(), seq.blocks.size() * kBlockSize));
    if (seq.n_registered > static_cast<int>(seq.blocks.size())) {
      seq.n_registered = static_cast<int>(seq.blocks.size());
      seq.last_hash = 0;
      for (int k = 0; k < seq.n_registered; ++k)
        seq.last_hash = HashBlock(seq.last_hash, FullBlock(seq, k));
    }
  }

  void RawAllocate() {
    if (seqs_.size() >= 10) return;
    Sequence seq;
    const int n = Uniform(0, model_.available() + 3);
    if (!Allocate(n, &seq.blocks)) return;
    seq.tokens = RandomTokens(n, 0);
    seqs_.push_back(std::move(seq));
  }

  void MatchOnly() {
    const std::vector<int32_t> tokens = RandomTokens(Uniform(0, 6), Uniform(0, 20));
    const bool count = Uniform(0, 1) != 0;
    ASSERT_EQ(pool_.Match(tokens, count), model_.Match(tokens, count));
  }

  void CheckInvariants() {
    const BlockPoolStats s = pool_.stats();
    ASSERT_EQ(s.n_blocks, kBlocks);
    ASSERT_EQ(s.n_used + s.n_cached + s.n_free, kBlocks);
    ASSERT_EQ(pool_.n_available(), s.n_free + s.n_cached);
    ASSERT_EQ(s.n_free, static_cast<int>(model_.free.size()));
    ASSERT_EQ(s.n_cached, static_cast<int>(model_.lru.size()));
    ASSERT_EQ(s.n_evictions, model_.evictions);
    ASSERT_EQ(s.prefix_queried_tokens, model_.queried);
    ASSERT_EQ(s.prefix_hit_tokens, model_.hit);
    // Refcounts equal the references the sequences hold.
    std::vector<int> held(kBlocks, 0);
    for (const Sequence& seq : seqs_)
      for (BlockId id : seq.blocks) ++held[id];
    int used = 0;
    for (BlockId id = 0; id < kBlocks; ++id) {
      ASSERT_EQ(pool_.refcount(id), held[id]) << "block " << id;
      ASSERT_EQ(model_.blocks[id].refcount, held[id]) << "block " << id;
      used += held[id] > 0;
    }
    ASSERT_EQ(s.n_used, used);
  }

  BlockPool pool_;
  ReferencePool model_;
  std::mt19937_64 rng_;
  std::vector<Sequence> seqs_;
  int64_t failed_allocations_ = 0;
  int64_t duplicates_ = 0;
  int64_t resets_ = 0;
};

TEST(BlockPoolTest, RandomizedAgainstReferenceModel) { RandomizedRun().Run(100000); }

}  // namespace
}  // namespace arle::kv
