#include "node_common.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <thread>

#include "engine/runtime.h"

namespace catchall {

Status OpenStore(Env* env, const Config& config, std::vector<ColumnSpec> columns,
                 std::unique_ptr<KvStore>* store, bool write_ahead_log) {
  KvStoreOptions options;
  options.path = config.data_dir;
  options.sync_writes = config.sync_writes;
  options.write_ahead_log = write_ahead_log;
  options.block_cache_bytes = config.block_cache_mb << 20;
  options.write_buffer_bytes = config.write_buffer_mb << 20;
  options.background_jobs = config.background_jobs;
  options.background_write_rate = config.compaction_rate_mb << 20;
  options.compaction_low_priority = config.compaction_low_priority;
  options.flush_low_priority = config.flush_low_priority;
  options.recover_damaged_wal = config.recover_damaged_wal;
  options.columns = std::move(columns);
  Status s = env->OpenStore(options, store);
  // RocksDB's LOCK file held by another process: RocksDB says "While lock
  // file" only when taking the lock (fcntl) failed; failing to open the
  // file (a read-only file system, a directory in its place) says "while
  // open a file for lock", and that message says what it is.
  if (!s.ok() && (s.message().find("While lock file") != std::string::npos ||
                  s.message().find("the directory is locked") != std::string::npos)) {
    return Status::FailedPrecondition(
        fmt::format("data directory '{}' is in use by another catchall process ({})",
                    config.data_dir, s.message()));
  }
  if (s.code() == Code::kCorruption) {
    return Status::Corruption(fmt::format(
        "{}. The data dir's files are damaged: restore it from a backup; if only the "
        "write-ahead log (its *.log files) is, `--set storage.recover_damaged_wal=true` starts "
        "with the writes before the damage and drops the rest (docs/operations.md, \"A damaged "
        "data dir\")",
        s.message()));
  }
  return s;
}

Status BindStoreToTopics(KvStore* store, std::string_view column, const Config& config,
                         const std::string& topics) {
  // Not a key any reader of the column parses (partition numbers).
  constexpr std::string_view kKey = "catchall.topics";
  Column c = store->GetColumn(column);
  std::string recorded;
  Status s = store->Get(c, kKey, &recorded);
  if (s.ok()) {
    if (recorded == topics) return Status::Ok();
    return Status::FailedPrecondition(fmt::format(
        "data directory '{}' holds state built from other topics ({}) than this node's ({}); "
        "counting over it would add their counts to these. Give this node an empty --data-dir "
        "(it restores its state from the changelog) or the topics the directory was made for",
        config.data_dir, recorded, topics));
  }
  if (s.code() != Code::kNotFound) return s;
  KvWriteBatch batch;
  batch.Put(c, kKey, topics);
  CATCHALL_RETURN_IF_ERROR(store->Write(&batch));
  // Flushed now: an aggregator's store has no write-ahead log, and a
  // kill -9 before its first flush would lose the record.
  return store->Flush();
}

void FlushStoreOnShutdown(KvStore* store, DiskMonitor* disk, uint64_t room_bytes) {
  if (disk) {
    disk->Sample();  // as it is now, not up to a sampling interval ago
    Status low = disk->Check();
    if (low.ok() && disk->free_bytes() < room_bytes) {
      low = Status::NoSpace(fmt::format("{} MB free, less than a write buffer ({} MB)",
                                        disk->free_bytes() >> 20, room_bytes >> 20));
    }
    if (!low.ok()) {
      spdlog::warn("not flushing the store on shutdown: {}; the next start recovers it",
                   low.message());
      return;
    }
  }
  Status s = store->Flush();
  if (!s.ok()) spdlog::warn("flushing the store on shutdown failed: {}", s.ToString());
}

Status BindHttp(const Config& config, const HttpRouter* router, Metrics* metrics,
                std::unique_ptr<HttpServer>* server) {
  HttpServerOptions http;
  CATCHALL_RETURN_IF_ERROR(ParseListen(config.listen, &http.host, &http.port));
  // Default: half the cores. The log writer, aggregation and RocksDB's
  // compactions need the rest; on 2 cores one I/O thread gave more PUTs/s
  // (95k vs 85k) and a lower open-loop tail than two (docs/benchmarks.md).
  http.threads = config.http_threads > 0
                     ? config.http_threads
                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency() / 2));
  http.body_limit = config.max_body_bytes;
  http.header_limit = config.max_header_bytes;
  http.idle_timeout = std::chrono::milliseconds(config.idle_timeout_ms);
  http.io_timeout = std::chrono::milliseconds(config.io_timeout_ms);
  // Within what the open-file limit leaves for connections: past it, an
  // accept fails, and so would the store's next table file.
  http.max_connections = ConnectionLimit(config);
  http.max_inflight_body_bytes = config.max_inflight_body_bytes;
  http.tls_cert_file = config.tls_cert_file;
  http.tls_key_file = config.tls_key_file;
  *server = std::make_unique<HttpServer>(http, router, metrics);
  return (*server)->Bind();
}

