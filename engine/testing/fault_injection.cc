#include "fault_injection.h"

namespace catchall::testing {

void FaultInjector::Arm(FaultPoint point, int nth, FaultTiming timing, FaultEffect effect,
                        Status error) {
  std::lock_guard<std::mutex> lock(mu_);
  armed_[point] = Armed{nth, 0, timing, effect, std::move(error)};
}

void FaultInjector::ArmRepeated(FaultPoint point, int nth, int count, FaultTiming timing,
                                Status error) {
  std::lock_guard<std::mutex> lock(mu_);
  armed_[point] = Armed{nth, count - 1, timing, FaultEffect::kError, std::move(error)};
}

Status FaultInjector::Fire(const Armed& armed) {
  ++fired_;
  if (armed.effect == FaultEffect::kCrash) crash_ = armed.error;
  return armed.error;
}

void FaultInjector::SetMidPollHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  mid_poll_ = std::move(hook);
}

void FaultInjector::RunMidPollHook() {
  std::function<void()> hook;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hook = mid_poll_;
  }
  if (hook) hook();
}

Status FaultInjector::Before(FaultPoint point, std::optional<FaultEffect>* effect) {
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_[point];  // after a crash too: a test sees how often a dead process retries
  if (crash_) return *crash_;
  auto it = armed_.find(point);
  if (it == armed_.end() || --it->second.remaining > 0) return Status::Ok();
  Armed armed = it->second;
  if (armed.repeats > 0) {
    it->second.remaining = 1;  // the next call fails too
    --it->second.repeats;
  } else {
    armed_.erase(it);
  }
  if (armed.effect == FaultEffect::kRedeliver || armed.effect == FaultEffect::kSplit) {
    ++fired_;
    if (effect) *effect = armed.effect;
    return Status::Ok();
  }
  if (armed.timing == FaultTiming::kAfter) {
    firing_[point] = std::move(armed);
    return Status::Ok();
  }
  return Fire(armed);
}

Status FaultInjector::After(FaultPoint point) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = firing_.find(point);
  if (it != firing_.end()) {
    Armed armed = std::move(it->second);
    firing_.erase(it);
    return Fire(armed);
  }
  return crash_ ? *crash_ : Status::Ok();
}

bool FaultInjector::crashed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return crash_.has_value();
}

int FaultInjector::fired() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fired_;
}

void FaultInjector::CrashNow() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!crash_) crash_ = Status::IoError("the process was killed (injected)");
}

int FaultInjector::calls(FaultPoint point) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.find(point);
  return it == calls_.end() ? 0 : it->second;
}

void FaultInjector::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  armed_.clear();
  firing_.clear();
  calls_.clear();
  crash_.reset();
  fired_ = 0;
}

namespace {

// Runs `call` between the injector's Before and After at `point`.
template <typename Call>
Status Around(FaultInjector* injector, FaultPoint point, Call call) {
  CATCHALL_RETURN_IF_ERROR(injector->Before(point));
  Status s = call();
  Status after = injector->After(point);
  return after.ok() ? s : after;
}

Status Dead(const FaultInjector* injector) {
  return injector->crashed() ? Status::IoError("the process crashed (injected)") : Status::Ok();
}

class FaultInjectionConsumer final : public LogConsumer {
 public:
  FaultInjectionConsumer(std::unique_ptr<LogConsumer> base, FaultInjector* injector)
      : base_(std::move(base)), injector_(injector) {}
  ~FaultInjectionConsumer() override {
    // A dead process leaves the group the way a crashed one does: the base
    // consumer is destroyed without Close() (LogConsumer's contract).
  }
  int32_t partition_count() const override { return base_->partition_count(); }
  Status Poll(std::chrono::milliseconds timeout, size_t max, RecordBatch* out) override {
    std::optional<FaultEffect> effect;
    CATCHALL_RETURN_IF_ERROR(injector_->Before(FaultPoint::kPoll, &effect));
    if (effect == FaultEffect::kRedeliver) {
      // Back to the first record of the last poll, per partition: the base
      // consumer hands those records out again.
      for (const auto& [p, offset] : last_first_) base_->Seek(p, offset).PermitUnchecked();
    }
    Status s = base_->Poll(timeout, max, out);
    if (s.ok() && effect == FaultEffect::kSplit) {
      // The base consumer rebalances at the start of its poll, so a
      // rebalance set up by the hook is served between the two reads; the
      // batch appends both.
      injector_->RunMidPollHook();
      s = base_->Poll(timeout, max, out);
    }
    last_first_.clear();
    for (const ConsumedRecord& r : out->records()) last_first_.emplace(r.partition, r.offset);
    Status after = injector_->After(FaultPoint::kPoll);
    return after.ok() ? s : after;
  }
  Status Seek(int32_t partition, int64_t offset) override {
    CATCHALL_RETURN_IF_ERROR(Dead(injector_));
    return base_->Seek(partition, offset);
  }
  Status Pause(bool paused) override {
    CATCHALL_RETURN_IF_ERROR(Dead(injector_));
    return base_->Pause(paused);
  }
  Status Committed(const std::vector<int32_t>& partitions,
                   std::map<int32_t, int64_t>* out) override {
    return Around(injector_, FaultPoint::kCommitted,
                  [&] { return base_->Committed(partitions, out); });
  }
  int64_t Lag(const std::map<int32_t, int64_t>& positions) override {
    return base_->Lag(positions);
  }
  void Close() override {
    if (!injector_->crashed()) base_->Close();
  }

