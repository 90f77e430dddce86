// Reading /metrics in tests: a parser for the Prometheus text exposition,
// and the list of metric families that operators rely on because the alert
// rules, the dashboard or the docs name them.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace catchall::testing {

using Labels = std::map<std::string, std::string>;

// One parsed /metrics answer (text format 0.0.4).
class Exposition {
 public:
  explicit Exposition(std::string_view text);

  // Sum of the samples called `name` (a family name, or a histogram's
  // `_count`, `_sum`, `_bucket`) whose labels include all of `labels`;
  // 0 when there is none.
  double Sum(const std::string& name, const Labels& labels = {}) const;
  // True if the exposition declares the family (# TYPE) or has a sample of it.
  bool Has(const std::string& family) const;
  // "counter", "gauge", "histogram", ... as declared; empty if undeclared.
  std::string Type(const std::string& family) const;
  // Every family the exposition declares (# TYPE).
  std::set<std::string> Families() const;
  // Every value the label `label` takes on samples called `name`.
  std::set<std::string> LabelValues(const std::string& name, const std::string& label) const;
  // The samples called `name`, printed one per line (for failure messages).
  std::string Describe(const std::string& name) const;

 private:
  struct Sample {
    std::string name;
    Labels labels;
    double value = 0;
  };
  std::vector<Sample> samples_;
  std::map<std::string, std::string> types_;
};

// The family a sample name belongs to: `x_bucket`, `x_sum` and `x_count` are
// samples of the histogram `x`.
std::string MetricFamily(std::string_view name);

// The files that name metrics operators rely on, relative to the source tree.
std::vector<std::string> MetricContractFiles();

// Every `catchall_*` metric family named in MetricContractFiles(), with the
// files that name it. Parsed from the files themselves, so a metric added to
// an alert, the dashboard or the docs is checked from then on.
std::map<std::string, std::set<std::string>> DocumentedMetricFamilies();

// A row of docs/operations.md's "Metrics" table: the family's type
// ("counter", ...) and the roles that export it ("serve", "ingest",
// "aggregate", "query"; the table's "all" is all four).
struct MetricsTableRow {
  std::string type;
  std::set<std::string> roles;
};
// The rows of that table, by family.
std::map<std::string, MetricsTableRow> OperationsMetricsTable();
// Checks that `exposition`, from a node of `role`, exports exactly the
// families the table lists for the role, each with the table's type.
// Families made per label value as they occur are listed in `lazy`: they
// need not be exported yet.
void ExpectMatchesMetricsTable(const Exposition& exposition, const std::string& role,
                               const std::set<std::string>& lazy = {});

// Families only the cluster roles export (Kafka consumer groups, the
// changelog); tests/kafka checks them. Every other documented family must be
// exported by `catchall serve` too.
const std::set<std::string>& ClusterOnlyMetricFamilies();
// Families only embedded mode exports (the local log); the Kafka tests skip
// them.
const std::set<std::string>& EmbeddedOnlyMetricFamilies();

}  // namespace catchall::testing
