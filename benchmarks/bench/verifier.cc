#include "bench/verifier.h"

#include <simdjson.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <thread>
#include <unordered_set>

#include "bench/http_connection.h"

namespace catchall::bench {

namespace net = boost::asio;

namespace {

// One answer of POST /domains/lookup.
struct LookupItem {
  std::string_view domain;
  std::string_view status;
  DomainCounts counts;
  std::string_view error;  // per-item error message, if any
};

uint64_t HashName(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  return Mix64(h);
}

std::string LowerName(const Workload& workload, uint32_t index) {
  std::string name;
  workload.AppendDomainName(index, &name);
  std::string lower;
  AppendLower(name, &lower);
  return lower;
}

// Looks up a list of domains once, `kLookupBatch` per request over several
// connections, retrying failed requests; calls `on_item` for every answer,
// on the calling thread. Used once and discarded.
class LookupPass final : public ConnectionHandler {
 public:
  using ItemCallback = std::function<void(uint32_t head, const LookupItem& item)>;
  static constexpr uint32_t kMaxAttempts = 10;

  LookupPass(const Target& target, const Workload& workload, const std::vector<uint32_t>& heads,
             uint32_t connections, Clock::duration timeout, Clock::time_point deadline,
             ItemCallback on_item)
      : target_(target),
        workload_(workload),
        heads_(heads),
        chunks_((heads.size() + Verifier::kLookupBatch - 1) / Verifier::kLookupBatch),
        deadline_(deadline),
        on_item_(std::move(on_item)),
        timeout_(timeout),
        deadline_timer_(ioc_),
        sweep_(ioc_) {
    const size_t n = std::min<size_t>(connections, chunks_);
    for (size_t i = 0; i < n; ++i) {
      conns_.push_back(
          std::make_unique<HttpConnection>(ioc_, target, this, static_cast<uint32_t>(i), timeout));
    }
    slots_.resize(n);
  }

