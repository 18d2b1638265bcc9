-- Clean reference schema: a small shop, designed so that every schema (SCH001–SCH011) and indexes
-- (IDX001–IDX007) check passes. Loaded with psql (autocommit) into an empty database.
--
-- Design rules it follows on purpose:
--   bigint identity primary keys; FK columns have the referenced column's exact type and a btree index
--   whose key columns start with them; money is numeric with CHECK (>= 0); quantities carry CHECKs;
--   timestamptz everywhere; no UNLOGGED table; no duplicate or prefix-redundant index.
--
-- Data: enough rows that indexes pass the 1 MiB floors used by the "tuned" test config, loaded after
-- the indexes exist (so no index build or FK validation seq-scans a table), then index lookups so that
-- every large table is read through its indexes.

CREATE SCHEMA shop;
CREATE SCHEMA audit;

CREATE DOMAIN shop.nonnegative_money AS numeric(12, 2) CHECK (VALUE >= 0);

CREATE TABLE shop.customers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text        NOT NULL UNIQUE,
    full_name   text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shop.addresses (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  bigint      NOT NULL REFERENCES shop.customers (id),
    line1        text        NOT NULL,
    city         text        NOT NULL,
    country_code char(2)     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX addresses_customer_id_idx ON shop.addresses (customer_id);

CREATE TABLE shop.categories (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id bigint REFERENCES shop.categories (id),
    name      text   NOT NULL UNIQUE
);
CREATE INDEX categories_parent_id_idx ON shop.categories (parent_id);

CREATE TABLE shop.suppliers (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text   NOT NULL UNIQUE
);

CREATE TABLE shop.products (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    supplier_id  bigint         NOT NULL REFERENCES shop.suppliers (id),
    sku          text           NOT NULL UNIQUE,
    name         text           NOT NULL,
    unit_price   numeric(12, 2) NOT NULL CHECK (unit_price >= 0),
    weight_grams integer        NOT NULL,
    created_at   timestamptz    NOT NULL DEFAULT now()
);
CREATE INDEX products_supplier_id_idx ON shop.products (supplier_id);

CREATE TABLE shop.product_categories (
    product_id  bigint NOT NULL REFERENCES shop.products (id),
    category_id bigint NOT NULL REFERENCES shop.categories (id),
    PRIMARY KEY (product_id, category_id)
);
CREATE INDEX product_categories_category_id_idx ON shop.product_categories (category_id);

CREATE TABLE shop.warehouses (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code text   NOT NULL UNIQUE,
    name text   NOT NULL
);

CREATE TABLE shop.inventory (
    warehouse_id bigint  NOT NULL REFERENCES shop.warehouses (id),
    product_id   bigint  NOT NULL REFERENCES shop.products (id),
    quantity     integer NOT NULL CHECK (quantity >= 0),
    PRIMARY KEY (warehouse_id, product_id)
);
CREATE INDEX inventory_product_id_idx ON shop.inventory (product_id);

CREATE TABLE shop.orders (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id         bigint         NOT NULL REFERENCES shop.customers (id),
    shipping_address_id bigint         REFERENCES shop.addresses (id),
    status              text           NOT NULL DEFAULT 'new',
    total_amount        numeric(12, 2) NOT NULL CHECK (total_amount >= 0),
    created_at          timestamptz    NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_id_idx ON shop.orders (customer_id);
CREATE INDEX orders_shipping_address_id_idx ON shop.orders (shipping_address_id);
CREATE INDEX orders_created_at_idx ON shop.orders (created_at);

CREATE TABLE shop.order_items (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   bigint         NOT NULL REFERENCES shop.orders (id),
    product_id bigint         NOT NULL REFERENCES shop.products (id),
    quantity   integer        NOT NULL CHECK (quantity > 0),
    unit_price numeric(12, 2) NOT NULL CHECK (unit_price >= 0)
);
CREATE INDEX order_items_order_id_idx ON shop.order_items (order_id);
CREATE INDEX order_items_product_id_idx ON shop.order_items (product_id);

CREATE TABLE shop.payments (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id bigint                 NOT NULL REFERENCES shop.orders (id),
    amount   numeric(12, 2)         NOT NULL CHECK (amount >= 0),
    method   text                   NOT NULL,
    paid_at  timestamptz            NOT NULL DEFAULT now()
);
CREATE INDEX payments_order_id_idx ON shop.payments (order_id);

CREATE TABLE shop.refunds (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id bigint                 NOT NULL REFERENCES shop.payments (id),
    amount     shop.nonnegative_money NOT NULL,          -- the domain's CHECK forbids negatives (SCH008)
    created_at timestamptz            NOT NULL DEFAULT now()
);
CREATE INDEX refunds_payment_id_idx ON shop.refunds (payment_id);

CREATE TABLE shop.shipments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     bigint      NOT NULL REFERENCES shop.orders (id),
    warehouse_id bigint      NOT NULL REFERENCES shop.warehouses (id),
    shipped_at   timestamptz
);
CREATE INDEX shipments_order_id_idx ON shop.shipments (order_id);
CREATE INDEX shipments_warehouse_id_idx ON shop.shipments (warehouse_id);

CREATE TABLE shop.shipment_items (
    shipment_id   bigint  NOT NULL REFERENCES shop.shipments (id),
    order_item_id bigint  NOT NULL REFERENCES shop.order_items (id),
    quantity      integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (shipment_id, order_item_id)
);
CREATE INDEX shipment_items_order_item_id_idx ON shop.shipment_items (order_item_id);

CREATE TABLE shop.invoices (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id  bigint         NOT NULL UNIQUE REFERENCES shop.orders (id),   -- the UNIQUE index covers the FK
    tax       numeric(12, 2) NOT NULL CHECK (tax >= 0),
    issued_at timestamptz    NOT NULL DEFAULT now()
);

CREATE TABLE shop.coupons (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code     text          NOT NULL UNIQUE,
    discount numeric(5, 2) NOT NULL CHECK (discount >= 0 AND discount <= 100)
);

CREATE TABLE shop.order_coupons (
    order_id  bigint NOT NULL REFERENCES shop.orders (id),
    coupon_id bigint NOT NULL REFERENCES shop.coupons (id),
    PRIMARY KEY (order_id, coupon_id)
);
CREATE INDEX order_coupons_coupon_id_idx ON shop.order_coupons (coupon_id);

CREATE TABLE shop.reviews (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id  bigint      NOT NULL REFERENCES shop.products (id),
    customer_id bigint      NOT NULL REFERENCES shop.customers (id),
    rating      smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reviews_product_id_idx ON shop.reviews (product_id);
CREATE INDEX reviews_customer_id_idx ON shop.reviews (customer_id);

CREATE TABLE shop.carts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint      NOT NULL REFERENCES shop.customers (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX carts_customer_id_idx ON shop.carts (customer_id);

CREATE TABLE shop.cart_items (
    cart_id    bigint  NOT NULL REFERENCES shop.carts (id),
    product_id bigint  NOT NULL REFERENCES shop.products (id),
    qty        integer NOT NULL CHECK (qty > 0),
    PRIMARY KEY (cart_id, product_id)
);
CREATE INDEX cart_items_product_id_idx ON shop.cart_items (product_id);

CREATE TABLE shop.price_history (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id bigint         NOT NULL REFERENCES shop.products (id),
    price      numeric(12, 2) NOT NULL CHECK (price >= 0),
    valid_from timestamptz    NOT NULL
);
CREATE INDEX price_history_product_id_valid_from_idx ON shop.price_history (product_id, valid_from);

CREATE TABLE shop.employees (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    manager_id bigint REFERENCES shop.employees (id),
    email      text   NOT NULL UNIQUE,
    salary     numeric(12, 2) NOT NULL CHECK (salary > 0)
);
CREATE INDEX employees_manager_id_idx ON shop.employees (manager_id);

-- keeps updated_at honest: an enabled user trigger (SCH009 has something to judge)
CREATE FUNCTION shop.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER customers_touch BEFORE UPDATE ON shop.customers
    FOR EACH ROW EXECUTE FUNCTION shop.touch_updated_at();

-- a partitioned table: the PK includes the partition key, the FK is indexed on the parent
CREATE TABLE audit.events (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    customer_id bigint      NOT NULL REFERENCES shop.customers (id),
    kind        text        NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE audit.events_2024 PARTITION OF audit.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE audit.events_2025 PARTITION OF audit.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE audit.events_default PARTITION OF audit.events DEFAULT;
CREATE INDEX events_customer_id_idx ON audit.events (customer_id);

-- ------------------------------------------------------------------------------------------- data
INSERT INTO shop.suppliers (name) SELECT 'supplier ' || g FROM generate_series(1, 20) g;
INSERT INTO shop.categories (name) SELECT 'category ' || g FROM generate_series(1, 30) g;
INSERT INTO shop.warehouses (code, name) SELECT 'W' || g, 'warehouse ' || g FROM generate_series(1, 5) g;
INSERT INTO shop.customers (email, full_name)
    SELECT 'c' || g || '@example.com', 'customer ' || g FROM generate_series(1, 2000) g;
INSERT INTO shop.addresses (customer_id, line1, city, country_code)
    SELECT g, g || ' Main St', 'Springfield', 'US' FROM generate_series(1, 2000) g;
INSERT INTO shop.products (supplier_id, sku, name, unit_price, weight_grams)
    SELECT 1 + g % 20, 'SKU-' || g, 'product ' || g, (g % 500) + 0.99, 100 + g % 900
    FROM generate_series(1, 500) g;
INSERT INTO shop.product_categories (product_id, category_id) SELECT g, 1 + g % 30 FROM generate_series(1, 500) g;
INSERT INTO shop.inventory (warehouse_id, product_id, quantity) SELECT 1 + g % 5, g, g % 40 FROM generate_series(1, 500) g;
INSERT INTO shop.orders (customer_id, shipping_address_id, total_amount, created_at)
    SELECT 1 + g % 2000, 1 + g % 2000, (g % 1000) + 0.5, timestamptz '2025-01-01' + g * interval '1 minute'
    FROM generate_series(1, 60000) g;
INSERT INTO shop.order_items (order_id, product_id, quantity, unit_price)
    SELECT 1 + g % 60000, 1 + g % 500, 1 + g % 3, (g % 200) + 0.25 FROM generate_series(1, 30000) g;
INSERT INTO shop.payments (order_id, amount, method) SELECT g, (g % 1000) + 0.5, 'card' FROM generate_series(1, 500) g;
INSERT INTO shop.refunds (payment_id, amount) SELECT g, 1.5 FROM generate_series(1, 20) g;
INSERT INTO shop.employees (email, salary) SELECT 'e' || g || '@example.com', 50000 FROM generate_series(1, 10) g;
INSERT INTO audit.events (customer_id, kind, created_at)
    SELECT 1 + g % 2000, 'login', timestamptz '2024-06-01' + g * interval '1 hour' FROM generate_series(1, 500) g;

ANALYZE;

-- the application reads its large tables through their indexes
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM shop.orders WHERE created_at >= timestamptz '2025-01-20' AND created_at < timestamptz '2025-01-21';
SELECT count(*) FROM shop.orders WHERE customer_id = 42;
SELECT count(*) FROM shop.orders WHERE id = 4242;
SELECT count(*) FROM shop.order_items WHERE order_id = 4242;
SELECT count(*) FROM shop.customers WHERE email = 'c42@example.com';
SELECT count(*) FROM shop.addresses WHERE customer_id = 42;
RESET enable_seqscan;
RESET enable_bitmapscan;
