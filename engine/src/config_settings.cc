// The table of settings: each key's environment name, help, parser and
// printer (config_settings.h).
#include "config_settings.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <string>

#include "engine/kafka.h"

namespace catchall {

Status ParseU64(std::string_view key, std::string_view text, uint64_t* out) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range) {
    return Status::InvalidArgument(fmt::format("{}: '{}' is too large (at most {})", key,
                                               text.substr(0, 40),
                                               std::numeric_limits<uint64_t>::max()));
  }
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    return Status::InvalidArgument(
        fmt::format("{}: '{}' is not a non-negative integer", key, text));
  }
  *out = v;
  return Status::Ok();
}

std::string EnvName(std::string_view key) {
  // "kafka.client." -> "CATCHALL_KAFKA_CLIENT_"
  std::string env = "CATCHALL_";
  for (char c : key) env.push_back(c == '.' ? '_' : static_cast<char>(std::toupper(c)));
  return env;
}

std::string AsciiLower(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

namespace {

Status ParseBool(std::string_view key, std::string_view text, bool* out) {
  // In any letter case: TRUE and True are what some tools write.
  std::string lower = AsciiLower(text.substr(0, 8));
  if (text.size() > 8) lower.clear();
  if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") {
    *out = true;
  } else if (lower == "false" || lower == "0" || lower == "no" || lower == "off") {
    *out = false;
  } else {
    return Status::InvalidArgument(fmt::format(
        "{}: '{}' is not a boolean (true/false, yes/no, on/off or 1/0, in any letter case)", key,
        text));
  }
  return Status::Ok();
}

Setting StringSetting(std::string key, std::string help, std::string Config::*field) {
  Setting s;
  s.env = EnvName(key);
  s.key = std::move(key);
  s.help = std::move(help);
  s.set = [field](Config& c, std::string_view v) {
    c.*field = std::string(v);
    return Status::Ok();
  };
  s.get = [field](const Config& c) { return c.*field; };
  return s;
}

Setting U64Setting(const std::string& key, std::string help, uint64_t Config::*field) {
  Setting s;
  s.env = EnvName(key);
  s.key = key;
  s.help = std::move(help);
  s.set = [field, key](Config& c, std::string_view v) { return ParseU64(key, v, &(c.*field)); };
  s.get = [field](const Config& c) { return std::to_string(c.*field); };
  return s;
}

Setting IntSetting(const std::string& key, std::string help, int Config::*field) {
  Setting s;
  s.env = EnvName(key);
  s.key = key;
  s.help = std::move(help);
  s.set = [field, key](Config& c, std::string_view v) {
    // Past int's range (or even uint64_t's) the value is kept as the
    // largest int: every int setting has an upper bound in ValidateConfig,
    // whose message names the setting's own range. A generic "too large"
    // left the operator guessing what would do (a probe).
    uint64_t u = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), u);
    const bool digits = !v.empty() && ptr == v.data() + v.size();
    if (digits && (ec == std::errc::result_out_of_range ||
                   u > static_cast<uint64_t>(std::numeric_limits<int>::max()))) {
      c.*field = std::numeric_limits<int>::max();
      return Status::Ok();
    }
    CATCHALL_RETURN_IF_ERROR(ParseU64(key, v, &u));
    c.*field = static_cast<int>(u);
    return Status::Ok();
  };
  s.get = [field](const Config& c) { return std::to_string(c.*field); };
  return s;
}

Setting BoolSetting(const std::string& key, std::string help, bool Config::*field) {
  Setting s;
  s.env = EnvName(key);
  s.key = key;
  s.help = std::move(help);
  s.set = [field, key](Config& c, std::string_view v) { return ParseBool(key, v, &(c.*field)); };
  s.get = [field](const Config& c) { return std::string(c.*field ? "true" : "false"); };
  return s;
}