 private:
  std::unique_ptr<LogConsumer> base_;
  FaultInjector* injector_;
  std::map<int32_t, int64_t> last_first_;  // partition -> first offset the last poll returned
};

class FaultInjectionCommitter final : public LogCommitter {
 public:
  FaultInjectionCommitter(std::unique_ptr<LogCommitter> base, FaultInjector* injector)
      : base_(std::move(base)), injector_(injector) {}
  bool state_in_transaction() const override { return base_->state_in_transaction(); }
  Status Commit(LogTransaction* txn) override {
    return Around(injector_, FaultPoint::kCommit, [&] { return base_->Commit(txn); });
  }
  int64_t CommittedEnd(std::string_view topic, int32_t partition) const override {
    return base_->CommittedEnd(topic, partition);
  }

 private:
  std::unique_ptr<LogCommitter> base_;
  FaultInjector* injector_;
};

class FaultInjectionReader final : public LogReader {
 public:
  FaultInjectionReader(std::unique_ptr<LogReader> base, FaultInjector* injector)
      : base_(std::move(base)), injector_(injector) {}
  int32_t partition_count() const override { return base_->partition_count(); }
  Status Seek(int32_t partition, int64_t offset) override {
    CATCHALL_RETURN_IF_ERROR(Dead(injector_));
    return base_->Seek(partition, offset);
  }
  Status Unassign(int32_t partition) override { return base_->Unassign(partition); }
  Status Poll(std::chrono::milliseconds timeout, size_t max, RecordBatch* out) override {
    return Around(injector_, FaultPoint::kReaderPoll,
                  [&] { return base_->Poll(timeout, max, out); });
  }
  Result<int64_t> EndOffset(int32_t partition) override { return base_->EndOffset(partition); }

 private:
  std::unique_ptr<LogReader> base_;
  FaultInjector* injector_;
};

}  // namespace

Status FaultInjectionKvStore::Get(Column column, std::string_view key, std::string* value) const {
  return Around(injector_, FaultPoint::kStoreRead, [&] { return base_->Get(column, key, value); });
}

Status FaultInjectionKvStore::MultiGet(Column column, const std::vector<std::string_view>& keys,
                                       std::vector<std::optional<std::string>>* values) const {
  return Around(injector_, FaultPoint::kStoreRead,
                [&] { return base_->MultiGet(column, keys, values); });
}

Status FaultInjectionKvStore::Write(KvWriteBatch* batch) {
  return Around(injector_, FaultPoint::kStoreWrite, [&] { return base_->Write(batch); });
}

Status FaultInjectionKvStore::IngestSorted(const std::vector<SortedRun>& runs) {
  return Around(injector_, FaultPoint::kStoreWrite, [&] { return base_->IngestSorted(runs); });
}

Status FaultInjectionKvStore::Flush() {
  CATCHALL_RETURN_IF_ERROR(Dead(injector_));
  return base_->Flush();
}

