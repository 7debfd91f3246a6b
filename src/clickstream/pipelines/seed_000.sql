-- Seed 000 (Flink SQL "Website Activity Tracking"): hourly trading volume, cumulative unique
-- visitors every ten minutes of a day, and buys per top-level category through a lookup of the
-- category dimension. The statements as written; the braced places are filled in where the
-- pipeline runs (`clickstream.pipelines.load`): the embedded log or Kafka, SQLite or PostgreSQL.

CREATE TABLE user_behavior (
    user_id BIGINT,
    item_id BIGINT,
    category_id BIGINT,
    behavior STRING,
    ts TIMESTAMP_LTZ(3),
    proctime AS PROCTIME(),   -- generates processing-time attribute using computed column
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND  -- defines watermark on ts column, marks ts as event-time attribute
) WITH (
    {topics[user_behavior]},
    'scan.startup.mode' = 'earliest-offset',
    'format' = 'json',
    'json.timestamp-format.standard' = 'ISO-8601'
);

-- One column more than the seed's: the window's date, so that the hours of several days stay apart
-- (the seed's Kibana showed one day).
CREATE TABLE buy_cnt_per_hour (
    hour_of_day BIGINT,
    buy_cnt BIGINT,
    date_str STRING
) WITH (
    {results[buy_cnt_per_hour]}
);

INSERT INTO buy_cnt_per_hour
SELECT HOUR(TUMBLE_START(ts, INTERVAL '1' HOUR)), COUNT(*),
    DATE_FORMAT(TUMBLE_START(ts, INTERVAL '1' HOUR), 'yyyy-MM-dd')
FROM user_behavior
WHERE behavior = 'buy'
GROUP BY TUMBLE(ts, INTERVAL '1' HOUR);

CREATE TABLE cumulative_uv (
    date_str STRING,
    time_str STRING,
    uv BIGINT,
    PRIMARY KEY (date_str, time_str) NOT ENFORCED
) WITH (
    {results[cumulative_uv]}
);

INSERT INTO cumulative_uv
SELECT date_str, MAX(time_str), COUNT(DISTINCT user_id) as uv
FROM (
  SELECT
    DATE_FORMAT(ts, 'yyyy-MM-dd') as date_str,
    SUBSTR(DATE_FORMAT(ts, 'HH:mm'),1,4) || '0' as time_str,
    user_id
  FROM user_behavior)
GROUP BY date_str;

CREATE TABLE category_dim (
   sub_category_id BIGINT,
   parent_category_name STRING
) WITH (
   {dimensions[category]},
   'username' = 'root',
   'password' = '123456',
   'lookup.cache.max-rows' = '5000',
   'lookup.cache.ttl' = '10min'
);

CREATE TABLE top_category (
    category_name STRING PRIMARY KEY NOT ENFORCED,
    buy_cnt BIGINT
) WITH (
    {results[top_category]}
);

CREATE VIEW rich_user_behavior AS
SELECT U.user_id, U.item_id, U.behavior, C.parent_category_name as category_name
FROM user_behavior AS U LEFT JOIN category_dim FOR SYSTEM_TIME AS OF U.proctime AS C
ON U.category_id = C.sub_category_id;

INSERT INTO top_category
SELECT category_name, COUNT(*) buy_cnt
FROM rich_user_behavior
WHERE behavior = 'buy'
GROUP BY category_name;
