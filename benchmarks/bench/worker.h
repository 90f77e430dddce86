// One client I/O thread: an event loop driving a share of the connections.
//
// A Worker turns its EventStream into requests (PUT, NDJSON batch, GET),
// paces them (closed loop, or fixed intervals under --rate with latency
// counted from the intended send time), retries under --verify, records
// latencies and counters, and acknowledges events into the Ledger.
//
// Each of its connection slots carries at most one operation at a time.
// A slot normally has one connection: to --target (put, batch, mixed) or to
// --query-target (get). In mixed mode with a separate --query-target a slot
// has two, one to each server, and sends each operation on the one its kind
// needs (events to --target, lookups to --query-target), so --read-ratio
// keeps its meaning. Connection ids: slot i's first connection is i, its
// read connection (if any) slots + i.
//
// Threads: Run() is called on the worker's own thread and returns once the
// worker has drained (or was aborted). Begin, RequestStop, Abort and
// Snapshot may be called from any thread; everything else runs on the
// worker's thread.
#pragma once

#include <simdjson.h>

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <mutex>
#include <vector>

#include "bench/http_connection.h"
#include "bench/load_stats.h"
#include "bench/run_context.h"

namespace catchall::bench {

class Worker final : public ConnectionHandler {
 public:
  // `index` of `count` workers; `connections` is this worker's share.
  Worker(RunContext& ctx, uint32_t index, uint32_t count, uint32_t connections);
  ~Worker() override;

  // Connects and serves until drained. On the worker's thread.
  void Run();
  // Number of connections that are connected (for the runner's start).
  uint32_t connected() const { return connected_.load(std::memory_order_relaxed); }
  // Starts issuing operations (ctx.start is set).
  void Begin();
  // No new operations; finish (and retry) the outstanding ones, then return.
  void RequestStop();
  // Gives up on outstanding operations (their events become uncertain).
  void Abort();
  // Copies the cumulative totals and takes (and resets) the interval ones.
  void Snapshot(LoadTotals* totals, IntervalTotals* interval);

  // After Run() returned: the domains acknowledged last, for the verifier's
  // settle sample, and how often the event stream wrapped around.
  std::vector<uint32_t> RecentDomains() const;
  uint64_t passes() const { return stream_->passes(); }

  // ConnectionHandler:
  void OnReady(HttpConnection& conn) override;
  void OnResponse(HttpConnection& conn, const HttpResponseView& response) override;
  void OnFailure(HttpConnection& conn, TransportError error, bool in_flight) override;

 private:
  // The operation a connection slot is working on.
  struct Slot {
    bool has_op = false;
    bool retry = false;  // a send is due once the op's connection is ready
    bool idle = false;   // listed in idle_ (open loop, or before Begin)
    OpKind kind = OpKind::kPut;
    uint32_t attempts = 0;
    GeneratedEvent event;               // put; get uses event.domain
    std::vector<GeneratedEvent> batch;  // batch
    uint64_t first_seq = 0;
    Clock::time_point intended{};
    Clock::duration retry_delay{};
  };

  void DoBegin();
  uint32_t SlotOf(const HttpConnection& conn) const { return conn.id() % slot_count_; }
  // The connection that carries slot `i`'s operations of kind `kind`.
  HttpConnection& ConnFor(uint32_t i, OpKind kind) {
    return *conns_[read_conns_ && kind == OpKind::kGet ? slot_count_ + i : i];
  }
  void PushIdle(uint32_t i);
  void Dispatch(uint32_t i, Clock::time_point intended);
  bool StartOp(uint32_t i, Slot& slot, Clock::time_point intended);
  void BuildPut(HttpConnection& conn, const Slot& slot);
  void BuildBatch(HttpConnection& conn, const Slot& slot);
  void BuildGet(HttpConnection& conn, const Slot& slot);
  void AppendKey(uint64_t seq, std::string* out) const;
  void SendOp(uint32_t i, Slot& slot);
  void OnSuccess(Slot& slot, const HttpResponseView& response, Clock::time_point now);
  void OnError(Slot& slot, bool retryable, bool maybe_stored, Clock::duration retry_floor);
  void GiveUp(Slot& slot, bool maybe_stored);
  void EndOp(Slot& slot);
  uint32_t EventCount(const Slot& slot) const;
  void NoteLag(Clock::time_point intended, Clock::time_point now, bool from_timer);

  Clock::time_point DueTime(uint64_t k) const;
  void ArmPacer();
  void OnPacer();
  void ArmSweep();
  void StopIssuing();
  void MarkStopping();
  void MaybeFinish();
  void Finish();
  void DoAbort();

  RunContext& ctx_;
  const BenchOptions& opt_;
  const uint32_t index_;
  boost::asio::io_context ioc_{1};
  boost::asio::steady_timer pacer_{ioc_};
  boost::asio::steady_timer sweep_{ioc_};
  const uint32_t slot_count_;
  bool read_conns_ = false;  // mixed mode with a separate --query-target
  std::vector<std::unique_ptr<HttpConnection>> conns_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> idle_;  // slots ready for an operation (may hold stale entries)
  std::unique_ptr<EventStream> stream_;
  SplitMix64 rng_;
  simdjson::dom::parser json_;

  bool begun_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  uint32_t busy_ = 0;  // slots with has_op
  std::atomic<uint32_t> connected_{0};

  // Open loop.
  bool open_loop_ = false;
  double interval_ns_ = 0;
  double phase_ = 0;
  uint64_t next_k_ = 0;
  bool pacer_armed_ = false;
  Clock::time_point stop_time_{};  // when stopping_ was first set

  uint64_t next_seq_;
  std::array<uint32_t, 512> recent_{};
  size_t recent_count_ = 0;

  // Single-writer counters read by Snapshot.
  std::atomic<uint64_t> requests_sent_{0};
  std::atomic<uint64_t> events_sent_{0};
  std::atomic<uint64_t> lookups_sent_{0};

  mutable std::mutex mu_;
  LoadTotals totals_;        // GUARDED_BY(mu_)
  IntervalTotals interval_;  // GUARDED_BY(mu_)
};

}  // namespace catchall::bench
