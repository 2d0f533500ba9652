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

