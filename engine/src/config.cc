#include "engine/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <type_traits>
#include <utility>
#include <variant>

#include "config_settings.h"

extern char** environ;  // NOLINT(readability-redundant-declaration): unistd.h's, for the loop below

namespace catchall {
namespace {

// The pass-through maps and the prefix of their keys.
struct PassThrough {
  std::string_view prefix;  // "kafka.client."
  std::map<std::string, std::string> Config::*field;
};
constexpr PassThrough kPassThroughs[] = {
    {"kafka.client.", &Config::kafka_client},
    {"kafka.producer.", &Config::kafka_producer},
    {"kafka.consumer.", &Config::kafka_consumer},
};

// The pass-through whose prefix `key` starts with, a property's name
// following it (kafka.client.<name>, ...); null for any other key.
const PassThrough* PassThroughOf(std::string_view key) {
  for (const PassThrough& p : kPassThroughs) {
    if (key.size() > p.prefix.size() && key.substr(0, p.prefix.size()) == p.prefix) return &p;
  }
  return nullptr;
}

// librdkafka properties that catchall's guarantees rest on. A pass-through
// may restate one (any letter case) but not change it: they apply after
// catchall's own settings, and `kafka.producer.acks=1` made a 204 mean
// only the leader had the event, `enable.idempotence=false` let a retry
// write an event twice, and `partitioner=random` had every acknowledged
// event dead-lettered instead of counted, all without a word (a review).
struct GuardedProperty {
  std::string_view name;
  std::array<std::string_view, 2> allowed;  // empty entries unused; none: refused whatever
  std::string_view why;
};
constexpr GuardedProperty kGuardedProperties[] = {
    {"acks", {"all", "-1"}, "a 204 means every in-sync replica has the event"},
    {"request.required.acks", {"all", "-1"}, "a 204 means every in-sync replica has the event"},
    {"enable.idempotence", {"true", ""}, "a producer's retry must not write an event twice"},
    {"partitioner",
     {"murmur2_random", "murmur2"},
     "aggregators count a record only in its domain's partition under Kafka's murmur2"},
    {"isolation.level", {"read_committed", ""}, "an aborted transaction's records are not counted"},
    {"enable.auto.commit",
     {"false", ""},
     "aggregators commit their offsets inside their transactions"},
    {"transactional.id", {}, "each aggregator member sets its own, which fences its zombies"},
    {"group.id", {}, "set the aggregators' group with kafka.group_id"},
};

// Refuses a pass-through property of `c` that changes a guarded one.
Status CheckGuardedProperties(const Config& c) {
  for (const PassThrough& pass : kPassThroughs) {
    for (const GuardedProperty& guard : kGuardedProperties) {
      auto set = (c.*pass.field).find(std::string(guard.name));
      if (set == (c.*pass.field).end()) continue;
      const std::string value = AsciiLower(set->second);
      bool allowed = false;
      for (std::string_view a : guard.allowed) allowed |= !a.empty() && a == value;
      if (allowed) continue;
      const std::string key = fmt::format("{}{}", pass.prefix, guard.name);
      if (guard.allowed[0].empty()) {
        return Status::InvalidArgument(fmt::format("{}: cannot be set: {}", key, guard.why));
      }
      return Status::InvalidArgument(fmt::format(
          "{}: must stay {}{}: {}", key, guard.allowed[0],
          guard.allowed[1].empty() ? std::string() : fmt::format(" (or {})", guard.allowed[1]),
          guard.why));
    }
  }
  return Status::Ok();
}

// The same for an environment variable's name (CATCHALL_KAFKA_CLIENT_<NAME>).
const PassThrough* PassThroughOfVariable(std::string_view name) {
  for (const PassThrough& p : kPassThroughs) {
    const std::string prefix = EnvName(p.prefix);  // CATCHALL_KAFKA_CLIENT_
    if (name.size() > prefix.size() && name.substr(0, prefix.size()) == prefix) return &p;
  }
  return nullptr;
}

// Sets `key` if it is a pass-through property (kafka.client.<name>, ...);
// false when it is not one.
bool SetPassThrough(Config& config, std::string_view key, std::string_view value) {
  const PassThrough* p = PassThroughOf(key);
  if (p == nullptr) return false;
  (config.*p->field)[std::string(key.substr(p->prefix.size()))] = std::string(value);
  return true;
}

// Applies one setting, fixed or pass-through, by key.
Status ApplySetting(Config& config, std::string_view key, std::string_view value) {
  if (const Setting* setting = FindSetting(key)) return setting->set(config, value);
  if (SetPassThrough(config, key, value)) return Status::Ok();
  return Status::InvalidArgument(
      fmt::format("unknown setting '{}' (see `catchall config --list`)", key));
}

// True when `v` reads back from TOML as the integer it spells (no leading
// zero, fits in TOML's signed 64 bits); anything else is written quoted,
// which every setting accepts.
bool IsTomlInteger(std::string_view v) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string_view::npos) return false;
  if (v.size() > 1 && v.front() == '0') return false;
  int64_t parsed = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), parsed);
  return ec == std::errc() && ptr == v.data() + v.size();
}

