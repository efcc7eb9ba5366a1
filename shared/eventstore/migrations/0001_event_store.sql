-- The append-only event log, stream versions, idempotent command replies, follower checkpoints.

create table events (
    position    bigint generated always as identity primary key,
    id          text not null unique,
    stream_id   text not null,
    version     integer not null,
    type        text not null,
    account_id  text not null,
    data        jsonb not null,
    occurred_at timestamptz not null default now(),
    -- The writing transaction's id. Followers read in (tx_id, position) order and only below the
    -- oldest running transaction (pg_snapshot_xmin), so an event whose transaction commits after a
    -- later-numbered one is never skipped: it is simply not readable yet.
    tx_id       xid8 not null default pg_current_xact_id(),
    unique (stream_id, version)
);
create index events_feed on events (tx_id, position);

-- One row per stream holding its current version: the row lock serialises appenders of one stream
-- and an expected-version mismatch shows up as "0 rows updated", not as an exception.
create table streams (
    stream_id text primary key,
    version   integer not null
);

create table command_replies (
    command_id   text primary key,
    command_name text not null,
    account_id   text not null,
    reply        bytea not null,
    position     bigint not null,
    created_at   timestamptz not null default now()
);

-- Checkpoints of log followers (the relay, projectors): the last (tx_id, position) they handled.
create table checkpoints (
    name       text primary key,
    tx_id      xid8 not null default '0',
    position   bigint not null default 0,
    updated_at timestamptz not null default now()
);

-- Append events to one or more streams in one transaction, checking each stream's expected version
-- and recording the command's reply. Raises SQLSTATE 'SC409' (with the stream id as detail) on a
-- version conflict and unique_violation on a duplicate command id. Returns the last position.
create function sched_append(
    p_command_id text, p_command_name text, p_account_id text, p_reply bytea,
    p_streams text[], p_expected integer[], p_counts integer[],
    p_ids text[], p_types text[], p_data jsonb[]
) returns bigint language plpgsql as $$
declare
    i integer;
    k integer := 0;
    n integer;
    last_position bigint;
    affected integer;
begin
    if p_command_id is not null then
        insert into command_replies (command_id, command_name, account_id, reply, position)
        values (p_command_id, p_command_name, p_account_id, p_reply, 0);
    end if;
    for i in 1 .. coalesce(array_length(p_streams, 1), 0) loop
        n := p_counts[i];
        if p_expected[i] = 0 then
            insert into streams (stream_id, version) values (p_streams[i], n) on conflict do nothing;
        else
            update streams set version = p_expected[i] + n
             where stream_id = p_streams[i] and version = p_expected[i];
        end if;
        get diagnostics affected = row_count;
        if affected = 0 then
            raise exception using errcode = 'SC409', message = 'version conflict', detail = p_streams[i];
        end if;
        insert into events (id, stream_id, version, type, account_id, data)
        select p_ids[k + j], p_streams[i], p_expected[i] + j, p_types[k + j], p_account_id, p_data[k + j]
          from generate_series(1, n) as j;
        k := k + n;
    end loop;
    select max(position) into last_position from events where id = any(p_ids);
    if p_command_id is not null then
        update command_replies set position = coalesce(last_position, 0) where command_id = p_command_id;
    end if;
    return coalesce(last_position, 0);
end;
$$;