  // Returns the number of domains that got no answer.
  uint64_t Execute() {
    if (chunks_ == 0) return 0;
    for (auto& c : conns_) c->Start();
    deadline_timer_.expires_at(deadline_);
    deadline_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) GiveUpAll();
    });
    ArmSweep();
    ioc_.run();
    return unanswered_;
  }

  uint64_t requests() const { return requests_; }
  uint64_t errors() const { return errors_; }

  void OnReady(HttpConnection& conn) override {
    if (finished_) return;
    connected_once_ = true;
    Slot& s = slots_[conn.id()];
    if (s.chunk >= 0) {
      if (s.retry) {
        s.retry = false;
        ++requests_;
        conn.SendAfter(std::chrono::milliseconds(20) * (1 << std::min<uint32_t>(s.attempts, 5)));
      }
      return;
    }
    if (next_chunk_ >= chunks_) return MaybeFinish();
    s.chunk = static_cast<int64_t>(next_chunk_++);
    s.attempts = 0;
    Build(conn, static_cast<size_t>(s.chunk));
    ++requests_;
    conn.Send();
  }

  void OnResponse(HttpConnection& conn, const HttpResponseView& r) override {
    Slot& s = slots_[conn.id()];
    if (s.chunk < 0) return;
    const size_t begin = static_cast<size_t>(s.chunk) * Verifier::kLookupBatch;
    const size_t end = std::min(heads_.size(), begin + Verifier::kLookupBatch);
    simdjson::dom::element doc;
    simdjson::dom::array results;
    if (r.status != 200 || json_.parse(r.body.data(), r.body.size()).get(doc) ||
        doc["results"].get_array().get(results) || results.size() != end - begin) {
      return Retry(s);
    }
    size_t i = begin;
    for (simdjson::dom::element e : results) {
      LookupItem item;
      simdjson::dom::element error;
      if (!e["error"].get(error)) {
        std::string_view message;
        if (error["message"].get_string().get(message)) message = "error";
        item.error = message;
      } else if (e["domain"].get_string().get(item.domain) ||
                 e["status"].get_string().get(item.status) ||
                 e["delivered"].get_uint64().get(item.counts.delivered) ||
                 e["bounced"].get_uint64().get(item.counts.bounced)) {
        item.error = "answer lacks domain, status, delivered or bounced";
      }
      on_item_(heads_[i++], item);
    }
    Done(s);
  }

  void OnFailure(HttpConnection& conn, TransportError, bool in_flight) override {
    Slot& s = slots_[conn.id()];
    if (!in_flight && s.chunk < 0) ++errors_;  // a failed connect
    if (in_flight && s.chunk >= 0) Retry(s);
  }

 private:
  struct Slot {
    int64_t chunk = -1;
    uint32_t attempts = 0;
    bool retry = false;
  };

  void Build(HttpConnection& conn, size_t chunk) {
    std::string& b = conn.body();
    b.assign(R"({"domains":[)");
    const size_t begin = chunk * Verifier::kLookupBatch;
    const size_t end = std::min(heads_.size(), begin + Verifier::kLookupBatch);
    std::string name;
    for (size_t i = begin; i < end; ++i) {
      if (i > begin) b.push_back(',');
      b.push_back('"');
      name.clear();
      workload_.AppendDomainName(heads_[i], &name);
      AppendLower(name, &b);
      b.push_back('"');
    }
    b.append("]}");
    std::string& h = conn.head();
    h.assign("POST ").append(target_.base_path).append("/domains/lookup HTTP/1.1\r\nHost: ");
    h.append(target_.host_header).append("\r\nContent-Type: application/json\r\nContent-Length: ");
    h.append(std::to_string(b.size())).append("\r\n\r\n");
  }

  void Retry(Slot& s) {
    ++errors_;
    if (++s.attempts < kMaxAttempts) {
      s.retry = true;  // OnReady resends
      return;
    }
    const size_t begin = static_cast<size_t>(s.chunk) * Verifier::kLookupBatch;
    unanswered_ += std::min(heads_.size(), begin + Verifier::kLookupBatch) - begin;
    Done(s);
  }

  void Done(Slot& s) {
    s.chunk = -1;
    s.retry = false;
    ++done_chunks_;
  }

  void MaybeFinish() {
    if (done_chunks_ == chunks_) Finish();
  }

  void GiveUpAll() {
    if (finished_) return;
    for (Slot& s : slots_) {
      if (s.chunk < 0) continue;
      const size_t begin = static_cast<size_t>(s.chunk) * Verifier::kLookupBatch;
      unanswered_ += std::min(heads_.size(), begin + Verifier::kLookupBatch) - begin;
    }
    if (next_chunk_ < chunks_) unanswered_ += heads_.size() - next_chunk_ * Verifier::kLookupBatch;
    Finish();
  }

  void Finish() {
    finished_ = true;
    deadline_timer_.cancel();
    sweep_.cancel();
    for (auto& c : conns_) c->Shutdown();
  }

  void ArmSweep() {
    sweep_.expires_after(std::chrono::milliseconds(100));
    sweep_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || finished_) return;
      const Clock::time_point now = Clock::now();
      for (auto& c : conns_) c->CheckDeadline(now);
      // A server that never accepts a connection gets one timeout, not the
      // whole verification deadline.
      if (!connected_once_ && now - started_ > timeout_) return GiveUpAll();
      ArmSweep();
    });
  }

  const Target& target_;
  const Workload& workload_;
  const std::vector<uint32_t>& heads_;
  const size_t chunks_;
  const Clock::time_point deadline_;
  ItemCallback on_item_;
  const Clock::duration timeout_;
  net::io_context ioc_{1};
  net::steady_timer deadline_timer_;
  net::steady_timer sweep_;
  std::vector<std::unique_ptr<HttpConnection>> conns_;
  std::vector<Slot> slots_;
  simdjson::dom::parser json_;
  size_t next_chunk_ = 0;
  size_t done_chunks_ = 0;
  bool finished_ = false;
  bool connected_once_ = false;
  Clock::time_point started_ = Clock::now();
  uint64_t unanswered_ = 0;
  uint64_t requests_ = 0;
  uint64_t errors_ = 0;
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

DomainGroups GroupByLowerName(const Workload& workload, const std::vector<uint32_t>& indices) {
  DomainGroups groups;
  std::vector<std::pair<uint64_t, uint32_t>> keyed;
  keyed.reserve(indices.size());
  for (uint32_t index : indices) keyed.emplace_back(HashName(LowerName(workload, index)), index);
  std::sort(keyed.begin(), keyed.end());
  for (size_t i = 0; i < keyed.size();) {
    size_t j = i + 1;
    while (j < keyed.size() && keyed[j].first == keyed[i].first) ++j;
    if (j == i + 1) {
      groups.heads.push_back(keyed[i].second);
    } else {
      // Equal hashes: group by the actual names (nearly always all equal).
      std::vector<std::pair<std::string, uint32_t>> names;
      for (size_t k = i; k < j; ++k) {
        names.emplace_back(LowerName(workload, keyed[k].second), keyed[k].second);
      }
      std::sort(names.begin(), names.end());
      for (size_t a = 0; a < names.size();) {
        size_t b = a + 1;
        while (b < names.size() && names[b].first == names[a].first) ++b;
        groups.heads.push_back(names[a].second);  // the smallest index of the name
        for (size_t k = a + 1; k < b; ++k) {
          groups.merged.emplace_back(names[a].second, names[k].second);
        }
        a = b;
      }
    }
    i = j;
  }
  std::sort(groups.heads.begin(), groups.heads.end());
  std::sort(groups.merged.begin(), groups.merged.end());
  return groups;
}

