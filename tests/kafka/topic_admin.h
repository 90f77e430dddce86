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
// Sets `topic`'s configs to `name`=`value` alone, as kafka-configs.sh
// --alter without --add-config would: Kafka's AlterConfigs replaces every
// config the topic set; fails the test on an error.
void ReplaceTopicConfigs(const std::string& brokers, const std::string& topic,
                         const std::string& name, const std::string& value);

}  // namespace catchall::testing
