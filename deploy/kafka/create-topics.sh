#!/usr/bin/env bash
# Creates the topics offhours reads and writes, once, before any worker starts.
#
# Idempotent (--if-not-exists): safe to run on every `docker compose up`. Reads the
# same OFFHOURS_* variables as the service (deploy/env/offhours.env), so the topic
# names, partition count and replication factor have one source. The defaults below
# are the Settings defaults (tests/deploy checks that they agree).
#
# Partitions bound the number of workers that share the work: a topic with N
# partitions keeps at most N workers busy. Raise OFFHOURS_PARTITIONS before going
# live: Kafka can add partitions later, but that moves conversations between
# partitions (keys hash anew) while their state stays behind.
#
# A cluster with TLS/SASL: set KAFKA_COMMAND_CONFIG to a client properties file
# (security.protocol, sasl.mechanism, sasl.jaas.config, ssl.truststore.*), passed to
# kafka-topics.sh as --command-config.
set -euo pipefail

: "${OFFHOURS_BROKER_URL:?set OFFHOURS_BROKER_URL, e.g. kafka://kafka:9092}"
topics_cli="${KAFKA_TOPICS_CLI:-/opt/kafka/bin/kafka-topics.sh}"
partitions="${OFFHOURS_PARTITIONS:-4}"
replication="${OFFHOURS_REPLICATION:-1}"
command_config=()
if [[ -n "${KAFKA_COMMAND_CONFIG:-}" ]]; then
  command_config=(--command-config "$KAFKA_COMMAND_CONFIG")
fi

# Faust's broker URL is kafka://host:port[,kafka://host:port]; kafka-topics.sh wants
# host:port[,host:port].
bootstrap="$(printf '%s' "$OFFHOURS_BROKER_URL" | sed -E 's#[A-Za-z][A-Za-z0-9+.-]*://##g; s#/+(,|$)#\1#g')"

create_topic() {
  local topic="$1"
  shift
  echo "topic ${topic}: ${partitions} partitions, replication ${replication} $*"
  "$topics_cli" --bootstrap-server "$bootstrap" "${command_config[@]}" --create --if-not-exists \
    --topic "$topic" --partitions "$partitions" --replication-factor "$replication" "$@"
}

create_topic "${OFFHOURS_EVENTS_TOPIC:-social.events}"
create_topic "${OFFHOURS_DECISIONS_TOPIC:-offhours.decisions}"
create_topic "${OFFHOURS_ACKS_TOPIC:-offhours.acks}"
create_topic "${OFFHOURS_ROUTES_TOPIC:-offhours.routes}"
create_topic "${OFFHOURS_DEAD_LETTER_TOPIC:-offhours.deadletter}"
create_topic "${OFFHOURS_DELIVERIES_TOPIC:-offhours.deliveries}"
# The config topic holds the latest coverage per key: compaction keeps the last value
# of every key forever instead of deleting old segments by age.
create_topic "${OFFHOURS_CONFIG_TOPIC:-offhours.config}" --config cleanup.policy=compact

echo "offhours topics ready on ${bootstrap}"
