-- Resources (links, events, appointments, booking intents, services, blocks, locations, accounts):
-- each row holds the aggregate's state as the domain folds it, plus the columns queries filter on.
create table rm_resources (
    kind       text not null,
    id         text not null,
    account_id text not null,
    version    integer not null,
    state      jsonb not null,
    status     text,
    sort_at    timestamptz,
    deleted    boolean not null default false,
    primary key (kind, id)
);
create index rm_resources_list on rm_resources (account_id, kind, sort_at, id);

create table rm_tokens (
    token_hash text primary key,
    account_id text not null,
    user_id    text not null
);
