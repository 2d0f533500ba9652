MERGE INTO [archive].[rc_records] WITH (HOLDLOCK) AS t
USING (VALUES (:account, :stream, :key_type, :record_key, :occurred_at, :deleted, :raw, :archive)) AS s ([account], [stream], [key_type], [record_key], [occurred_at], [deleted], [raw], [archive])
ON t.[account] = s.[account] AND t.[stream] = s.[stream] AND t.[key_type] = s.[key_type] AND t.[record_key] = s.[record_key]
WHEN MATCHED AND EXISTS (SELECT s.[occurred_at], s.[deleted], s.[raw], s.[archive] EXCEPT SELECT t.[occurred_at], t.[deleted], t.[raw], t.[archive])
    THEN UPDATE SET t.[occurred_at] = s.[occurred_at], t.[deleted] = s.[deleted], t.[raw] = s.[raw], t.[archive] = s.[archive]
WHEN NOT MATCHED THEN INSERT ([account], [stream], [key_type], [record_key], [occurred_at], [deleted], [raw], [archive]) VALUES (s.[account], s.[stream], s.[key_type], s.[record_key], s.[occurred_at], s.[deleted], s.[raw], s.[archive]);
