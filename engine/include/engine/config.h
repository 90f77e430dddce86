// Configuration of every role, and where it comes from.
//
// Each setting has a dotted key ("server.listen"), an environment variable
// (CATCHALL_SERVER_LISTEN) and a default. Sources apply in this order, later
// ones winning: defaults, the TOML file (--config), the environment, command
// line flags. Unknown keys and malformed values are errors that name the key
// and the source, never silently ignored.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/status.h"

namespace catchall {

struct Config {
  // [server]
  std::string listen = "0.0.0.0:8080";
  int http_threads = 0;  // 0: half the cores
  uint64_t max_body_bytes = 16 << 20;
  uint64_t max_header_bytes = 8 << 10;
  uint64_t idle_timeout_ms = 30000;
  uint64_t io_timeout_ms = 30000;
  uint64_t max_connections = 10000;
  // Request bodies held at once across connections (0: no limit).
  uint64_t max_inflight_body_bytes = uint64_t{1} << 30;
  uint64_t shutdown_timeout_ms = 10000;
  // PEM files; both or neither. Set: the listener speaks TLS only.
  std::string tls_cert_file;
  std::string tls_key_file;
  // [storage]
  std::string data_dir = "catchall-data";
  bool sync_writes = false;
  uint64_t block_cache_mb = 256;
  // Memtable size of each column: writes insert into a skip list of about
  // this many bytes before it is flushed (docs/operations.md).
  uint64_t write_buffer_mb = 64;
  // RocksDB's background work (docs/operations.md, "Compaction and the
  // tail"): flush and compaction threads, a cap on the bytes they write per
  // second (0: none), and whether compaction threads run at the lowest CPU
  // priority so that they yield to the serving threads (on by default: it
  // cut the PUT tail after a bulk load, docs/benchmarks.md), and whether
  // flushes do too (off: a starved flush stalls writes).
  int background_jobs = 2;
  uint64_t compaction_rate_mb = 0;
  bool compaction_low_priority = true;
  bool flush_low_priority = false;
  // storage.recover_damaged_wal: open a store whose write-ahead log is
  // damaged before its end, keeping the writes before the damage and
  // dropping the rest (KvStoreOptions::recover_damaged_wal).
  bool recover_damaged_wal = false;
  // aggregate.ids_log_batches, declared here to fill the padding after the
  // flag above (clang-analyzer's padding check). Cluster mode: the ids log
  // in batch records (AggregationOptions says why a rolling upgrade turns
  // it off first).
  bool ids_log_batches = true;
  // aggregate.state_write_ahead_log: cluster mode, whether the aggregator's
  // store writes RocksDB's write-ahead log (its state is a cache of the
  // changelog, rebuilt from it after a crash; off by default).
  bool state_write_ahead_log = false;
  // aggregate.low_priority, declared here to fill the padding too: the
  // aggregation threads at nice 19 (docs/operations.md, "Compaction and the
  // tail").
  bool aggregate_low_priority = false;
  uint64_t min_free_mb = 512;
  // [log] (embedded mode's local log)
  // The count a new data dir's log gets. One: a single aggregation thread
  // reads them all, so more only cost a memtable insert per partition that
  // a group commit touches (docs/benchmarks.md, "one partition").
  int partitions = 1;
  // Whether log.partitions was set (file, environment or flag). Unset, a
  // data dir keeps the count it was made with (8 before the default was 1);
  // set, another count on disk is an error.
  bool partitions_given = false;
  uint64_t retention_minutes = 60;
  uint64_t max_pending_mb = 64;
  uint64_t max_unconsumed_events = 5000000;
  uint64_t fetch_min_events = 1000;
  uint64_t fetch_wait_ms = 5;
  // [ingest]
  uint64_t max_batch_items = 100000;
  uint64_t offload_batch_bytes = uint64_t{64} * 1024;
  // [aggregate]
  uint64_t catchall_threshold = 1000;
  uint64_t commit_interval_ms = 100;
  uint64_t commit_max_events = 500000;
  uint64_t idempotency_window_s = 86400;
  int aggregate_threads = 1;
  // Cluster mode: 0 turns warm standbys off; 1 or more keeps a warm copy of
  // every partition the process does not own (StandbyReplicas says why).
  int standby_replicas = 0;
  // [query]
  uint64_t max_lookup_domains = 1000;
  // Cluster mode: a query node writes what it applied from the changelog
  // to its store once this many domains changed, or this long after its
  // last checkpoint (StatusMaterializer).
  uint64_t checkpoint_domains = 1'000'000;
  uint64_t checkpoint_interval_s = 60;
  // [kafka] (cluster mode)
  std::string brokers;
  std::string events_topic = "catchall.events";
  std::string status_topic = "catchall.domain-status";
  std::string ids_topic = "catchall.ids";
  std::string dead_letter_topic = "catchall.events.dlq";
  std::string group_id = "catchall-aggregators";
  std::string instance_id;    // default: hostname + listen port
  int kafka_partitions = 12;  // for `catchall topics create`
  int replication_factor = 1;
  uint64_t kafka_timeout_ms = 5000;
  int max_partition_fetch_kb = 4096;
  // librdkafka properties passed through as they are: kafka.client.<name>
  // for every client, kafka.producer.<name> / kafka.consumer.<name> for one
  // kind; they apply after catchall's own (property name -> value).
  std::map<std::string, std::string> kafka_client;
  std::map<std::string, std::string> kafka_producer;
  std::map<std::string, std::string> kafka_consumer;
  // [logging]
  std::string log_level = "info";
  // [auth] (off while both are empty; see engine/api_keys.h)
  std::string auth_keys_file;  // one "<sha256 hex> <scope>,..." line per key
  std::string auth_keys;       // the same lines, separated by ';' or newlines

