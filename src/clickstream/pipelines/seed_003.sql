-- Seed 003 (streaming-runtimes "Clickstream Analysis"): which of our platinum customers are on the
-- site right now, and what they do. Every click joined with its user's current row, kept when the
-- user is PLATINUM. The INSERT is the seed's as written; the seed declares no tables (its operator
-- makes them from the topics' schemas), so the tables are those of its sample records: `Users` is
-- a changelog keyed by `user_id` (a user's level changes; a record replaces the user's row),
-- `Clicks` an append stream, and `VipActions` a new stream of their join. As the join updates
-- when a user's level changes, `VipActions` takes updates: it is keyed by the user and the click.
-- The braced places are filled in where the pipeline runs (`clickstream.pipelines.load`): the
-- embedded log or Kafka (`upsert-kafka` for Users), and a database or a topic for VipActions.

CREATE TABLE Users (
    user_id STRING,
    name STRING,
    level STRING,
    PRIMARY KEY (user_id) NOT ENFORCED
) WITH (
    {upsert_topics[users]},
    'key.format' = 'raw',
    'value.format' = 'json'
);

CREATE TABLE Clicks (
    user_id STRING,
    page INT,
    action STRING,
    device STRING,
    agent STRING,
    event_time TIMESTAMP_LTZ(3)
) WITH (
    {topics[clicks]},
    'scan.startup.mode' = 'earliest-offset',
    'format' = 'json',
    'json.timestamp-format.standard' = 'ISO-8601'
);

CREATE TABLE VipActions (
    user_id STRING,
    name STRING,
    page INT,
    action STRING,
    event_time TIMESTAMP_LTZ(3),
    PRIMARY KEY (user_id, event_time) NOT ENFORCED
) WITH (
    {results[vip_actions]}
);

INSERT INTO VipActions
     SELECT
        Users.user_id, Users.name, Clicks.page, Clicks.action, Clicks.event_time
     FROM
        Clicks
     INNER JOIN
        Users ON Clicks.user_id = Users.user_id
     WHERE
        Users.level = 'PLATINUM';
