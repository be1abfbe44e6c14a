#include "core/bounded_queue.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace sluice::core
