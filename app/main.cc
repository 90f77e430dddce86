// The catchall binary: parse the command line, build the node, run it.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "cluster_nodes.h"
#include "embedded_node.h"
#include "engine/api_keys.h"
#include "engine/config.h"
#include "engine/runtime.h"
#include "node_common.h"

namespace {

// The exit code of a command line that cannot be run as given (an unknown
// command or flag, a flag's value out of its range): 2, as by convention.
// A configuration refused or a failure while running exits 1.
constexpr int kUsageError = 2;

// How long after server.shutdown_timeout_ms a shutdown may still take
// before the process exits without it (ExitOnASecondTerminationSignal):
// an aggregator's last commits may each wait several Kafka timeouts with
// brokers slow (a review), so it grows with kafka.timeout_ms.
std::chrono::milliseconds ShutdownGrace(const catchall::Config& config) {
  return std::max<std::chrono::milliseconds>(
      std::chrono::seconds(60), std::chrono::milliseconds(config.kafka_timeout_ms) * 25);
}

using catchall::Config;
using catchall::ConfigOverrides;

// Flags shared by the commands that load a configuration.
// A flag that was not given is empty: a given one always wins over the file
// and the environment, whatever its value (`--threshold 0` included).
struct CommonFlags {
  std::string config_file;
  std::optional<std::string> listen;
  std::optional<std::string> data_dir;
  std::optional<std::string> brokers;
  std::optional<std::string> log_level;
  std::string port_file;
  std::optional<int> partitions;
  // As given, once it is a whole number: the setting's own parser says
  // when it is too large (CLI11 would wrap `-5` into 2^64-5 for an
  // unsigned option).
  std::optional<std::string> threshold;
  std::vector<std::string> sets;
  // Whether the command uses --partitions and --threshold (AddCommonFlags).
  bool uses_partitions = true;
  bool uses_threshold = true;
  bool uses_data_dir = true;
};

// The flags a command accepts but does not use, said on stderr.
void WarnUnusedFlags(const CommonFlags& f, std::string_view command) {
  if (f.partitions && !f.uses_partitions) {
    std::cerr << "catchall: warning: --partitions is the embedded log's (serve); " << command
              << " reads the partition count from the events topic, and `catchall topics "
                 "create --partitions N` sets it\n";
  }
  if (f.data_dir && !f.uses_data_dir) {
    std::cerr << "catchall: warning: --data-dir is not used by " << command
              << ", which keeps no state (the aggregate and query roles do)\n";
  }
  if (f.threshold && !f.uses_threshold) {
    std::cerr << "catchall: warning: --threshold is used by the aggregate and query roles; "
              << command << " does not use it\n";
  }
}

// CLI11's own checks of an integer flag say "not in range" for `abc`.
CLI::Validator WholeNumber() {
  return CLI::Validator(
      [](const std::string& value) {
        bool digits = !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
        return digits ? std::string() : "'" + value + "' is not a whole number";
      },
      "", "whole number");
}

// The range of a flag that sets `key`: the one the configuration enforces
// (catchall::SettingRange), so a flag and --set refuse the same values.
CLI::Range RangeOf(std::string_view key) {
  // value(): a key without a range is a bug every CLI test meets at once.
  catchall::SettingBounds range = catchall::SettingRange(key).value();
  return CLI::Range(range.min, range.max);
}

// Which of the optional common flags a command uses.
enum CommonFlag : unsigned {
  kBrokers = 1U << 0,     // kafka.brokers
  kPartitions = 1U << 1,  // log.partitions: the embedded log's
  kThreshold = 1U << 2,   // aggregate.catchall_threshold
  kDataDir = 1U << 3,     // storage.data_dir
};

void AddCommonFlags(CLI::App* cmd, CommonFlags* f, unsigned used) {
  const bool with_brokers = (used & kBrokers) != 0;
  cmd->add_option("-c,--config", f->config_file, "TOML configuration file (see configs/)")
      ->check(CLI::ExistingFile);
  cmd->add_option("-l,--listen", f->listen, "HOST:PORT to serve HTTP on [0.0.0.0:8080]");
  // Listed by every role, as the command-line contract lists it; a role
  // without state says it does not use it (and warns when given it).
  cmd->add_option("-d,--data-dir", f->data_dir,
                  (used & kPartitions) != 0 ? "directory for the log and state [catchall-data]"
                  : (used & kDataDir) != 0  ? "directory for the state [catchall-data]"
                                           : "not used: this role keeps no state (accepted, with a "
                                             "warning, for a uniform command line)");
  if (with_brokers) {
    cmd->add_option("-b,--brokers", f->brokers, "Kafka bootstrap brokers HOST:PORT,...");
  }
  // A command that does not use one of these still accepts it, hidden from
  // its --help, and warns (RunRole): scripts that passed them keep working.
  CLI::Option* partitions = cmd->add_option("--partitions", f->partitions,
                                            "partitions of a new data dir's embedded log [1]")
                                ->check(WholeNumber())
                                ->check(RangeOf("log.partitions"));
  if ((used & kPartitions) == 0) partitions->group("");
  // A usage error (exit 2) when not a whole number, as --partitions; one
  // too large for the setting is refused by its parser (exit 1).
  CLI::Option* threshold =
      cmd->add_option("--threshold", f->threshold,
                      "deliveries above which a never-bounced domain is catch-all [1000]")
          ->check(WholeNumber())
          ->type_name("UINT");
  if ((used & kThreshold) == 0) threshold->group("");
  f->uses_data_dir = (used & kDataDir) != 0;
  f->uses_partitions = (used & kPartitions) != 0;
  f->uses_threshold = (used & kThreshold) != 0;
  cmd->add_option("--log-level", f->log_level, "trace, debug, info, warn, error [info]");
  cmd->add_option("--port-file", f->port_file,
                  "write the bound port here once listening (useful with --listen HOST:0)");
  cmd->add_option("--set", f->sets,
                  "KEY=VALUE for any setting (repeatable); `catchall config --list` lists them");
  cmd->footer(
      "Settings come from defaults, then --config, then CATCHALL_* environment variables, "
      "then flags.");
}

// What a --set argument without '=' looked like, naming only a setting
// (its key): the rest may be a secret written with the wrong separator
// ("kafka.client.sasl.password:..."), or a token passed without its key.
std::string DescribeBadSetting(std::string_view kv) {
  auto known = [](std::string_view key) {
    for (const catchall::Setting& s : catchall::AllSettings()) {
      if (s.key == key) return true;
    }
    for (std::string_view prefix : {"kafka.client.", "kafka.producer.", "kafka.consumer."}) {
      if (key.size() > prefix.size() && key.starts_with(prefix)) return true;
    }
    return false;
  };
  auto key_char = [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '_';
  };
  size_t key_end = 0;
  while (key_end < kv.size() && key_char(kv[key_end])) ++key_end;
  std::string_view key = kv.substr(0, key_end);
  if (known(key)) {
    if (key_end == kv.size()) return fmt::format("'{}' with no value", key);
    return fmt::format("'{}' followed by '{}' (the rest is not shown: it may be a secret)", key,
                       kv[key_end]);
  }
  return fmt::format("an argument of {} characters with no '=' (not shown: it may be a secret)",
                     kv.size());
}

catchall::Result<Config> BuildConfig(const CommonFlags& f) {
  ConfigOverrides o;
  for (const std::string& kv : f.sets) {
    size_t eq = kv.find('=');
    if (eq == 0) {
      return catchall::Status::InvalidArgument("--set expects KEY=VALUE, got no KEY before '='");
    }
    if (eq == std::string::npos) {
      return catchall::Status::InvalidArgument("--set expects KEY=VALUE, got " +
                                               DescribeBadSetting(kv));
    }
    o.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  if (f.listen) o.emplace_back("server.listen", *f.listen);
  if (f.data_dir) o.emplace_back("storage.data_dir", *f.data_dir);
  if (f.brokers) o.emplace_back("kafka.brokers", *f.brokers);
  if (f.log_level) o.emplace_back("logging.level", *f.log_level);
  if (f.partitions) o.emplace_back("log.partitions", std::to_string(*f.partitions));
  if (f.threshold) o.emplace_back("aggregate.catchall_threshold", *f.threshold);
  auto config = catchall::LoadConfig(f.config_file, o);
  // To stderr, before logging is set up (and out of `catchall config`'s
  // stdout, which may be a file).
  if (config.ok()) {
    for (const std::string& w : config->warnings) std::cerr << "catchall: warning: " << w << "\n";
  }
  return config;
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "catchall: %s\n", what.c_str());
  return 1;
}

// Runs a node until SIGTERM/SIGINT; SIGHUP reloads it.
int RunNode(catchall::Node& node, const std::string& port_file, const Config& config) {
  catchall::Status s = node.Start(port_file);
  if (!s.ok()) {
    node.Shutdown();
    return Fail(s.message());
  }
  std::string signal = catchall::WaitForTerminationSignal([&node] { node.Reload(); });
  spdlog::info("{} received: finishing work in flight (send it again to exit at once)", signal);
  // The shutdown's own bound is the requests' (server.shutdown_timeout_ms);
  // committing, closing the clients and flushing the store come after it.
  catchall::ExitOnASecondTerminationSignal(std::chrono::milliseconds(config.shutdown_timeout_ms) +
                                           ShutdownGrace(config));
  node.Shutdown();
  spdlog::info("stopped cleanly");
  return 0;
}

template <typename NodeType>
int RunRole(const CommonFlags& flags, std::string_view command) {
  // First, before the node starts any thread: a SIGHUP (a `systemctl
  // reload`) while the config was read killed the process (a probe sent
  // one 5 ms after the start); blocked, it waits for the reload loop.
  catchall::BlockTerminationSignals();
  WarnUnusedFlags(flags, command);
  auto config = BuildConfig(flags);
  if (!config.ok()) return Fail(config.status().message());
  catchall::SetupLogging(config->log_level);
  catchall::RaiseOpenFileLimit(*config);
  NodeType node(*config);
  return RunNode(node, flags.port_file, *config);
}

int RunTopics(const CommonFlags& flags, bool create, int partitions, int replication) {
  auto config = BuildConfig(flags);
  if (!config.ok()) return Fail(config.status().message());
  catchall::SetupLogging("warn");
  catchall::Status s = catchall::RunTopicsCommand(*config, create, partitions, replication);
  if (!s.ok()) return Fail(s.message());
  return 0;
}

int RunServe(const CommonFlags& flags) {
  // First, as in RunRole: a SIGHUP while the config is read must not kill
  // the process.
  catchall::BlockTerminationSignals();
  auto config = BuildConfig(flags);
  if (!config.ok()) return Fail(config.status().message());
  catchall::SetupLogging(config->log_level);
  if (!config->brokers.empty()) {
    return Fail(
        "serve is the embedded all-in-one and does not use Kafka; remove kafka.brokers, or run "
        "the cluster roles (catchall ingest|aggregate|query --brokers ...)");
  }
  for (const std::string& key : catchall::ClusterOnlySettings(*config)) {
    std::cerr << "catchall: warning: " << key
              << " is for the cluster roles (Kafka); serve does not use it\n";
  }
  catchall::RaiseOpenFileLimit(*config);
  catchall::EmbeddedNode node(*config);
  return RunNode(node, flags.port_file, *config);
}

// What `config --list` prints after a setting's default: the values
// loading accepts, when it bounds them.
std::string RangeText(const catchall::SettingBounds& range) {
  if (range.max == std::numeric_limits<uint64_t>::max()) {
    return fmt::format(", at least {}", range.min);
  }
  if (range.min == 0) return fmt::format(", at most {}", range.max);
  return fmt::format(", range {}..{}", range.min, range.max);
}

int RunConfig(const CommonFlags& flags, bool list) {
  if (list) {
    const catchall::Config defaults;
    for (const auto& s : catchall::AllSettings()) {
      std::string value = s.get(defaults);
      std::cout << s.key << "  (" << s.env << ")  default: " << (value.empty() ? "(none)" : value);
      if (std::optional<catchall::SettingBounds> range = catchall::SettingRange(s.key)) {
        std::cout << RangeText(*range);
      }
      std::cout << "\n    " << s.help << "\n";
    }
    // librdkafka properties, passed through (engine/config.h).
    const struct {
      const char* key;
      const char* env;
      const char* clients;
    } pass_through[] = {
        {"kafka.client", "CATCHALL_KAFKA_CLIENT", "every Kafka client"},
        {"kafka.producer", "CATCHALL_KAFKA_PRODUCER", "Kafka producers"},
        {"kafka.consumer", "CATCHALL_KAFKA_CONSUMER", "Kafka consumers and readers"},
    };
    for (const auto& p : pass_through) {
      std::cout << p.key << ".<property>  (" << p.env << "_<PROPERTY>, dots as underscores)\n"
                << "    any librdkafka property for " << p.clients << ", e.g. --set " << p.key
                << ".security.protocol=SASL_SSL; secret values are never printed\n";
    }
    return 0;
  }
  auto config = BuildConfig(flags);
  if (!config.ok()) return Fail(config.status().message());
  std::cout << catchall::DumpConfig(*config);
  return 0;
}

// `catchall keys hash`: the key-file line of the key read on stdin (one
// line; its newline is not part of the key), so that the key itself never
// has to appear on a command line or in a file.
int RunKeysHash(const std::string& scopes) {
  std::string key;
  std::getline(std::cin, key);
  if (!key.empty() && key.back() == '\r') key.pop_back();
  // One key per run: a second line was dropped without a word (a probe).
  // Piped input is read to its end; a key typed at a terminal ends with
  // its line, not with Ctrl-D.
  std::string rest;
  while (isatty(STDIN_FILENO) == 0 && std::getline(std::cin, rest)) {
    if (rest.find_first_not_of(" \t\r") != std::string::npos) {
      return Fail(
          "stdin holds more than one line: give one key per run (its hash is one line "
          "of the key file)");
    }
  }
  std::string_view token;
  std::string_view why;
  const std::string header = "Bearer " + key;
  if (catchall::ParseBearer(header, &token, &why) != catchall::AuthOutcome::kAllowed) {
    return Fail(key.empty() ? std::string("no key on stdin") : std::string(why));
  }
  // The header parser trims spaces around the key; a key with them could
  // never be sent, so its hash would match nothing.
  if (token != key) return Fail("the key has spaces around it");
  // Checked as a key-file line, whose errors talk about the line's format.
  if (scopes.find_first_not_of(" \t,") == std::string::npos) {
    return Fail("--scopes is empty: give one or more of ingest, query, metrics, comma-separated");
  }
  std::string line = catchall::Sha256Hex(key) + " " + scopes;
  catchall::ApiKeys check;
  catchall::Status s = check.Add(line, "--scopes");
  if (!s.ok()) {
    // Add names the key file's line; these scopes came from a flag.
    std::string why(s.message());
    constexpr std::string_view kLine = "--scopes line 1: ";
    if (why.starts_with(kLine)) why = "--scopes: " + why.substr(kLine.size());
    return Fail(why);
  }
  std::cout << line << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Signals are blocked only by the commands that run a node (for the
  // thread that waits for them): blocked here, Ctrl-C did nothing to
  // `keys hash` waiting on stdin or to `topics` waiting on a broker (a
  // review, thirteenth session). A client that disconnects mid-write must
  // not kill the process, whatever the command.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "catchall counts email delivery events per domain and tells whether a domain is "
      "catch-all.\nStart with `catchall serve` (everything in one process, no Kafka needed)."};
  app.name("catchall");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("catchall ") + CATCHALL_VERSION);

