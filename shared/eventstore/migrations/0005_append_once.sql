-- sched_append, leaner: positions come from RETURNING, and the command's reply row is written
-- once, at the end, with its position (no placeholder row updated afterwards). A concurrent
-- duplicate of the command still loses: either on a stream's version, or on the reply's key.
create or replace function sched_append(
    p_command_id text, p_command_name text, p_account_id text, p_reply bytea,
    p_streams text[], p_expected integer[], p_counts integer[],
    p_ids text[], p_types text[], p_data jsonb[]
) returns bigint language plpgsql as $$
declare
    i integer;
    k integer := 0;
    n integer;
    last_position bigint := 0;
    batch_position bigint;
    affected integer;
begin
    for i in 1 .. coalesce(array_length(p_streams, 1), 0) loop
        n := p_counts[i];
        if n = 0 then
            perform 1 from streams where stream_id = p_streams[i] and version = p_expected[i] for share;
            get diagnostics affected = row_count;
            if affected = 0 and (p_expected[i] <> 0 or exists (select 1 from streams where stream_id = p_streams[i])) then
                raise exception using errcode = 'SC409', message = 'version conflict', detail = p_streams[i];
            end if;
            continue;
        end if;
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
        with inserted as (
            insert into events (id, stream_id, version, type, account_id, data)
            select p_ids[k + j], p_streams[i], p_expected[i] + j, p_types[k + j], p_account_id, p_data[k + j]
              from generate_series(1, n) as j
            returning position
        )
        select max(position) into batch_position from inserted;
        last_position := greatest(last_position, batch_position);
        k := k + n;
    end loop;
    if p_command_id is not null then
        insert into command_replies (command_id, command_name, account_id, reply, position)
        values (p_command_id, p_command_name, p_account_id, p_reply, last_position);
    end if;
    return last_position;
end;
$$;
