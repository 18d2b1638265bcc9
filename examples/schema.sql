-- VendHub example schema: a multi-tenant SaaS that runs fleets of vending machines.
--
-- Organizations (operators) own locations, machines, products and planograms (which product goes in
-- which slot of a machine model). Field operators refill machines and collect cash, technicians work
-- maintenance tickets, machines report telemetry, and every sale (with its cashless payment) lands
-- in vend.sales / vend.payments.
--
-- Plain SQL, no psql meta-commands: it can be applied with
--     psql -v ON_ERROR_STOP=1 -f examples/schema.sql
-- or by any driver that sends a multi-statement script, on a fresh database. Verified on PostgreSQL 15
-- and 18; it uses no syntax newer than PostgreSQL 13. Follow it with examples/roles.sql and seed.sql.
--
-- Like every schema that has been in production for a while, it is not perfect. The imperfections
-- below are planted ON PURPOSE so that the demo readiness report has real findings; everything
-- else is meant to pass the schema, index and security suites. Each line: check id, object, why.
--
-- PLANTED FINDINGS
--   IDX001  vend.refill_items(product_id)              FK without a supporting index
--   IDX001  vend.ticket_comments(author_id)            FK without a supporting index
--   IDX003  vend.idx_payments_sale_id                  duplicate of vend.payments_sale_id_idx (added again by a later migration)
--   IDX004  vend.sales_machine_id_idx                  redundant: leading prefix of vend.sales_machine_id_sold_at_idx
--   SCH003  vend.audit_log.id                          int4 primary key on a busy append-only table (2^31 ids)
--   SCH007  vend.price_changes.old_price               money stored as float8 (double precision)
--   SCH006  vend.legacy_imports.exported_at            timestamp without time zone (waived in examples/pgready.toml)
--   SCH001  vend.legacy_imports                        staging table without a primary key
--   SEC007  vend.close_stale_tickets(bigint,interval)  SECURITY DEFINER function without SET search_path
-- END PLANTED FINDINGS

CREATE SCHEMA vend;
COMMENT ON SCHEMA vend IS 'VendHub: vending-machine fleet management (example application for pytest-pgready)';

-- ---------------------------------------------------------------------------------------------
-- Tenants, people, permissions
-- ---------------------------------------------------------------------------------------------

CREATE TABLE vend.organizations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text        NOT NULL,
    slug            text        NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    plan            text        NOT NULL DEFAULT 'starter' CHECK (plan IN ('starter', 'growth', 'enterprise')),
    billing_email   text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vend.users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint      NOT NULL REFERENCES vend.organizations (id),
    email           text        NOT NULL UNIQUE CHECK (email = lower(email) AND position('@' IN email) > 1),
    full_name       text        NOT NULL,
    password_hash   text        NOT NULL,
    is_active       boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_login_at   timestamptz
);
CREATE INDEX users_organization_id_idx ON vend.users (organization_id);

CREATE TABLE vend.roles (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    description     text NOT NULL
);

CREATE TABLE vend.user_roles (
    user_id         bigint      NOT NULL REFERENCES vend.users (id) ON DELETE CASCADE,
    role_id         bigint      NOT NULL REFERENCES vend.roles (id),
    granted_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_id_idx ON vend.user_roles (role_id);

CREATE TABLE vend.api_keys (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint      NOT NULL REFERENCES vend.organizations (id),
    created_by      bigint      NOT NULL REFERENCES vend.users (id),
    name            text        NOT NULL,
    key_prefix      text        NOT NULL UNIQUE,
    key_hash        text        NOT NULL,
    scopes          text[]      NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz,
    expires_at      timestamptz,
    revoked_at      timestamptz,
    CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX api_keys_organization_id_idx ON vend.api_keys (organization_id);
CREATE INDEX api_keys_created_by_idx ON vend.api_keys (created_by);

-- ---------------------------------------------------------------------------------------------
-- Sites and machines
-- ---------------------------------------------------------------------------------------------

CREATE TABLE vend.locations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint       NOT NULL REFERENCES vend.organizations (id),
    name            text         NOT NULL,
    address_line    text         NOT NULL,
    city            text         NOT NULL,
    postal_code     text         NOT NULL,
    latitude        numeric(9,6) NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude       numeric(9,6) NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    timezone        text         NOT NULL DEFAULT 'Europe/Paris',
    created_at      timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name)
);

