// Fault-injecting twins of the store and the log, for unit tests of the
// exactly-once machinery, after RocksDB's FaultInjectionTestFS and LevelDB's
// test Envs: the real parts run underneath, and a FaultInjector decides
// which call fails, and how.
//
//   FaultInjectionEnv        an Env whose stores are FaultInjectionKvStores
//                            and whose free space can be set
//   FaultInjectionKvStore    fails a chosen Write (before or after it ran)
//   FaultInjectionGroupLog   wraps a GroupLog: its consumers, committers and
//                            readers fail a chosen Poll, Commit, ...
//
// A fault either returns one error, or "crashes" the process: the failing
// call and every later call through the same injector fail, as if the
// process had died there. Whatever the real parts made durable before the
// crash stays, which is what kill -9 leaves behind. The test then drops the
// crashed objects without shutting them down and starts over from the same
// stores and log.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "engine/env.h"
#include "engine/kv_store.h"
#include "engine/log.h"
#include "engine/status.h"

namespace catchall::testing {

enum class FaultPoint {
  kStoreWrite,  // KvStore::Write or IngestSorted of a FaultInjectionKvStore
  kStoreRead,   // KvStore::Get and MultiGet of a FaultInjectionKvStore
  kJoin,        // GroupLog::Join
  kPoll,        // LogConsumer::Poll (rebalance callbacks run inside)
  kCommitted,   // LogConsumer::Committed
  kCommit,      // LogCommitter::Commit
  kReaderPoll,  // LogReader::Poll (restores)
};

enum class FaultTiming {
  kBefore,  // the call fails without running: nothing happened
  kAfter,   // the call ran (its effects are durable), then reports the error
};

enum class FaultEffect {
  kError,      // this call fails, later ones run
  kCrash,      // this call and every later one fail: the process is dead
  kRedeliver,  // kPoll only: the poll succeeds but first hands back the
               // records of the previous poll again, as Kafka does after a
               // rebalance or a seek with fetched records in flight
  kSplit,      // kPoll only: the poll reads, runs the injector's mid-poll
               // hook (a test makes the group rebalance there), then polls
               // again and hands back both reads as one batch, as Kafka's
               // poll does when it serves a rebalance between records it
               // had already fetched
};

// Decides which calls fail. Thread-safe.
class FaultInjector {
 public:
  // Arms the `nth` call at `point` from now on (1: the next one). `error`
  // is what the call returns (kCrash: every call after it returns it too).
  void Arm(FaultPoint point, int nth, FaultTiming timing, FaultEffect effect,
           Status error = Status::IoError("injected fault"));
  // kError only: the `nth` call and the `count - 1` calls after it fail (a
  // failure that outlasts the caller's retries).
  void ArmRepeated(FaultPoint point, int nth, int count, FaultTiming timing, Status error);
  // Runs between the two reads of a kSplit poll.
  void SetMidPollHook(std::function<void()> hook);
  // Around a call at `point`: non-OK means the twin must return it.
  // `effect`, for kPoll, is set to kRedeliver or kSplit when the call must
  // do that.
  Status Before(FaultPoint point, std::optional<FaultEffect>* effect = nullptr);
  // The hook set by SetMidPollHook, run on the calling thread (not under
  // the injector's lock: it may poll through this injector).
  void RunMidPollHook();
  Status After(FaultPoint point);
  bool crashed() const;
  // The process dies now: every later call fails.
  void CrashNow();
  // Faults that fired since the last Reset (a test checks its fault was
  // reached at all).
  int fired() const;
  // Calls seen at `point` since the last Reset, failed ones included (to aim
  // a fault, or to see how often a crashed process retries).
  int calls(FaultPoint point) const;
  // Forgets the plan and the crash (a restarted process).
  void Reset();

 private:
  struct Armed {
    int remaining = 0;
    int repeats = 0;  // further consecutive calls that fail after this one
    FaultTiming timing = FaultTiming::kBefore;
    FaultEffect effect = FaultEffect::kError;
    Status error;
  };
  // REQUIRES: mu_ held.
  Status Fire(const Armed& armed);

