package catchall.peer;

/**
 * The event type (and id) of a catchall.events record value, found by a minimal scan instead of
 * a JSON library (kafka-streams brings none). Values are batch items such as
 * {@code {"domain":"example.com","type":"bounced","id":"...","ts":1}}. The scan looks for
 * the key {@code "type"} (a quote, the word, a quote) followed by optional whitespace and
 * a colon: inside a JSON string a quote is always escaped, so this exact sequence can only
 * be an object key. Domains are validated names and never contain quotes.
 */
final class EventType {
  static final int DELIVERED = 0;
  static final int BOUNCED = 1;
  static final int INVALID = -1;

  private EventType() {}

  static int parse(String json) {
    if (json == null) return INVALID;
    int from = 0;
    final int n = json.length();
    while (true) {
      int k = json.indexOf("\"type\"", from);
      if (k < 0) return INVALID;
      int i = skipWs(json, k + 6);
      if (i < n && json.charAt(i) == ':') {
        i = skipWs(json, i + 1);
        if (json.startsWith("\"delivered\"", i)) return DELIVERED;
        if (json.startsWith("\"bounced\"", i)) return BOUNCED;
        return INVALID;
      }
      from = k + 1;
    }
  }

  /**
   * The value of the {@code "id"} key if it is a JSON string, as written between its quotes
   * (escape sequences are kept, not decoded: the same id is always written the same way by
   * one producer), or null. Found by the same scan as the type.
   */
  static String id(String json) {
    if (json == null) return null;
    int from = 0;
    final int n = json.length();
    while (true) {
      int k = json.indexOf("\"id\"", from);
      if (k < 0) return null;
      int i = skipWs(json, k + 4);
      if (i < n && json.charAt(i) == ':') {
        i = skipWs(json, i + 1);
        if (i >= n || json.charAt(i) != '"') return null;
        int start = i + 1;
        for (int j = start; j < n; j++) {
          char c = json.charAt(j);
          if (c == '\\') {
            j++;
          } else if (c == '"') {
            return json.substring(start, j);
          }
        }
        return null;
      }
      from = k + 1;
    }
  }

  private static int skipWs(String s, int i) {
    while (i < s.length()) {
      char c = s.charAt(i);
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      i++;
    }
    return i;
  }
}