CREATE TABLE vend.machine_models (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    manufacturer    text    NOT NULL,
    model_name      text    NOT NULL,
    slot_count      integer NOT NULL CHECK (slot_count BETWEEN 1 AND 200),
    refrigerated    boolean NOT NULL DEFAULT false,
    UNIQUE (manufacturer, model_name)
);

-- ---------------------------------------------------------------------------------------------
-- Catalogue and planograms
-- ---------------------------------------------------------------------------------------------

CREATE TABLE vend.product_categories (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id       bigint REFERENCES vend.product_categories (id),
    name            text   NOT NULL UNIQUE
);
CREATE INDEX product_categories_parent_id_idx ON vend.product_categories (parent_id);

CREATE TABLE vend.suppliers (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint      NOT NULL REFERENCES vend.organizations (id),
    name            text        NOT NULL,
    contact_email   text,
    phone           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name)
);

CREATE TABLE vend.products (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint        NOT NULL REFERENCES vend.organizations (id),
    category_id     bigint        NOT NULL REFERENCES vend.product_categories (id),
    supplier_id     bigint        REFERENCES vend.suppliers (id),
    sku             text          NOT NULL,
    name            text          NOT NULL,
    price           numeric(12,2) NOT NULL CHECK (price >= 0),
    unit_cost       numeric(12,2) NOT NULL CHECK (unit_cost >= 0),
    is_active       boolean       NOT NULL DEFAULT true,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (organization_id, sku)
);
CREATE INDEX products_category_id_idx ON vend.products (category_id);
CREATE INDEX products_supplier_id_idx ON vend.products (supplier_id);

CREATE TABLE vend.planograms (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint      NOT NULL REFERENCES vend.organizations (id),
    machine_model_id bigint      NOT NULL REFERENCES vend.machine_models (id),
    name             text        NOT NULL,
    version          integer     NOT NULL DEFAULT 1 CHECK (version > 0),
    is_active        boolean     NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, machine_model_id, version)
);
CREATE INDEX planograms_machine_model_id_idx ON vend.planograms (machine_model_id);

CREATE TABLE vend.planogram_slots (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    planogram_id    bigint  NOT NULL REFERENCES vend.planograms (id) ON DELETE CASCADE,
    slot_code       text    NOT NULL CHECK (slot_code ~ '^[A-Z][0-9]{1,2}$'),
    product_id      bigint  NOT NULL REFERENCES vend.products (id),
    capacity        integer NOT NULL CHECK (capacity > 0),
    par_level       integer NOT NULL CHECK (par_level >= 0),
    CHECK (par_level <= capacity),
    UNIQUE (planogram_id, slot_code)
);
CREATE INDEX planogram_slots_product_id_idx ON vend.planogram_slots (product_id);

