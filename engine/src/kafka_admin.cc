// Topic administration: catchall topics create|check, and the roles' checks
// at start.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/kafka.h"
#include "kafka_common.h"

namespace catchall {
namespace {

// A short-lived producer handle is the cheapest client for admin requests.
Status MakeAdminClient(const KafkaOptions& options, rd_kafka_t** rk) {
  rd_kafka_conf_t* conf = nullptr;
  CATCHALL_RETURN_IF_ERROR(
      kafka_internal::MakeConf(options, kafka_internal::ClientKind::kAdmin, {}, &conf));
  char err[512];
  *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!*rk) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(fmt::format("cannot create Kafka client: {}", err));
  }
  // Every role checks its topics with this client before anything else, so
  // wrong credentials stop the role here, with a message that says so.
  Status s = kafka_internal::AwaitBroker(*rk, options.brokers, options.timeout);
  if (!s.ok()) {
    rd_kafka_destroy(*rk);
    *rk = nullptr;
  }
  return s;
}

struct ClientGuard {
  rd_kafka_t* rk = nullptr;
  ~ClientGuard() {
    if (rk) rd_kafka_destroy(rk);
  }
};

// The configs of `topic` (every one, Kafka's defaults included), read with
// DescribeConfigs.
Result<std::map<std::string, std::string>> TopicConfigs(rd_kafka_t* rk, const std::string& topic,
                                                        int timeout_ms) {
  rd_kafka_ConfigResource_t* res =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  char err[256];
  rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, err, sizeof(err));
  rd_kafka_DescribeConfigs(rk, &res, 1, opts, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
  Result<std::map<std::string, std::string>> out =
      Status::Timeout("describing topic configs timed out");
  if (ev) {
    if (rd_kafka_event_error(ev)) {
      out = kafka_internal::FromError(rd_kafka_event_error(ev), "describing topic configs");
    } else {
      const rd_kafka_DescribeConfigs_result_t* result = rd_kafka_event_DescribeConfigs_result(ev);
      size_t n = 0;
      const rd_kafka_ConfigResource_t** rs = rd_kafka_DescribeConfigs_result_resources(result, &n);
      std::map<std::string, std::string> configs;
      out = configs;
      for (size_t i = 0; i < n; ++i) {
        // Denied (DescribeConfigs is an ACL of its own) or unknown: say so,
        // never fall back to Kafka's default as if it had been read.
        if (rd_kafka_resp_err_t e = rd_kafka_ConfigResource_error(rs[i])) {
          const char* why = rd_kafka_ConfigResource_error_string(rs[i]);
          out = kafka_internal::FromError(e, fmt::format("describing the configs of topic {}{}{}",
                                                         topic, why ? ": " : "", why ? why : ""));
          break;
        }
        size_t cn = 0;
        const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(rs[i], &cn);
        for (size_t j = 0; j < cn; ++j) {
          const char* v = rd_kafka_ConfigEntry_value(entries[j]);
          configs[rd_kafka_ConfigEntry_name(entries[j])] = v ? v : "";
        }
        out = configs;
      }
    }
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(q);
  rd_kafka_ConfigResource_destroy(res);
  return out;
}

// Whether a retention.ms of `kept` keeps records for less than `least` ms
// (-1, forever, never does; nor does a value that is not a number, which
// Kafka would not have taken).
bool KeepsShorterThan(const std::string& kept, const std::string& least) {
  int64_t k = 0;
  int64_t l = 0;
  auto [p1, e1] = std::from_chars(kept.data(), kept.data() + kept.size(), k);
  auto [p2, e2] = std::from_chars(least.data(), least.data() + least.size(), l);
  return e1 == std::errc() && e2 == std::errc() && k >= 0 && k < l;
}

}  // namespace