// `s` as a TOML basic string, quoted and escaped.
std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\u{:04X}", c);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
  return out;
}

// `file` names the TOML `document` in messages. `lines` gets the line of
// each key the document sets.
Status ApplyToml(std::string_view document, std::string_view file, Config* config,
                 std::map<std::string, size_t>* lines) {
  toml::table table;
  try {
    table = toml::parse(document, file);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Status::InvalidArgument(fmt::format("config file {} line {} column {}: {}", file,
                                               where.line, where.column, e.description()));
  }
  // Every unknown key at once, in file order: one per run (and not the
  // first) made a file of several typos take several starts (a probe).
  std::multimap<size_t, std::string> unknown;  // line -> key
  for (auto&& [section, node] : table) {
    const toml::table* inner = node.as_table();
    if (!inner) {
      return Status::InvalidArgument(
          fmt::format("config file {}: '{}' must be a [section]", file, section.str()));
    }
    // [kafka.client] etc. are tables inside [kafka]: their keys are
    // librdkafka property names (quote them: "security.protocol" = ...).
    std::vector<std::pair<std::string, const toml::node*>> entries;
    for (auto&& [name, value] : *inner) {
      if (const toml::table* nested = value.as_table()) {
        for (auto&& [property, v] : *nested) {
          entries.emplace_back(fmt::format("{}.{}.{}", section.str(), name.str(), property.str()),
                               &v);
        }
      } else {
        entries.emplace_back(fmt::format("{}.{}", section.str(), name.str()), &value);
      }
    }
    for (auto& [key, node_ptr] : entries) {
      const toml::node& value = *node_ptr;
      if (FindSetting(key) == nullptr && PassThroughOf(key) == nullptr) {
        unknown.emplace(value.source().begin.line, key);
        continue;
      }
      std::string text;
      if (auto s = value.value<std::string>()) {
        text = *s;
      } else if (auto b = value.value_exact<bool>()) {
        text = *b ? "true" : "false";
      } else if (auto i = value.value_exact<int64_t>()) {
        text = std::to_string(*i);
      } else {
        return Status::InvalidArgument(
            fmt::format("config file {} line {}: '{}' must be a string, integer or boolean", file,
                        value.source().begin.line, key));
      }
      Status st = ApplySetting(*config, key, text);
      if (!st.ok()) {
        return Status::InvalidArgument(fmt::format("config file {} line {}: {}", file,
                                                   value.source().begin.line, st.message()));
      }
      (*lines)[key] = value.source().begin.line;
    }
  }
  if (unknown.empty()) return Status::Ok();
  std::string list;
  for (const auto& [line, key] : unknown) {
    list += fmt::format("{}line {}: unknown setting '{}'", list.empty() ? "" : "; ", line, key);
  }
  return Status::InvalidArgument(
      fmt::format("config file {} {} (see `catchall config --list`)", file, list));
}

}  // namespace

