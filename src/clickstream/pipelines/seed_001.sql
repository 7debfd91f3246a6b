-- Seed 001 (E-commerce real-time analytics): an online shop's user actions, purchases and
-- inventory updates, and the analyses the seed names: page views per user and page (its own
-- query), revenue per minute, top-selling products, low-inventory alerts, most viewed products,
-- conversion rates (view -> cart -> purchase) and a simple recommendation: "viewed this, also
-- viewed" and "viewed this, then bought". The braced places are filled in where the pipeline runs
-- (`clickstream.pipelines.load`): the embedded log or Kafka, SQLite or PostgreSQL.
--
-- Where this differs from the seed: its `# (1)` and `# derived field` notes are the web page's
-- annotations, not SQL (Flink has no `#` comments), so they are `--` comments here; the simulator
-- writes `timestamp_sec` (a physical column in the seed's table, which Flink reads from the JSON:
-- without it the rowtime is NULL and Flink fails the job). The seed defines only
-- `user_page_views`; the purchases and the inventory are read by tables of the same shape.

CREATE TABLE user_page_views (
    event_type STRING,
    user_id STRING,
    action STRING,
    page STRING,
    product STRING,
    timestamp_str STRING,        -- (1) the event timestamp is a string created by the Kafka producer
    timestamp_sec TIMESTAMP(3),  -- derived field
    WATERMARK FOR timestamp_sec AS TO_TIMESTAMP(timestamp_str, 'yyyy-MM-dd HH:mm:ss') - INTERVAL '5' SECOND
) WITH (
    {topics[ecommerce_events]},
    'properties.group.id' = 'sql-flink-grp-1',
    'properties.auto.offset.reset' = 'earliest',
    'format' = 'json'
);

-- The purchases travel on the same topic (event_type 'purchase'), with what was paid.
CREATE TABLE purchases (
    event_type STRING,
    user_id STRING,
    product STRING,
    quantity INT,
    price DECIMAL(10, 2),
    amount DECIMAL(10, 2),
    timestamp_str STRING,
    timestamp_sec TIMESTAMP(3),
    WATERMARK FOR timestamp_sec AS TO_TIMESTAMP(timestamp_str, 'yyyy-MM-dd HH:mm:ss') - INTERVAL '5' SECOND
) WITH (
    {topics[ecommerce_events]},
    'properties.group.id' = 'sql-flink-grp-1',
    'properties.auto.offset.reset' = 'earliest',
    'format' = 'json'
);

-- Stock changes: a sale (negative quantity) or a restock, with the level after it.
CREATE TABLE inventory_updates (
    event_type STRING,
    product STRING,
    description STRING,
    quantity INT,
    stock INT,
    timestamp_str STRING,
    timestamp_sec TIMESTAMP(3),
    WATERMARK FOR timestamp_sec AS TO_TIMESTAMP(timestamp_str, 'yyyy-MM-dd HH:mm:ss') - INTERVAL '5' SECOND
) WITH (
    {topics[ecommerce_inventory]},
    'properties.group.id' = 'sql-flink-grp-1',
    'properties.auto.offset.reset' = 'earliest',
    'format' = 'json'
);

-- How many pages of each kind has each user seen? The seed's query as written, but for the
-- purchases on the same topic: they have no page, and a NULL cannot go into the result's key
-- (Flink fails the job: "Column 'page' is NOT NULL, however, a null value is being written").
CREATE TABLE page_views_per_user (
    user_id STRING,
    page STRING,
    page_views BIGINT,
    PRIMARY KEY (user_id, page) NOT ENFORCED
) WITH (
    {results[page_views_per_user]}
);

INSERT INTO page_views_per_user
SELECT
    user_id,
    page,
    COUNT(page) AS page_views
FROM
    user_page_views
WHERE
    event_type = 'user_action'
GROUP BY
    user_id,
    page;

-- What is the shop earning, minute by minute?
CREATE TABLE revenue_per_minute (
    window_start TIMESTAMP(3),
    window_end TIMESTAMP(3),
    orders BIGINT,
    items_sold INT,
    revenue DECIMAL(38, 2)
) WITH (
    {results[revenue_per_minute]}
);

INSERT INTO revenue_per_minute
SELECT window_start, window_end, COUNT(*) AS orders, SUM(quantity) AS items_sold, SUM(amount) AS revenue
FROM TABLE(TUMBLE(TABLE purchases, DESCRIPTOR(timestamp_sec), INTERVAL '1' MINUTE))
WHERE event_type = 'purchase'
GROUP BY window_start, window_end;

-- Which five products sell the most units so far? (Ties go to the name first in order.)
CREATE TABLE top_selling_products (
    rn BIGINT,
    product STRING,
    units_sold INT,
    revenue DECIMAL(38, 2),
    PRIMARY KEY (rn) NOT ENFORCED
) WITH (
    {results[top_selling_products]}
);

