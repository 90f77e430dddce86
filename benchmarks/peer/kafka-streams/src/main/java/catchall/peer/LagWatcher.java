package catchall.peer;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;

/**
 * Measures how fast a consumer group drains a pre-filled topic: reads the topic's end
 * offsets once at start, then polls the group's committed offsets (every --interval-ms)
 * until every partition's committed offset reaches its end offset. With exactly-once
 * consumers (catchall's aggregator, Kafka Streams with exactly_once_v2) the group's offsets
 * are committed in the same transaction as the outputs, so "committed" means counted and
 * published.
 *
 * <p>The start of processing ("first record") comes from the processor itself when it can
 * tell: --metrics-url (catchall: the first scrape where catchall_aggregate_records_total
 * is above 0) or --first-record-file (the Streams peer writes the epoch ms of its first
 * record). Without either, the first poll that sees a committed offset is used.
 */
final class LagWatcher {
  private LagWatcher() {}

  record Sample(long ms, long committed, long metricRecords) {}

  static int run(Args args) throws Exception {
    final String group = args.require("group");
    final String topic = args.require("topic");
    final long intervalMs = args.getLong("interval-ms", 50);
    final long timeoutMs = args.getLong("timeout-s", 1800) * 1000;
    final String metricsUrl = args.get("metrics-url", null);
    final String firstRecordFile = args.get("first-record-file", null);
    final long startedMs = args.getLong("started-ms", 0);
    final String out = args.get("out", null);
    final String label = args.get("label", group);

    try (Admin admin = AdminTools.admin(args.require("bootstrap"))) {
      TopicDescription desc = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
      List<TopicPartition> tps = new ArrayList<>();
      desc.partitions().forEach(p -> tps.add(new TopicPartition(topic, p.partition())));
      Map<TopicPartition, Long> end = offsets(admin, tps, OffsetSpec.latest());
      Map<TopicPartition, Long> begin = offsets(admin, tps, OffsetSpec.earliest());
      long total = 0;
      for (TopicPartition tp : tps) total += end.get(tp) - begin.get(tp);
      HttpClient http = metricsUrl == null ? null
          : HttpClient.newBuilder().connectTimeout(Duration.ofMillis(500)).build();
      // Warm up (class loading, connections) before announcing readiness, so the first
      // timed polls are not slowed down by it.
      if (http != null) scrapeRecords(http, metricsUrl);
      admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
      System.err.printf("watch %s: ready: topic %s, %d partitions, %d records to drain%n",
          label, topic, tps.size(), total);

      final long watchStart = System.currentTimeMillis();
      long firstRecordMs = 0, firstCommitMs = 0, doneMs = 0, lastLogMs = watchStart;
      // The time of the latest scrape that showed no record counted yet (or no server):
      // the first record was processed after it, so it is a lower bound of the start
      // (the measured drain is, if anything, longer than the real one).
      long lastIdleScrapeMs = watchStart;
      long metricRecords = -1;
      List<Sample> samples = new ArrayList<>();
      long committed = 0;
      boolean done = false;
      while (true) {
        long now = System.currentTimeMillis();
        if (http != null) {
          long m = scrapeRecords(http, metricsUrl);
          if (m >= 0) metricRecords = m;
          if (firstRecordMs == 0) {
            if (m > 0) {
              firstRecordMs = lastIdleScrapeMs;
            } else {
              lastIdleScrapeMs = System.currentTimeMillis();
            }
          }
        }
        if (firstRecordFile != null && firstRecordMs == 0) {
          Path f = Path.of(firstRecordFile);
          if (Files.exists(f)) firstRecordMs = Long.parseLong(Files.readString(f).trim());
        }
        Map<TopicPartition, OffsetAndMetadata> offs =
            admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        committed = 0;
        boolean all = true;
        for (TopicPartition tp : tps) {
          OffsetAndMetadata om = offs.get(tp);
          long c = om == null ? begin.get(tp) : Math.min(Math.max(om.offset(), begin.get(tp)), end.get(tp));
          committed += c - begin.get(tp);
          if (c < end.get(tp)) all = false;
        }
        now = System.currentTimeMillis();
        if (firstCommitMs == 0 && committed > 0) firstCommitMs = now;
        samples.add(new Sample(now, committed, metricRecords));
        if (now - lastLogMs >= 5000) {
          System.err.printf("watch %s: +%.1f s committed %d/%d%s%n", label, (now - watchStart) / 1000.0,
              committed, total, metricRecords >= 0 ? " metric_records " + metricRecords : "");
          lastLogMs = now;
        }
        if (all) {
          doneMs = now;
          done = true;
          break;
        }
        if (now - watchStart > timeoutMs) break;
        Thread.sleep(intervalMs);
      }
      if (firstRecordMs == 0) firstRecordMs = firstCommitMs;

      StringBuilder j = new StringBuilder();
      j.append("{\"label\":").append(q(label)).append(",\"group\":").append(q(group))
          .append(",\"topic\":").append(q(topic)).append(",\"partitions\":").append(tps.size())
          .append(",\"records\":").append(total).append(",\"committed\":").append(committed)
          .append(",\"complete\":").append(done);
      j.append(",\"watch_start_ms\":").append(watchStart);
      if (startedMs > 0) j.append(",\"process_started_ms\":").append(startedMs);
      j.append(",\"first_record_ms\":").append(firstRecordMs)
          .append(",\"first_commit_ms\":").append(firstCommitMs)
          .append(",\"done_ms\":").append(doneMs);
      if (done && firstRecordMs > 0) {
        double drainS = (doneMs - firstRecordMs) / 1000.0;
        j.append(",\"drain_s\":").append(fmt(drainS))
            .append(",\"events_per_s\":").append(fmt(total / Math.max(drainS, 1e-3)));
        if (startedMs > 0) {
          double wallS = (doneMs - startedMs) / 1000.0;
          j.append(",\"wall_from_start_s\":").append(fmt(wallS))
              .append(",\"events_per_s_from_start\":").append(fmt(total / Math.max(wallS, 1e-3)))
              .append(",\"startup_s\":").append(fmt((firstRecordMs - startedMs) / 1000.0));
        }
        // Steady state: the rate between the polls that first saw 10% and 90% committed.
        long t10 = 0, t90 = 0, c10 = 0, c90 = 0;
        for (Sample s : samples) {
          if (t10 == 0 && s.committed >= total / 10) { t10 = s.ms; c10 = s.committed; }
          if (t90 == 0 && s.committed >= total * 9 / 10) { t90 = s.ms; c90 = s.committed; }
        }
        if (t90 > t10) {
          j.append(",\"steady_events_per_s\":").append(fmt((c90 - c10) * 1000.0 / (t90 - t10)));
        }
      }
      // One sample per second (the last poll of each second) for plots.
      j.append(",\"timeline\":[");
      long nextSecond = watchStart;
      boolean firstOut = true;
      for (int i = 0; i < samples.size(); i++) {
        Sample s = samples.get(i);
        boolean last = i == samples.size() - 1;
        if (s.ms >= nextSecond || last) {
          if (!firstOut) j.append(',');
          firstOut = false;
          j.append("{\"t_s\":").append(fmt((s.ms - watchStart) / 1000.0)).append(",\"committed\":").append(s.committed);
          if (s.metricRecords >= 0) j.append(",\"metric_records\":").append(s.metricRecords);
          j.append('}');
          nextSecond = s.ms - (s.ms - watchStart) % 1000 + 1000;
        }
      }
      j.append("]}");
      String json = j.toString();
      System.out.println(json);
      if (out != null) Files.writeString(Path.of(out), json + "\n", StandardCharsets.UTF_8);
      return done ? 0 : 3;
    }
  }

  static Map<TopicPartition, Long> offsets(Admin admin, List<TopicPartition> tps, OffsetSpec spec) throws Exception {
    Map<TopicPartition, OffsetSpec> req = new HashMap<>();
    for (TopicPartition tp : tps) req.put(tp, spec);
    Map<TopicPartition, Long> res = new HashMap<>();
    admin.listOffsets(req, new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).all().get()
        .forEach((tp, info) -> res.put(tp, info.offset()));
    return res;
  }

  /** Sum of every catchall_aggregate_records_total series, or -1 when the scrape fails. */
  static long scrapeRecords(HttpClient http, String url) {
    try {
      HttpResponse<String> r = http.send(
          HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(1)).GET().build(),
          HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() != 200) return -1;
      long sum = 0;
      for (String line : r.body().split("\n")) {
        if (!line.startsWith("catchall_aggregate_records_total")) continue;
        String v = line.substring(line.lastIndexOf(' ') + 1);
        sum += (long) Double.parseDouble(v);
      }
      return sum;
    } catch (Exception e) {
      return -1;
    }
  }

  static String q(String s) {
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
  }

  static String fmt(double d) {
    return String.format(Locale.ROOT, "%.3f", d);
  }
}