Status ParseListen(std::string_view listen, std::string* host, uint16_t* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument(
        fmt::format("listen address '{}' must be HOST:PORT (e.g. 0.0.0.0:8080)", listen));
  }
  std::string_view h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.find_first_of("[]") != std::string_view::npos) {
    // '[::1' would otherwise pass here and fail only when binding.
    return Status::InvalidArgument(fmt::format(
        "listen address '{}' must be HOST:PORT, with an IPv6 host in brackets ([::1]:8080)",
        listen));
  }
  uint64_t p = 0;
  Status st = ParseU64("port", listen.substr(colon + 1), &p);
  if (!st.ok() || p > 65535) {
    return Status::InvalidArgument(
        fmt::format("listen address '{}' has no valid port (0-65535)", listen));
  }
  *host = h.empty() ? "0.0.0.0" : std::string(h);
  *port = static_cast<uint16_t>(p);
  return Status::Ok();
}

namespace {

// Checks kafka.brokers: [scheme://]HOST[:PORT] entries, as librdkafka takes
// them. librdkafka itself takes a bad port modulo 65536
// (`:99999` dialled 34463) and reports only that it cannot connect.
Status ValidateBrokers(std::string_view brokers) {
  if (brokers.empty()) return Status::Ok();
  auto bad = [&](std::string_view entry, std::string_view why) {
    return Status::InvalidArgument(
        fmt::format("kafka.brokers: '{}' {} (expected HOST:PORT,...)", entry, why));
  };
  // Separated by commas and whitespace, empty entries skipped, as
  // librdkafka reads the list.
  constexpr std::string_view kSeparators = ", \t\r\n";
  size_t entries = 0;
  size_t start = 0;
  while (start < brokers.size()) {
    start = brokers.find_first_not_of(kSeparators, start);
    if (start == std::string_view::npos) break;
    size_t end = std::min(brokers.find_first_of(kSeparators, start), brokers.size());
    std::string_view entry = brokers.substr(start, end - start);
    ++entries;
    if (entry.find('@') != std::string_view::npos) {
      // user:password@host is how URLs carry credentials: not echoed.
      return Status::InvalidArgument(
          "kafka.brokers: an entry holds '@', as a URL with credentials would (the entry is "
          "not printed); brokers are [scheme://]HOST[:PORT], and credentials go in "
          "kafka.client.sasl.username and kafka.client.sasl.password");
    }
    std::string_view address = entry;
    if (size_t scheme = address.find("://"); scheme != std::string_view::npos) {
      address.remove_prefix(scheme + 3);
    }
    std::string_view host = address;
    std::string_view port;
    bool has_port = false;
    if (!address.empty() && address.front() == '[') {  // [v6]:port
      size_t close = address.find(']');
      if (close == std::string_view::npos) return bad(entry, "has no closing ']'");
      host = address.substr(1, close - 1);
      std::string_view rest = address.substr(close + 1);
      if (!rest.empty()) {
        if (rest.front() != ':') return bad(entry, "has text after ']' that is not :PORT");
        port = rest.substr(1);
        has_port = true;
      }
    } else if (std::count(address.begin(), address.end(), ':') == 1) {
      size_t colon = address.find(':');
      host = address.substr(0, colon);
      port = address.substr(colon + 1);
      has_port = true;
    }  // no colon: librdkafka's default port; several: a bare IPv6 address
    if (host.empty()) return bad(entry, "has no host");
    // A host name, an IPv4 or an IPv6 address (with a zone after '%').
    if (!std::all_of(host.begin(), host.end(), [](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '.' || ch == '-' ||
                 ch == '_' || ch == ':' || ch == '%';
        })) {
      return bad(entry, "has a character that cannot be in a host name");
    }
    uint64_t number = 0;
    if (has_port && (!ParseU64("port", port, &number).ok() || number < 1 || number > 65535)) {
      return bad(entry, "has no valid port (1-65535)");
    }
    start = end;
  }
  if (entries == 0) return bad(brokers, "names no broker");
  return Status::Ok();
}

// Kafka's rule for a topic name (its Topic.validate): 1-249 of
// [a-zA-Z0-9._-], and not "." or "..". A broker refuses any other with
// "Invalid topic", which reached the user as "cannot reach Kafka".
Status ValidateTopicName(std::string_view key, std::string_view name) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(
        fmt::format("{}: '{}' is not a Kafka topic name: {}", key, name.substr(0, 300), why));
  };
  if (name.empty()) return bad("it is empty");
  if (name.size() > 249) return bad("it is longer than 249 characters");
  if (name == "." || name == "..") return bad("'.' and '..' are reserved");
  for (char ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') {
      return bad("only letters, digits, '.', '_' and '-' are allowed");
    }
  }
  return Status::Ok();
}

