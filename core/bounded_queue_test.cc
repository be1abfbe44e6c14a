#include "core/bounded_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>

namespace sluice::core {
namespace {

TEST(BoundedQueueTest, BlocksProducerWhenFullUntilConsumerPops) {
  BoundedQueue<int> queue(2);
  ASSERT_TRUE(queue.Push(1));
  ASSERT_TRUE(queue.Push(2));
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    queue.Push(3);
    pushed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(pushed.load());
  EXPECT_EQ(queue.Pop(), 1);
  producer.join();
  EXPECT_TRUE(pushed.load());
  EXPECT_EQ(queue.Pop(), 2);
  EXPECT_EQ(queue.Pop(), 3);
}

TEST(BoundedQueueTest, CloseDrainsThenEnds) {
  BoundedQueue<int> queue(4);
  ASSERT_TRUE(queue.Push(7));
  queue.Close();
  EXPECT_FALSE(queue.Push(8));
  EXPECT_EQ(queue.Pop(), 7);
  EXPECT_EQ(queue.Pop(), std::nullopt);
}

TEST(BoundedQueueTest, PopForTimesOut) {
  BoundedQueue<int> queue(1);
  EXPECT_EQ(queue.PopFor(std::chrono::milliseconds(10)), std::nullopt);
}

TEST(BoundedQueueTest, WakeEndsAWaitingPopForWithoutAnItem) {
  BoundedQueue<int> queue(1);
  std::optional<int> popped = 1;
  // Waits for an hour unless woken; the test would hang (and time out) if Wake did nothing.
  std::thread consumer([&] { popped = queue.PopFor(std::chrono::hours(1)); });
  queue.Wake();
  consumer.join();
  EXPECT_EQ(popped, std::nullopt);
}

TEST(BoundedQueueTest, WakeBeforeTheWaitIsNotLostAndIsUsedOnce) {
  BoundedQueue<int> queue(1);
  queue.Wake();
  EXPECT_EQ(queue.PopFor(std::chrono::hours(1)), std::nullopt);
  EXPECT_EQ(queue.PopFor(std::chrono::milliseconds(10)), std::nullopt);  // timed out this time
  ASSERT_TRUE(queue.Push(5));
  EXPECT_EQ(queue.PopFor(std::chrono::hours(1)), 5);
}

TEST(BoundedQueueTest, AnItemIsReturnedEvenWithAWakePending) {
  BoundedQueue<int> queue(2);
  ASSERT_TRUE(queue.Push(3));
  queue.Wake();
  EXPECT_EQ(queue.PopFor(std::chrono::hours(1)), 3);
}

// Queues of ints weighed by their value, with a budget of 10 "bytes".
BoundedQueue<int> WeighedQueue(size_t capacity = 100) {
  return BoundedQueue<int>(capacity, 10, [](const int& n) { return static_cast<uint64_t>(n); });
}

TEST(BoundedQueueTest, ByteBudgetCountsAnItemUntilTheConsumerAsksForTheNext) {
  auto queue = WeighedQueue();
  ASSERT_TRUE(queue.Push(3));
  ASSERT_TRUE(queue.Push(4));
  EXPECT_EQ(queue.held_bytes(), 7u);
  EXPECT_EQ(queue.Pop(), 3);
  EXPECT_EQ(queue.held_bytes(), 7u);  // the consumer still works on the 3
  EXPECT_EQ(queue.PopFor(std::chrono::milliseconds(0)), 4);
  EXPECT_EQ(queue.held_bytes(), 4u);
  EXPECT_EQ(queue.PopFor(std::chrono::milliseconds(0)), std::nullopt);
  EXPECT_EQ(queue.held_bytes(), 0u);
}

TEST(BoundedQueueTest, ByteBudgetBlocksTheProducerUntilTheConsumerIsDone) {
  auto queue = WeighedQueue();
  ASSERT_TRUE(queue.Push(4));
  ASSERT_TRUE(queue.Push(4));
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    queue.Push(4);  // 12 > 10: waits
    pushed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(pushed.load());
  EXPECT_EQ(queue.Pop(), 4);  // taken, but still being worked on: 8 held
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(pushed.load());
  EXPECT_EQ(queue.Pop(), 4);  // done with the first: 4 queued + 4 in hand, room for 4
  producer.join();
  EXPECT_TRUE(pushed.load());
  EXPECT_EQ(queue.held_bytes(), 8u);
}

TEST(BoundedQueueTest, AnItemOverTheBudgetGoesAloneAndIsHandedOver) {
  auto queue = WeighedQueue();
  ASSERT_TRUE(queue.Push(3));
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    EXPECT_TRUE(queue.Push(50));  // larger than the whole budget
    pushed = true;
  });
  EXPECT_EQ(queue.Pop(), 3);
  // Done with the 3: nothing held, so the 50 is admitted alone (and this Pop gets it).
  EXPECT_EQ(queue.Pop(), 50);
  EXPECT_EQ(queue.held_bytes(), 50u);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(pushed.load());  // its producer waits until the consumer is done with it
  EXPECT_EQ(queue.PopFor(std::chrono::milliseconds(1)), std::nullopt);
  producer.join();
  EXPECT_TRUE(pushed.load());
  EXPECT_EQ(queue.held_bytes(), 0u);
}

TEST(BoundedQueueTest, NothingIsAdmittedBesideAnItemOverTheBudget) {
  auto queue = WeighedQueue();
  std::thread big([&] { EXPECT_TRUE(queue.Push(50)); });
  EXPECT_EQ(queue.Pop(), 50);
  std::atomic<bool> pushed{false};
  std::thread small([&] {
    EXPECT_TRUE(queue.Push(1));
    pushed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(pushed.load());
  EXPECT_EQ(queue.Pop(), 1);  // done with the 50: the 1 goes in, and out
  big.join();
  small.join();
  EXPECT_TRUE(pushed.load());
}

TEST(BoundedQueueTest, CloseReleasesAProducerWaitingForItsLargeItem) {
  auto queue = WeighedQueue();
  std::thread producer([&] { EXPECT_TRUE(queue.Push(50)); });
  EXPECT_EQ(queue.Pop(), 50);
  queue.Close();
  producer.join();
  EXPECT_FALSE(queue.Push(1));
}

TEST(BoundedQueueTest, CapacityInItemsStillAppliesUnderAByteBudget) {
  auto queue = WeighedQueue(/*capacity=*/2);
  ASSERT_TRUE(queue.Push(1));
  ASSERT_TRUE(queue.Push(1));
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    queue.Push(1);
    pushed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(pushed.load());
  EXPECT_EQ(queue.Pop(), 1);
  producer.join();
  EXPECT_TRUE(pushed.load());
}

TEST(BoundedQueueTest, WithoutAWeighFunctionTheBudgetIsIgnored) {
  BoundedQueue<int> queue(4, 10);
  ASSERT_TRUE(queue.Push(50));
  ASSERT_TRUE(queue.Push(50));
  EXPECT_EQ(queue.held_bytes(), 0u);
  EXPECT_EQ(queue.size(), 2u);
}

}  // namespace
}  // namespace sluice::core
