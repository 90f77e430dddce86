// Consumer groups of the local log: membership, partition assignment,
// committed offsets and fenced transactions, the way a Kafka group
// coordinator and transaction coordinator provide them.
//
// Members split the topic's partitions round-robin by join order. A
// rebalance is cooperative: a member gives up partitions at its own poll
// (OnRevoked, after which it commits their work), and the new owner takes a
// partition only once it is free. A member that has not polled within the
// session timeout is expelled; its partitions go to the others and its later
// commits are fenced, like a zombie's in Kafka.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <set>

#include "local_log_impl.h"

namespace catchall {

namespace {

// What a member believes it owns: partition -> epoch it took it at. Shared by
// the member's consumer and committer (one thread).
struct Membership {
  LocalLogImpl* log = nullptr;
  LocalGroup* group = nullptr;
  uint64_t id = 0;
  std::map<int32_t, uint64_t> owned;
  bool left = false;
};

// REQUIRES: group.mu held. Frees the partitions of members silent for too long.
void ExpireSilentMembers(LocalGroup& group, std::chrono::milliseconds session_timeout,
                         uint64_t self) {
  auto now = std::chrono::steady_clock::now();
  for (auto it = group.members.begin(); it != group.members.end();) {
    if (it->first != self && now - it->second > session_timeout) {
      spdlog::warn("local group {}: member {} missed its session timeout; its partitions move",
                   group.name, it->first);
      for (size_t p = 0; p < group.owner.size(); ++p) {
        if (group.owner[p] == it->first) {
          group.owner[p] = 0;
          ++group.epoch[p];
        }
      }
      it = group.members.erase(it);
    } else {
      ++it;
    }
  }
}

// REQUIRES: group.mu held. Releases `partitions` if `id` still owns them.
void Release(LocalGroup& group, uint64_t id, const std::vector<int32_t>& partitions) {
  for (int32_t p : partitions) {
    if (group.owner[p] == id) {
      group.owner[p] = 0;
      ++group.epoch[p];
    }
  }
}

class LocalGroupConsumer final : public LogConsumer {
 public:
  LocalGroupConsumer(std::shared_ptr<Membership> member, RebalanceListener* listener)
      : member_(std::move(member)),
        listener_(listener),
        reader_(member_->log, member_->group->topic) {}

  ~LocalGroupConsumer() override {
    if (member_->left) return;
    // Abandoned, as by a crash: the partitions are free at once, nothing is
    // committed and no callback runs.
    LocalGroup& g = *member_->group;
    std::lock_guard<std::mutex> lock(g.mu);
    std::vector<int32_t> owned;
    for (const auto& [p, epoch] : member_->owned) owned.push_back(p);
    Release(g, member_->id, owned);
    g.members.erase(member_->id);
    member_->left = true;
  }

  int32_t partition_count() const override { return member_->group->topic->partitions; }

  Status Poll(std::chrono::milliseconds timeout, size_t max, RecordBatch* out) override {
    if (member_->left) return Status::FailedPrecondition("the consumer left its group");
    Rebalance();
    if (member_->owned.empty() || paused_) {
      // Nothing to read: wait like a poll would, then let the caller go on.
      std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(20)));
      return Status::Ok();
    }
    return reader_.Poll(timeout, max, out);
  }

  Status Pause(bool paused) override {
    paused_ = paused;
    return Status::Ok();
  }

  Status Seek(int32_t partition, int64_t offset) override {
    if (!member_->owned.count(partition)) {
      return Status::FailedPrecondition(fmt::format("partition {} is not owned", partition));
    }
    return reader_.Seek(partition, offset);
  }

  Status Committed(const std::vector<int32_t>& partitions,
                   std::map<int32_t, int64_t>* out) override {
    std::map<int32_t, int64_t> committed =
        member_->log->CommittedOffsets(member_->group->name, member_->group->topic->name);
    for (int32_t p : partitions) {
      auto it = committed.find(p);
      (*out)[p] = it == committed.end() ? kOffsetBeginning : it->second;
    }
    return Status::Ok();
  }

