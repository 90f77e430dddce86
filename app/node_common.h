// Pieces every catchall process assembles the same way.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/disk_monitor.h"
#include "engine/env.h"
#include "engine/http.h"
#include "engine/http_server.h"
#include "engine/kafka.h"
#include "engine/kv_store.h"
#include "engine/metrics.h"

namespace catchall {

// Opens the store under config.data_dir through `env`, with a clear
// message when another process holds it. `write_ahead_log`: see
// KvStoreOptions.
Status OpenStore(Env* env, const Config& config, std::vector<ColumnSpec> columns,
                 std::unique_ptr<KvStore>* store, bool write_ahead_log = true);

// Binds the store under config.data_dir to `topics` (a line that names the
// topics its state is built from, e.g. "events=E changelog=C ids=I") in
// `column`: the first open records it, later opens compare. The state is a
// cache of those topics (counters, ids, the offsets read), so a node given
// other topics over it would add their counts to it and publish the sum;
// that is refused (FailedPrecondition, saying what to do).
Status BindStoreToTopics(KvStore* store, std::string_view column, const Config& config,
                         const std::string& topics);

// Makes the HTTP server for config.listen and binds it (TLS files loaded),
// serving nothing yet.
Status BindHttp(const Config& config, const HttpRouter* router, Metrics* metrics,
                std::unique_ptr<HttpServer>* server);
// Starts serving, then writes `port_file` if set.
Status ServeHttp(HttpServer* server, const std::string& port_file);

// Kafka client options for `role` from the configuration.
KafkaOptions KafkaOptionsFor(const Config& config, const std::string& role);

// The topics of the product with their expected layout.
std::vector<TopicSpec> ProductTopics(const Config& config, int32_t partitions);

// Watches the free space of config.data_dir (storage.min_free_mb), sampled
// on a thread of its own. Open the store first: the dir must exist.
std::unique_ptr<DiskMonitor> WatchDisk(Env* env, const Config& config, Metrics* metrics);

// Flushes `store` on a clean shutdown (a faster next start), unless `disk`
// (may be null) finds the data dir's disk low or with less than
// `room_bytes` free (what the flush writes: one write buffer), whatever
// storage.min_free_mb says. There a flush may fail, and after a failed
// write-ahead-log write Debian's RocksDB 7.8 aborts on the sync that
// follows (a probe saw `sync_without_flush_called_` on SIGTERM with a full
// disk and the threshold off). Nothing needs the flush: what was
// acknowledged is in a write-ahead log or in Kafka, and the next start
// recovers it as after kill -9.
void FlushStoreOnShutdown(KvStore* store, DiskMonitor* disk, uint64_t room_bytes);

// Raises the soft limit on open files to the hard one, as the JVM and Go's
// runtime do at start: every connection and each of RocksDB's table files
// takes a descriptor, and services start with a soft limit of 1024 (systemd)
// against server.max_connections of 10,000. Warns when even the hard limit
// leaves no room for server.max_connections (see ConnectionLimit).
void RaiseOpenFileLimit(const Config& config);

// server.max_connections, or fewer when the open-file limit leaves room for
// fewer beside the store and Kafka (~1,024 descriptors kept for them, half
// the limit when it is below 2,048): the server answers connections past it
// 503 too_many_connections instead of running out of descriptors.
uint64_t ConnectionLimit(const Config& config);

// kafka.instance_id, or "<hostname>-<port>" when unset.
std::string InstanceId(const Config& config);

}  // namespace catchall