// The settings bounded by themselves (not through another setting), in one
// table that drives validation, `catchall config --list` and the flags that
// set them (SettingRange): a probe met the window's limit, and a timeout's
// minimum, only as a refusal.
//
// A row's refusal takes one of two forms. kRange names the whole range
// ("must be 1..64"), for settings whose both ends matter to the user;
// kSides names the side crossed ("must be positive", "must be at least N",
// "must be at most N"), for settings whose top is only a guard.
//
// The guards' upper bounds are where the value is converted to something
// narrower: a 32-bit header limit in Beast, std::chrono durations (signed
// 64-bit, in milliseconds or nanoseconds), `mb << 20`, librdkafka's int
// timeouts. Above them a setting used to wrap silently: idle_timeout_ms =
// 2^64-1 became -1 ms and cut every request.
constexpr uint64_t kDayMs = uint64_t{24} * 3600 * 1000;
constexpr uint64_t kYearS = uint64_t{365} * 24 * 3600;
constexpr uint64_t kNoMaximum = std::numeric_limits<uint64_t>::max();
enum class Refusal { kRange, kSides };
struct Bound {
  std::string_view key;
  std::variant<int Config::*, uint64_t Config::*> field;
  SettingBounds bounds;  // max kNoMaximum: none
  Refusal refusal = Refusal::kSides;
  std::string_view why = "";  // appended to a kRange refusal
};
const Bound kBounds[] = {
    {"log.partitions", &Config::partitions, {1, 4096}, Refusal::kRange},
    // Each is a thread with its own io_context; thousands only cost memory.
    {"server.http_threads",
     &Config::http_threads,
     {0, 256},
     Refusal::kRange,
     " (0: half the cores)"},
    {"storage.write_buffer_mb", &Config::write_buffer_mb, {1, 4096}, Refusal::kRange},
    {"storage.background_jobs", &Config::background_jobs, {1, 64}, Refusal::kRange},
    {"kafka.partitions", &Config::kafka_partitions, {1, 100000}, Refusal::kRange},
    // Kafka keeps a replication factor in 16 bits.
    {"kafka.replication_factor", &Config::replication_factor, {1, 32767}, Refusal::kRange},
    // A fetch takes up to 5 partitions' worth, and librdkafka's
    // fetch.max.bytes stops at 2 GiB: 5 x 1024 x kb overflowed an int past
    // 419,430 and the consumer silently fetched 16 MiB (a review, thirteenth
    // session).
    {"kafka.max_partition_fetch_kb",
     &Config::max_partition_fetch_kb,
     {64, kMaxPartitionFetchKb},
     Refusal::kRange,
     " (a fetch of 5 partitions must stay under Kafka's 2 GiB)"},
    {"aggregate.threads", &Config::aggregate_threads, {1, 64}, Refusal::kRange},
    {"aggregate.standby_replicas", &Config::standby_replicas, {0, 16}, Refusal::kRange},
    {"server.max_header_bytes", &Config::max_header_bytes, {512, 1 << 20}},
    // Beast reserves a body's declared Content-Length up front: with no
    // bound, one request declaring 2^50 bytes ended the process with
    // bad_alloc. A batch holds at most 100,000 items, far below 1 GiB.
    {"server.max_body_bytes", &Config::max_body_bytes, {1024, 1 << 30}},
    {"server.max_connections", &Config::max_connections, {1, kNoMaximum}},
    {"server.idle_timeout_ms", &Config::idle_timeout_ms, {1, kDayMs}},
    {"server.io_timeout_ms", &Config::io_timeout_ms, {1, kDayMs}},
    {"server.shutdown_timeout_ms", &Config::shutdown_timeout_ms, {0, kDayMs}},
    {"storage.block_cache_mb", &Config::block_cache_mb, {0, 1 << 20}},
    {"storage.compaction_rate_mb", &Config::compaction_rate_mb, {0, 1 << 20}},
    {"storage.min_free_mb", &Config::min_free_mb, {0, uint64_t{1} << 40}},
    {"log.retention_minutes", &Config::retention_minutes, {0, kYearS / 60}},
    {"log.max_pending_mb", &Config::max_pending_mb, {1, 1 << 20}},
    {"log.max_unconsumed_events", &Config::max_unconsumed_events, {0, uint64_t{1} << 62}},
    {"log.fetch_min_events", &Config::fetch_min_events, {0, 1 << 20}},
    // Well inside the aggregation's 50 ms poll and the commit interval.
    {"log.fetch_wait_ms", &Config::fetch_wait_ms, {0, 50}},
    {"ingest.max_batch_items", &Config::max_batch_items, {1, kNoMaximum}},
    {"aggregate.commit_interval_ms", &Config::commit_interval_ms, {1, kDayMs}},
    {"aggregate.commit_max_events", &Config::commit_max_events, {1, kNoMaximum}},
    {"aggregate.idempotency_window_s", &Config::idempotency_window_s, {0, kYearS}},
    // simdjson's array size saturates at 0xFFFFFF, so the lookup's "too
    // many domains" check holds only below that (a review).
    {"query.max_lookup_domains", &Config::max_lookup_domains, {1, 0xFFFFFE}},
    {"query.checkpoint_domains", &Config::checkpoint_domains, {1, uint64_t{1} << 32}},
    {"query.checkpoint_interval_s", &Config::checkpoint_interval_s, {1, kYearS}},
    // 0 made every Kafka request time out at once, reported as Kafka being
    // unreachable; the top is librdkafka's socket.timeout.ms.
    {"kafka.timeout_ms", &Config::kafka_timeout_ms, {1, 300000}},
};

