// PartitionOwners: which aggregation worker of a process writes each
// partition's state. The workers of one process (aggregate.threads) share
// one store, so a worker taking partitions on must not restore or write
// them while another worker of the process still does.
//
// That happens when a worker is evicted from the group without knowing it:
// busy in a long restore inside its rebalance callback past
// max.poll.interval.ms, its partitions go to another member, possibly a
// worker of the same process, while it still writes them. Its late writes
// (counters as of an older offset, and their checkpoint) then overwrote
// what the new owner had restored and counted since, and the new owner's
// next commit published counters that had lost events (a review).
//
// Taking() waits until no other worker holds the partitions; the evicted
// worker releases them once its callback returns and it learns they are
// lost. Then the taker restores from the checkpoint the other left, which
// is consistent with the state it wrote. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "engine/status.h"
#include "state/aggregation_loop.h"

namespace prometheus {
class Gauge;
}  // namespace prometheus

namespace catchall {

class Metrics;

class PartitionOwners final : public OwnershipListener {
 public:
  // `next` (may be null; must outlive this) is told of takings after this
  // registry and of releases before it: the warm standbys. A taker waits at
  // most `wait`. With `metrics`, catchall_aggregate_waiting_partitions
  // counts the partitions of the assignments that wait (all of each, since
  // none of it is taken meanwhile): uncounted, with the process ready.
  PartitionOwners(OwnershipListener* next, std::chrono::milliseconds wait,
                  Metrics* metrics = nullptr);

  // Unavailable, naming the partition and its holder, when another worker
  // still holds one of `partitions` after the wait (nothing is taken then:
  // the worker rejoins and tries again); Aborted once Stop() was called.
  Status Taking(int worker, const std::vector<int32_t>& partitions) override;
  // Only the partitions `worker` holds are let go.
  void Released(int worker, const std::vector<int32_t>& partitions) override;

  // Wakes every waiting taker, and refuses later ones: the process stops.
  void Stop();

 private:
  OwnershipListener* next_;
  std::chrono::milliseconds wait_;
  std::mutex mu_;
  std::condition_variable released_;
  std::map<int32_t, int> holder_;  // GUARDED_BY(mu_): partition -> worker
  bool stopped_ = false;           // GUARDED_BY(mu_)
  prometheus::Gauge* waiting_gauge_ = nullptr;
};

}  // namespace catchall
