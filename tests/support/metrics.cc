#include "support/metrics.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

namespace catchall::testing {
namespace {

bool Contains(const Labels& have, const Labels& want) {
  for (const auto& [k, v] : want) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) return false;
  }
  return true;
}

// Parses `{a="x",b="y"}` starting at text[*pos] == '{'; advances *pos past '}'.
bool ParseLabels(std::string_view text, size_t* pos, Labels* labels) {
  size_t i = *pos + 1;
  while (i < text.size() && text[i] != '}') {
    size_t eq = text.find('=', i);
    if (eq == std::string_view::npos || eq + 1 >= text.size() || text[eq + 1] != '"') return false;
    std::string key(text.substr(i, eq - i));
    std::string value;
    size_t j = eq + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\' && j + 1 < text.size()) {
        ++j;
        value.push_back(text[j] == 'n' ? '\n' : text[j]);
      } else {
        value.push_back(text[j]);
      }
    }
    if (j >= text.size()) return false;
    (*labels)[key] = value;
    i = j + 1;
    if (i < text.size() && text[i] == ',') ++i;
  }
  if (i >= text.size()) return false;
  *pos = i + 1;
  return true;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Exposition::Exposition(std::string_view text) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    if (line[0] == '#') {
      // "# TYPE name type"
      if (line.substr(0, 7) == "# TYPE ") {
        std::string_view rest = line.substr(7);
        size_t sp = rest.find(' ');
        if (sp != std::string_view::npos) {
          types_[std::string(rest.substr(0, sp))] = std::string(rest.substr(sp + 1));
        }
      }
      continue;
    }
    Sample s;
    size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string_view::npos) {
      ADD_FAILURE() << "unparsable /metrics line: " << line;
      continue;
    }
    s.name = std::string(line.substr(0, name_end));
    size_t pos = name_end;
    if (line[pos] == '{' && !ParseLabels(line, &pos, &s.labels)) {
      ADD_FAILURE() << "unparsable labels in /metrics line: " << line;
      continue;
    }
    std::string value(line.substr(pos));
    size_t first = value.find_first_not_of(' ');
    value = first == std::string::npos ? "" : value.substr(first);
    value = value.substr(0, value.find(' '));  // drop an optional timestamp
    char* parse_end = nullptr;
    s.value = std::strtod(value.c_str(), &parse_end);
    if (value.empty() || parse_end != value.c_str() + value.size()) {
      ADD_FAILURE() << "unparsable value in /metrics line: " << line;
      continue;
    }
    samples_.push_back(std::move(s));
  }
}

double Exposition::Sum(const std::string& name, const Labels& labels) const {
  double sum = 0;
  for (const Sample& s : samples_) {
    if (s.name == name && Contains(s.labels, labels)) sum += s.value;
  }
  return sum;
}

bool Exposition::Has(const std::string& family) const {
  if (types_.count(family)) return true;
  for (const Sample& s : samples_) {
    if (MetricFamily(s.name) == family) return true;
  }
  return false;
}

std::string Exposition::Type(const std::string& family) const {
  auto it = types_.find(family);
  return it == types_.end() ? std::string() : it->second;
}

std::set<std::string> Exposition::Families() const {
  std::set<std::string> out;
  for (const auto& [family, type] : types_) out.insert(family);
  return out;
}

std::set<std::string> Exposition::LabelValues(const std::string& name,
                                              const std::string& label) const {
  std::set<std::string> values;
  for (const Sample& s : samples_) {
    if (s.name != name) continue;
    auto it = s.labels.find(label);
    if (it != s.labels.end()) values.insert(it->second);
  }
  return values;
}

std::string Exposition::Describe(const std::string& name) const {
  std::string out;
  for (const Sample& s : samples_) {
    if (MetricFamily(s.name) != MetricFamily(name)) continue;
    out += "  " + s.name + "{";
    for (const auto& [k, v] : s.labels) out.append(k).append("=\"").append(v).append("\",");
    out += "} " + std::to_string(s.value) + "\n";
  }
  return out.empty() ? "  (no samples)\n" : out;
}

std::string MetricFamily(std::string_view name) {
  for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      return std::string(name.substr(0, name.size() - suffix.size()));
    }
  }
  return std::string(name);
}

std::vector<std::string> MetricContractFiles() {
  return {"docker/prometheus-alerts.yml", "docker/grafana/dashboards/catchall.json",
          "docs/operations.md", "docs/api.md"};
}

std::map<std::string, std::set<std::string>> DocumentedMetricFamilies() {
  // A metric name is not part of a longer identifier: "aggregate.catchall_threshold"
  // is a setting, not a metric.
  static const std::regex kMetric("(^|[^A-Za-z0-9_.])(catchall_[a-z0-9_]+)");
  std::map<std::string, std::set<std::string>> families;
  for (const std::string& file : MetricContractFiles()) {
    std::string text = ReadFile(std::string(CATCHALL_SOURCE_DIR) + "/" + file);
    EXPECT_FALSE(text.empty()) << "cannot read " << file;
    for (std::sregex_iterator it(text.begin(), text.end(), kMetric), end; it != end; ++it) {
      families[MetricFamily((*it)[2].str())].insert(file);
    }
  }
  return families;
}