std::vector<Setting> MakeSettings() {
  std::vector<Setting> s;
  s.push_back(StringSetting("server.listen",
                            "HOST:PORT to serve HTTP on; HOST an IP address or a host name (its "
                            "first IPv4 address, else its first)",
                            &Config::listen));
  s.push_back(IntSetting("server.http_threads", "HTTP I/O threads (0: half the cores)",
                         &Config::http_threads));
  s.push_back(U64Setting("server.max_body_bytes", "largest request body accepted (413 above)",
                         &Config::max_body_bytes));
  s.push_back(U64Setting("server.max_header_bytes",
                         "largest request header block: request line and fields (431 above)",
                         &Config::max_header_bytes));
  s.push_back(U64Setting("server.idle_timeout_ms",
                         "keep-alive idle time, and time allowed for a request's headers",
                         &Config::idle_timeout_ms));
  s.push_back(U64Setting("server.io_timeout_ms", "time allowed to read a body or write a response",
                         &Config::io_timeout_ms));
  s.push_back(U64Setting("server.max_connections", "open connections above this get 503",
                         &Config::max_connections));
  s.push_back(U64Setting("server.max_inflight_body_bytes",
                         "request body bytes held in memory at once across connections, as "
                         "received; a request whose declared body does not fit, or whose body "
                         "outgrows the room, gets 503 server_busy (0: no limit; else at least "
                         "server.max_body_bytes)",
                         &Config::max_inflight_body_bytes));
  s.push_back(U64Setting("server.shutdown_timeout_ms",
                         "on SIGTERM, how long requests in flight may take to finish",
                         &Config::shutdown_timeout_ms));
  // TLS for the role's listener (docs/operations.md, "TLS").
  s.push_back(StringSetting("server.tls_cert_file",
                            "PEM certificate chain (leaf first); with server.tls_key_file the "
                            "listener speaks HTTPS only, TLS 1.2 or later; reread on SIGHUP",
                            &Config::tls_cert_file));
  s.push_back(StringSetting("server.tls_key_file",
                            "PEM private key of server.tls_cert_file; reread on SIGHUP",
                            &Config::tls_key_file));
  s.push_back(
      StringSetting("storage.data_dir", "directory of the local log and state", &Config::data_dir));
  s.push_back(BoolSetting("storage.sync_writes",
                          "fsync every write (survive power loss, not only crashes)",
                          &Config::sync_writes));
  s.push_back(
      U64Setting("storage.block_cache_mb", "RocksDB block cache size", &Config::block_cache_mb));
  s.push_back(U64Setting("storage.write_buffer_mb", "RocksDB memtable size of each column",
                         &Config::write_buffer_mb));
  s.push_back(IntSetting("storage.background_jobs", "RocksDB flush and compaction threads",
                         &Config::background_jobs));
  s.push_back(U64Setting("storage.compaction_rate_mb",
                         "most MB/s that flushes and compactions write (0: no limit); smooths "
                         "their bursts, at the cost of a larger backlog",
                         &Config::compaction_rate_mb));
  s.push_back(BoolSetting("storage.recover_damaged_wal",
                          "with storage.sync_writes, start on a data dir whose write-ahead log "
                          "(*.log) is damaged before its end, keeping the writes before the "
                          "damage and dropping those after it (acknowledged events among them "
                          "are lost); off, such a data dir refuses to start. Without sync_writes "
                          "it starts anyway and logs an error (a power loss can leave such a "
                          "log). Also starts serve on a data dir whose store lost writes its "
                          "catchall-log-ends file recorded (a deleted or cut *.log, a MANIFEST "
                          "cut short), as of what is left (docs/operations.md, \"A damaged data "
                          "dir\")",
                          &Config::recover_damaged_wal));
  s.push_back(BoolSetting("storage.compaction_low_priority",
                          "run compaction threads (and a query node's checkpoint thread) at the "
                          "lowest CPU priority (nice 19), so they yield the cores to the serving "
                          "threads",
                          &Config::compaction_low_priority));
  s.push_back(
      BoolSetting("storage.flush_low_priority",
                  "run memtable flushes at the lowest CPU priority (nice 19), on the cores' "
                  "idle time; meant with storage.compaction_low_priority (else compactions "
                  "outrank flushes); a flush that falls behind for long stalls writes "
                  "(catchall_store_write_stalls_total)",
                  &Config::flush_low_priority));
  s.push_back(U64Setting("storage.min_free_mb",
                         "below this much free disk space on the data dir, writes are refused "
                         "(507) and consumption pauses until space returns; the default leaves "
                         "room for the memtables' flushes",
                         &Config::min_free_mb));
  s.push_back(IntSetting("log.partitions",
                         "partitions of a new data dir's local log (unset, an existing "
                         "data dir keeps its own count; set, it must match it)",
                         &Config::partitions));
  s.back().set = [set = s.back().set](Config& c, std::string_view v) {
    c.partitions_given = true;
    return set(c, v);
  };
  s.push_back(U64Setting("log.retention_minutes",
                         "keep consumed events this long (for replay) before deleting (0: "
                         "delete them at the next retention run, every 30 s)",
                         &Config::retention_minutes));
  s.push_back(U64Setting("log.max_pending_mb",
                         "events waiting to be written beyond this get 503 (backpressure)",
                         &Config::max_pending_mb));
  s.push_back(U64Setting("log.max_unconsumed_events",
                         "events written but not yet counted beyond this get 503 (0: no limit)",
                         &Config::max_unconsumed_events));
  s.push_back(U64Setting("log.fetch_min_events",
                         "a read of the log that finds fewer events than this waits "
                         "log.fetch_wait_ms once for more (0: never waits)",
                         &Config::fetch_min_events));
  s.push_back(U64Setting("log.fetch_wait_ms",
                         "how long such a read waits (0: never waits); the aggregation "
                         "then wakes once per wait instead of once per group commit",
                         &Config::fetch_wait_ms));
  s.push_back(U64Setting("ingest.max_batch_items", "most items in one POST /events",
                         &Config::max_batch_items));
  s.push_back(U64Setting("ingest.offload_batch_bytes",
                         "batches of at least this many bytes are parsed off the HTTP I/O "
                         "thread, on the ingest's own (0: never)",
                         &Config::offload_batch_bytes));
  s.push_back(U64Setting("aggregate.catchall_threshold",
                         "a domain with no bounce is catch-all above this many deliveries",
                         &Config::catchall_threshold));
  s.push_back(U64Setting("aggregate.commit_interval_ms",
                         "how often counters are committed (bounds freshness)",
                         &Config::commit_interval_ms));
  s.push_back(U64Setting("aggregate.commit_max_events",
                         "commit early once this many events are pending",
                         &Config::commit_max_events));
  s.push_back(U64Setting("aggregate.idempotency_window_s",
                         "how long an Idempotency-Key or event id is remembered (0: not at all, so "
                         "nothing is deduplicated)",
                         &Config::idempotency_window_s));
  s.push_back(BoolSetting("aggregate.low_priority",
                          "embedded mode (serve): run the aggregation thread at the lowest CPU "
                          "priority (nice 19), so that on busy cores it waits for the HTTP "
                          "threads; it then counts in the cores' idle time, and falls behind if "
                          "there is none (the cluster roles ignore it)",
                          &Config::aggregate_low_priority));
  s.push_back(IntSetting("aggregate.threads",
                         "cluster mode: aggregation workers (consumer group members) per process",
                         &Config::aggregate_threads));
  s.push_back(IntSetting("aggregate.standby_replicas",
                         "cluster mode: 1 or more keeps warm copies of the partitions other "
                         "aggregators own, so a failover restores only the tail (0: off)",
                         &Config::standby_replicas));
  s.push_back(BoolSetting("aggregate.ids_log_batches",
                          "cluster mode: write the ids log in batch records (false: one record "
                          "per id, which aggregators before 2026-12-03 need to read it; turn it "
                          "off while upgrading from them)",
                          &Config::ids_log_batches));
  s.push_back(BoolSetting("aggregate.state_write_ahead_log",
                          "cluster mode: write the local state through RocksDB's write-ahead "
                          "log (false: it is flushed to disk whole, every column together, and a "
                          "crash loses only what the changelog restores; 4-11% less CPU per event)",
                          &Config::state_write_ahead_log));
  s.push_back(U64Setting("query.max_lookup_domains", "most domains in one batch lookup",
                         &Config::max_lookup_domains));
  s.push_back(U64Setting("query.checkpoint_domains",
                         "cluster mode: the query node holds up to this many changed domains in "
                         "memory (~200 bytes each at a checkpoint's peak) before it writes "
                         "them to its store",
                         &Config::checkpoint_domains));
  s.push_back(U64Setting("query.checkpoint_interval_s",
                         "cluster mode: the query node also writes them this many seconds after "
                         "its last checkpoint; bounds what it re-reads from the changelog after "
                         "a restart",
                         &Config::checkpoint_interval_s));
  s.push_back(StringSetting("kafka.brokers",
                            "bootstrap brokers HOST:PORT,...; empty means embedded mode",
                            &Config::brokers));
  s.push_back(StringSetting("kafka.events_topic", "topic of events", &Config::events_topic));
  s.push_back(StringSetting("kafka.status_topic", "compacted changelog of domain statuses",
                            &Config::status_topic));
  s.push_back(StringSetting("kafka.ids_topic",
                            "idempotency ids counted, kept for the id window (restored with their "
                            "partition)",
                            &Config::ids_topic));
  s.push_back(StringSetting("kafka.dead_letter_topic", "where malformed event records go",
                            &Config::dead_letter_topic));
  s.push_back(
      StringSetting("kafka.group_id", "consumer group of the aggregators", &Config::group_id));
  s.push_back(StringSetting("kafka.instance_id",
                            "stable id of this node (transactional id); default: host and port",
                            &Config::instance_id));
  s.push_back(IntSetting("kafka.partitions",
                         "partitions of the events and status topics (`catchall topics create`)",
                         &Config::kafka_partitions));
  s.push_back(IntSetting("kafka.replication_factor",
                         "replication factor of new topics (3 in production)",
                         &Config::replication_factor));
  s.push_back(IntSetting(
      "kafka.max_partition_fetch_kb",
      fmt::format("aggregator fetch size per partition, compressed (a fetch takes up to 5); "
                  "its prefetch is bounded by kafka.consumer.queued.max.messages.kbytes "
                  "({}), which should hold a few fetches decompressed",
                  KafkaGroupOptions().queued_max_kb),
      &Config::max_partition_fetch_kb));
  s.push_back(U64Setting(
      "kafka.timeout_ms",
      "broker request timeout; ingest answers every write (503 if unacknowledged) within it",
      &Config::kafka_timeout_ms));
  s.push_back(StringSetting("logging.level", "trace, debug, info, warn, error (any letter case)",
                            &Config::log_level));
  // In any letter case, as the booleans: `--log-level WARN` was refused.
  s.back().set = [](Config& c, std::string_view v) {
    c.log_level = AsciiLower(v);
    return Status::Ok();
  };
  // API keys (auth.*): auth is on when either is set; SIGHUP re-reads the file.
  s.push_back(StringSetting("auth.keys_file",
                            "file of API keys, one '<sha256 of the key, hex> <scope>[,<scope>...]' "
                            "line each (scopes: ingest, query, metrics); re-read on SIGHUP; empty "
                            "with auth.keys empty: auth off",
                            &Config::auth_keys_file));
  s.push_back(
      StringSetting("auth.keys",
                    "API keys in the auth.keys_file format, lines separated by ';' or "
                    "newlines (for the environment: CATCHALL_AUTH_KEYS); added to the file's",
                    &Config::auth_keys));
  return s;
}

}  // namespace

const Setting* FindSetting(std::string_view key) {
  for (const Setting& s : AllSettings()) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

const std::vector<Setting>& AllSettings() {
  static const std::vector<Setting> settings = MakeSettings();
  return settings;
}

}  // namespace catchall