Status CreateTopics(const KafkaOptions& options, const std::vector<TopicSpec>& topics,
                    std::string* report, std::vector<TopicProblem>* problems) {
  ClientGuard client;
  CATCHALL_RETURN_IF_ERROR(MakeAdminClient(options, &client.rk));
  int timeout_ms = static_cast<int>(options.timeout.count());
  std::vector<rd_kafka_NewTopic_t*> news;
  char err[512];
  for (const TopicSpec& t : topics) {
    rd_kafka_NewTopic_t* nt =
        rd_kafka_NewTopic_new(t.name.c_str(), t.partitions, t.replication_factor, err, sizeof(err));
    if (!nt) {
      for (auto* n : news) rd_kafka_NewTopic_destroy(n);
      return Status::InvalidArgument(fmt::format("topic {}: {}", t.name, err));
    }
    for (const auto& [k, v] : t.configs) rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
    news.push_back(nt);
  }
  rd_kafka_queue_t* q = rd_kafka_queue_new(client.rk);
  rd_kafka_AdminOptions_t* opts =
      rd_kafka_AdminOptions_new(client.rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, err, sizeof(err));
  rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, err, sizeof(err));
  rd_kafka_CreateTopics(client.rk, news.data(), news.size(), opts, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 2 * timeout_ms + 1000);
  Status s;
  std::vector<std::string> created;
  if (!ev) {
    s = Status::Unavailable("creating topics timed out: are the brokers reachable?");
  } else if (rd_kafka_event_error(ev)) {
    s = kafka_internal::FromError(rd_kafka_event_error(ev), "creating topics");
  } else {
    const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t** rs = rd_kafka_CreateTopics_result_topics(result, &n);
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(rs[i]);
      std::string name = rd_kafka_topic_result_name(rs[i]);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        *report += fmt::format("created {}\n", name);
        created.push_back(name);
      } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        *report += fmt::format("exists  {}\n", name);
      } else if (s.ok()) {
        s = Status::IoError(
            fmt::format("creating {}: {}", name, rd_kafka_topic_result_error_string(rs[i])));
      }
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(q);
  for (auto* nt : news) rd_kafka_NewTopic_destroy(nt);
  CATCHALL_RETURN_IF_ERROR(s);
  // Existing topics must match, or domains would be routed differently. The
  // ones just created may not show yet (seen on a fresh KRaft broker: "does
  // not exist"; on a three-broker cluster: the default cleanup.policy=delete
  // from a broker that had not applied the new topic's config yet).
  // Their replication factor is not checked: it does not route anything,
  // and an operator re-running `topics create` without the flag against
  // topics made with another must not get an error.
  std::vector<TopicSpec> to_check = topics;
  for (TopicSpec& t : to_check) t.replication_factor = 0;
  return CheckTopicsUntil(options, to_check, created,
                          std::chrono::steady_clock::now() + options.timeout, report, {}, problems);
}

Status CheckTopicsUntil(const KafkaOptions& options, const std::vector<TopicSpec>& topics,
                        const std::vector<std::string>& fresh,
                        std::chrono::steady_clock::time_point until, std::string* report,
                        const std::function<void(const Status&)>& on_first_wait,
                        std::vector<TopicProblem>* problems) {
  std::string check;
  std::vector<TopicProblem> found;
  Status c;
  for (bool waited = false;; waited = true) {
    check.clear();
    found.clear();
    c = CheckTopics(options, topics, &check, &found);
    const bool fresh_not_yet = std::any_of(found.begin(), found.end(), [&](const auto& p) {
      return std::find(fresh.begin(), fresh.end(), p.topic) != fresh.end();
    });
    if (c.ok() || !fresh_not_yet || std::chrono::steady_clock::now() >= until) break;
    if (!waited && on_first_wait) on_first_wait(c);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!c.ok()) *report += check;
  if (problems) *problems = std::move(found);
  return c;
}

Result<int32_t> TopicPartitionCount(const KafkaOptions& options, const std::string& topic,
                                    std::chrono::milliseconds wait_if_unknown) {
  ClientGuard client;
  CATCHALL_RETURN_IF_ERROR(MakeAdminClient(options, &client.rk));
  if (wait_if_unknown.count() > 0) {
    return kafka_internal::PartitionCountOnceKnown(client.rk, topic,
                                                   static_cast<int>(wait_if_unknown.count()));
  }
  return kafka_internal::PartitionCount(client.rk, topic,
                                        static_cast<int>(options.timeout.count()));
}