std::map<std::string, MetricsTableRow> OperationsMetricsTable() {
  std::string text = ReadFile(std::string(CATCHALL_SOURCE_DIR) + "/docs/operations.md");
  size_t start = text.find("\n## Metrics\n");
  EXPECT_NE(start, std::string::npos) << "docs/operations.md has no \"## Metrics\" section";
  if (start == std::string::npos) return {};
  size_t end = text.find("\n## ", start + 1);
  std::istringstream section(text.substr(start, end - start));
  // | `family` | type | labels | roles | meaning |
  static const std::regex kRow(R"(^\| `(catchall_[a-z0-9_]+)` \| (\w+) \|[^|]*\| ([^|]+) \|)");
  static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary"};
  static const std::set<std::string> kRoles = {"serve", "ingest", "aggregate", "query", "all"};
  std::map<std::string, MetricsTableRow> rows;
  size_t table_rows = 0;
  for (std::string line; std::getline(section, line);) {
    // Every row of the table but its header and separator must parse: a
    // row the pattern missed would otherwise check nothing, silently.
    if (line.rfind("| `", 0) != 0) continue;
    ++table_rows;
    std::smatch m;
    if (!std::regex_search(line, m, kRow)) {
      ADD_FAILURE() << "docs/operations.md's Metrics table: a row that does not read as "
                       "| `family` | type | labels | roles | meaning |: "
                    << line;
      continue;
    }
    MetricsTableRow row;
    row.type = m[2].str();
    EXPECT_TRUE(kTypes.count(row.type)) << line << ": unknown type";
    std::istringstream roles(m[3].str());
    for (std::string role; std::getline(roles, role, ',');) {
      role.erase(0, role.find_first_not_of(' '));
      role.erase(role.find_last_not_of(' ') + 1);
      EXPECT_TRUE(kRoles.count(role)) << line << ": unknown role '" << role << "'";
      if (role == "all") {
        row.roles.insert({"serve", "ingest", "aggregate", "query"});
      } else {
        row.roles.insert(role);
      }
    }
    EXPECT_TRUE(rows.emplace(m[1].str(), row).second) << m[1].str() << " has two rows";
  }
  EXPECT_GE(table_rows, 40U) << "the Metrics table of docs/operations.md could not be read";
  return rows;
}

void ExpectMatchesMetricsTable(const Exposition& exposition, const std::string& role,
                               const std::set<std::string>& lazy) {
  const auto table = OperationsMetricsTable();
  for (const std::string& family : exposition.Families()) {
    if (family.rfind("catchall_", 0) != 0) continue;
    auto row = table.find(family);
    if (row == table.end()) {
      ADD_FAILURE() << family << " is exported by the " << role
                    << " role but docs/operations.md's Metrics table has no row for it";
      continue;
    }
    EXPECT_EQ(exposition.Type(family), row->second.type)
        << family << ": the type in docs/operations.md's Metrics table";
    EXPECT_TRUE(row->second.roles.count(role))
        << family << " is exported by the " << role
        << " role, which its row in docs/operations.md's Metrics table does not list";
  }
  for (const auto& [family, row] : table) {
    if (!row.roles.count(role) || lazy.count(family)) continue;
    EXPECT_TRUE(exposition.Has(family))
        << family << ": docs/operations.md's Metrics table lists the " << role
        << " role, which does not export it";
  }
}

const std::set<std::string>& ClusterOnlyMetricFamilies() {
  static const std::set<std::string> kFamilies = {
      "catchall_aggregate_owned_partitions",
      "catchall_aggregate_partitions_not_taken",
      "catchall_aggregate_restoring_partitions",
      "catchall_aggregate_restored_records_total",
      "catchall_aggregate_waiting_partitions",
      "catchall_query_changelog_behind_partitions",
      "catchall_aggregate_standby_partitions",
      "catchall_aggregate_standby_behind_partitions",
      "catchall_aggregate_standby_records_total",
      "catchall_query_changelog_records_total",
      "catchall_query_domains",
      "catchall_query_unsaved_domains",
      "catchall_query_checkpoints_total",
      "catchall_query_checkpoint_seconds_total",
      "catchall_query_checkpoint_failures_total",
      "catchall_log_records_skipped_total",
  };
  return kFamilies;
}

const std::set<std::string>& EmbeddedOnlyMetricFamilies() {
  static const std::set<std::string> kFamilies = {
      "catchall_log_bytes_total",          "catchall_log_rejected_appends_total",
      "catchall_log_write_seconds",        "catchall_log_writes_total",
      "catchall_log_write_errors_total",   "catchall_log_records_total",
      "catchall_log_group_commit_records",
  };
  return kFamilies;
}

}  // namespace catchall::testing