  int64_t Lag(const std::map<int32_t, int64_t>& positions) override {
    int64_t lag = 0;
    const TopicState& t = *member_->group->topic;
    for (const auto& [p, position] : positions) {
      if (p < 0 || p >= t.partitions) continue;
      int64_t from = position < 0 ? t.start[p].load(std::memory_order_acquire) : position;
      lag += std::max<int64_t>(0, t.end[p].load(std::memory_order_acquire) - from);
    }
    return lag;
  }

  void Close() override {
    if (member_->left) return;
    std::vector<int32_t> owned;
    for (const auto& [p, epoch] : member_->owned) owned.push_back(p);
    if (!owned.empty()) listener_->OnRevoked(owned);
    LocalGroup& g = *member_->group;
    std::lock_guard<std::mutex> lock(g.mu);
    Release(g, member_->id, owned);
    g.members.erase(member_->id);
    member_->owned.clear();
    member_->left = true;
  }

 private:
  // Moves partitions to and from this member, with the listener's callbacks.
  void Rebalance() {
    LocalGroup& g = *member_->group;
    std::vector<int32_t> lost;
    std::vector<int32_t> revoked;
    {
      std::lock_guard<std::mutex> lock(g.mu);
      g.members[member_->id] = std::chrono::steady_clock::now();
      ExpireSilentMembers(g, member_->log->options.session_timeout, member_->id);
      std::set<int32_t> target = Target(g);
      for (const auto& [p, epoch] : member_->owned) {
        if (g.owner[p] != member_->id || g.epoch[p] != epoch) {
          lost.push_back(p);
        } else if (!target.count(p)) {
          revoked.push_back(p);
        }
      }
    }
    if (!lost.empty()) {
      listener_->OnLost(lost);
      Forget(lost);
    }
    if (!revoked.empty()) {
      listener_->OnRevoked(revoked);
      std::lock_guard<std::mutex> lock(g.mu);
      Release(g, member_->id, revoked);
    }
    Forget(revoked);
    std::vector<int32_t> assigned;
    {
      std::lock_guard<std::mutex> lock(g.mu);
      for (int32_t p : Target(g)) {
        if (g.owner[p] != 0) continue;  // its owner has not let go yet
        g.owner[p] = member_->id;
        member_->owned[p] = ++g.epoch[p];
        assigned.push_back(p);
      }
    }
    if (assigned.empty()) return;
    std::map<int32_t, int64_t> start = listener_->OnAssigned(assigned);
    std::map<int32_t, int64_t> committed;
    Committed(assigned, &committed).PermitUnchecked();  // cannot fail locally
    for (int32_t p : assigned) {
      auto it = start.find(p);
      // A partition the listener gave no offset for starts at the committed one.
      reader_.Seek(p, it != start.end() ? it->second : committed[p]).PermitUnchecked();
    }
  }

  // REQUIRES: g.mu held. The partitions this member should own.
  std::set<int32_t> Target(const LocalGroup& g) const {
    std::set<int32_t> target;
    auto me = g.members.find(member_->id);
    // Expired meanwhile (a callback longer than the session timeout): it
    // owns nothing, and with no member left the modulo below divided by 0.
    if (me == g.members.end()) return target;
    auto index = static_cast<size_t>(std::distance(g.members.begin(), me));
    size_t n = g.members.size();
    for (size_t p = 0; p < g.owner.size(); ++p) {
      if (p % n == index) target.insert(static_cast<int32_t>(p));
    }
    return target;
  }

  void Forget(const std::vector<int32_t>& partitions) {
    for (int32_t p : partitions) {
      member_->owned.erase(p);
      (void)reader_.Unassign(p);  // cannot fail: it only forgets a position
    }
  }

  std::shared_ptr<Membership> member_;
  RebalanceListener* listener_;
  LocalLogReader reader_;
  bool paused_ = false;
};

class LocalCommitter final : public LogCommitter {
 public:
  LocalCommitter(std::shared_ptr<Membership> member, bool state_in_transaction)
      : member_(std::move(member)), state_in_transaction_(state_in_transaction) {}

  bool state_in_transaction() const override { return state_in_transaction_; }

