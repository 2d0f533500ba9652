"""Recording metadata, recording content and message attachment content (the media entry point)."""

from __future__ import annotations

from werkzeug.wrappers import Response

from .ctx import Ctx
from .errors import ApiError, invalid_parameter, not_found
from .render import recording_info
from .web import binary_response, json_body, json_response

MAX_RECORDING_DELETE = 100  # CallRecordingIds.records maxItems


def _disposition(ctx: Ctx) -> tuple[str | None, str | None]:
    disp = ctx.args.get("contentDisposition")
    if disp is not None and disp not in ("Inline", "Attachment"):
        raise invalid_parameter("contentDisposition", disp)
    return disp, ctx.args.get("contentDispositionFilename")


def recording(ctx: Ctx, rid: str) -> Response:
    rec = ctx.account.recordings.get(rid)
    if rec is None or not rec.available:
        raise not_found("recordingId", rid)
    return json_response(recording_info(rec, ctx.urls, ctx.account_id))


def recording_content(ctx: Ctx, rid: str) -> Response:
    rec = ctx.account.recordings.get(rid)
    if rec is None or not rec.available:
        raise not_found("recordingId", rid)  # retention: past 90 days or 100,000 recordings
    disp, name = _disposition(ctx)
    return binary_response(rec.blob(), ctx.request.headers.get("Range"), disp, name)


def attachment_content(ctx: Ctx, ext: str, mid: str, aid: str) -> Response:
    owner = ctx.extension_id(ext)
    try:
        message_id, attachment_id = int(mid), int(aid)
    except ValueError:
        raise not_found("attachmentId", aid) from None
    msg = ctx.account.messages_by_id.get(message_id)
    if msg is None or msg.extension_id != owner:
        raise not_found("messageId", mid)
    att = ctx.account.attachment(message_id, attachment_id)
    if att is None:
        raise not_found("attachmentId", aid)
    disp, name = _disposition(ctx)
    return binary_response(att.blob(), ctx.request.headers.get("Range"), disp, name)


def delete_recordings(ctx: Ctx) -> Response:
    """DELETE /account/{accountId}/call-recordings with ``{"records": [id, ...]}`` (1..100).

    The recording files go; the call-log records keep their ``recording`` object (the spec: "deletes
    the recording file itself, not the record of it in the call log"), and metadata and content then
    answer 404 CMN-102, as for a recording past retention. All or nothing: an unknown or already
    gone id is 404 and nothing is deleted.
    """
    body = json_body(ctx.request)
    ids = body.get("records") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not ids:
        raise ApiError(400, "CMN-101", "Parameter [records] is required", parameterName="records")
    if len(ids) > MAX_RECORDING_DELETE:
        raise invalid_parameter("records", len(ids), f"at most {MAX_RECORDING_DELETE} ids")
    wanted = [str(i) for i in ids]
    with ctx.account.lock:
        for rid in wanted:
            rec = ctx.account.recordings.get(rid)
            if rec is None or not rec.available:
                raise not_found("recordingId", rid)
        gone = 0
        for rid in dict.fromkeys(wanted):
            rec = ctx.account.recordings[rid]
            rec.available, rec.deleted = False, True
            gone += 1
    ctx.services.counters.removed("recordings", gone)
    return Response(b"", status=204)