Verifier::Verifier(const BenchOptions& options, const Target& target, const Workload& workload,
                   const Ledger& ledger)
    : options_(options), target_(target), workload_(workload), ledger_(ledger) {}

void Verifier::CollectDomains(VerifyResult* result) {
  const uint64_t n = workload_.domain_count();
  std::vector<uint32_t> indices;
  for (uint64_t i = 0; i < n; ++i) {
    const auto index = static_cast<uint32_t>(i);
    if (options_.verify_all || ledger_.Touched(index)) indices.push_back(index);
  }
  merged_.clear();
  head_of_.clear();
  if (workload_.NamesMayCollide()) {
    DomainGroups groups = GroupByLowerName(workload_, indices);
    heads_ = std::move(groups.heads);
    merged_ = std::move(groups.merged);
    for (const auto& [head, other] : merged_) head_of_.emplace_back(other, head);
    std::sort(head_of_.begin(), head_of_.end());
  } else {
    heads_ = std::move(indices);
  }
  result->merged_names = merged_.size();
  result->uncertain_domains = ledger_.uncertain_domains();
  for (uint32_t head : heads_) {
    const Expectation e = Expect(head);
    result->expected_delivered += e.acked.delivered;
    result->expected_bounced += e.acked.bounced;
  }
}

Verifier::Expectation Verifier::Expect(uint32_t head) const {
  Expectation e{ledger_.Acked(head), ledger_.UncertainOf(head)};
  auto it = std::lower_bound(merged_.begin(), merged_.end(), std::make_pair(head, uint32_t{0}));
  for (; it != merged_.end() && it->first == head; ++it) {
    const DomainCounts a = ledger_.Acked(it->second);
    const DomainCounts u = ledger_.UncertainOf(it->second);
    e.acked.delivered += a.delivered;
    e.acked.bounced += a.bounced;
    e.uncertain.delivered += u.delivered;
    e.uncertain.bounced += u.bounced;
  }
  return e;
}

bool Verifier::Check(uint32_t head, const DomainCounts& actual, std::string_view status,
                     std::string_view error, Mismatch* mismatch) const {
  const Expectation e = Expect(head);
  const bool ok = error.empty() && actual.delivered >= e.acked.delivered &&
                  actual.delivered <= e.acked.delivered + e.uncertain.delivered &&
                  actual.bounced >= e.acked.bounced &&
                  actual.bounced <= e.acked.bounced + e.uncertain.bounced &&
                  status == ExpectedStatus(actual, options_.threshold);
  if (!ok && mismatch != nullptr) {
    mismatch->domain = LowerName(workload_, head);
    mismatch->expected = e.acked;
    mismatch->uncertain = e.uncertain;
    mismatch->expected_status = std::string(ExpectedStatus(e.acked, options_.threshold));
    mismatch->actual = actual;
    mismatch->actual_status = std::string(status);
    mismatch->error = std::string(error);
  }
  return ok;
}

void Verifier::Settle(const std::vector<uint32_t>& recent, VerifyResult* result) {
  constexpr size_t kSampleSize = 1000;
  constexpr auto kQuiet = std::chrono::seconds(2);
  constexpr auto kPollEvery = std::chrono::milliseconds(250);
  std::vector<uint32_t> sample;
  std::unordered_set<uint32_t> seen;
  auto add = [&](uint32_t index) {
    auto it =
        std::lower_bound(head_of_.begin(), head_of_.end(), std::make_pair(index, uint32_t{0}));
    if (it != head_of_.end() && it->first == index) index = it->second;
    if (seen.insert(index).second) sample.push_back(index);
  };
  for (auto it = recent.rbegin(); it != recent.rend() && sample.size() < kSampleSize / 2; ++it) {
    add(*it);
  }
  SplitMix64 rng(StreamSeed(workload_.seed(), 0x5e771e));
  // Then random written domains (with --verify-all most heads are not).
  for (size_t tries = 0;
       sample.size() < std::min(kSampleSize, heads_.size()) && tries < 50 * kSampleSize; ++tries) {
    const uint32_t head = heads_[rng.Below(heads_.size())];
    const Expectation e = Expect(head);
    if (e.acked.delivered + e.acked.bounced + e.uncertain.delivered + e.uncertain.bounced > 0) {
      add(head);
    }
  }
  const auto timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(options_.timeout_s));
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(options_.settle_timeout_s));
  uint64_t last_fingerprint = 0;
  Clock::time_point last_change = start;
  bool first = true;
  for (;;) {
    uint64_t fingerprint = 0;
    uint64_t mismatching = 0;
    LookupPass pass(
        target_, workload_, sample, options_.verify_connections, timeout,
        std::max(deadline, Clock::now() + timeout), [&](uint32_t head, const LookupItem& item) {
          fingerprint =
              Mix64(fingerprint ^ (item.counts.delivered * 1000003 + item.counts.bounced + head));
          if (!Check(head, item.counts, item.status, item.error, nullptr)) ++mismatching;
        });
    const uint64_t unanswered = pass.Execute();
    const Clock::time_point now = Clock::now();
    if (unanswered == sample.size()) break;  // the server does not answer at all
    if (unanswered == 0 && mismatching == 0) {
      result->settled = true;
      break;
    }
    if (first || fingerprint != last_fingerprint) {
      last_fingerprint = fingerprint;
      last_change = now;
    } else if (unanswered == 0 && now - last_change >= kQuiet) {
      result->settled = true;  // stopped changing (the full check will tell)
      break;
    }
    first = false;
    if (now >= deadline) break;
    std::this_thread::sleep_for(kPollEvery);
  }
  result->settle_s = Seconds(Clock::now() - start);
}

