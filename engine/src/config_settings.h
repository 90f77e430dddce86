// The settings table behind engine/config.h, shared by config.cc (loading,
// validating, printing) and config_settings.cc (the table). Private to
// engine.
#pragma once

#include <string>
#include <string_view>

#include "engine/config.h"

namespace catchall {

// kafka.max_partition_fetch_kb's ceiling: 5 x 1024 x this stays under
// librdkafka's largest fetch.max.bytes (2,147,483,135).
inline constexpr int kMaxPartitionFetchKb = 409'600;

// Parses a non-negative integer; InvalidArgument names `key`.
Status ParseU64(std::string_view key, std::string_view text, uint64_t* out);

// "server.listen" -> "CATCHALL_SERVER_LISTEN".
std::string EnvName(std::string_view key);
// `text` with ASCII letters in lower case (settings taken in any letter case).
std::string AsciiLower(std::string_view text);

// The setting named `key`, or null.
const Setting* FindSetting(std::string_view key);

}  // namespace catchall
