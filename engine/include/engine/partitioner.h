// Kafka's default partitioner, bit-for-bit: murmur2 of the key bytes, made
// positive, modulo the partition count (Java's Utils.murmur2 and
// Utils.toPositive; librdkafka's "murmur2_random" for non-empty keys). Any
// Kafka client configured that way routes a domain to the same partition as
// catchall does, in Kafka and in the local log alike.
#pragma once

#include <cstdint>
#include <string_view>

namespace catchall {

// Kafka's Utils.murmur2 (seed 0x9747b28c), as a signed 32-bit value.
int32_t Murmur2(std::string_view key);

// REQUIRES: partition_count > 0
inline int32_t PartitionForKey(std::string_view key, int32_t partition_count) {
  return static_cast<int32_t>((static_cast<uint32_t>(Murmur2(key)) & 0x7fffffffU) %
                              static_cast<uint32_t>(partition_count));
}

}  // namespace catchall