VerifyResult Verifier::Run(const std::vector<uint32_t>& recent) {
  VerifyResult result;
  CollectDomains(&result);
  if (heads_.empty()) {
    result.complete = true;
    result.settled = true;
    result.ok = true;
    return result;
  }
  Settle(recent, &result);
  const Clock::time_point start = Clock::now();
  const auto timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(options_.timeout_s));
  const Clock::time_point deadline =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(options_.verify_timeout_s));
  // The full pass: every domain once.
  std::vector<uint32_t> failing;
  LookupPass pass(target_, workload_, heads_, options_.verify_connections, timeout, deadline,
                  [&](uint32_t head, const LookupItem& item) {
                    ++result.checked;
                    if (!Check(head, item.counts, item.status, item.error, nullptr)) {
                      failing.push_back(head);
                    }
                  });
  result.unanswered = pass.Execute();
  result.lookup_requests = pass.requests();
  result.lookup_errors = pass.errors();
  result.first_pass_mismatches = failing.size();

  // A sample can look settled while the server still works through a
  // backlog elsewhere: look the failing domains up again until they match,
  // stop changing for a while, or --settle-timeout passes.
  constexpr auto kRecheckEvery = std::chrono::milliseconds(500);
  constexpr auto kQuiet = std::chrono::seconds(5);
  const Clock::time_point recheck_deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(options_.settle_timeout_s));
  uint64_t last_fingerprint = 0;
  Clock::time_point last_change = Clock::now();
  for (bool first = true; !failing.empty(); first = false) {
    const bool last_chance = Clock::now() >= recheck_deadline;
    if (!first) std::this_thread::sleep_for(kRecheckEvery);
    std::sort(failing.begin(), failing.end());
    std::vector<uint32_t> still;
    std::vector<Mismatch> examples;
    uint64_t fingerprint = 0;
    LookupPass again(
        target_, workload_, failing, options_.verify_connections, timeout,
        std::max(deadline, Clock::now() + timeout), [&](uint32_t head, const LookupItem& item) {
          fingerprint =
              Mix64(fingerprint ^ (item.counts.delivered * 1000003 + item.counts.bounced + head));
          Mismatch m;
          const bool want = examples.size() < kMaxExamples;
          if (!Check(head, item.counts, item.status, item.error, want ? &m : nullptr)) {
            still.push_back(head);
            if (want) examples.push_back(std::move(m));
          }
        });
    const uint64_t unanswered = again.Execute();
    result.lookup_requests += again.requests();
    result.lookup_errors += again.errors();
    ++result.rechecks;
    result.examples = std::move(examples);
    if (unanswered > 0) {
      result.unanswered += unanswered;  // those are reported, not retried again
      break;
    }
    failing = std::move(still);
    const Clock::time_point now = Clock::now();
    if (fingerprint != last_fingerprint) {
      last_fingerprint = fingerprint;
      last_change = now;
    } else if (now - last_change >= kQuiet) {
      break;  // nothing changes any more: these are real mismatches
    }
    if (last_chance) break;
  }
  result.mismatches = failing.size();
  result.check_s = Seconds(Clock::now() - start);
  result.complete = result.unanswered == 0;
  result.ok = result.complete && result.mismatches == 0;
  return result;
}

}  // namespace catchall::bench
