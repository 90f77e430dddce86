package catchall.peer;

import java.nio.ByteBuffer;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/** A domain's counters; stored as 16 bytes (delivered, bounced; big-endian longs). */
record Counts(long delivered, long bounced) {
  static final Counts ZERO = new Counts(0, 0);

  Counts add(int type) {
    return type == EventType.BOUNCED ? new Counts(delivered, bounced + 1) : new Counts(delivered + 1, bounced);
  }

  /** catchall's changelog value (engine/src/domain_status.cc), with the same status rules. */
  String statusJson(String domain, long threshold) {
    String status = bounced >= 1 ? "not catch-all" : delivered > threshold ? "catch-all" : "unknown";
    return "{\"domain\":\"" + domain + "\",\"status\":\"" + status + "\",\"delivered\":" + delivered
        + ",\"bounced\":" + bounced + "}";
  }

  static Serde<Counts> serde() {
    Serializer<Counts> ser = (topic, c) -> c == null ? null
        : ByteBuffer.allocate(16).putLong(c.delivered).putLong(c.bounced).array();
    Deserializer<Counts> de = (topic, b) -> {
      if (b == null) return null;
      ByteBuffer buf = ByteBuffer.wrap(b);
      return new Counts(buf.getLong(), buf.getLong());
    };
    return Serdes.serdeFrom(ser, de);
  }
}