Status ServeHttp(HttpServer* server, const std::string& port_file) {
  CATCHALL_RETURN_IF_ERROR(server->Start());
  if (!port_file.empty()) CATCHALL_RETURN_IF_ERROR(WritePortFile(port_file, server->port()));
  return Status::Ok();
}

namespace {

// Descriptors kept beside the connections: the store's table files and
// write-ahead logs, Kafka's sockets, logs.
constexpr uint64_t kOtherFiles = 1024;

uint64_t OpenFileLimit() {
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return UINT64_MAX;
  return limit.rlim_cur;
}

}  // namespace

uint64_t ConnectionLimit(const Config& config) {
  const uint64_t files = OpenFileLimit();
  const uint64_t room = files > 2 * kOtherFiles ? files - kOtherFiles : files / 2;
  return std::max<uint64_t>(1, std::min(config.max_connections, room));
}

void RaiseOpenFileLimit(const Config& config) {
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t before = limit.rlim_cur;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) limit.rlim_cur = before;
  }
  if (limit.rlim_cur != before) {
    spdlog::debug("open file limit raised from {} to {}", before, limit.rlim_cur);
  }
  const uint64_t connections = ConnectionLimit(config);
  if (connections < config.max_connections) {
    spdlog::warn(
        "the open file limit is {} (hard limit {}), too low for server.max_connections {} plus "
        "~{} descriptors for the store and Kafka: connections beyond {} get 503 "
        "too_many_connections; raise it (LimitNOFILE=, ulimit -n, docker --ulimit nofile=) or "
        "lower server.max_connections",
        limit.rlim_cur, limit.rlim_max, config.max_connections, kOtherFiles, connections);
  }
}

KafkaOptions KafkaOptionsFor(const Config& config, const std::string& role) {
  KafkaOptions k;
  k.brokers = config.brokers;
  k.client_id = fmt::format("catchall-{}-{}", role, InstanceId(config));
  k.timeout = std::chrono::milliseconds(config.kafka_timeout_ms);
  k.properties = config.kafka_client;
  k.producer_properties = config.kafka_producer;
  k.consumer_properties = config.kafka_consumer;
  return k;
}

std::vector<TopicSpec> ProductTopics(const Config& config, int32_t partitions) {
  int32_t rf = config.replication_factor;
  std::map<std::string, std::string> durable;
  if (rf > 1) durable["min.insync.replicas"] = std::to_string(std::min(rf - 1, 2));
  auto status_configs = durable;
  status_configs["cleanup.policy"] = "compact";
  // Ids are needed for the id window only: Kafka deletes them after it, a
  // segment (1/24 of the window) at a time, so never before.
  auto ids_configs = durable;
  int64_t window_ms = static_cast<int64_t>(config.idempotency_window_s) * 1000;
  ids_configs["cleanup.policy"] = "delete";
  ids_configs["retention.ms"] = std::to_string(window_ms);
  // No size limit: one (a broker's log.retention.bytes) would delete ids,
  // and the checkpoint a restore waits for, before the window ends.
  ids_configs["retention.bytes"] = "-1";
  ids_configs["segment.ms"] = std::to_string(std::max<int64_t>(window_ms / 24, 60000));
  return {
      {config.events_topic, partitions, rf, durable},
      {config.status_topic, partitions, rf, status_configs},
      {config.ids_topic, partitions, rf, ids_configs},
      {config.dead_letter_topic, 1, rf, durable},
  };
}

std::unique_ptr<DiskMonitor> WatchDisk(Env* env, const Config& config, Metrics* metrics) {
  auto monitor =
      std::make_unique<DiskMonitor>(env, config.data_dir, config.min_free_mb << 20, metrics);
  monitor->Start();
  return monitor;
}

std::string InstanceId(const Config& config) {
  if (!config.instance_id.empty()) return config.instance_id;
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  std::string listen_host;
  uint16_t port = 0;
  ParseListen(config.listen, &listen_host, &port).PermitUnchecked();
  // With a random port the id would not be stable anyway; the pid at least
  // keeps two processes on one host apart.
  if (port == 0) return fmt::format("{}-pid{}", host, getpid());
  return fmt::format("{}-{}", host, port);
}

}  // namespace catchall
