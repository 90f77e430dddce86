// A minimal streaming JSON writer for results.json (no DOM, no allocation
// beyond the output string). Callers nest Begin/End calls correctly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace catchall::bench {

class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Uint(uint64_t value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Double(double value);  // non-finite values are written as null
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  // Shorthands for "key": value.
  template <class T>
  JsonWriter& Field(std::string_view key, const T& value);

  const std::string& str() const { return out_; }

 private:
  void Separate();
  void Indent();

  std::string out_;
  std::vector<bool> first_;  // per open container: no element yet
  bool after_key_ = false;
};

template <class T>
JsonWriter& JsonWriter::Field(std::string_view key, const T& value) {
  Key(key);
  if constexpr (std::is_same_v<T, bool>) {
    return Bool(value);
  } else if constexpr (std::is_floating_point_v<T>) {
    return Double(value);
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    return Int(value);
  } else if constexpr (std::is_integral_v<T>) {
    return Uint(value);
  } else {
    return String(value);
  }
}

}  // namespace catchall::bench