INSERT INTO top_selling_products
SELECT rn, product, units_sold, revenue
FROM (
    SELECT *, ROW_NUMBER() OVER (ORDER BY units_sold DESC, product) AS rn
    FROM (
        SELECT product, SUM(quantity) AS units_sold, SUM(amount) AS revenue
        FROM purchases
        WHERE event_type = 'purchase'
        GROUP BY product
    )
)
WHERE rn <= 5;

-- Which products are running out? An alert for every stock change that leaves fewer than 10.
CREATE TABLE low_inventory_alerts (
    product STRING,
    stock INT,
    alert_time TIMESTAMP(3)
) WITH (
    {results[low_inventory_alerts]}
);

INSERT INTO low_inventory_alerts
SELECT product, stock, timestamp_sec AS alert_time
FROM inventory_updates
WHERE event_type = 'inventory_update' AND stock < 10;

-- Which three products are viewed the most, hour by hour?
CREATE TABLE most_viewed_products (
    window_start TIMESTAMP(3),
    window_end TIMESTAMP(3),
    rn BIGINT,
    product STRING,
    view_count BIGINT
) WITH (
    {results[most_viewed_products]}
);

INSERT INTO most_viewed_products
SELECT window_start, window_end, rn, product, view_count
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY view_count DESC, product) AS rn
    FROM (
        SELECT window_start, window_end, product, COUNT(*) AS view_count
        FROM TABLE(TUMBLE(TABLE user_page_views, DESCRIPTOR(timestamp_sec), INTERVAL '1' HOUR))
        WHERE action = 'page_view'
        GROUP BY window_start, window_end, product
    )
)
WHERE rn <= 3;

-- Of the users who viewed a product, how many put it in their cart, and how many bought it?
CREATE TABLE conversion_rates (
    product STRING,
    viewers BIGINT,
    carted BIGINT,
    buyers BIGINT,
    view_to_cart DOUBLE,
    cart_to_purchase DOUBLE,
    view_to_purchase DOUBLE,
    PRIMARY KEY (product) NOT ENFORCED
) WITH (
    {results[conversion_rates]}
);

CREATE VIEW funnel AS
SELECT
    product,
    COUNT(DISTINCT CASE WHEN action = 'page_view' THEN user_id END) AS viewers,
    COUNT(DISTINCT CASE WHEN action = 'add_to_cart' THEN user_id END) AS carted,
    COUNT(DISTINCT CASE WHEN event_type = 'purchase' THEN user_id END) AS buyers
FROM user_page_views
GROUP BY product;

INSERT INTO conversion_rates
SELECT
    product, viewers, carted, buyers,
    CAST(carted AS DOUBLE) / NULLIF(viewers, 0) AS view_to_cart,
    CAST(buyers AS DOUBLE) / NULLIF(carted, 0) AS cart_to_purchase,
    CAST(buyers AS DOUBLE) / NULLIF(viewers, 0) AS view_to_purchase
FROM funnel;

-- "Users who viewed this also viewed": for each product, the three other products most often
-- viewed by the same user within half an hour of it.
CREATE TABLE recommendations (
    product STRING,
    rn BIGINT,
    also_viewed STRING,
    co_views BIGINT,
    PRIMARY KEY (product, rn) NOT ENFORCED
) WITH (
    {results[recommendations]}
);

CREATE VIEW co_views AS
SELECT v.product, o.product AS also_viewed
FROM user_page_views v, user_page_views o
WHERE v.user_id = o.user_id
    AND v.product <> o.product
    AND v.action = 'page_view' AND o.action = 'page_view'
    AND o.timestamp_sec BETWEEN v.timestamp_sec - INTERVAL '30' MINUTE AND v.timestamp_sec + INTERVAL '30' MINUTE;

INSERT INTO recommendations
SELECT product, rn, also_viewed, co_views
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY product ORDER BY co_views DESC, also_viewed) AS rn
    FROM (
        SELECT product, also_viewed, COUNT(*) AS co_views
        FROM co_views
        GROUP BY product, also_viewed
    )
)
WHERE rn <= 3;

-- "Users who viewed this also bought": for each product, the three other products most often
-- bought by users within an hour after they viewed it.
CREATE TABLE also_bought (
    product STRING,
    rn BIGINT,
    bought STRING,
    times_bought BIGINT,
    PRIMARY KEY (product, rn) NOT ENFORCED
) WITH (
    {results[also_bought]}
);

INSERT INTO also_bought
SELECT product, rn, bought, times_bought
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY product ORDER BY times_bought DESC, bought) AS rn
    FROM (
        SELECT v.product, p.product AS bought, COUNT(*) AS times_bought
        FROM user_page_views v, purchases p
        WHERE v.user_id = p.user_id
            AND v.product <> p.product
            AND v.action = 'page_view' AND p.event_type = 'purchase'
            AND p.timestamp_sec BETWEEN v.timestamp_sec AND v.timestamp_sec + INTERVAL '1' HOUR
        GROUP BY v.product, p.product
    )
)
WHERE rn <= 3;
