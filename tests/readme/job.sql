-- Tianchi user behaviour (seed 000), read from the embedded log
CREATE TABLE user_behavior (
    user_id BIGINT,
    item_id BIGINT,
    category_id BIGINT,
    behavior STRING,
    ts TIMESTAMP(3),
    proctime AS PROCTIME(),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'log', 'topic' = 'user_behavior', 'format' = 'json');

SELECT user_idd, COUNT(*) FROM user_behavior GROUP BY user_id;
