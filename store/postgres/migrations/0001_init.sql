-- c2bot schema, version 1: the same records as the bbolt file.
-- Times that the store compares are Unix nanoseconds (bigint), so ordering and
-- "due exactly now" are the same as in the bbolt store; the records
-- themselves are the JSON the bbolt store keeps.

-- Gapless, transactional counters: request ids, audit sequence, outbox ids.
CREATE TABLE c2bot_counters (
	name text PRIMARY KEY,
	value bigint NOT NULL
);
INSERT INTO c2bot_counters (name, value) VALUES ('request', 0), ('audit', 0), ('outbox', 0);

CREATE TABLE c2bot_requests (
	id text PRIMARY KEY,
	seq bigint NOT NULL UNIQUE,
	state text NOT NULL,
	tenant text NOT NULL,
	due_ns bigint,           -- NULL: never due
	body json NOT NULL
);
CREATE INDEX c2bot_requests_due ON c2bot_requests (due_ns, id COLLATE "C") WHERE due_ns IS NOT NULL;
CREATE INDEX c2bot_requests_state ON c2bot_requests (state, seq);

CREATE TABLE c2bot_audit (
	seq bigint PRIMARY KEY,
	request_id text NOT NULL DEFAULT '',
	body json NOT NULL
);
CREATE INDEX c2bot_audit_request ON c2bot_audit (request_id, seq);

CREATE TABLE c2bot_outbox (
	id bigint PRIMARY KEY,
	request_id text NOT NULL DEFAULT '',
	next_ns bigint NOT NULL,
	attempts integer NOT NULL DEFAULT 0,
	last_error text NOT NULL DEFAULT '',
	body json NOT NULL
);
CREATE INDEX c2bot_outbox_next ON c2bot_outbox (next_ns, id);
CREATE INDEX c2bot_outbox_request ON c2bot_outbox (request_id, id);

CREATE TABLE c2bot_conversations (
	key text PRIMARY KEY,
	ref bytea NOT NULL
);

CREATE TABLE c2bot_seen (
	id text PRIMARY KEY,
	seen_ns bigint NOT NULL
);
CREATE INDEX c2bot_seen_time ON c2bot_seen (seen_ns);
