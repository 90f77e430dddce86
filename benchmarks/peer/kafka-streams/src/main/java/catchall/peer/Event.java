package catchall.peer;

/**
 * What the peer needs of a catchall.events record value: its type (an {@link EventType}
 * constant) and its optional {@code "id"} (null if absent).
 */
record Event(int type, String id) {
  static Event parse(String json) {
    int type = EventType.parse(json);
    return new Event(type, type == EventType.INVALID ? null : EventType.id(json));
  }
}
