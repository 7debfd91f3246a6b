-- Seed 004 (ashm8206/kafka_flink, "checkout attribution"): for every checkout, the click that led
-- to it: the earliest click of its user on its product in the hour before (first-click
-- attribution), with the user's name from the shop's users table, logged into a table of
-- attributed checkouts. The statements of the seed's code/source/*.sql,
-- code/process/attribute_checkouts.sql and code/sink/attributed_checkouts.sql as written; the
-- braced places are filled in where the pipeline runs (`clickstream.pipelines.load`): the embedded
-- log or Kafka for the events, a database through jdbc for the users and the result (the seed's
-- PostgreSQL). The options that say where data lives and who connects (the seed's broker
-- `kafka:9092`, `'properties.group.id' = 'flink-consumer-group-1'`, its jdbc url, `username`,
-- `password` and `driver`) are the places'.

CREATE TABLE checkouts (
    checkout_id STRING,
    user_id INT,
    product_id STRING,
    payment_method STRING,
    total_amount DECIMAL(5, 2),
    shipping_address STRING,
    billing_address STRING,
    user_agent STRING,
    ip_address STRING,
    datetime_occured TIMESTAMP(3),
    processing_time AS PROCTIME(),
    WATERMARK FOR datetime_occured AS datetime_occured - INTERVAL '15' SECOND
) WITH (
    {topics[checkouts]},
    'scan.startup.mode' = 'earliest-offset',
    'format' = 'json'
);

CREATE TABLE clicks (
    click_id STRING,
    user_id INT,
    product_id STRING,
    product STRING,
    price DOUBLE,
    url STRING,
    user_agent STRING,
    ip_address STRING,
    datetime_occured TIMESTAMP(3),
    processing_time AS PROCTIME(),
    WATERMARK FOR datetime_occured AS datetime_occured - INTERVAL '15' SECOND
) WITH (
    {topics[clicks]},
    'scan.startup.mode' = 'earliest-offset',
    'format' = 'json'
);

CREATE TEMPORARY TABLE users (
    id INT,
    username STRING,
    PASSWORD STRING,
    PRIMARY KEY (id) NOT ENFORCED
) WITH (
    {dimensions[users]}
);

CREATE TABLE attributed_checkouts (
    checkout_id STRING,
    user_name STRING,
    click_id STRING,
    product_id STRING,
    payment_method STRING,
    total_amount DECIMAL(5, 2),
    shipping_address STRING,
    billing_address STRING,
    user_agent STRING,
    ip_address STRING,
    checkout_time TIMESTAMP(3),
    click_time TIMESTAMP,
    PRIMARY KEY (checkout_id) NOT ENFORCED
) WITH (
    {results[attributed_checkouts]}
);

INSERT INTO
    attributed_checkouts
SELECT
    checkout_id,
    user_name,
    click_id,
    product_id,
    payment_method,
    total_amount,
    shipping_address,
    billing_address,
    user_agent,
    ip_address,
    checkout_time,
    click_time
FROM
    (
        SELECT
            co.checkout_id,
            u.username AS user_name,
            cl.click_id,
            co.product_id,
            co.payment_method,
            co.total_amount,
            co.shipping_address,
            co.billing_address,
            co.user_agent,
            co.ip_address,
            co.datetime_occured AS checkout_time,
            cl.datetime_occured AS click_time,
            ROW_NUMBER() OVER (
                PARTITION BY cl.user_id,
                cl.product_id
                ORDER BY
                    cl.datetime_occured
            ) AS rn
        FROM
            checkouts AS co
            JOIN users FOR SYSTEM_TIME AS OF co.processing_time AS u ON co.user_id = u.id
            LEFT JOIN clicks AS cl ON co.user_id = cl.user_id
            AND co.product_id = cl.product_id
            AND co.datetime_occured BETWEEN cl.datetime_occured
            AND cl.datetime_occured + INTERVAL '1' HOUR
    )
WHERE
    rn = 1;
