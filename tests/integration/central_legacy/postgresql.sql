-- central's schema as `metadata.create_all` made it before migrations (postgresql).
-- Frozen: tests/integration/test_central_migrations.py upgrades a database made from it.

CREATE TABLE alerts (
	pk BIGSERIAL NOT NULL,
	device VARCHAR(64) NOT NULL,
	rule VARCHAR(64) NOT NULL,
	detail TEXT NOT NULL,
	state VARCHAR(16) NOT NULL,
	opened_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	acknowledged_by VARCHAR(64),
	acknowledged_at TIMESTAMP WITHOUT TIME ZONE,
	resolved_at TIMESTAMP WITHOUT TIME ZONE,
	notified INTEGER NOT NULL,
	PRIMARY KEY (pk)
);

CREATE INDEX ix_alerts_device_rule ON alerts (device, rule);

CREATE INDEX ix_alerts_state ON alerts (state);

CREATE TABLE api_tokens (
	id VARCHAR(16) NOT NULL,
	name VARCHAR(200) NOT NULL,
	role VARCHAR(32) NOT NULL,
	token_hash VARCHAR(64) NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	revoked_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id),
	UNIQUE (token_hash)
);

CREATE TABLE device_seq (
	device VARCHAR(64) NOT NULL,
	contiguous_seq BIGINT NOT NULL,
	max_seq BIGINT NOT NULL,
	gaps JSONB NOT NULL,
	events_total BIGINT NOT NULL,
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	PRIMARY KEY (device)
);

CREATE TABLE devices (
	id VARCHAR(64) NOT NULL,
	facility VARCHAR(64),
	status VARCHAR(16) NOT NULL,
	session BIGINT NOT NULL,
	status_at TIMESTAMP WITHOUT TIME ZONE,
	last_seen TIMESTAMP WITHOUT TIME ZONE,
	versions JSONB NOT NULL,
	health JSONB,
	health_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id)
);

CREATE TABLE event_quarantine (
	pk BIGSERIAL NOT NULL,
	event_id VARCHAR(36) NOT NULL,
	device VARCHAR(64) NOT NULL,
	seq BIGINT NOT NULL,
	type VARCHAR(128) NOT NULL,
	envelope JSONB NOT NULL,
	reason TEXT NOT NULL,
	received_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	PRIMARY KEY (pk),
	UNIQUE (event_id)
);

CREATE TABLE events (
	pk BIGSERIAL NOT NULL,
	event_id VARCHAR(36) NOT NULL,
	device VARCHAR(64) NOT NULL,
	seq BIGINT NOT NULL,
	type VARCHAR(128) NOT NULL,
	at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	clock_trusted BOOLEAN NOT NULL,
	data JSONB NOT NULL,
	received_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	worker VARCHAR(64) NOT NULL,
	PRIMARY KEY (pk),
	UNIQUE (event_id)
);

CREATE INDEX ix_events_at ON events (at);

CREATE INDEX ix_events_device_seq ON events (device, seq);

CREATE INDEX ix_events_type_at ON events (type, at);

CREATE TABLE facilities (
	id VARCHAR(64) NOT NULL,
	version BIGINT NOT NULL,
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	PRIMARY KEY (id)
);

CREATE TABLE health_samples (
	pk BIGSERIAL NOT NULL,
	device VARCHAR(64) NOT NULL,
	at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	resolution INTEGER NOT NULL,
	figures JSONB NOT NULL,
	PRIMARY KEY (pk)
);

CREATE INDEX ix_health_samples_device_at ON health_samples (device, at);

CREATE INDEX ix_health_samples_resolution_at ON health_samples (resolution, at);

CREATE TABLE issuance_audit (
	pk BIGSERIAL NOT NULL,
	at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	device VARCHAR(64) NOT NULL,
	resident_ref VARCHAR(64),
	action VARCHAR(32) NOT NULL,
	order_id VARCHAR(32),
	kind VARCHAR(32),
	copies INTEGER NOT NULL,
	fee_yen INTEGER NOT NULL,
	outcome VARCHAR(32),
	PRIMARY KEY (pk)
);

