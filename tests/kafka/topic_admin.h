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

// Deletes consumer group `group` with its committed offsets, as
// kafka-consumer-groups.sh --delete does (or Kafka, once an empty group's
// offsets.retention.minutes pass). Waits up to 60 s for the group to empty
// (a static member that stopped stays in it until its session times out);
// fails the test on another error.
void DeleteGroup(const std::string& brokers, const std::string& group);
// Deletes every record of `topic`'s `partitions` partitions up to their high
// watermark, as kafka-delete-records.sh does (or retention); fails the test
// on an error.
void DeleteAllRecords(const std::string& brokers, const std::string& topic, int partitions);

}  // namespace catchall::testing
