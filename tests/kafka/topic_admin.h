// Topic administration a test does as an operator would with
// kafka-topics.sh, through Kafka's admin API (librdkafka): only the Kafka
// tests link it.
#pragma once

#include <string>

namespace catchall::testing {

// Deletes `topic`, or gives it `partitions` partitions (more than it has);
// fails the test on an error.
void DeleteTopic(const std::string& brokers, const std::string& topic);
void AddPartitions(const std::string& brokers, const std::string& topic, int partitions);

}  // namespace catchall::testing