  Status Commit(LogTransaction* txn) override {
    if (!state_in_transaction_ && txn->state) {
      return Status::InvalidArgument("this committer does not write the consumer's state");
    }
    PendingTransaction pending;
    pending.group = member_->group->name;
    pending.input = member_->group->topic;
    pending.txn = txn;
    pending.guard = [this, txn](const std::function<Status()>& write) -> Status {
      LocalGroup& g = *member_->group;
      std::lock_guard<std::mutex> lock(g.mu);
      for (const auto& [p, offset] : txn->offsets) {
        auto mine = member_->owned.find(p);
        if (mine == member_->owned.end() || g.owner[p] != member_->id ||
            g.epoch[p] != mine->second) {
          return Status::FailedPrecondition(
              fmt::format("fenced: partition {} of {} belongs to another member of group {} now", p,
                          g.topic->name, g.name));
        }
      }
      return write();
    };
    Status s;
    if (txn->records.empty()) {
      // Offsets and state only: nothing to order among the appends, so
      // PUTs need not wait behind this (often large) write.
      s = member_->log->WriteStateTransaction(&pending);
    } else {
      std::promise<Status> done;
      std::future<Status> result = done.get_future();
      CATCHALL_RETURN_IF_ERROR(member_->log->EnqueueTransaction(
          &pending, [&done](const Status& written) { done.set_value(written); }));
      s = result.get();
    }
    if (s.ok()) {
      for (const auto& [where, end] : pending.ends) ends_[where] = end;
    }
    return s;
  }

  int64_t CommittedEnd(std::string_view topic, int32_t partition) const override {
    auto it = ends_.find({std::string(topic), partition});
    return it == ends_.end() ? -1 : it->second;
  }

 private:
  std::shared_ptr<Membership> member_;
  bool state_in_transaction_;
  std::map<std::pair<std::string, int32_t>, int64_t> ends_;
};

class LocalGroupLog final : public GroupLog {
 public:
  LocalGroupLog(LocalLogImpl* log, LocalGroup* group, bool state_in_transaction)
      : log_(log), group_(group), state_in_transaction_(state_in_transaction) {}

  Status Join(RebalanceListener* listener, std::unique_ptr<LogConsumer>* consumer,
              std::unique_ptr<LogCommitter>* committer) override {
    auto member = std::make_shared<Membership>();
    member->log = log_;
    member->group = group_;
    {
      std::lock_guard<std::mutex> lock(group_->mu);
      member->id = group_->next_id++;
      group_->members[member->id] = std::chrono::steady_clock::now();
    }
    *consumer = std::make_unique<LocalGroupConsumer>(member, listener);
    *committer = std::make_unique<LocalCommitter>(member, state_in_transaction_);
    return Status::Ok();
  }

  Status OpenReader(std::string_view topic, std::unique_ptr<LogReader>* reader) override {
    TopicState* t = log_->Find(topic);
    if (!t) return Status::NotFound(fmt::format("the local log has no topic {}", topic));
    *reader = std::make_unique<LocalLogReader>(log_, t);
    return Status::Ok();
  }

 private:
  LocalLogImpl* log_;
  LocalGroup* group_;
  bool state_in_transaction_;
};

}  // namespace

Status LocalLog::NewGroupLog(std::string group, std::string_view topic, bool state_in_transaction,
                             std::unique_ptr<GroupLog>* out) {
  TopicState* t = impl_->Find(topic);
  if (!t) return Status::NotFound(fmt::format("the local log has no topic {}", topic));
  LocalGroup* g = nullptr;
  {
    std::lock_guard<std::mutex> lock(impl_->groups_mu);
    std::string key = group + '\0' + t->name;
    auto& slot = impl_->groups[key];
    if (!slot) {
      slot = std::make_unique<LocalGroup>();
      slot->name = std::move(group);
      slot->topic = t;
      slot->owner.assign(t->partitions, 0);
      slot->epoch.assign(t->partitions, 0);
    }
    g = slot.get();
  }
  *out = std::make_unique<LocalGroupLog>(impl_.get(), g, state_in_transaction);
  return Status::Ok();
}

}  // namespace catchall