Status FaultInjectionKvStore::SyncWal() {
  CATCHALL_RETURN_IF_ERROR(Dead(injector_));
  return base_->SyncWal();
}

namespace {
// A twin that owns the real store it stands for.
class OwningFaultInjectionKvStore final : public KvStore {
 public:
  OwningFaultInjectionKvStore(std::unique_ptr<KvStore> base, FaultInjector* injector)
      : base_(std::move(base)), twin_(base_.get(), injector) {}
  Column GetColumn(std::string_view name) const override { return twin_.GetColumn(name); }
  Status Get(Column c, std::string_view k, std::string* v) const override {
    return twin_.Get(c, k, v);
  }
  Status MultiGet(Column c, const std::vector<std::string_view>& k,
                  std::vector<std::optional<std::string>>* v) const override {
    return twin_.MultiGet(c, k, v);
  }
  Status Write(KvWriteBatch* b) override { return twin_.Write(b); }
  Status IngestSorted(const std::vector<SortedRun>& runs) override {
    return twin_.IngestSorted(runs);
  }
  Status WriteHealth() const override { return twin_.WriteHealth(); }
  Status ReadHealth() const override { return twin_.ReadHealth(); }
  std::unique_ptr<KvIterator> NewIterator(Column c, std::string lower,
                                          std::string upper) const override {
    return twin_.NewIterator(c, std::move(lower), std::move(upper));
  }
  Status Flush() override { return twin_.Flush(); }
  Status SyncWal() override { return twin_.SyncWal(); }
  Status CompactColumn(Column c) override { return twin_.CompactColumn(c); }
  uint64_t EstimateKeys(Column c) const override { return twin_.EstimateKeys(c); }
  uint64_t LiveBytes(Column c) const override { return twin_.LiveBytes(c); }
  uint64_t MemoryBytes() const override { return twin_.MemoryBytes(); }
  KvBackgroundStats BackgroundStats() const override { return twin_.BackgroundStats(); }
  bool WritesMayWait() const override { return twin_.WritesMayWait(); }

 private:
  std::unique_ptr<KvStore> base_;
  FaultInjectionKvStore twin_;
};
}  // namespace

Status FaultInjectionEnv::OpenStore(const KvStoreOptions& options,
                                    std::unique_ptr<KvStore>* store) {
  std::unique_ptr<KvStore> base;
  CATCHALL_RETURN_IF_ERROR(KvStore::Open(options, &base));
  *store = std::make_unique<OwningFaultInjectionKvStore>(std::move(base), injector_);
  return Status::Ok();
}

Result<uint64_t> FaultInjectionEnv::FreeBytes(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_bytes_) return *free_bytes_;
  }
  return Env::FreeBytes(path);
}

void FaultInjectionEnv::SetFreeBytes(std::optional<uint64_t> bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  free_bytes_ = bytes;
}

Status FaultInjectionGroupLog::Join(RebalanceListener* listener,
                                    std::unique_ptr<LogConsumer>* consumer,
                                    std::unique_ptr<LogCommitter>* committer) {
  std::unique_ptr<LogConsumer> c;
  std::unique_ptr<LogCommitter> k;
  CATCHALL_RETURN_IF_ERROR(
      Around(injector_, FaultPoint::kJoin, [&] { return base_->Join(listener, &c, &k); }));
  *consumer = std::make_unique<FaultInjectionConsumer>(std::move(c), injector_);
  *committer = std::make_unique<FaultInjectionCommitter>(std::move(k), injector_);
  return Status::Ok();
}

Status FaultInjectionGroupLog::OpenReader(std::string_view topic,
                                          std::unique_ptr<LogReader>* reader) {
  std::unique_ptr<LogReader> r;
  CATCHALL_RETURN_IF_ERROR(base_->OpenReader(topic, &r));
  *reader = std::make_unique<FaultInjectionReader>(std::move(r), injector_);
  return Status::Ok();
}

Status FaultInjectionGroupLog::Health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unreachable_ ? *unreachable_ : base_->Health();
}

void FaultInjectionGroupLog::SetUnreachable(std::optional<Status> unreachable) {
  std::lock_guard<std::mutex> lock(mu_);
  unreachable_ = std::move(unreachable);
}

}  // namespace catchall::testing
