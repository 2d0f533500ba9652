CREATE TABLE archive.rc_call_log (
	account NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NOT NULL, 
	id NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NOT NULL, 
	session_id NVARCHAR(64) NULL, 
	telephony_session_id NVARCHAR(128) NULL, 
	start_time DATETIME2(3) NULL, 
	duration INTEGER NULL, 
	type NVARCHAR(32) NULL, 
	direction NVARCHAR(16) NULL, 
	action NVARCHAR(64) NULL, 
	result NVARCHAR(64) NULL, 
	reason NVARCHAR(128) NULL, 
	from_number NVARCHAR(64) NULL, 
	from_e164 VARCHAR(16) NULL, 
	from_name NVARCHAR(255) NULL, 
	from_extension_id BIGINT NULL, 
	to_number NVARCHAR(64) NULL, 
	to_e164 VARCHAR(16) NULL, 
	to_name NVARCHAR(255) NULL, 
	to_extension_id BIGINT NULL, 
	extension_id BIGINT NULL, 
	recording_id NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NULL, 
	last_modified_time DATETIME2(3) NULL, 
	deleted BIT NULL, 
	raw NVARCHAR(max) NULL, 
	archive NVARCHAR(max) NULL, 
	PRIMARY KEY (account, id)
);

CREATE INDEX rc_ix_call_ext ON archive.rc_call_log (extension_id, start_time);

CREATE INDEX rc_ix_call_from ON archive.rc_call_log (from_e164, start_time);

CREATE INDEX rc_ix_call_rec ON archive.rc_call_log (recording_id);

CREATE INDEX rc_ix_call_start ON archive.rc_call_log (start_time);

CREATE INDEX rc_ix_call_to ON archive.rc_call_log (to_e164, start_time);

CREATE TABLE archive.rc_messages (
	account NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NOT NULL, 
	id BIGINT NOT NULL, 
	conversation_id BIGINT NULL, 
	type NVARCHAR(16) NULL, 
	direction NVARCHAR(16) NULL, 
	creation_time DATETIME2(3) NULL, 
	last_modified_time DATETIME2(3) NULL, 
	from_number NVARCHAR(64) NULL, 
	from_e164 VARCHAR(16) NULL, 
	from_name NVARCHAR(255) NULL, 
	from_extension_id BIGINT NULL, 
	to_number NVARCHAR(64) NULL, 
	to_e164 VARCHAR(16) NULL, 
	to_name NVARCHAR(255) NULL, 
	subject NVARCHAR(max) NULL, 
	read_status NVARCHAR(16) NULL, 
	message_status NVARCHAR(32) NULL, 
	availability NVARCHAR(16) NULL, 
	attachment_count INTEGER NULL, 
	fax_page_count INTEGER NULL, 
	deleted BIT NULL, 
	raw NVARCHAR(max) NULL, 
	archive NVARCHAR(max) NULL, 
	PRIMARY KEY (account, id)
);

CREATE INDEX rc_ix_msg_conv ON archive.rc_messages (conversation_id);

CREATE INDEX rc_ix_msg_created ON archive.rc_messages (creation_time);

CREATE INDEX rc_ix_msg_from ON archive.rc_messages (from_e164, creation_time);

CREATE INDEX rc_ix_msg_to ON archive.rc_messages (to_e164, creation_time);

CREATE TABLE archive.rc_recordings (
	account NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NOT NULL, 
	id NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NOT NULL, 
	call_id NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NULL, 
	session_id NVARCHAR(64) NULL, 
	start_time DATETIME2(3) NULL, 
	duration INTEGER NULL, 
	direction NVARCHAR(16) NULL, 
	type NVARCHAR(32) NULL, 
	content_type NVARCHAR(128) NULL, 
	extension_id BIGINT NULL, 
	from_number NVARCHAR(64) NULL, 
	from_e164 VARCHAR(16) NULL, 
	to_number NVARCHAR(64) NULL, 
	to_e164 VARCHAR(16) NULL, 
	blob_id NVARCHAR(128) NULL, 
	blob_status NVARCHAR(16) NULL, 
	location NVARCHAR(1024) NULL, 
	size BIGINT NULL, 
	sha256 VARCHAR(64) NULL, 
	deleted BIT NULL, 
	raw NVARCHAR(max) NULL, 
	archive NVARCHAR(max) NULL, 
	PRIMARY KEY (account, id)
);

CREATE INDEX rc_ix_rec_call ON archive.rc_recordings (call_id);

CREATE INDEX rc_ix_recd_from ON archive.rc_recordings (from_e164, start_time);

CREATE INDEX rc_ix_recd_start ON archive.rc_recordings (start_time);

CREATE INDEX rc_ix_recd_to ON archive.rc_recordings (to_e164, start_time);

CREATE TABLE archive.rc_records (
	account NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NOT NULL, 
	stream NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NOT NULL, 
	key_type VARCHAR(8) NOT NULL, 
	record_key NVARCHAR(255) COLLATE Latin1_General_100_BIN2 NOT NULL, 
	occurred_at DATETIME2(3) NULL, 
	deleted BIT NULL, 
	raw NVARCHAR(max) NULL, 
	archive NVARCHAR(max) NULL, 
	PRIMARY KEY (account, stream, key_type, record_key)
);

CREATE INDEX rc_ix_rec_stream_time ON archive.rc_records (stream, occurred_at);

CREATE TABLE archive.rc_schema_version (
	version INTEGER NOT NULL
);

CREATE TABLE archive.rc_attachments (
	account NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NOT NULL, 
	message_id BIGINT NOT NULL, 
	id BIGINT NOT NULL, 
	type NVARCHAR(32) NULL, 
	content_type NVARCHAR(128) NULL, 
	file_name NVARCHAR(255) NULL, 
	blob_id NVARCHAR(128) NULL, 
	blob_status NVARCHAR(16) NULL, 
	location NVARCHAR(1024) NULL, 
	size BIGINT NULL, 
	sha256 VARCHAR(64) NULL, 
	PRIMARY KEY (account, message_id, id), 
	CONSTRAINT rc_fk_att_msg FOREIGN KEY(account, message_id) REFERENCES archive.rc_messages (account, id) ON DELETE CASCADE
);

CREATE TABLE archive.rc_call_legs (
	account NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NOT NULL, 
	call_id NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NOT NULL, 
	leg_index INTEGER NOT NULL, 
	leg_type NVARCHAR(64) NULL, 
	start_time DATETIME2(3) NULL, 
	duration INTEGER NULL, 
	type NVARCHAR(32) NULL, 
	direction NVARCHAR(16) NULL, 
	action NVARCHAR(64) NULL, 
	result NVARCHAR(64) NULL, 
	reason NVARCHAR(128) NULL, 
	from_number NVARCHAR(64) NULL, 
	from_e164 VARCHAR(16) NULL, 
	from_name NVARCHAR(255) NULL, 
	from_extension_id BIGINT NULL, 
	to_number NVARCHAR(64) NULL, 
	to_e164 VARCHAR(16) NULL, 
	to_name NVARCHAR(255) NULL, 
	to_extension_id BIGINT NULL, 
	extension_id BIGINT NULL, 
	PRIMARY KEY (account, call_id, leg_index), 
	CONSTRAINT rc_fk_leg_call FOREIGN KEY(account, call_id) REFERENCES archive.rc_call_log (account, id) ON DELETE CASCADE
);

CREATE INDEX rc_ix_leg_from ON archive.rc_call_legs (from_e164, start_time);

CREATE INDEX rc_ix_leg_to ON archive.rc_call_legs (to_e164, start_time);
