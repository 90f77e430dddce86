package catchall.peer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/** Small admin helpers for the drain benchmark (no JVM start per kafka-topics call). */
final class AdminTools {
  private AdminTools() {}

  static Admin admin(String bootstrap) {
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
    p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
    return Admin.create(p);
  }

  static List<String> list(String csv) {
    List<String> r = new ArrayList<>();
    for (String s : csv.split(",")) if (!s.isBlank()) r.add(s.trim());
    return r;
  }

  /** Deletes the topics that exist (also by prefix with a trailing '*'), then waits until they are gone. */
  static int deleteTopics(Args args) throws Exception {
    try (Admin admin = admin(args.require("bootstrap"))) {
      Set<String> existing = admin.listTopics().names().get();
      List<String> doomed = new ArrayList<>();
      for (String t : list(args.require("topics"))) {
        if (t.endsWith("*")) {
          String prefix = t.substring(0, t.length() - 1);
          for (String e : existing) if (e.startsWith(prefix)) doomed.add(e);
        } else if (existing.contains(t)) {
          doomed.add(t);
        }
      }
      if (doomed.isEmpty()) return 0;
      System.err.println("deleting topics " + doomed);
      try {
        admin.deleteTopics(doomed).all().get();
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) throw e;
      }
      long deadline = System.currentTimeMillis() + 60_000;
      while (System.currentTimeMillis() < deadline) {
        Set<String> now = admin.listTopics().names().get();
        if (doomed.stream().noneMatch(now::contains)) return 0;
        Thread.sleep(200);
      }
      System.err.println("topics still listed after 60 s: " + doomed);
      return 1;
    }
  }

  static int deleteGroups(Args args) throws Exception {
    try (Admin admin = admin(args.require("bootstrap"))) {
      for (String g : list(args.require("groups"))) {
        try {
          admin.deleteConsumerGroups(List.of(g)).all().get();
        } catch (ExecutionException e) {
          if (!(e.getCause() instanceof GroupIdNotFoundException)) {
            System.err.println("cannot delete group " + g + ": " + e.getCause());
          }
        }
      }
      return 0;
    }
  }

  static int createTopic(Args args) throws Exception {
    try (Admin admin = admin(args.require("bootstrap"))) {
      Map<String, String> configs = new HashMap<>();
      for (String kv : args.all("config")) {
        int eq = kv.indexOf('=');
        configs.put(kv.substring(0, eq), kv.substring(eq + 1));
      }
      NewTopic t = new NewTopic(args.require("topic"), (int) args.getLong("partitions", 1), (short) 1).configs(configs);
      try {
        admin.createTopics(List.of(t)).all().get();
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof TopicExistsException)) throw e;
      }
      return 0;
    }
  }

  static int endOffsets(Args args) throws Exception {
    String topic = args.require("topic");
    try (Admin admin = admin(args.require("bootstrap"))) {
      List<TopicPartition> tps = new ArrayList<>();
      admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions()
          .forEach(p -> tps.add(new TopicPartition(topic, p.partition())));
      Map<TopicPartition, Long> end = LagWatcher.offsets(admin, tps, OffsetSpec.latest());
      Map<TopicPartition, Long> begin = LagWatcher.offsets(admin, tps, OffsetSpec.earliest());
      long total = 0;
      for (TopicPartition tp : tps) total += end.get(tp) - begin.get(tp);
      System.out.println(total);
      return 0;
    }
  }
}