// Why `c`'s value of `bound` is refused, or nothing.
std::optional<std::string> OutOfBounds(const Config& c, const Bound& bound) {
  const SettingBounds& b = bound.bounds;
  // Only a Config built in code has a negative int: settings parse as
  // unsigned. It is below any minimum.
  const std::optional<uint64_t> value = std::visit(
      [&](auto field) -> std::optional<uint64_t> {
        auto v = c.*field;
        if constexpr (std::is_signed_v<decltype(v)>) {
          if (v < 0) return std::nullopt;
        }
        return static_cast<uint64_t>(v);
      },
      bound.field);
  const bool below = !value || *value < b.min;
  if (!below && *value <= b.max) return std::nullopt;
  if (bound.refusal == Refusal::kRange) {
    return fmt::format("must be {}..{}{}", b.min, b.max, bound.why);
  }
  if (!below) return fmt::format("must be at most {}", b.max);
  return b.min == 1 ? std::string("must be positive") : fmt::format("must be at least {}", b.min);
}

}  // namespace

std::optional<SettingBounds> SettingRange(std::string_view key) {
  for (const Bound& bound : kBounds) {
    if (bound.key == key) return bound.bounds;
  }
  return std::nullopt;
}

Status ValidateConfig(const Config& c) {
  std::string host;
  uint16_t port = 0;
  auto bad = [](std::string_view key, std::string_view why) {
    return Status::InvalidArgument(fmt::format("{}: {}", key, why));
  };
  if (Status s = ParseListen(c.listen, &host, &port); !s.ok()) {
    return bad("server.listen", s.message());
  }
  CATCHALL_RETURN_IF_ERROR(ValidateBrokers(c.brokers));
  CATCHALL_RETURN_IF_ERROR(CheckGuardedProperties(c));
  for (const Bound& bound : kBounds) {
    if (std::optional<std::string> why = OutOfBounds(c, bound)) return bad(bound.key, *why);
  }
  for (const auto& [key, topic] : {std::pair{"kafka.events_topic", &c.events_topic},
                                   std::pair{"kafka.status_topic", &c.status_topic},
                                   std::pair{"kafka.ids_topic", &c.ids_topic},
                                   std::pair{"kafka.dead_letter_topic", &c.dead_letter_topic}}) {
    CATCHALL_RETURN_IF_ERROR(ValidateTopicName(key, *topic));
  }
  // Empty, every role with a store failed only at its start, with
  // "cannot create data directory ''" (a black-box probe).
  if (c.data_dir.empty()) {
    return bad("storage.data_dir", "must not be empty (the current directory is '.')");
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    // One without the other would silently serve plain HTTP.
    return c.tls_cert_file.empty()
               ? bad("server.tls_cert_file",
                     "must be set together with server.tls_key_file (TLS needs both)")
               : bad("server.tls_key_file",
                     "must be set together with server.tls_cert_file (TLS needs both)");
  }
  if (c.max_inflight_body_bytes != 0 && c.max_inflight_body_bytes < c.max_body_bytes) {
    return bad("server.max_inflight_body_bytes",
               "must be 0 (no limit) or at least server.max_body_bytes (" +
                   std::to_string(c.max_body_bytes) + "): a largest request must fit");
  }
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  bool level_ok = false;
  for (const char* l : kLevels) level_ok |= (c.log_level == l);
  if (!level_ok) return bad("logging.level", "must be trace, debug, info, warn or error");
  return Status::Ok();
}

