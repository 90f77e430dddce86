package catchall.peer;

import java.util.Arrays;

/** Entry point: {@code java -jar catchall-streams-peer.jar COMMAND [ARGS]}. */
public final class Main {
  private Main() {}

  static final String USAGE = String.join("\n",
      "Usage: java -jar catchall-streams-peer.jar COMMAND [--flag value ...]",
      "",
      "Commands:",
      "  count   the Kafka Streams peer of `catchall aggregate`: counts delivered/bounced per",
      "          domain (RocksDB store, exactly_once_v2) and writes status JSON to --output",
      "            --bootstrap B --input TOPIC --output TOPIC --application-id ID",
      "            [--threads 1] [--state-dir /tmp/catchall-streams-peer] [--commit-interval-ms 100]",
      "            [--threshold 1000] [--first-record-file F] [--prop key=value ...]",
      "            [--id-window-ms 86400000]  (events with an \"id\" seen within it are dropped;",
      "                                        0 = no deduplication)",
      "          runs until SIGTERM/SIGINT; logs progress to stderr every 5 s",
      "  watch   wait until a consumer group's committed offsets reach a topic's end offsets",
      "          (read at start), print a JSON report (and --out FILE)",
      "            --bootstrap B --group G --topic T [--metrics-url URL] [--first-record-file F]",
      "            [--interval-ms 50] [--timeout-s 1800] [--out FILE]",
      "  delete-topics  --bootstrap B --topics T1,T2,...   (waits until they are gone)",
      "  delete-groups  --bootstrap B --groups G1,G2,...",
      "  create-topic   --bootstrap B --topic T --partitions P [--config k=v ...]",
      "  end-offsets    --bootstrap B --topic T   (prints the total record count)");

  public static void main(String[] argv) throws Exception {
    if (argv.length == 0 || argv[0].equals("help") || argv[0].equals("--help")) {
      System.out.println(USAGE);
      return;
    }
    Args args = new Args(Arrays.copyOfRange(argv, 1, argv.length));
    int rc;
    switch (argv[0]) {
      case "count": rc = CountApp.run(args); break;
      case "watch": rc = LagWatcher.run(args); break;
      case "delete-topics": rc = AdminTools.deleteTopics(args); break;
      case "delete-groups": rc = AdminTools.deleteGroups(args); break;
      case "create-topic": rc = AdminTools.createTopic(args); break;
      case "end-offsets": rc = AdminTools.endOffsets(args); break;
      default:
        System.err.println("unknown command '" + argv[0] + "'\n\n" + USAGE);
        rc = 1;
    }
    System.exit(rc);
  }
}
