-- Seed 002 (Confluent's ksqlDB clickstream demo, `clickstream/ksql/ksql-clickstream-demo/demo/
-- statements.sql` and `clickstream-schema.sql` of confluentinc/examples) in Flink SQL: clicks per
-- user per minute, html pages per minute, error alerts and error codes, bytes per minute, IP ->
-- user and city, user sessions with hits and bytes, and activity per city. The braced places are
-- filled in where the pipeline runs (`clickstream.pipelines.load`): `topics` for the click stream
-- (the embedded log or Kafka), `upsert_topics` for the two ksqlDB TABLEs (a log topic with a
-- primary key, or upsert-kafka), `results` for the result tables (SQLite or PostgreSQL).
--
-- How ksqlDB's constructs become Flink SQL:
--   CREATE STREAM ... (kafka_topic = ...)     -> an append-only table with a WATERMARK; ksqlDB
--                                                windows on the record's timestamp, here on the
--                                                click's own `_time` (epoch ms), 5 s out of order
--   CREATE TABLE ... (x int primary key)      -> a primary-keyed changelog table (upsert)
--   set 'auto.offset.reset'='earliest'        -> 'scan.startup.mode' = 'earliest-offset'
--   WINDOW TUMBLING (SIZE 60 SECONDS)         -> TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '60' SECOND))
--   WINDOW HOPPING (SIZE 60, ADVANCE BY 5)    -> TABLE(HOP(..., INTERVAL '5' SECOND, INTERVAL '60' SECOND))
--   WINDOW SESSION (300 SECONDS)              -> TABLE(SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' MINUTE))
--                                                (Flink's INTERVAL '300' SECOND fails: a field holds
--                                                two digits unless declared, SECOND(3))
--   WINDOWSTART / WINDOWEND                   -> window_start / window_end (a TIMESTAMP_LTZ, not epoch ms)
--   stream-table LEFT JOIN                    -> an event-time temporal join (FOR SYSTEM_TIME AS OF
--                                                c.ts): the table row as it was at the click, and
--                                                the result stays an appending stream that windows
--                                                can read, as ksqlDB's joined STREAM is
--   GROUP BY with a NULL key                  -> ksqlDB drops such rows, Flink keeps a NULL group:
--                                                the WHERE ... IS NOT NULL filters say it
--   CREATE TABLE x AS SELECT ... (a result)   -> a result table with a PRIMARY KEY (the jdbc sink
--                                                upserts by it) and INSERT INTO x SELECT ...
--
-- The users topic is written once: on an unbounded input its watermark (the newest registration)
-- would hold the temporal joins back for good; once it has been quiet this long, it no longer does.
SET 'table.exec.source.idle-timeout' = '10 s';

CREATE TABLE clickstream (
    `_time` BIGINT,
    `time` STRING,
    ip STRING,
    request STRING,
    status INT,
    userid INT,
    `bytes` BIGINT,
    agent STRING,
    ts AS TO_TIMESTAMP_LTZ(`_time`, 3),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
    {topics[clickstream]},
    'scan.startup.mode' = 'earliest-offset',
    'format' = 'json'
);

-- ksqlDB: CREATE TABLE clickstream_codes (code int primary key, definition varchar)
CREATE TABLE clickstream_codes (
    code INT,
    definition STRING,
    PRIMARY KEY (code) NOT ENFORCED
) WITH (
    {upsert_topics[clickstream_codes]},
    'key.format' = 'raw',
    'value.format' = 'json'
);

-- ksqlDB: CREATE TABLE WEB_USERS (user_id int primary key, registered_At BIGINT, ...). A user's
-- row is valid from their registration: that is the version time the temporal join reads.
CREATE TABLE web_users (
    user_id INT,
    registered_at BIGINT,
    username STRING,
    first_name STRING,
    last_name STRING,
    city STRING,
    level STRING,
    registered AS TO_TIMESTAMP_LTZ(registered_at, 3),
    PRIMARY KEY (user_id) NOT ENFORCED,
    WATERMARK FOR registered AS registered
) WITH (
    {upsert_topics[clickstream_users]},
    'key.format' = 'raw',
    'value.format' = 'json'
);

-- ksqlDB: CREATE STREAM USER_CLICKSTREAM AS SELECT userid, u.username, ip, u.city, request,
-- status, bytes FROM clickstream c LEFT JOIN web_users u ON c.userid = u.user_id
CREATE VIEW user_clickstream AS
SELECT c.userid, u.username, c.ip, u.city, c.request, c.status, c.`bytes`, c.ts
FROM clickstream AS c
LEFT JOIN web_users FOR SYSTEM_TIME AS OF c.ts AS u ON c.userid = u.user_id;

-- How many clicks does each user make per minute?
-- ksqlDB: CREATE TABLE events_per_min AS SELECT userid, WINDOWSTART AS EVENT_TS, count(*) AS
-- events FROM clickstream WINDOW TUMBLING (size 60 second) GROUP BY userid
CREATE TABLE events_per_min (
    userid INT,
    event_ts TIMESTAMP_LTZ(3),
    events BIGINT,
    PRIMARY KEY (userid, event_ts) NOT ENFORCED
) WITH (
    {results[events_per_min]}
);

INSERT INTO events_per_min
SELECT userid, window_start AS event_ts, COUNT(*) AS events
FROM TABLE(TUMBLE(TABLE clickstream, DESCRIPTOR(ts), INTERVAL '60' SECOND))
GROUP BY userid, window_start, window_end;

-- How many html pages does each user view in the last minute, every 5 seconds?
-- ksqlDB: CREATE TABLE pages_per_min AS SELECT userid, WINDOWSTART AS EVENT_TS, count(*) AS pages
-- FROM clickstream WINDOW HOPPING (size 60 second, advance by 5 second)
-- WHERE request like '%html%' GROUP BY userid
CREATE TABLE pages_per_min (
    userid INT,
    event_ts TIMESTAMP_LTZ(3),
    pages BIGINT,
    PRIMARY KEY (userid, event_ts) NOT ENFORCED
) WITH (
    {results[pages_per_min]}
);

INSERT INTO pages_per_min
SELECT userid, window_start AS event_ts, COUNT(*) AS pages
FROM TABLE(HOP(TABLE clickstream, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '60' SECOND))
WHERE request LIKE '%html%'
GROUP BY userid, window_start, window_end;

-- Which error statuses occur more than five times a minute (checked every 20 seconds)?
-- ksqlDB: CREATE TABLE ERRORS_PER_MIN_ALERT AS SELECT status, WINDOWSTART AS EVENT_TS, count(*)
-- AS errors FROM clickstream window HOPPING (size 60 second, advance by 20 second)
-- WHERE status > 400 GROUP BY status HAVING count(*) > 5 AND count(*) is not NULL
CREATE TABLE errors_per_min_alert (
    status INT,
    event_ts TIMESTAMP_LTZ(3),
    errors BIGINT,
    PRIMARY KEY (status, event_ts) NOT ENFORCED
) WITH (
    {results[errors_per_min_alert]}
);

INSERT INTO errors_per_min_alert
SELECT status, window_start AS event_ts, COUNT(*) AS errors
FROM TABLE(HOP(TABLE clickstream, DESCRIPTOR(ts), INTERVAL '20' SECOND, INTERVAL '60' SECOND))
WHERE status > 400
GROUP BY status, window_start, window_end
HAVING COUNT(*) > 5 AND COUNT(*) IS NOT NULL;

-- How many errors of each status per minute, every 5 seconds?
-- ksqlDB: CREATE TABLE ERRORS_PER_MIN AS SELECT status, WINDOWSTART AS EVENT_TS, count(*) AS
-- errors FROM clickstream window HOPPING (size 60 second, advance by 5 second)
-- WHERE status > 400 GROUP BY status
CREATE TABLE errors_per_min (
    status INT,
    event_ts TIMESTAMP_LTZ(3),
    errors BIGINT,
    PRIMARY KEY (status, event_ts) NOT ENFORCED
) WITH (
    {results[errors_per_min]}
);

INSERT INTO errors_per_min
SELECT status, window_start AS event_ts, COUNT(*) AS errors
FROM TABLE(HOP(TABLE clickstream, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '60' SECOND))
WHERE status > 400
GROUP BY status, window_start, window_end;

-- Which status codes, with their definitions, occur more than once in 30 seconds?
-- ksqlDB: CREATE STREAM ENRICHED_ERROR_CODES AS SELECT code, definition FROM clickstream LEFT JOIN
-- clickstream_codes ON clickstream.status = clickstream_codes.code; CREATE TABLE
-- ENRICHED_ERROR_CODES_COUNT AS SELECT code, definition, WINDOWSTART AS EVENT_TS, COUNT(*) AS
-- count FROM ENRICHED_ERROR_CODES WINDOW TUMBLING (size 30 second) GROUP BY code, definition
-- HAVING COUNT(*) > 1
-- Differs in shape, not in result: the codes topic has no time to version its rows by, and a
-- regular join's result is no longer a time attribute a window could read, so the clicks are
-- counted per status in the window first and the counts joined to the codes table (a regular
-- join: an updating result, a definition that changes replaces its rows). A status missing from
-- the table has a NULL code, which ksqlDB's GROUP BY drops: hence the INNER join.
CREATE TABLE enriched_error_codes_count (
    code INT,
    definition STRING,
    event_ts TIMESTAMP_LTZ(3),
    `count` BIGINT,
    PRIMARY KEY (code, event_ts) NOT ENFORCED
) WITH (
    {results[enriched_error_codes_count]}
);

INSERT INTO enriched_error_codes_count
SELECT k.code, k.definition, s.event_ts, s.clicks AS `count`
FROM (
    SELECT status, window_start AS event_ts, COUNT(*) AS clicks
    FROM TABLE(TUMBLE(TABLE clickstream, DESCRIPTOR(ts), INTERVAL '30' SECOND))
    GROUP BY status, window_start, window_end
    HAVING COUNT(*) > 1
) AS s
JOIN clickstream_codes AS k ON s.status = k.code;

-- How many bytes does each user download per minute? (the seed's own task, "Bandwidth use")
-- ksqlDB: CREATE TABLE BYTES_PER_MIN AS select USERID, SUM(BYTES), WINDOWSTART as EVENT_TS
-- FROM USER_CLICKSTREAM window TUMBLING (size 60 second) GROUP BY USERID
CREATE TABLE bytes_per_min (
    userid INT,
    event_ts TIMESTAMP_LTZ(3),
    `bytes` BIGINT,
    PRIMARY KEY (userid, event_ts) NOT ENFORCED
) WITH (
    {results[bytes_per_min]}
);

INSERT INTO bytes_per_min
SELECT userid, window_start AS event_ts, SUM(`bytes`) AS `bytes`
FROM TABLE(TUMBLE(TABLE user_clickstream, DESCRIPTOR(ts), INTERVAL '60' SECOND))
GROUP BY userid, window_start, window_end;

-- Which user and city is behind each IP address, with how many hits a minute?
-- ksqlDB: CREATE TABLE USER_IP_ACTIVITY AS SELECT username, ip, city, WINDOWSTART AS EVENT_TS,
-- COUNT(*) AS count FROM USER_CLICKSTREAM WINDOW TUMBLING (size 60 second)
-- GROUP BY username, ip, city HAVING COUNT(*) > 1
CREATE TABLE user_ip_activity (
    username STRING,
    ip STRING,
    city STRING,
    event_ts TIMESTAMP_LTZ(3),
    `count` BIGINT,
    PRIMARY KEY (username, ip, city, event_ts) NOT ENFORCED
) WITH (
    {results[user_ip_activity]}
);

INSERT INTO user_ip_activity
SELECT username, ip, city, window_start AS event_ts, COUNT(*) AS `count`
FROM TABLE(TUMBLE(TABLE user_clickstream, DESCRIPTOR(ts), INTERVAL '60' SECOND))
WHERE username IS NOT NULL AND ip IS NOT NULL AND city IS NOT NULL
GROUP BY username, ip, city, window_start, window_end
HAVING COUNT(*) > 1;

-- How many hits and kilobytes does each user's session have (a session ends after five minutes
-- without a click)?
-- ksqlDB: CREATE TABLE CLICK_USER_SESSIONS AS SELECT username, WINDOWEND AS EVENT_TS, count(*) AS
-- events FROM USER_CLICKSTREAM window SESSION (300 second) GROUP BY username; and PER_USER_KBYTES
-- AS SELECT username, sum(bytes)/1024 AS kbytes ... window SESSION (300 second) GROUP BY username
-- A ksqlDB session ends at its last click (WINDOWEND); Flink's window_end is the last click plus
-- the gap, so EVENT_TS is the last click, MAX(ts).
CREATE TABLE click_user_sessions (
    username STRING,
    session_start TIMESTAMP_LTZ(3),
    event_ts TIMESTAMP_LTZ(3),
    events BIGINT,
    kbytes BIGINT,
    PRIMARY KEY (username, session_start) NOT ENFORCED
) WITH (
    {results[click_user_sessions]}
);

INSERT INTO click_user_sessions
SELECT username, window_start AS session_start, MAX(ts) AS event_ts, COUNT(*) AS events,
    SUM(`bytes`) / 1024 AS kbytes
FROM TABLE(SESSION(TABLE user_clickstream PARTITION BY username, DESCRIPTOR(ts), INTERVAL '5' MINUTE))
WHERE username IS NOT NULL
GROUP BY username, window_start, window_end;

-- How active is each city per minute: hits, distinct users, kilobytes? (not a statement of the
-- seed: its dashboard reads the city off USER_IP_ACTIVITY; issue 14 asks for it per city)
CREATE TABLE city_activity (
    city STRING,
    event_ts TIMESTAMP_LTZ(3),
    hits BIGINT,
    users BIGINT,
    kbytes BIGINT,
    PRIMARY KEY (city, event_ts) NOT ENFORCED
) WITH (
    {results[city_activity]}
);

INSERT INTO city_activity
SELECT city, window_start AS event_ts, COUNT(*) AS hits, COUNT(DISTINCT userid) AS users,
    SUM(`bytes`) / 1024 AS kbytes
FROM TABLE(TUMBLE(TABLE user_clickstream, DESCRIPTOR(ts), INTERVAL '60' SECOND))
WHERE city IS NOT NULL
GROUP BY city, window_start, window_end;
