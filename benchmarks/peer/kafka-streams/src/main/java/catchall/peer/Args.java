package catchall.peer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** {@code --name value} pairs; a name may repeat (see {@link #all}). */
final class Args {
  private final Map<String, List<String>> values = new HashMap<>();

  Args(String[] argv) {
    for (int i = 0; i < argv.length; i++) {
      String a = argv[i];
      if (!a.startsWith("--")) throw new IllegalArgumentException("unexpected argument '" + a + "'");
      String name = a.substring(2);
      String value;
      int eq = name.indexOf('=');
      if (eq >= 0) {
        value = name.substring(eq + 1);
        name = name.substring(0, eq);
      } else {
        if (i + 1 >= argv.length) throw new IllegalArgumentException("--" + name + " needs a value");
        value = argv[++i];
      }
      values.computeIfAbsent(name, k -> new ArrayList<>()).add(value);
    }
  }

  String get(String name, String dflt) {
    List<String> v = values.get(name);
    return v == null ? dflt : v.get(v.size() - 1);
  }

  String require(String name) {
    String v = get(name, null);
    if (v == null) throw new IllegalArgumentException("--" + name + " is required");
    return v;
  }

  long getLong(String name, long dflt) {
    String v = get(name, null);
    return v == null ? dflt : Long.parseLong(v);
  }

  List<String> all(String name) {
    return values.getOrDefault(name, List.of());
  }
}