CREATE INDEX ix_issuance_audit_at ON issuance_audit (at);

CREATE TABLE issuance_challenges (
	id VARCHAR(32) NOT NULL,
	device VARCHAR(64) NOT NULL,
	challenge VARCHAR(64) NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	expires_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	used_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id)
);

CREATE INDEX ix_issuance_challenges_expires_at ON issuance_challenges (expires_at);

CREATE TABLE issuance_counters (
	year INTEGER NOT NULL,
	last BIGINT NOT NULL,
	PRIMARY KEY (year)
);

CREATE TABLE issuance_documents (
	pk BIGSERIAL NOT NULL,
	order_id VARCHAR(32) NOT NULL,
	item_index INTEGER NOT NULL,
	kind VARCHAR(32) NOT NULL,
	copy_index INTEGER NOT NULL,
	issue_number VARCHAR(32) NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	pdf BYTEA,
	PRIMARY KEY (pk),
	UNIQUE (issue_number)
);

CREATE INDEX ix_issuance_documents_order_id ON issuance_documents (order_id);

CREATE TABLE issuance_orders (
	id VARCHAR(32) NOT NULL,
	device VARCHAR(64) NOT NULL,
	session_id VARCHAR(32) NOT NULL,
	idempotency_key VARCHAR(32) NOT NULL,
	request_hash VARCHAR(64) NOT NULL,
	resident_ref VARCHAR(64) NOT NULL,
	items JSONB NOT NULL,
	total_fee_yen INTEGER NOT NULL,
	status VARCHAR(16) NOT NULL,
	payment_ref VARCHAR(64),
	outcome_reason VARCHAR(64),
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	issued_at TIMESTAMP WITHOUT TIME ZONE,
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_issuance_orders_device_key UNIQUE (device, idempotency_key)
);

CREATE INDEX ix_issuance_orders_issued_at ON issuance_orders (issued_at);

CREATE TABLE issuance_sessions (
	id VARCHAR(32) NOT NULL,
	device VARCHAR(64) NOT NULL,
	resident_ref VARCHAR(64) NOT NULL,
	cert_fingerprint VARCHAR(64) NOT NULL,
	kinds JSONB NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	expires_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	closed_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id)
);

CREATE TABLE reservation_changes (
	facility VARCHAR(64) NOT NULL,
	version BIGINT NOT NULL,
	changes JSONB NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	published_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (facility, version)
);

CREATE INDEX ix_reservation_changes_unpublished ON reservation_changes (published_at);

CREATE TABLE reservations (
	id VARCHAR(64) NOT NULL,
	facility VARCHAR(64) NOT NULL,
	door VARCHAR(64) NOT NULL,
	starts_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	ends_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	credential_refs JSONB NOT NULL,
	code_hash VARCHAR(200),
	status VARCHAR(16) NOT NULL,
	version BIGINT NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	PRIMARY KEY (id)
);

CREATE INDEX ix_reservations_facility_status ON reservations (facility, status);

CREATE TABLE staff_sessions (
	token_hash VARCHAR(64) NOT NULL,
	username VARCHAR(64) NOT NULL,
	csrf VARCHAR(64) NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	expires_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	PRIMARY KEY (token_hash)
);

CREATE TABLE staff_users (
	username VARCHAR(64) NOT NULL,
	password_hash VARCHAR(256) NOT NULL,
	totp_secret VARCHAR(64) NOT NULL,
	role VARCHAR(16) NOT NULL,
	failed_logins INTEGER NOT NULL,
	locked_until TIMESTAMP WITHOUT TIME ZONE,
	last_totp_step BIGINT NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	PRIMARY KEY (username)
);
