-- Warehouse tables: what the loader writes. Views over them (staging, rules, marts) are built from the other folders.
-- Money is DECIMAL(18,2) yuan. Every raw row keeps its source file and Excel row number.

create table if not exists source_file_log (
    file_id integer primary key,
    file_name varchar not null,
    file_path varchar,
    sha256 varchar not null unique,
    kind varchar,
    status varchar not null,  -- loaded | rejected
    error varchar,
    sheet varchar,
    encoding varchar,
    units varchar,
    fiscal_year integer,
    rows_read bigint not null,
    rows_valid bigint not null,
    rows_rejected bigint not null,
    rows_skipped bigint not null,
    control_total decimal(18, 2),
    parsed_total decimal(18, 2),
    latest_date date,
    run_id varchar,
    loaded_at timestamp with time zone
);

-- duplicate_files: a file whose bytes equal a file already read under another name (a copy such as 副本.xlsx).
-- It is not read again; one row per (name, content), so the same copy found every night is recorded once.
create table if not exists duplicate_files (
    file_name varchar not null,
    sha256 varchar not null,
    same_as varchar not null,  -- source_file_log.file_name of the file with these bytes
    message varchar not null,
    run_id varchar,
    first_seen timestamp with time zone,
    primary key (file_name, sha256)
);

create table if not exists raw_payments (
    file_id integer not null,
    source_file varchar not null,
    source_row integer not null,
    pay_cert_no varchar not null,
    pay_date date not null,
    agency_code varchar not null,
    agency_name varchar,
    pro_code varchar not null,
    pro_name varchar,
    bgt_doc_no varchar not null,
    bgt_source varchar,
    exp_func_code varchar,
    exp_func_name varchar,
    dep_bgt_eco_code varchar,
    gov_bgt_eco_code varchar,
    fund_type varchar,
    pay_type varchar,
    payee_acct_name varchar not null,
    payee_acct_no varchar,
    payee_bank varchar,
    pay_amt decimal(18, 2) not null,
    use_des varchar,
    status varchar,
    contract_no varchar,
    ori_pay_cert_no varchar
);

create table if not exists raw_refunds (
    file_id integer not null,
    source_file varchar not null,
    source_row integer not null,
    refund_no varchar not null,
    ori_pay_cert_no varchar not null,
    refund_date date not null,
    refund_amt decimal(18, 2) not null,
    reason varchar,
    agency_code varchar
);

create table if not exists raw_budget_lines (
    file_id integer not null,
    source_file varchar not null,
    source_row integer not null,
    fiscal_year integer not null,
    agency_code varchar not null,
    agency_name varchar,
    pro_code varchar not null,
    pro_name varchar not null,
    exp_func_code varchar,
    bgt_doc_no varchar,
    reply_amt decimal(18, 2) not null,
    adj_amt decimal(18, 2) not null,
    cur_amt decimal(18, 2) not null,
    carryover_amt decimal(18, 2) not null,
    plan_q1 decimal(18, 2),
    plan_q2 decimal(18, 2),
    plan_q3 decimal(18, 2),
    plan_q4 decimal(18, 2)
);

-- the date the sheet's version takes effect (CONTRACT.md 1.3: a 调整日期/批复日期 column or title marker); NULL: the
-- sheet gives none (January 1 of its fiscal year). Added, not in the create above, so an existing warehouse gains it
-- with the same column order as a new one.
alter table raw_budget_lines add column if not exists effective_date date;

create table if not exists raw_extra_columns (
    file_id integer not null,
    source_file varchar not null,
    source_row integer not null,
    header varchar not null,
    value varchar
);

create table if not exists rejected_rows (
    file_id integer not null,
    source_file varchar not null,
    source_row integer,
    "column" varchar,
    value varchar,
    "check" varchar not null,
    message varchar not null,
    row_text varchar,
    agency_code varchar,  -- the unit of the row (NULL: no readable unit; the operator report lists it)
    agency_name varchar,  -- the row's agency name cell or the sheet's 预算单位 title
    ori_pay_cert_no varchar  -- a refund's original voucher (its unit is the voucher's)
);

-- warehouses made before rejected rows knew their unit
alter table rejected_rows add column if not exists agency_code varchar;
alter table rejected_rows add column if not exists agency_name varchar;
alter table rejected_rows add column if not exists ori_pay_cert_no varchar;

create table if not exists ref_status_words (
    word varchar primary key,
    status_class varchar not null  -- counted | voided
);

create table if not exists runs (
    run_id varchar primary key,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    as_of date,
    files_new integer,
    files_skipped integer,
    status varchar
);

-- alerts: one row per alert_key, kept across runs. as_of: the latest as-of date it held at (kept when it resolves).
-- notified_severity is what was last announced.
create table if not exists alerts (
    alert_key varchar primary key,
    kind varchar not null,  -- behind_plan | carryover_lag | carryover_squeeze | exception | run_failed
    severity varchar not null,
    as_of date,
    fiscal_year integer,
    agency_code varchar,
    pro_code varchar,
    pay_cert_no varchar,
    gap_pp decimal(14, 2),
    amount decimal(18, 2),
    message varchar not null,
    status varchar not null,  -- active | resolved
    first_seen timestamp with time zone not null,
    last_seen timestamp with time zone not null,
    resolved_at timestamp with time zone,
    notified_at timestamp with time zone,
    notified_severity varchar
);

-- alert_state: the latest as-of date the alerts were evaluated at (one row). A run for an earlier date is a
-- backfill: marts only, alerts unchanged and not announced.
create table if not exists alert_state (
    latest_as_of date not null,
    evaluated_at timestamp with time zone not null
);

-- alert_outbox: each notification to each channel; undelivered ones are retried on the next run.
create table if not exists alert_outbox (
    alert_key varchar not null,
    event varchar not null,  -- new | escalated | resolved | active (told to a channel added later)
    severity varchar not null,
    channel varchar not null,
    title varchar not null,
    body varchar not null,
    created_at timestamp with time zone not null,
    delivered_at timestamp with time zone,
    attempts integer not null default 0,
    last_error varchar
);
-- the ids of the latest attempt (flows/alerts/channels.py): receivers de-duplicate on them (delivery is at-least-once)
alter table alert_outbox add column if not exists delivery_id varchar;
alter table alert_outbox add column if not exists event_id varchar;