CREATE TABLE vend.machines (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint      NOT NULL REFERENCES vend.organizations (id),
    location_id      bigint      NOT NULL REFERENCES vend.locations (id),
    machine_model_id bigint      NOT NULL REFERENCES vend.machine_models (id),
    planogram_id     bigint      REFERENCES vend.planograms (id),
    serial_number    text        NOT NULL UNIQUE,
    status           text        NOT NULL DEFAULT 'active'
                                 CHECK (status IN ('active', 'offline', 'maintenance', 'retired')),
    installed_at     timestamptz NOT NULL,
    last_seen_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX machines_organization_id_status_idx ON vend.machines (organization_id, status);
CREATE INDEX machines_location_id_idx ON vend.machines (location_id);
CREATE INDEX machines_machine_model_id_idx ON vend.machines (machine_model_id);
CREATE INDEX machines_planogram_id_idx ON vend.machines (planogram_id);

-- Current stock of every slot of every machine (one row per machine and planogram slot).
CREATE TABLE vend.inventory (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    machine_id        bigint      NOT NULL REFERENCES vend.machines (id) ON DELETE CASCADE,
    planogram_slot_id bigint      NOT NULL REFERENCES vend.planogram_slots (id),
    product_id        bigint      NOT NULL REFERENCES vend.products (id),
    quantity          integer     NOT NULL CHECK (quantity >= 0),
    capacity          integer     NOT NULL CHECK (capacity > 0),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (quantity <= capacity),
    UNIQUE (machine_id, planogram_slot_id)
);
CREATE INDEX inventory_planogram_slot_id_idx ON vend.inventory (planogram_slot_id);
CREATE INDEX inventory_product_id_idx ON vend.inventory (product_id);

-- ---------------------------------------------------------------------------------------------
-- Field operations
-- ---------------------------------------------------------------------------------------------

CREATE TABLE vend.refills (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    machine_id      bigint      NOT NULL REFERENCES vend.machines (id),
    performed_by    bigint      NOT NULL REFERENCES vend.users (id),
    status          text        NOT NULL DEFAULT 'in_progress'
                                CHECK (status IN ('in_progress', 'completed', 'cancelled')),
    started_at      timestamptz NOT NULL,
    completed_at    timestamptz,
    notes           text,
    CHECK (completed_at IS NULL OR completed_at >= started_at),
    CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);
CREATE INDEX refills_machine_id_started_at_idx ON vend.refills (machine_id, started_at);
CREATE INDEX refills_performed_by_idx ON vend.refills (performed_by);

CREATE TABLE vend.refill_items (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    refill_id       bigint        NOT NULL REFERENCES vend.refills (id) ON DELETE CASCADE,
    product_id      bigint        NOT NULL REFERENCES vend.products (id),   -- planted IDX001: no index
    quantity        integer       NOT NULL CHECK (quantity > 0),
    unit_cost       numeric(12,2) NOT NULL CHECK (unit_cost >= 0)
);
CREATE INDEX refill_items_refill_id_idx ON vend.refill_items (refill_id);

CREATE TABLE vend.cash_collections (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    machine_id      bigint        NOT NULL REFERENCES vend.machines (id),
    collected_by    bigint        NOT NULL REFERENCES vend.users (id),
    collected_at    timestamptz   NOT NULL,
    coin_amount     numeric(12,2) NOT NULL CHECK (coin_amount >= 0),
    note_amount     numeric(12,2) NOT NULL CHECK (note_amount >= 0),
    total_amount    numeric(12,2) NOT NULL CHECK (total_amount >= 0),
    CHECK (total_amount = coin_amount + note_amount)
);
CREATE INDEX cash_collections_machine_id_collected_at_idx ON vend.cash_collections (machine_id, collected_at);
CREATE INDEX cash_collections_collected_by_idx ON vend.cash_collections (collected_by);

-- ---------------------------------------------------------------------------------------------
-- Sales and payments
-- ---------------------------------------------------------------------------------------------

-- location_id and organization_id are copied from the machine at sale time (a machine can move).
CREATE TABLE vend.sales (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint        NOT NULL REFERENCES vend.organizations (id),
    location_id     bigint        NOT NULL REFERENCES vend.locations (id),
    machine_id      bigint        NOT NULL REFERENCES vend.machines (id),
    product_id      bigint        NOT NULL REFERENCES vend.products (id),
    quantity        integer       NOT NULL DEFAULT 1 CHECK (quantity > 0),
    unit_price      numeric(12,2) NOT NULL CHECK (unit_price >= 0),
    total_amount    numeric(12,2) NOT NULL CHECK (total_amount >= 0),
    tender          text          NOT NULL CHECK (tender IN ('cash', 'card', 'mobile')),
    sold_at         timestamptz   NOT NULL,
    CHECK (total_amount = quantity * unit_price)
);
CREATE INDEX sales_organization_id_sold_at_idx ON vend.sales (organization_id, sold_at);
CREATE INDEX sales_location_id_sold_at_idx ON vend.sales (location_id, sold_at);
CREATE INDEX sales_machine_id_sold_at_idx ON vend.sales (machine_id, sold_at);
CREATE INDEX sales_product_id_idx ON vend.sales (product_id);
-- planted IDX004: the ORM's FK index, left behind when (machine_id, sold_at) was added
CREATE INDEX sales_machine_id_idx ON vend.sales (machine_id);

-- Cashless payments only: cash goes to the coin box and is counted in vend.cash_collections.
CREATE TABLE vend.payments (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sale_id         bigint        NOT NULL REFERENCES vend.sales (id),
    amount          numeric(12,2) NOT NULL CHECK (amount > 0),
    currency        char(3)       NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
    method          text          NOT NULL CHECK (method IN ('card', 'mobile')),
    provider        text          NOT NULL,
    provider_ref    text          NOT NULL UNIQUE,
    status          text          NOT NULL CHECK (status IN ('authorized', 'captured', 'refunded', 'failed')),
    refunded_amount numeric(12,2) NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    captured_at     timestamptz,
    CHECK (refunded_amount <= amount)
);
CREATE INDEX payments_sale_id_idx ON vend.payments (sale_id);
-- planted IDX003: the same index again, from a "performance" migration a year later
CREATE INDEX idx_payments_sale_id ON vend.payments (sale_id);

CREATE TABLE vend.price_changes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id      bigint           NOT NULL REFERENCES vend.products (id),
    old_price       double precision NOT NULL CHECK (old_price >= 0),   -- planted SCH007: float money
    new_price       numeric(12,2)    NOT NULL CHECK (new_price >= 0),
    changed_by      bigint           NOT NULL REFERENCES vend.users (id),
    changed_at      timestamptz      NOT NULL DEFAULT now(),
    reason          text
);
CREATE INDEX price_changes_product_id_changed_at_idx ON vend.price_changes (product_id, changed_at);
CREATE INDEX price_changes_changed_by_idx ON vend.price_changes (changed_by);