  // What loading accepted but an operator should hear about: CATCHALL_*
  // environment variables that name no setting (a misspelt one would
  // otherwise vanish). Not a setting.
  std::vector<std::string> warnings;
};

// One configurable setting.
struct Setting {
  std::string key;  // "server.listen"
  std::string env;  // "CATCHALL_SERVER_LISTEN"
  std::string help;
  std::function<Status(Config&, std::string_view)> set;
  std::function<std::string(const Config&)> get;
};

// Every setting, in documentation order.
const std::vector<Setting>& AllSettings();

// The smallest and largest values ValidateConfig accepts for the numeric
// setting `key`, where it bounds the value by itself (not through another
// setting); nullopt for the others. `max` is the largest uint64_t where
// only the bottom is bounded, `min` 0 where only the top is.
// `catchall config --list` and the command-line flags take their ranges
// from here.
struct SettingBounds {
  uint64_t min;
  uint64_t max;
};
std::optional<SettingBounds> SettingRange(std::string_view key);

// Where the flags put their values: key -> value, applied last.
using ConfigOverrides = std::vector<std::pair<std::string, std::string>>;

// Builds the configuration from defaults, `file` (if not empty), the
// process environment and `overrides`, then validates it.
Result<Config> LoadConfig(const std::string& file, const ConfigOverrides& overrides);
// LoadConfig with the file's TOML text instead of its name; `source` (the
// file name) names the text in error messages. Empty text sets nothing.
Result<Config> LoadConfigText(std::string_view text, std::string_view source,
                              const ConfigOverrides& overrides);

// Checks ranges and combinations; InvalidArgument names the bad key.
Status ValidateConfig(const Config& config);

// The settings of `config` that only the cluster roles (Kafka) use and that
// differ from their defaults, by key (kafka.client.<name> for the
// pass-through ones): what `catchall serve` would silently ignore.
std::vector<std::string> ClusterOnlySettings(const Config& config);

// The effective configuration as TOML (for `catchall config`), which
// reads back as the same configuration but for two things left as
// comments: log.partitions when it was not given (a data dir then keeps
// its own count, and a given one must match it), and pass-through
// properties that hold secrets (their values are not printed; reading a
// mask back would have set it as the password).
std::string DumpConfig(const Config& config);

// `config` without the pass-through properties that hold secrets: what a
// dump of it reads back as.
Config WithoutSecrets(Config config);

// True for a librdkafka property whose value is a secret (passwords, keys,
// tokens): never printed, logged or exported.
bool IsSecretProperty(std::string_view name);

// Splits "host:port", "[v6]:port" or ":port" (host 0.0.0.0).
Status ParseListen(std::string_view listen, std::string* host, uint16_t* port);

}  // namespace catchall