// The source LoadConfig names when no file is given.
constexpr std::string_view kNoConfigFile = "(no file)";

Result<Config> LoadConfig(const std::string& file, const ConfigOverrides& overrides) {
  if (file.empty()) return LoadConfigText({}, kNoConfigFile, overrides);
  std::ifstream in(file, std::ios::binary);
  if (!in.is_open()) {
    return Status::InvalidArgument(fmt::format("config file {} cannot be opened", file));
  }
  std::stringstream text;
  text << in.rdbuf();
  return LoadConfigText(text.str(), file, overrides);
}

namespace {

// A refusal of the merged configuration ("server.listen: ..."), saying
// where the value came from: the last of file < environment < flags that
// set it (`file_lines`: the file's keys and their lines); unchanged for a
// flag's value or a default. With three layers an operator had to guess
// (a probe).
Status WithOrigin(const Status& refusal, std::string_view file,
                  const std::map<std::string, size_t>& file_lines, const ConfigOverrides& flags) {
  std::string_view message = refusal.message();
  // The key the refusal starts with ("log.partitions: ..."): a setting's,
  // or a pass-through property's (kafka.producer.acks).
  const std::string key(message.substr(0, message.find(':')));
  const Setting* setting = FindSetting(key);
  if (key.size() == message.size() || (setting == nullptr && PassThroughOf(key) == nullptr)) {
    return refusal;
  }
  const bool flagged =
      std::any_of(flags.begin(), flags.end(), [&](const auto& flag) { return flag.first == key; });
  if (flagged) return refusal;  // a flag's: as given
  const std::string env = setting != nullptr ? setting->env : EnvName(key);
  // Read once at start, before any thread exists.
  if (std::getenv(env.c_str()) != nullptr) {  // NOLINT(concurrency-mt-unsafe)
    return Status::InvalidArgument(fmt::format("environment variable {}: {}", env, message));
  }
  if (auto line = file_lines.find(key); line != file_lines.end()) {
    return Status::InvalidArgument(
        fmt::format("config file {} line {}: {}", file, line->second, message));
  }
  return refusal;
}

}  // namespace