-- ---------------------------------------------------------------------------------------------
-- Maintenance
-- ---------------------------------------------------------------------------------------------

CREATE TABLE vend.maintenance_tickets (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint      NOT NULL REFERENCES vend.organizations (id),
    machine_id      bigint      NOT NULL REFERENCES vend.machines (id),
    opened_by       bigint      NOT NULL REFERENCES vend.users (id),
    assigned_to     bigint      REFERENCES vend.users (id),
    status          text        NOT NULL DEFAULT 'open'
                                CHECK (status IN ('open', 'in_progress', 'resolved', 'closed')),
    priority        text        NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    title           text        NOT NULL,
    description     text,
    opened_at       timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    CHECK (resolved_at IS NULL OR resolved_at >= opened_at),
    CHECK ((status IN ('resolved', 'closed')) = (resolved_at IS NOT NULL))
);
CREATE INDEX maintenance_tickets_org_status_opened_idx ON vend.maintenance_tickets (organization_id, status, opened_at);
CREATE INDEX maintenance_tickets_machine_id_idx ON vend.maintenance_tickets (machine_id);
CREATE INDEX maintenance_tickets_opened_by_idx ON vend.maintenance_tickets (opened_by);
CREATE INDEX maintenance_tickets_assigned_to_idx ON vend.maintenance_tickets (assigned_to);

