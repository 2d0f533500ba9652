"""A seeded generator of a realistic RingCentral account.

Each account is a pure function of (seed, account index, anchor, profile). Calls and messages
are spread over the 60 days before the anchor, with a few calls 90-120 days old so that
recording retention can be exercised. Binaries are recipes (see :mod:`binaries`), never stored.
"""

from __future__ import annotations

import bisect
import random
from datetime import datetime
from functools import partial

from . import binaries
from .ids import BEYOND_FLOAT, det_int, det_rng, rng_alnum
from .model import AccountData, Attachment, Call, Extension, Message, Party, Recording
from .options import Profile

DAY_MS = 86_400_000
RETENTION_DAYS = 90
RETENTION_COUNT = 100_000

FIRST = ["Alice", "Bob", "Carmen", "Dmitri", "Eve", "Fatima", "Gustavo", "Hiro", "Ines", "Jamal", "Kai", "Lena"]
LAST = ["Anders", "Brown", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Huang", "Ivanova", "Jones", "Kim", "Lopez"]
# Names a careless archiver turns into broken paths, terminal escapes or mojibake.
HOSTILE_NAMES = ["José Müller-Łukasz 李小龍 📞", "Mallory\x1b[31m Red\nNewline\t", "O'Brien; DROP TABLE calls;--"]
HOSTILE_FILE_NAMES = ["../../etc/passwd", "photo\x1b[2J\r\n.png", "Ünïcødé 文件 📷.png", None, "..\\..\\windows\\win.ini"]
SMS_TEXTS = [
    "Running 10 min late, sorry!", "Can you send the contract?", "Thanks, received.", "Call me when you can",
    "Meeting moved to 3pm", "👍", "Ünïcødé test: 你好, привет, مرحبا", "Line one\nLine two\r\nLine three",
]


# MMS pictures as phones send them [SPEC:14017 "image/audio/video for MMS"].
MMS_IMAGES = [(binaries.png, "png"), (binaries.jpeg, "jpg"), (binaries.gif, "gif")]


def _attachment_id(key: tuple, k: int, mid: int, n: int) -> int:
    """The id of a message's n-th attachment. RingCentral scopes attachment ids to their message:
    its examples show ``1`` in several messages (batch-get and message-sync samples), an id equal
    to the message id (the voicemail sample in "Working with the Message Store"), and long ids
    (fact sheet section 1). All three schemes are used, so ids repeat across messages."""
    scheme = k % 3
    if scheme == 0:
        return n + 1
    if scheme == 1:
        return mid if n == 0 else mid + n
    return 100_000_000_000 + det_int(*key, "attachment", k, n) % 900_000_000_000


def _phone(rng: random.Random) -> str:
    return f"+1{rng.randint(201, 989)}{rng.randint(2000000, 9999999)}"


# The call generator draws hundreds of thousands of numbers for the large set: these draw from
# rng.random() directly (random.randint/choice/choices cost several times more per call).
def _rint(rng: random.Random, a: int, b: int) -> int:
    return a + int(rng.random() * (b - a + 1))


def _pick(rng: random.Random, seq):  # noqa: ANN001, ANN202
    return seq[int(rng.random() * len(seq))]


def _table(pairs: list[tuple[object, int]]) -> tuple[list, list[int], int]:
    cum, total = [], 0
    for _, weight in pairs:
        total += weight
        cum.append(total)
    return [v for v, _ in pairs], cum, total


def _weighted(rng: random.Random, table: tuple[list, list[int], int]):  # noqa: ANN202
    values, cum, total = table
    return values[bisect.bisect_right(cum, rng.random() * total)]


_KINDS = _table([("in", 45), ("out", 35), ("internal", 15), ("fax", 5)])
_OUT_RESULTS = _table([(("Call connected", "Connected"), 75), (("No Answer", "Not Answered"), 12),
                       (("Busy", "Line Busy"), 8), (("Hang Up", "Hang Up"), 5)])
_IN_RESULTS = _table([(("Accepted", "Accepted"), 65), (("Missed", "Not Answered"), 18),
                      (("Voicemail", "Not Answered"), 14), (("Rejected", "Calls Not Accepted"), 3)])


def _phone_fast(rng: random.Random) -> str:
    return f"+1{_rint(rng, 201, 989)}{_rint(rng, 2000000, 9999999)}"


class AccountGenerator:
    """Builds one account; also makes the records added later while the sandbox runs."""

    def __init__(self, seed: int, index: int, anchor: datetime, profile: Profile, recording_bytes: int | None = None):
        self.seed, self.index, self.profile = seed, index, profile
        self.anchor_ms = int(anchor.timestamp() * 1000)
        self.recording_bytes = recording_bytes
        self.key = (seed, index)  # every id and binary derives from this plus its own parts
        account_id = str(100_000_000 + det_int(*self.key, "account") % 800_000_000)
        self.base_ext = 60_000_000_000 + (det_int(*self.key, "ext") % 1_000_000) * 1_000
        self.data = AccountData(index, account_id, owner_extension_id=self.base_ext + 1)
        self.calls_made = 0
        self.messages_made = 0
        self.recordings_made = 0

    # --- extensions ---------------------------------------------------------------------------

    def extensions(self) -> list[Extension]:
        p, rng = self.profile, det_rng(*self.key, "extensions")
        out: list[Extension] = []
        for i in range(max(1, p.users)):
            first, last = FIRST[i % len(FIRST)], LAST[(i * 7 + self.index) % len(LAST)]
            name = f"{first} {last}" if i >= len(HOSTILE_NAMES) or i == 0 else HOSTILE_NAMES[i - 1]
            out.append(Extension(self.base_ext + 1 + i, str(101 + i), name, "User", first_name=first, last_name=last,
                                 email=f"{first.lower()}.{last.lower()}{i}@example.com"))
        if len(out) > 2:
            out[-1].status = "Disabled"
        for i in range(p.departments):
            out.append(Extension(self.base_ext + 500 + i, str(501 + i), f"Queue {i + 1}", "Department"))
        for i in range(p.ivr):
            out.append(Extension(self.base_ext + 800 + i, str(801 + i), f"Main IVR {i + 1}", "IvrMenu"))
        out.append(Extension(self.base_ext + 900, None, "Unassigned", "User", status="Unassigned"))
        rng.shuffle(out[1:])  # keep the JWT owner (the admin) first
        return out

    # --- calls --------------------------------------------------------------------------------

    def calls(self, n: int, recordings: int, window: tuple[int, int] | None = None) -> list[Call]:
        """``n`` call-log records started within ``window`` (start_ms, end_ms), by default the 60 days
        before the anchor with 3% between 120 and 90 days before; ``recordings`` of them with a recording."""
        batch = self.calls_made
        rng = det_rng(*self.key, "calls", batch)
        if window is None:
            end_ms = self.anchor_ms - 1
            start_ms = self.anchor_ms - 60 * DAY_MS
            old = [_rint(rng, self.anchor_ms - 120 * DAY_MS, self.anchor_ms - 91 * DAY_MS) for _ in range(max(1, n * 3 // 100) if n >= 10 else 0)]
            times = old + [_rint(rng, start_ms, end_ms) for _ in range(n - len(old))]
        else:
            start_ms, end_ms = window
            times = [_rint(rng, start_ms, end_ms) for _ in range(n)]
        times.sort()
        users = [e for e in self.data.extensions if e.type == "User" and e.number]
        queues = [e for e in self.data.extensions if e.type == "Department"] or users
        out: list[Call] = []
        i = 0
        while i < n:
            pair = i + 1 < n and rng.random() < 0.05  # a transfer: two records, one telephony session
            # The oldest call of the initial set is answered, so a recording past retention exists.
            force_live = i == 0 and times[0] < self.anchor_ms - 90 * DAY_MS
            out.extend(self._call_session(rng, times[i], 2 if pair else 1, users, queues, batch, i, force_live))
            i += 2 if pair else 1
        connected = [c for c in out if c.type == "Voice" and c.result in ("Accepted", "Call connected")]
        for c in self._pick_recorded(connected, recordings, rng):
            self._record(c, rng)
        self.calls_made += n
        return out

    def _pick_recorded(self, connected: list[Call], recordings: int, rng: random.Random) -> list[Call]:
        """Exactly ``recordings`` answered calls (or all of them), always including one transfer
        recorded on both sides (several recordings per telephony session) when there is one, and
        one call past retention, so that both cases exist even in tiny data sets."""
        must: list[Call] = []
        sessions: dict[str, list[Call]] = {}
        for c in connected:
            sessions.setdefault(c.telephony_session_id, []).append(c)
        pair = next((parts for parts in sessions.values() if len(parts) > 1), None)
        if pair and recordings >= 3:
            must += pair
        if connected and connected[0].start_ms < self.anchor_ms - 90 * DAY_MS and all(c is not connected[0] for c in must):
            must.append(connected[0])
        must = must[:recordings]
        taken = {id(c) for c in must}
        rest = [c for c in connected if id(c) not in taken]
        picked = must + rng.sample(rest, min(recordings - len(must), len(rest)))
        return sorted(picked, key=lambda c: c.start_ms)

    def _call_session(self, rng, t, parts, users, queues, batch, i, force_live=False) -> list[Call]:
        tsid = f"s-a0d{rng.getrandbits(64):016x}z{rng.getrandbits(20):05x}0000"
        session_id = str(10_000_000_000 + rng.getrandbits(48) % 90_000_000_000)
        kind = _weighted(rng, _KINDS) if parts == 1 and not force_live else "in"
        owner = _pick(rng, users)
        external: Party = (_phone_fast(rng), None, None, _pick(rng, [None, f"{_pick(rng, FIRST)} {_pick(rng, LAST)}", "WIRELESS CALLER"]), None)
        me: Party = (f"+1650555{owner.number.zfill(4)[-4:]}", owner.number, str(owner.id), owner.name, None)
        if kind == "internal":
            other = _pick(rng, users)
            me = (None, owner.number, str(owner.id), owner.name, None)
            external = (None, other.number, str(other.id), other.name, None)
        direction = "Outbound" if kind == "out" or (kind == "fax" and rng.random() < 0.4) else "Inbound"
        reason: str | None
        if kind == "fax":
            action = "Outgoing Fax" if direction == "Outbound" else "Incoming Fax"
            result, reason = ("Sent", "Accepted") if direction == "Outbound" else ("Received", "Accepted")
        elif direction == "Outbound":
            action = _pick(rng, ["VoIP Call", "RingOut PC", "Phone Call"])
            result, reason = _weighted(rng, _OUT_RESULTS)
        else:
            action = "Phone Call" if kind == "in" else "VoIP Call"
            result, reason = _weighted(rng, _IN_RESULTS)
            if force_live:
                result, reason = "Accepted", "Accepted"
        if rng.random() < 0.1:
            reason = None  # optional fields really go missing sometimes
        live = result in ("Accepted", "Call connected", "Sent", "Received")
        duration = int(rng.lognormvariate(4.5, 1.0)) + 5 if live else _rint(rng, 0, 40)
        transport = "VoIP" if kind == "internal" or action == "VoIP Call" else "PSTN"
        frm, to = (external, me) if direction == "Inbound" else (me, external)
        # Legs (Detailed view only): a transfer or an internal call has two; an answered inbound
        # call that rang the user's other numbers first has three (Accept, FindMe, FollowMe).
        legs = 2 if parts > 1 or kind == "internal" else 3 if kind == "in" and live and rng.random() < 0.15 else 1
        out = []
        for part in range(parts):
            ext = owner if part == 0 else _pick(rng, queues + users)
            start = t + part * _rint(rng, 5_000, 60_000)
            dur_ms = duration * 1000 + _rint(rng, 0, 999)
            cid = rng_alnum(rng)
            out.append(Call(
                id=cid, session_id=session_id, telephony_session_id=tsid, start_ms=start, duration_ms=dur_ms,
                type="Fax" if kind == "fax" else "Voice", direction=direction,
                action="Transfer" if part else action, result=result, reason=reason,
                from_party=frm, to_party=to if part == 0 else (None, ext.number, str(ext.id), ext.name, None),
                extension_id=ext.id, transport=transport,
                last_modified_ms=start + dur_ms + _rint(rng, 1_000, 30_000), seq=self.data.next_seq(),
                deleted=rng.random() < 0.01, legs=legs,
            ))
        return out

    def _record(self, call: Call, rng: random.Random) -> None:
        n = self.recordings_made
        self.recordings_made += 1
        rid = str(3_000_000_000 + det_int(*self.key, "recording", n) % 6_000_000_000)
        seconds = call.duration_ms // 1000
        audio = min(seconds, self.profile.audio_seconds)
        if self.recording_bytes is not None:
            blob = partial(binaries.wav, self.key, rid, 0, "audio/wav", self.recording_bytes)
        elif rng.random() < 0.75:
            blob = partial(binaries.mp3, self.key, rid, audio)
        else:
            blob = partial(binaries.wav, self.key, rid, audio, "audio/wav")
        b = blob()
        call.recording = Recording(rid, call.id, rng.choice(["Automatic"] * 4 + ["OnDemand"]), seconds, blob, b.size, b.content_type)

    # --- messages -----------------------------------------------------------------------------

    def messages(self, n: int, window: tuple[int, int] | None = None) -> list[Message]:
        """``n`` messages created within ``window`` (start_ms, end_ms), by default the 60 days before the anchor."""
        batch = self.messages_made
        rng = det_rng(*self.key, "messages", batch)
        start_ms, end_ms = window if window is not None else (self.anchor_ms - 60 * DAY_MS, self.anchor_ms - 1)
        times = sorted(rng.randint(start_ms, end_ms) for _ in range(n))
        users = [e for e in self.data.extensions if e.type == "User" and e.number]
        threads: dict[int, tuple] = {}
        out = []
        for i, t in enumerate(times):
            k = batch + i
            kind = ["SMS", "MMS", "Fax", "VoiceMail"][k % 4] if k < 12 else rng.choices(["SMS", "MMS", "Fax", "VoiceMail"], [55, 10, 15, 20])[0]
            owner = users[k % len(users)] if k < 12 else rng.choice(users)
            mid = (BEYOND_FLOAT + k * 1_000 + det_int(*self.key, "msg", k) % 997) if k % 3 == 1 else \
                1_000_000_000 + k * 1_000 + det_int(*self.key, "msg", k) % 997
            out.append(self._message(rng, k, mid, t, kind, owner, threads))
        self.messages_made += n
        return out

    def _message(self, rng, k, mid, t, kind, owner, threads) -> Message:
        direction = "Inbound" if kind in ("VoiceMail",) or rng.random() < 0.6 else "Outbound"
        me: Party = (f"+1650555{owner.number.zfill(4)[-4:]}", owner.number, str(owner.id), owner.name, None)
        if kind in ("SMS", "MMS") and threads and rng.random() < 0.6:
            conv, peer = rng.choice(list(threads.items()))
        else:
            conv = 7_000_000_000_000_000_000 + det_int(*self.key, "conv", k) % 2_000_000_000_000_000_000
            peer = (_phone(rng), None, None, rng.choice([None, rng.choice(FIRST), HOSTILE_NAMES[1]]), None)
            if kind in ("SMS", "MMS"):
                threads[conv] = peer
        frm, to = (peer, [me]) if direction == "Inbound" else (me, [peer])
        atts: list[Attachment] = []
        fields: dict = {}
        subject = None

        def attach(type_, blob, file_name=None, vm=None):
            aid = _attachment_id(self.key, k, mid, len(atts))
            b = blob()
            atts.append(Attachment(aid, mid, type_, b.content_type, blob, b.size, file_name, vm))

        # Every binary is seeded from its message (never from the attachment id alone, which
        # repeats across messages), and texts carry the message's own reference, so no two
        # binaries of a data set share their bytes.
        if kind in ("SMS", "MMS"):
            base = SMS_TEXTS[k % len(SMS_TEXTS)] if k < 12 else rng.choice(SMS_TEXTS)
            subject = base if k < len(SMS_TEXTS) else f"{base} (ref {mid % 100_000:05d})"
            attach("Text", partial(binaries.text, subject))
            if kind == "MMS":
                image, ext = MMS_IMAGES[(k // 4) % len(MMS_IMAGES)]
                name = HOSTILE_FILE_NAMES[(k // 4) % len(HOSTILE_FILE_NAMES)] if k < 40 else f"IMG_{k:04d}.{ext}"
                attach("MmsAttachment", partial(image, self.key, mid), name)
            fields.update(smsDeliveryTime=None, conversation=True,
                          messageStatus="Received" if direction == "Inbound" else "Delivered")
        elif kind == "Fax":
            pages = rng.randint(2, 4) if k < 12 else rng.randint(1, 4)
            resolution = rng.choice(["High", "Low"])
            subject = rng.choice([None, "Fax: invoice", "Ünïcødé fax 文件"])
            if (k // 4) % 2:  # faxes arrive as PDF or TIFF [EX:message-store-list-fax-paged.json, batch-request-put-1.txt]
                attach("RenderedDocument", partial(binaries.tiff, self.key, mid, pages, resolution == "High"),
                       rng.choice([None, f"fax-{k}.tif"]))
            else:
                attach("RenderedDocument", partial(binaries.pdf, self.key, mid, pages),
                       rng.choice([None, f"fax-{k}.pdf", "Ünïcødé 文件 📠.pdf"]))
            fields.update(faxPageCount=pages, faxResolution=resolution, coverIndex=0,
                          messageStatus="Received" if direction == "Inbound" else "Sent")
        else:
            seconds = rng.randint(3, 90)
            audio = min(seconds, self.profile.audio_seconds)
            if (k // 4) % 3 == 2:  # voicemail comes as audio/x-wav [EX:message-record-voicemail.json] or audio/mpeg [SPEC:14017]
                attach("AudioRecording", partial(binaries.mp3, self.key, f"vm{mid}", audio), None, seconds)
            else:
                attach("AudioRecording", partial(binaries.wav, self.key, f"vm{mid}", audio, "audio/x-wav"), None, seconds)
            transcript = rng.choice(["Hi, this is a message about your order. Please call back.",
                                     "Hallo, Rückruf bitte. 谢谢", "(inaudible)"])
            attach("AudioTranscription", partial(binaries.text, f"{transcript} [{mid}]"))
            fields.update(vmTranscriptionStatus="Completed", messageStatus="Received")
        roll = rng.random()
        availability = "Deleted" if roll < 0.04 else "Purged" if roll < 0.06 else "Alive"
        if k in (4, 8):  # both states exist even in tiny data sets
            availability = "Deleted" if k == 4 else "Purged"
        msg_type = "SMS" if kind == "MMS" else kind
        return Message(
            id=mid, extension_id=owner.id, type=msg_type, direction=direction, creation_ms=t,
            last_modified_ms=t + rng.randint(0, 5_000), seq=self.data.next_seq(), from_party=frm, to_parties=to,
            conversation_id=conv if msg_type == "SMS" else None, subject=subject, attachments=atts,
            availability=availability, read_status=rng.choice(["Read", "Read", "Unread"]),
            message_status=fields.pop("messageStatus"), fields={k: v for k, v in fields.items() if v is not None and k != "conversation"},
        )

    # --- whole account ------------------------------------------------------------------------

    def build(self) -> AccountData:
        p = self.profile
        self.data.extensions = self.extensions()
        for c in self.calls(p.calls, p.recordings):
            self.data.add_call(c)
        for m in self.messages(p.messages):
            self.data.add_message(m)
        apply_retention(self.data, self.anchor_ms)
        return self.data


def apply_retention(data: AccountData, anchor_ms: int) -> None:
    """Recordings older than 90 days, or beyond the newest 100,000, are gone (content 404)."""
    cutoff = anchor_ms - RETENTION_DAYS * DAY_MS
    recs = sorted(data.recordings.values(), key=lambda r: data.calls_by_id[r.call_id].start_ms, reverse=True)
    for rank, r in enumerate(recs):
        r.available = rank < RETENTION_COUNT and data.calls_by_id[r.call_id].start_ms >= cutoff