Result<Config> LoadConfigText(std::string_view text, std::string_view source,
                              const ConfigOverrides& overrides) {
  Config config;
  std::map<std::string, size_t> file_lines;
  CATCHALL_RETURN_IF_ERROR(ApplyToml(text, source, &config, &file_lines));
  for (const Setting& s : AllSettings()) {
    // Read once at start, before any thread exists.
    if (const char* v = std::getenv(s.env.c_str())) {  // NOLINT(concurrency-mt-unsafe)
      Status st = s.set(config, v);
      if (!st.ok()) {
        return Status::InvalidArgument(
            fmt::format("environment variable {}: {}", s.env, st.message()));
      }
    }
  }
  // CATCHALL_KAFKA_CLIENT_SECURITY_PROTOCOL=SASL_SSL sets
  // kafka.client.security.protocol (librdkafka's names use dots only).
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = entry.substr(0, eq);
    const PassThrough* p = PassThroughOfVariable(name);
    if (p == nullptr) continue;
    std::string property;
    for (char c : name.substr(EnvName(p->prefix).size())) {
      property.push_back(c == '_' ? '.' : static_cast<char>(std::tolower(c)));
    }
    SetPassThrough(config, std::string(p->prefix) + property, entry.substr(eq + 1));
  }
  // A variable in a section's namespace (CATCHALL_SERVER_...) that is no
  // setting is most likely a misspelt one. Others (CATCHALL_BIN,
  // CATCHALL_TEST_BROKERS: the project's scripts') are not catchall's.
  std::vector<std::string> sections;
  for (const Setting& s : AllSettings()) {
    std::string section = EnvName(s.key.substr(0, s.key.find('.') + 1));  // CATCHALL_SERVER_
    if (std::find(sections.begin(), sections.end(), section) == sections.end()) {
      sections.push_back(section);
    }
  }
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    std::string_view name = entry.substr(0, entry.find('='));
    bool in_a_section = false;
    for (const std::string& section : sections) in_a_section |= (name.rfind(section, 0) == 0);
    if (!in_a_section) continue;
    // CATCHALL_KAFKA_CLIENT_ alone names no property.
    bool known = PassThroughOfVariable(name) != nullptr;
    for (const Setting& s : AllSettings()) known |= (name == s.env);
    if (!known) {
      config.warnings.push_back(fmt::format(
          "environment variable {} names no setting and is ignored (`catchall config --list` "
          "lists them)",
          name));
    }
  }
  for (const auto& [key, value] : overrides) {
    CATCHALL_RETURN_IF_ERROR(ApplySetting(config, key, value));
  }
  if (Status s = ValidateConfig(config); !s.ok()) {
    return WithOrigin(s, source, file_lines, overrides);
  }
  return config;
}

std::vector<std::string> ClusterOnlySettings(const Config& config) {
  static const Config kDefaults;
  std::vector<std::string> keys;
  for (const Setting& s : AllSettings()) {
    // Kafka's settings, and those whose help says they are for cluster mode
    // (what `catchall config --list` shows).
    bool cluster_only = s.key.rfind("kafka.", 0) == 0 || s.help.rfind("cluster mode:", 0) == 0;
    if (cluster_only && s.get(config) != s.get(kDefaults)) keys.push_back(s.key);
  }
  for (const PassThrough& p : kPassThroughs) {
    for (const auto& [name, value] : config.*p.field) keys.push_back(std::string(p.prefix) + name);
  }
  return keys;
}

std::string DumpConfig(const Config& config) {
  std::ostringstream out;
  std::string section;
  for (const Setting& s : AllSettings()) {
    size_t dot = s.key.find('.');
    std::string sec = s.key.substr(0, dot);
    if (sec != section) {
      out << (section.empty() ? "" : "\n") << "[" << sec << "]\n";
      section = sec;
    }
    std::string value = s.get(config);
    bool quoted = s.key.find("listen") != std::string::npos || !IsTomlInteger(value);
    if (value == "true" || value == "false") quoted = false;
    out << "# " << s.help << " (env " << s.env << ")\n";
    // Unset, the count is the data dir's; read back, this line would set it.
    if (s.key == "log.partitions" && !config.partitions_given) out << "# (unset) ";
    out << s.key.substr(dot + 1) << " = " << (quoted ? TomlString(value) : value) << "\n";
  }
  for (const PassThrough& p : kPassThroughs) {
    const auto& properties = config.*p.field;
    if (properties.empty()) continue;
    out << "\n[" << p.prefix.substr(0, p.prefix.size() - 1) << "]\n";
    for (const auto& [name, value] : properties) {
      if (IsSecretProperty(name)) {
        out << "# " << TomlString(name) << " = (a secret, not shown: set it where this is used)\n";
      } else {
        out << TomlString(name) << " = " << TomlString(value) << "\n";
      }
    }
  }
  return out.str();
}

Config WithoutSecrets(Config config) {
  for (const PassThrough& p : kPassThroughs) {
    std::erase_if(config.*p.field,
                  [](const auto& property) { return IsSecretProperty(property.first); });
  }
  return config;
}

bool IsSecretProperty(std::string_view name) {
  // sasl.oauthbearer.config holds the unsecured JWT's principal and
  // extensions, which librdkafka itself treats as sensitive.
  for (std::string_view word :
       {"password", "secret", "key", "token", "jaas", "credential", "oauthbearer.config"}) {
    if (name.find(word) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace catchall