CREATE TABLE vend.ticket_comments (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id       bigint      NOT NULL REFERENCES vend.maintenance_tickets (id) ON DELETE CASCADE,
    author_id       bigint      NOT NULL REFERENCES vend.users (id),   -- planted IDX001: no index
    body            text        NOT NULL CHECK (length(body) > 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_comments_ticket_id_created_at_idx ON vend.ticket_comments (ticket_id, created_at);

-- ---------------------------------------------------------------------------------------------
-- Audit and telemetry
-- ---------------------------------------------------------------------------------------------

-- planted SCH003: created as `serial` in the first migration and never widened; it is the busiest
-- append-only table after telemetry.
CREATE TABLE vend.audit_log (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id bigint      NOT NULL REFERENCES vend.organizations (id),
    actor_user_id   bigint      REFERENCES vend.users (id),
    action          text        NOT NULL,
    entity_type     text        NOT NULL,
    entity_id       bigint,
    details         jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_organization_id_created_at_idx ON vend.audit_log (organization_id, created_at);
CREATE INDEX audit_log_actor_user_id_idx ON vend.audit_log (actor_user_id);

-- Machine telemetry, partitioned by month. A cron job creates next month's partition; rows that
-- arrive before it exists land in the default partition.
CREATE TABLE vend.telemetry_events (
    id              bigint GENERATED ALWAYS AS IDENTITY,
    machine_id      bigint       NOT NULL REFERENCES vend.machines (id),
    created_at      timestamptz  NOT NULL,
    event_type      text         NOT NULL
                                 CHECK (event_type IN ('heartbeat', 'temperature', 'door_open', 'door_close',
                                                       'error', 'coin_jam', 'low_stock', 'power_loss')),
    temperature_c   numeric(5,2) CHECK (temperature_c BETWEEN -40 AND 80),
    payload         jsonb        NOT NULL DEFAULT '{}',
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX telemetry_events_machine_id_created_at_idx ON vend.telemetry_events (machine_id, created_at);

CREATE TABLE vend.telemetry_events_2025_09 PARTITION OF vend.telemetry_events
    FOR VALUES FROM ('2025-09-01 00:00:00+00') TO ('2025-10-01 00:00:00+00');
CREATE TABLE vend.telemetry_events_2025_10 PARTITION OF vend.telemetry_events
    FOR VALUES FROM ('2025-10-01 00:00:00+00') TO ('2025-11-01 00:00:00+00');
CREATE TABLE vend.telemetry_events_2025_11 PARTITION OF vend.telemetry_events
    FOR VALUES FROM ('2025-11-01 00:00:00+00') TO ('2025-12-01 00:00:00+00');
CREATE TABLE vend.telemetry_events_default PARTITION OF vend.telemetry_events DEFAULT;

-- ---------------------------------------------------------------------------------------------
-- Legacy import staging
-- ---------------------------------------------------------------------------------------------

-- planted SCH001 (no primary key) and SCH006 (exported_at is a naive local time, as written by the
-- previous vendor's CSV export). Rows are loaded with COPY and then replayed into vend.sales.
CREATE TABLE vend.legacy_imports (
    source_file     text        NOT NULL,
    line_no         integer     NOT NULL CHECK (line_no > 0),
    machine_serial  text        NOT NULL,
    exported_at     timestamp   NOT NULL,
    raw_record      jsonb       NOT NULL,
    loaded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX legacy_imports_source_file_line_no_idx ON vend.legacy_imports (source_file, line_no);

-- ---------------------------------------------------------------------------------------------
-- Functions and triggers
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION vend.set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER machines_set_updated_at BEFORE UPDATE ON vend.machines
    FOR EACH ROW EXECUTE FUNCTION vend.set_updated_at();
CREATE TRIGGER products_set_updated_at BEFORE UPDATE ON vend.products
    FOR EACH ROW EXECUTE FUNCTION vend.set_updated_at();
CREATE TRIGGER inventory_set_updated_at BEFORE UPDATE ON vend.inventory
    FOR EACH ROW EXECUTE FUNCTION vend.set_updated_at();

-- The application may append to the audit log only through this function (done right: it pins
-- search_path, so a caller cannot shadow objects it uses).
CREATE FUNCTION vend.write_audit(p_organization_id bigint, p_actor_user_id bigint, p_action text,
                                 p_entity_type text, p_entity_id bigint, p_details jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE sql SECURITY DEFINER
SET search_path = vend, pg_temp
AS $$
    INSERT INTO vend.audit_log (organization_id, actor_user_id, action, entity_type, entity_id, details)
    VALUES (p_organization_id, p_actor_user_id, p_action, p_entity_type, p_entity_id, p_details)
    RETURNING id;
$$;

-- planted SEC007: SECURITY DEFINER without SET search_path. It runs with its owner's rights and the
-- CALLER's search_path, so a caller can put a schema of their own first and hijack unqualified names.
CREATE FUNCTION vend.close_stale_tickets(p_organization_id bigint, p_older_than interval DEFAULT '30 days')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $$
DECLARE
    n integer;
BEGIN
    UPDATE vend.maintenance_tickets
       SET status = 'closed', resolved_at = now()
     WHERE organization_id = p_organization_id
       AND status IN ('open', 'in_progress')
       AND opened_at < now() - p_older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

COMMENT ON TABLE vend.sales IS 'One row per vend; cashless ones have a row in vend.payments';
COMMENT ON TABLE vend.inventory IS 'Current stock per machine slot, decremented by every sale, reset by refills';
COMMENT ON TABLE vend.telemetry_events IS 'Machine telemetry, monthly RANGE partitions on created_at';
COMMENT ON TABLE vend.legacy_imports IS 'Staging for the one-off import of the previous vendor''s CSV exports';
