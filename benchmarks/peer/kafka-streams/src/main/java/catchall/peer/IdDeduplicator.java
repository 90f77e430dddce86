package catchall.peer;

import java.time.Duration;
import java.util.concurrent.atomic.LongAdder;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.state.WindowStoreIterator;

/**
 * Drops an event whose id was already counted for its domain within the id window, the
 * way {@code catchall aggregate} does (state/src/aggregator.cc): an event with id X of
 * domain D at record timestamp T is a duplicate if (D, X) was counted at a timestamp
 * >= T - window; events without an id (or with an empty one) always count. Forwards
 * the event type of the events that count.
 *
 * <p>The seen ids are in the persistent (RocksDB) window store {@link #STORE}, key
 * "domain TAB id", value the record timestamp, retention = the window: the Kafka
 * Streams idiom for deduplication. It is changelogged, so under exactly_once_v2 the ids
 * are restored with their task, as catchall restores its ids from catchall.ids. No
 * record cache: every id is new, so there is nothing to collapse.
 *
 * <p>One instance per task (Kafka Streams creates it from the supplier); called by that
 * task's stream thread only.
 */
final class IdDeduplicator implements FixedKeyProcessor<String, Event, Integer> {
  static final String STORE = "event-ids";

  private final long windowMs;
  private final LongAdder duplicates;
  private FixedKeyProcessorContext<String, Integer> context;
  private WindowStore<String, Long> ids;

  IdDeduplicator(long windowMs, LongAdder duplicates) {
    this.windowMs = windowMs;
    this.duplicates = duplicates;
  }

  /** The store this processor needs, to be added to the topology. REQUIRES: windowMs > 0. */
  static StoreBuilder<WindowStore<String, Long>> storeBuilder(long windowMs) {
    Duration window = Duration.ofMillis(windowMs);
    return Stores.windowStoreBuilder(
        Stores.persistentWindowStore(STORE, window, window, false), Serdes.String(), Serdes.Long());
  }

  @Override
  public void init(FixedKeyProcessorContext<String, Integer> context) {
    this.context = context;
    this.ids = context.getStateStore(STORE);
  }

  @Override
  public void process(FixedKeyRecord<String, Event> record) {
    Event event = record.value();
    String id = event.id();
    if (id != null && !id.isEmpty()) {
      String key = record.key() + '\t' + id;
      long ts = record.timestamp();
      // Window starts are the timestamps the ids were counted at; any from T - window on
      // (also a later one, from an out-of-order record) makes this one a duplicate.
      try (WindowStoreIterator<Long> seen = ids.fetch(key, Math.max(0, ts - windowMs), Long.MAX_VALUE)) {
        if (seen.hasNext()) {
          duplicates.increment();
          return;
        }
      }
      ids.put(key, ts, ts);
    }
    context.forward(record.withValue(event.type()));
  }
}