  mutable std::mutex mu_;
  std::map<FaultPoint, Armed> armed_;   // GUARDED_BY(mu_)
  std::map<FaultPoint, int> calls_;     // GUARDED_BY(mu_)
  std::map<FaultPoint, Armed> firing_;  // GUARDED_BY(mu_): kAfter faults of calls under way
  std::optional<Status> crash_;         // GUARDED_BY(mu_)
  std::function<void()> mid_poll_;      // GUARDED_BY(mu_)
  int fired_ = 0;                       // GUARDED_BY(mu_)
};

// A KvStore whose writes go through `injector` (FaultPoint::kStoreWrite).
// Reads pass through until the process crashed.
class FaultInjectionKvStore final : public KvStore {
 public:
  // `base` and `injector` must outlive this.
  FaultInjectionKvStore(KvStore* base, FaultInjector* injector)
      : base_(base), injector_(injector) {}

  Column GetColumn(std::string_view name) const override { return base_->GetColumn(name); }
  Status Get(Column column, std::string_view key, std::string* value) const override;
  Status MultiGet(Column column, const std::vector<std::string_view>& keys,
                  std::vector<std::optional<std::string>>* values) const override;
  Status Write(KvWriteBatch* batch) override;
  // A write too (FaultPoint::kStoreWrite).
  Status IngestSorted(const std::vector<SortedRun>& runs) override;
  Status WriteHealth() const override { return base_->WriteHealth(); }
  Status ReadHealth() const override { return base_->ReadHealth(); }
  std::unique_ptr<KvIterator> NewIterator(Column column, std::string lower,
                                          std::string upper) const override {
    return base_->NewIterator(column, std::move(lower), std::move(upper));
  }
  Status Flush() override;
  Status SyncWal() override;
  Status CompactColumn(Column column) override { return base_->CompactColumn(column); }
  uint64_t EstimateKeys(Column column) const override { return base_->EstimateKeys(column); }
  uint64_t LiveBytes(Column column) const override { return base_->LiveBytes(column); }
  uint64_t MemoryBytes() const override { return base_->MemoryBytes(); }
  KvBackgroundStats BackgroundStats() const override { return base_->BackgroundStats(); }
  bool WritesMayWait() const override { return base_->WritesMayWait(); }

 private:
  KvStore* base_;
  FaultInjector* injector_;
};

// An Env whose stores are real RocksDB stores behind FaultInjectionKvStore
// twins, and whose free space is whatever the test sets. Stores opened
// through it must be closed before it is destroyed.
class FaultInjectionEnv final : public Env {
 public:
  explicit FaultInjectionEnv(FaultInjector* injector) : injector_(injector) {}
  Status OpenStore(const KvStoreOptions& options, std::unique_ptr<KvStore>* store) override;
  Result<uint64_t> FreeBytes(const std::string& path) override;
  // Sets what FreeBytes reports (default: the real free space).
  void SetFreeBytes(std::optional<uint64_t> bytes);

 private:
  FaultInjector* injector_;
  mutable std::mutex mu_;
  std::optional<uint64_t> free_bytes_;  // GUARDED_BY(mu_)
};

// A GroupLog whose consumers, committers and readers go through `injector`.
// A consumer whose process crashed is abandoned, not closed, at
// destruction: no rebalance callback runs and nothing is committed.
class FaultInjectionGroupLog final : public GroupLog {
 public:
  // `base` and `injector` must outlive this and what it makes.
  FaultInjectionGroupLog(GroupLog* base, FaultInjector* injector)
      : base_(base), injector_(injector) {}
  Status Join(RebalanceListener* listener, std::unique_ptr<LogConsumer>* consumer,
              std::unique_ptr<LogCommitter>* committer) override;
  Status OpenReader(std::string_view topic, std::unique_ptr<LogReader>* reader) override;
  // `unreachable`, if set, is what Health() says instead of the base's: the
  // log as a member sees it while no broker answers.
  Status Health() const override;
  void SetUnreachable(std::optional<Status> unreachable);

 private:
  GroupLog* base_;
  FaultInjector* injector_;
  mutable std::mutex mu_;
  std::optional<Status> unreachable_;  // GUARDED_BY(mu_)
};

}  // namespace catchall::testing
