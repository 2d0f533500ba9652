ALTER TABLE archive.rc_call_log ADD recording_id NVARCHAR(64) NULL;

GO

CREATE INDEX rc_ix_call_rec ON archive.rc_call_log (recording_id);

GO

ALTER TABLE archive.rc_messages ADD fax_page_count INTEGER NULL;

GO

CREATE INDEX rc_ix_msg_conv ON archive.rc_messages (conversation_id);

GO

UPDATE archive.rc_schema_version SET version=2;

GO

DROP INDEX rc_ix_call_rec ON archive.rc_call_log;

GO

ALTER TABLE archive.rc_call_log DROP COLUMN from_extension_id;

GO

ALTER TABLE archive.rc_call_log DROP COLUMN recording_id;

GO

ALTER TABLE archive.rc_call_log DROP COLUMN to_extension_id;

GO

ALTER TABLE archive.rc_call_log ADD from_e164 VARCHAR(16) NULL;

GO

ALTER TABLE archive.rc_call_log ADD from_extension_id BIGINT NULL;

GO

ALTER TABLE archive.rc_call_log ADD to_e164 VARCHAR(16) NULL;

GO

ALTER TABLE archive.rc_call_log ADD to_extension_id BIGINT NULL;

GO

ALTER TABLE archive.rc_call_log ADD recording_id NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NULL;

GO

CREATE INDEX rc_ix_call_from ON archive.rc_call_log (from_e164, start_time);

GO

CREATE INDEX rc_ix_call_rec ON archive.rc_call_log (recording_id);

GO

CREATE INDEX rc_ix_call_to ON archive.rc_call_log (to_e164, start_time);

GO

ALTER TABLE archive.rc_call_legs DROP COLUMN from_extension_id;

GO

ALTER TABLE archive.rc_call_legs DROP COLUMN to_extension_id;

GO

ALTER TABLE archive.rc_call_legs ADD from_e164 VARCHAR(16) NULL;

GO

ALTER TABLE archive.rc_call_legs ADD from_extension_id BIGINT NULL;

GO

ALTER TABLE archive.rc_call_legs ADD to_e164 VARCHAR(16) NULL;

GO

ALTER TABLE archive.rc_call_legs ADD to_extension_id BIGINT NULL;

GO

CREATE INDEX rc_ix_leg_from ON archive.rc_call_legs (from_e164, start_time);

GO

CREATE INDEX rc_ix_leg_to ON archive.rc_call_legs (to_e164, start_time);

GO

ALTER TABLE archive.rc_call_legs ADD CONSTRAINT rc_fk_leg_call FOREIGN KEY(account, call_id) REFERENCES archive.rc_call_log (account, id) ON DELETE CASCADE;

GO

DROP INDEX rc_ix_rec_call ON archive.rc_recordings;

GO

ALTER TABLE archive.rc_recordings DROP COLUMN call_id;

GO

ALTER TABLE archive.rc_recordings ADD call_id NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NULL;

GO

ALTER TABLE archive.rc_recordings ADD from_e164 VARCHAR(16) NULL;

GO

ALTER TABLE archive.rc_recordings ADD to_e164 VARCHAR(16) NULL;

GO

CREATE INDEX rc_ix_rec_call ON archive.rc_recordings (call_id);

GO

CREATE INDEX rc_ix_recd_from ON archive.rc_recordings (from_e164, start_time);

GO

CREATE INDEX rc_ix_recd_start ON archive.rc_recordings (start_time);

GO

CREATE INDEX rc_ix_recd_to ON archive.rc_recordings (to_e164, start_time);

GO

ALTER TABLE archive.rc_messages DROP COLUMN from_extension_id;

GO

ALTER TABLE archive.rc_messages ADD from_e164 VARCHAR(16) NULL;

GO

ALTER TABLE archive.rc_messages ADD from_extension_id BIGINT NULL;

GO

ALTER TABLE archive.rc_messages ADD to_e164 VARCHAR(16) NULL;

GO

CREATE INDEX rc_ix_msg_from ON archive.rc_messages (from_e164, creation_time);

GO

CREATE INDEX rc_ix_msg_to ON archive.rc_messages (to_e164, creation_time);

GO

ALTER TABLE archive.rc_attachments ADD CONSTRAINT rc_fk_att_msg FOREIGN KEY(account, message_id) REFERENCES archive.rc_messages (account, id) ON DELETE CASCADE;

GO

ALTER TABLE archive.rc_call_legs DROP COLUMN raw;

GO

ALTER TABLE archive.rc_attachments DROP COLUMN raw;

GO

UPDATE archive.rc_schema_version SET version=3;

GO