  CommonFlags serve_flags;
  CLI::App* serve = app.add_subcommand(
      "serve",
      "Embedded mode: ingest, aggregation and query in one process over a durable local log");
  AddCommonFlags(serve, &serve_flags, kPartitions | kThreshold | kDataDir);

  CommonFlags ingest_flags;
  CLI::App* ingest = app.add_subcommand(
      "ingest", "Cluster role: validate events and produce them to Kafka (stateless)");
  AddCommonFlags(ingest, &ingest_flags, kBrokers);
  CommonFlags aggregate_flags;
  CLI::App* aggregate = app.add_subcommand(
      "aggregate",
      "Cluster role: count events exactly-once into RocksDB and the compacted changelog");
  AddCommonFlags(aggregate, &aggregate_flags, kBrokers | kThreshold | kDataDir);
  CommonFlags query_flags;
  CLI::App* query = app.add_subcommand(
      "query", "Cluster role: materialize the changelog and answer GET /domains/{domain}");
  AddCommonFlags(query, &query_flags, kBrokers | kThreshold | kDataDir);

  CommonFlags topics_flags;
  CLI::App* topics = app.add_subcommand("topics", "Create or check the Kafka topics");
  topics->require_subcommand(1);
  std::optional<int> topic_partitions;
  std::optional<int> replication;
  auto add_topic_flags = [&](CLI::App* cmd) {
    cmd->add_option("-c,--config", topics_flags.config_file, "TOML configuration file")
        ->check(CLI::ExistingFile);
    cmd->add_option("-b,--brokers", topics_flags.brokers, "Kafka bootstrap brokers HOST:PORT,...");
    cmd->add_option("--partitions", topic_partitions,
                    "partitions of the events, status and ids topics (create: [those of the "
                    "existing events topic, else kafka.partitions, 12]; check: checked only "
                    "when given)")
        ->check(WholeNumber())
        ->check(RangeOf("kafka.partitions"));
    cmd->add_option("--replication-factor", replication,
                    "replication factor (create: [1]; check: checked only when given)")
        ->check(WholeNumber())
        ->check(RangeOf("kafka.replication_factor"));
    cmd->add_option("--set", topics_flags.sets, "KEY=VALUE for any setting (topic names, ...)");
  };
  CLI::App* topics_create = topics->add_subcommand(
      "create",
      "Create the events, changelog (compacted), ids (time-retained) and dead-letter topics if "
      "missing");
  add_topic_flags(topics_create);
  CLI::App* topics_check = topics->add_subcommand(
      "check",
      "Check that the topics exist with the expected partitions, cleanup policy and, when "
      "given, replication factor");
  add_topic_flags(topics_check);