Status CheckTopics(const KafkaOptions& options, const std::vector<TopicSpec>& topics,
                   std::string* report, std::vector<TopicProblem>* found) {
  ClientGuard client;
  CATCHALL_RETURN_IF_ERROR(MakeAdminClient(options, &client.rk));
  int timeout_ms = static_cast<int>(options.timeout.count());
  if (found) found->clear();
  std::vector<TopicProblem> problems;
  auto problem = [&](TopicProblem::Kind kind, const TopicSpec& t, std::string message) {
    problems.push_back(TopicProblem{kind, t.name, std::move(message)});
  };
  for (const TopicSpec& t : topics) {
    Result<int32_t> partitions = kafka_internal::PartitionCount(client.rk, t.name, timeout_ms);
    if (!partitions.ok()) {
      if (partitions.status().code() == Code::kNotFound) {
        problem(TopicProblem::Kind::kMissing, t, fmt::format("topic {} does not exist", t.name));
        continue;
      }
      return Status::Unavailable(fmt::format("cannot reach Kafka at {}: {}", options.brokers,
                                             partitions.status().message()));
    }
    // Every difference of a topic, not only its first: an operator fixing
    // one would otherwise find the next only on the next run.
    const size_t before = problems.size();
    if (t.partitions > 0 && *partitions != t.partitions) {
      problem(TopicProblem::Kind::kPartitions, t,
              fmt::format("topic {} has {} partitions, expected {}", t.name, *partitions,
                          t.partitions));
    }
    if (t.replication_factor > 0) {
      Result<int32_t> replicas = kafka_internal::ReplicationFactor(client.rk, t.name, timeout_ms);
      if (!replicas.ok()) return replicas.status();
      if (*replicas != t.replication_factor) {
        problem(TopicProblem::Kind::kReplicationFactor, t,
                fmt::format("topic {} has replication factor {}, expected {}", t.name, *replicas,
                            t.replication_factor));
      }
    }
    // The configs checked: cleanup.policy and retention.bytes as given,
    // retention.ms as a minimum.
    std::vector<std::pair<std::string, std::string>> checked;
    for (const char* name : {"cleanup.policy", "retention.ms", "retention.bytes"}) {
      if (auto want = t.configs.find(name); want != t.configs.end()) checked.emplace_back(*want);
    }
    if (!checked.empty()) {
      Result<std::map<std::string, std::string>> configs =
          TopicConfigs(client.rk, t.name, timeout_ms);
      for (const auto& [name, want] : checked) {
        auto has =
            configs.ok() ? configs->find(name) : std::map<std::string, std::string>::iterator();
        if (!configs.ok() || has == configs->end()) {
          // A client allowed to read and write a topic need not be allowed
          // to describe its configs: that is reported, not a failure. Nor
          // is Kafka's default taken for a value that was not read.
          std::string note =
              fmt::format("cannot read the {} of {} ({}): not checked", name, t.name,
                          configs.ok() ? "not in the broker's answer" : configs.status().message());
          spdlog::warn("{}", note);
          *report += "note    " + note + "\n";
        } else if (name == "retention.ms") {
          if (KeepsShorterThan(has->second, want)) {
            problem(TopicProblem::Kind::kConfig, t,
                    fmt::format("topic {} has retention.ms={}, expected at least {}", t.name,
                                has->second, want));
          }
        } else if (has->second != want) {
          problem(TopicProblem::Kind::kConfig, t,
                  fmt::format("topic {} has {}={}, expected {}", t.name, name, has->second, want));
        }
      }
    }
    if (problems.size() > before) continue;
    *report += fmt::format("ok      {} ({} partition{})\n", t.name, *partitions,
                           *partitions == 1 ? "" : "s");
  }
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p.message;
    *report += all + "\n";
    if (found) *found = std::move(problems);
    return Status::FailedPrecondition(all);
  }
  return Status::Ok();
}

}  // namespace catchall
