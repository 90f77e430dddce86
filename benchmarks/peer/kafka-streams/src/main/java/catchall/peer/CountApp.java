package catchall.peer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The Kafka Streams peer of {@code catchall aggregate}: the same job written the way a
 * Kafka Streams user would write it.
 *
 * <pre>
 *   input (key = domain, value = event JSON)
 *     -> mapValues(type and id of the event)  -> filter(valid)
 *     -> processValues(IdDeduplicator: drop an id seen within the window; persistent
 *        RocksDB window store "event-ids", changelogged)
 *     -> groupByKey -> aggregate(Counts) into the persistent RocksDB store "domain-counts"
 *        (changelogged to &lt;application.id&gt;-domain-counts-changelog)
 *     -> toStream -> mapValues(status JSON as in catchall's changelog) -> output
 * </pre>
 *
 * processing.guarantee=exactly_once_v2 and commit.interval.ms=100 (catchall's default
 * commit interval; also Kafka Streams' default under exactly-once). The key is already the
 * domain, so groupByKey needs no repartition topic. The KTable's record cache (default
 * 10 MB) collapses updates of a domain within a commit into one output record, as
 * catchall publishes each changed domain once per commit.
 *
 * <p>Events with an {@code "id"} are deduplicated within --id-window-ms (default one day,
 * catchall's default aggregate.idempotency_window_s), as catchall deduplicates them;
 * --id-window-ms 0 leaves the step out of the topology (every event counts).
 */
final class CountApp {
  private CountApp() {}

  static int run(Args args) throws Exception {
    final String bootstrap = args.require("bootstrap");
    final String input = args.require("input");
    final String output = args.require("output");
    final String appId = args.require("application-id");
    final long threshold = args.getLong("threshold", 1000);
    final String firstRecordFile = args.get("first-record-file", null);
    final long idWindowMs = args.getLong("id-window-ms", 86_400_000L);

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, args.get("commit-interval-ms", "100"));
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, args.get("threads", "1"));
    props.put(StreamsConfig.STATE_DIR_CONFIG, args.get("state-dir", "/tmp/catchall-streams-peer"));
    props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    for (String kv : args.all("prop")) {
      int eq = kv.indexOf('=');
      if (eq <= 0) throw new IllegalArgumentException("--prop needs key=value, got '" + kv + "'");
      props.put(kv.substring(0, eq), kv.substring(eq + 1));
    }

    final LongAdder processed = new LongAdder();
    final LongAdder invalid = new LongAdder();
    final LongAdder duplicates = new LongAdder();
    final AtomicLong firstRecordMs = new AtomicLong();

    StreamsBuilder builder = new StreamsBuilder();
    KStream<String, Event> events = builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
        .mapValues(value -> {
          if (firstRecordMs.get() == 0 && firstRecordMs.compareAndSet(0, System.currentTimeMillis())) {
            writeFirstRecord(firstRecordFile, firstRecordMs.get());
          }
          processed.increment();
          Event event = Event.parse(value);
          if (event.type() == EventType.INVALID) invalid.increment();
          return event;
        })
        .filter((domain, event) -> domain != null && event.type() != EventType.INVALID);
    KStream<String, Integer> counted;
    if (idWindowMs > 0) {
      builder.addStateStore(IdDeduplicator.storeBuilder(idWindowMs));
      counted = events.processValues(() -> new IdDeduplicator(idWindowMs, duplicates), IdDeduplicator.STORE);
    } else {
      counted = events.mapValues(Event::type);
    }
    counted
        .groupByKey(Grouped.with(Serdes.String(), Serdes.Integer()))
        .aggregate(() -> Counts.ZERO, (domain, type, counts) -> counts.add(type),
            Materialized.<String, Counts, KeyValueStore<Bytes, byte[]>>as("domain-counts")
                .withKeySerde(Serdes.String())
                .withValueSerde(Counts.serde()))
        .toStream()
        .mapValues((domain, counts) -> counts.statusJson(domain, threshold))
        .to(output, Produced.with(Serdes.String(), Serdes.String()));

    Topology topology = builder.build();
    System.err.println("topology:\n" + topology.describe());
    System.err.println("config: " + props);

    final KafkaStreams streams = new KafkaStreams(topology, props);
    final CountDownLatch stopped = new CountDownLatch(1);
    final long startMs = System.currentTimeMillis();
    streams.setUncaughtExceptionHandler(e -> {
      System.err.println("stream thread failed: " + e);
      e.printStackTrace();
      return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
          .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    streams.setStateListener((now, before) -> {
      System.err.printf("state %s -> %s at +%d ms%n", before, now, System.currentTimeMillis() - startMs);
      if (now == KafkaStreams.State.NOT_RUNNING || now == KafkaStreams.State.ERROR) stopped.countDown();
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(java.time.Duration.ofSeconds(30));
      System.err.printf("closed: processed=%d invalid=%d duplicates=%d%n", processed.sum(), invalid.sum(),
          duplicates.sum());
    }));

    Thread progress = new Thread(() -> {
      long last = 0;
      long lastMs = System.currentTimeMillis();
      while (true) {
        try {
          Thread.sleep(5000);
        } catch (InterruptedException e) {
          return;
        }
        long now = System.currentTimeMillis();
        long p = processed.sum();
        System.err.printf("progress: +%d ms processed=%d (%.0f/s) invalid=%d duplicates=%d%n",
            now - startMs, p, (p - last) * 1000.0 / Math.max(1, now - lastMs), invalid.sum(), duplicates.sum());
        last = p;
        lastMs = now;
      }
    }, "progress");
    progress.setDaemon(true);
    progress.start();

    streams.start();
    stopped.await();
    return streams.state() == KafkaStreams.State.ERROR ? 2 : 0;
  }

  private static void writeFirstRecord(String file, long ms) {
    if (file == null) return;
    try {
      Path target = Path.of(file);
      Path tmp = Path.of(file + ".tmp");
      Files.writeString(tmp, ms + "\n", StandardCharsets.UTF_8);
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      System.err.println("cannot write " + file + ": " + e);
    }
  }
}
