// user_data tags and the session table: encode/decode round trips, and a completion for a slot
// that was freed (or freed and reused) is recognised by its generation.
#include <gtest/gtest.h>

#include <set>

#include "ringway/engine/session.hpp"
#include "ringway/engine/user_data.hpp"

namespace ringway::engine {
namespace {

TEST(Tag, RoundTripsEveryField) {
  for (Op op : {Op::Wake, Op::Accept, Op::Connect, Op::Recv, Op::Send, Op::Cancel, Op::Watch}) {
    for (Dir d : {Dir::DownToUp, Dir::UpToDown}) {
      const Tag t{0xDEADBEEF, 0xCAFE, op, d};
      const Tag back = Tag::decode(t.encode());
      EXPECT_EQ(back.slot, t.slot);
      EXPECT_EQ(back.generation, t.generation);
      EXPECT_EQ(back.op, op);
      EXPECT_EQ(back.dir, d);
    }
  }
  EXPECT_NE(tag(Op::Recv, 1, 1, Dir::DownToUp), tag(Op::Recv, 1, 1, Dir::UpToDown));
  // A recv's bundle cap travels in aux without disturbing the other fields.
  for (uint8_t aux : {uint8_t{0}, uint8_t{1}, uint8_t{16}, uint8_t{Tag::kAuxMax}}) {
    const Tag t = Tag::decode(tag(Op::Recv, 0xFFFFFFFF, 0xFFFF, Dir::UpToDown, aux));
    EXPECT_EQ(t.aux, aux);
    EXPECT_EQ(t.op, Op::Recv);
    EXPECT_EQ(t.dir, Dir::UpToDown);
    EXPECT_EQ(t.slot, 0xFFFFFFFFu);
    EXPECT_EQ(t.generation, 0xFFFF);
  }
  EXPECT_NE(tag(Op::Recv, 1, 1), tag(Op::Recv, 1, 2));
  EXPECT_NE(tag(Op::Recv, 1, 1), tag(Op::Send, 1, 1));
}

TEST(SessionTable, GenerationMismatchIsStale) {
  SessionTable table(16);
  const uint32_t slot = table.alloc();
  ASSERT_NE(slot, UINT32_MAX);
  Session& s = table.at(slot);
  s.state = SessionState::Established;
  const uint64_t old_tag = tag(Op::Recv, slot, s.generation);
  Tag t = Tag::decode(old_tag);
  EXPECT_EQ(table.find(t.slot, t.generation), &s);

  table.free(slot);
  EXPECT_EQ(table.find(t.slot, t.generation), nullptr) << "freed slot still found";
  const uint32_t again = table.alloc();
  EXPECT_EQ(again, slot) << "the freed slot is reused first";
  table.at(again).state = SessionState::Connecting;
  EXPECT_EQ(table.find(t.slot, t.generation), nullptr) << "reused slot matched an old tag";
  EXPECT_NE(table.find(t.slot, table.at(again).generation), nullptr);
  EXPECT_EQ(table.find(9999, 0), nullptr);
}

TEST(SessionTable, AllocFreeReuseAndLimit) {
  SessionTable table(3000);
  std::set<uint32_t> slots;
  std::vector<Session*> addresses;
  for (int i = 0; i < 3000; ++i) {
    const uint32_t s = table.alloc();
    ASSERT_NE(s, UINT32_MAX);
    slots.insert(s);
    addresses.push_back(&table.at(s));
  }
  EXPECT_EQ(slots.size(), 3000u);
  EXPECT_EQ(table.live(), 3000u);
  EXPECT_EQ(table.alloc(), UINT32_MAX) << "allocated past the limit";
  // Growth never moved a session (msghdrs given to the kernel point into them).
  for (uint32_t s = 0; s < 3000; ++s)
    EXPECT_EQ(&table.at(s), addresses[s]);
  for (uint32_t s = 0; s < 3000; s += 2)
    table.free(s);
  EXPECT_EQ(table.live(), 1500u);
  for (int i = 0; i < 1500; ++i) {
    const uint32_t s = table.alloc();
    ASSERT_NE(s, UINT32_MAX);
    EXPECT_EQ(s % 2, 0u) << "only freed slots can be handed out again";
    EXPECT_EQ(table.at(s).generation, 1u);
  }
  EXPECT_EQ(table.alloc(), UINT32_MAX);
}

TEST(BufferQueues, FifoWithPartialSends) {
  BufferQueues q(8);
  Direction d;
  q.push(d, 3, 100);
  q.push(d, 5, 50);
  q.push(d, 1, 10);
  EXPECT_EQ(d.queued_count, 3u);
  EXPECT_EQ(d.queued_bytes, 160u);
  d.head_offset = 40;  // a short send took 40 bytes of the head
  d.queued_bytes -= 40;
  EXPECT_EQ(q.pop(d), 3);
  EXPECT_EQ(d.queued_bytes, 60u);
  EXPECT_EQ(d.head_offset, 0u);
  EXPECT_EQ(q.pop(d), 5);
  q.push(d, 3, 7);
  EXPECT_EQ(q.pop(d), 1);
  EXPECT_EQ(q.pop(d), 3);
  EXPECT_EQ(d.queued_count, 0u);
  EXPECT_EQ(d.queued_bytes, 0u);
  EXPECT_EQ(d.head, kNoBuffer);
  EXPECT_EQ(d.tail, kNoBuffer);
}

}  // namespace
}  // namespace ringway::engine