  CommonFlags config_flags;
  bool list = false;
  CLI::App* config = app.add_subcommand(
      "config", "Print the effective configuration (after file, environment and flags)");
  AddCommonFlags(config, &config_flags, kBrokers | kPartitions | kThreshold | kDataDir);
  config->add_flag("--list", list, "list every setting with its environment variable");

  CLI::App* keys = app.add_subcommand("keys", "API keys (auth.keys_file)");
  keys->require_subcommand(1);
  std::string key_scopes = "ingest";
  CLI::App* keys_hash = keys->add_subcommand(
      "hash", "Read a key on stdin and print its auth.keys_file line (its SHA-256 and scopes)");
  keys_hash->add_option("--scopes", key_scopes, "comma-separated: ingest, query, metrics [ingest]");

  if (argc < 2) {
    // No command: show what there is rather than only that one is needed.
    std::cerr << app.help();
    return kUsageError;
  }
  std::string names;
  bool known = false;
  const auto& all = std::as_const(app).get_subcommands(std::function<bool(const CLI::App*)>());
  for (const CLI::App* sub : all) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
    known |= sub->get_name() == argv[1];
  }
  if (argv[1][0] != '-' && !known) {
    // CLI11 would say only "A subcommand is required".
    std::cerr << "catchall: unknown command '" << argv[1] << "'; the commands are " << names
              << " (catchall --help)\n";
    return kUsageError;
  }
  // The same for a command that needs one of its own (topics, keys).
  for (const CLI::App* sub : all) {
    const auto& subs = sub->get_subcommands(std::function<bool(const CLI::App*)>());
    if (sub->get_name() != argv[1] || subs.empty()) continue;
    std::string own;
    bool given = false;
    for (const CLI::App* s : subs) {
      own += (own.empty() ? "" : ", ") + s->get_name();
      given |= argc > 2 && s->get_name() == argv[2];
    }
    if (!given && (argc < 3 || argv[2][0] != '-')) {
      std::cerr << "catchall " << argv[1] << ": "
                << (argc < 3 ? std::string("a command is needed")
                             : "unknown command '" + std::string(argv[2]) + "'")
                << "; the commands are " << own << " (catchall " << argv[1] << " --help)\n";
      return kUsageError;
    }
  }
  // A command line that does not parse exits 2, as usage errors do by
  // convention (CLI11's own codes, 105 for a value out of range and 109
  // for an unknown flag, told scripts nothing and differed from the 1 of
  // the same value refused by the config: a black-box probe). --help and
  // --version exit 0.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kUsageError;
  }
  if (serve->parsed()) return RunServe(serve_flags);
  if (ingest->parsed()) return RunRole<catchall::IngestNode>(ingest_flags, "ingest");
  if (aggregate->parsed()) return RunRole<catchall::AggregatorNode>(aggregate_flags, "aggregate");
  if (query->parsed()) return RunRole<catchall::QueryNode>(query_flags, "query");
  if (topics->parsed()) {
    if (topic_partitions) {
      topics_flags.sets.push_back("kafka.partitions=" + std::to_string(*topic_partitions));
    }
    if (replication) {
      topics_flags.sets.push_back("kafka.replication_factor=" + std::to_string(*replication));
    }
    return RunTopics(topics_flags, topics_create->parsed(), topic_partitions.value_or(0),
                     replication.value_or(0));
  }
  if (config->parsed()) return RunConfig(config_flags, list);
  if (keys_hash->parsed()) return RunKeysHash(key_scopes);
  return 1;
}
