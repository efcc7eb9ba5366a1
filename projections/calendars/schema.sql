-- Provider calendars: schedules, reservations and external busy times, indexed by provider and time.
create table rm_providers (
    provider_id     text primary key,
    account_id      text not null,
    display_name    text not null,
    email           text,
    user_id         text,
    created_at      text not null,
    schedule        jsonb not null,
    public_bookings boolean not null default false
);
create index rm_providers_account on rm_providers (account_id);

create table rm_reservations (
    provider_id    text not null,
    reservation_id text not null,
    kind           text not null,
    start_at       timestamptz not null,
    end_at         timestamptz not null,
    buffer_before  integer not null default 0,
    buffer_after   integer not null default 0,
    expires_at     timestamptz,
    primary key (provider_id, reservation_id)
);
-- Window reads scan (provider, end_at > window start): only the future, never the history.
create index rm_reservations_window on rm_reservations (provider_id, end_at);

create table rm_external_busy (
    provider_id text not null,
    start_at    timestamptz not null,
    end_at      timestamptz not null
);
create index rm_external_busy_window on rm_external_busy (provider_id, end_at);
