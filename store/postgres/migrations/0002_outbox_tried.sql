-- c2bot schema, version 2: when a delivery of an outbox item first started
-- (store.OutboxItem.Tried), in Unix nanoseconds; 0 when none has. Items
-- written by version 1 were never marked, so they read as never started.
ALTER TABLE c2bot_outbox ADD COLUMN tried_ns bigint NOT NULL DEFAULT 0;
