#include "kafka/topic_admin.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <string>
#include <thread>

namespace catchall::testing {
namespace {

// Runs one admin request on a short-lived client: `request` issues it on
// the queue, `check` looks at the answer (a request-level error fails the
// test before).
template <typename Request, typename Check>
void RunAdmin(const std::string& brokers, const std::string& what, Request request, Check check) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  ASSERT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof(err)),
            RD_KAFKA_CONF_OK)
      << err;
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  ASSERT_NE(rk, nullptr) << err;
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  request(rk, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  if (!ev) {
    ADD_FAILURE() << what << ": no answer in 30 s";
  } else if (rd_kafka_event_error(ev)) {
    ADD_FAILURE() << what << ": " << rd_kafka_event_error_string(ev);
  } else {
    check(ev);
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_destroy(rk);
}

// A `check` for requests answered per topic: every result free of errors.
template <typename Results>
auto EveryTopicOk(const std::string& what, Results results) {
  return [what, results](rd_kafka_event_t* ev) {
    size_t n = 0;
    const rd_kafka_topic_result_t** rs = results(ev, &n);
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(rd_kafka_topic_result_error(rs[i]), RD_KAFKA_RESP_ERR_NO_ERROR)
          << what << ": " << rd_kafka_topic_result_error_string(rs[i]);
    }
  };
}

}  // namespace

void DeleteTopic(const std::string& brokers, const std::string& topic) {
  const std::string what = "deleting " + topic;
  RunAdmin(
      brokers, what,
      [&](rd_kafka_t* rk, rd_kafka_queue_t* q) {
        rd_kafka_DeleteTopic_t* t = rd_kafka_DeleteTopic_new(topic.c_str());
        rd_kafka_DeleteTopics(rk, &t, 1, nullptr, q);
        rd_kafka_DeleteTopic_destroy(t);
      },
      EveryTopicOk(what, [](rd_kafka_event_t* ev, size_t* n) {
        return rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), n);
      }));
}

void AddPartitions(const std::string& brokers, const std::string& topic, int partitions) {
  const std::string what = "adding partitions to " + topic;
  RunAdmin(
      brokers, what,
      [&](rd_kafka_t* rk, rd_kafka_queue_t* q) {
        char err[256];
        rd_kafka_NewPartitions_t* p =
            rd_kafka_NewPartitions_new(topic.c_str(), partitions, err, sizeof(err));
        rd_kafka_CreatePartitions(rk, &p, 1, nullptr, q);
        rd_kafka_NewPartitions_destroy(p);
      },
      EveryTopicOk(what, [](rd_kafka_event_t* ev, size_t* n) {
        return rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev),
                                                       n);
      }));
}

void ReplaceTopicConfigs(const std::string& brokers, const std::string& topic,
                         const std::string& name, const std::string& value) {
  const std::string what = "altering the configs of " + topic;
  RunAdmin(
      brokers, what,
      [&](rd_kafka_t* rk, rd_kafka_queue_t* q) {
        rd_kafka_ConfigResource_t* res =
            rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
        EXPECT_EQ(rd_kafka_ConfigResource_set_config(res, name.c_str(), value.c_str()),
                  RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_AlterConfigs(rk, &res, 1, nullptr, q);
        rd_kafka_ConfigResource_destroy(res);
      },
      [&](rd_kafka_event_t* ev) {
        size_t n = 0;
        const rd_kafka_ConfigResource_t** rs =
            rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);
        for (size_t i = 0; i < n; ++i) {
          EXPECT_EQ(rd_kafka_ConfigResource_error(rs[i]), RD_KAFKA_RESP_ERR_NO_ERROR)
              << what << ": " << rd_kafka_ConfigResource_error_string(rs[i]);
        }
      });
}

void DeleteGroup(const std::string& brokers, const std::string& group) {
  const std::string what = "deleting group " + group;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;
    std::string message;
    RunAdmin(
        brokers, what,
        [&](rd_kafka_t* rk, rd_kafka_queue_t* q) {
          rd_kafka_DeleteGroup_t* g = rd_kafka_DeleteGroup_new(group.c_str());
          rd_kafka_DeleteGroups(rk, &g, 1, nullptr, q);
          rd_kafka_DeleteGroup_destroy(g);
        },
        [&](rd_kafka_event_t* ev) {
          size_t n = 0;
          const rd_kafka_group_result_t** rs =
              rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &n);
          for (size_t i = 0; i < n; ++i) {
            if (const rd_kafka_error_t* e = rd_kafka_group_result_error(rs[i])) {
              code = rd_kafka_error_code(e);
              message = rd_kafka_error_string(e);
            }
          }
        });
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    if (code != RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP || std::chrono::steady_clock::now() > until) {
      ADD_FAILURE() << what << ": " << message;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

void DeleteAllRecords(const std::string& brokers, const std::string& topic, int partitions) {
  const std::string what = "deleting the records of " + topic;
  RunAdmin(
      brokers, what,
      [&](rd_kafka_t* rk, rd_kafka_queue_t* q) {
        rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
        for (int p = 0; p < partitions; ++p) {
          rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_END;
        }
        rd_kafka_DeleteRecords_t* d = rd_kafka_DeleteRecords_new(list);
        rd_kafka_DeleteRecords(rk, &d, 1, nullptr, q);
        rd_kafka_DeleteRecords_destroy(d);
        rd_kafka_topic_partition_list_destroy(list);
      },
      [&](rd_kafka_event_t* ev) {
        const rd_kafka_topic_partition_list_t* offsets =
            rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
        ASSERT_NE(offsets, nullptr) << what;
        for (int i = 0; i < offsets->cnt; ++i) {
          EXPECT_EQ(offsets->elems[i].err, RD_KAFKA_RESP_ERR_NO_ERROR)
              << what << ", partition " << offsets->elems[i].partition << ": "
              << rd_kafka_err2str(offsets->elems[i].err);
        }
      });
}

}  // namespace catchall::testing
