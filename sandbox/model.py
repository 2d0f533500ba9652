"""The records one simulated account holds, in compact form; JSON is rendered on demand.

Kept compact (slotted dataclasses, parties as tuples) so that 100,000 calls fit comfortably in
memory; :mod:`rcetl.sandbox.render` turns them into the API's JSON.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .binaries import Blob

# A party of a call or message: (phoneNumber, extensionNumber, extensionId, name, location);
# any element may be None and is then omitted from the JSON (optional fields really go missing).
Party = tuple


@dataclass(slots=True)
class Extension:
    id: int
    number: str | None
    name: str
    type: str  # User | Department | IvrMenu | ...
    status: str = "Enabled"
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    raw: dict | None = None  # the record exactly as a --data file gave it (served as given)


@dataclass(slots=True)
class Recording:
    id: str
    call_id: str
    type: str  # Automatic | OnDemand
    duration: int
    blob: Callable[[], Blob]
    size: int
    content_type: str
    available: bool = True  # False: past retention, or deleted through DELETE /call-recordings
    deleted: bool = False  # deleted through the API (not aged out)


@dataclass(slots=True)
class Call:
    id: str
    session_id: str
    telephony_session_id: str
    start_ms: int
    duration_ms: int
    type: str  # Voice | Fax
    direction: str
    action: str
    result: str
    reason: str | None
    from_party: Party
    to_party: Party
    extension_id: int | None
    transport: str
    last_modified_ms: int
    seq: int
    recording: Recording | None = None
    deleted: bool = False
    message: tuple | None = None  # (id, type) of a linked voicemail or fax
    legs: int = 1
    raw: dict | None = None  # the record exactly as a --data file gave it (served as given)
    loaded_seq: int = 0  # ``seq`` when loaded: a later change (a delete) shows over ``raw``
    rendered: dict | None = None  # view -> (key, JSON bytes); see render.call_bytes


@dataclass(slots=True)
class Attachment:
    id: int
    message_id: int
    type: str  # AudioRecording | AudioTranscription | Text | RenderedDocument | MmsAttachment
    content_type: str
    blob: Callable[[], Blob]
    size: int
    file_name: str | None = None
    vm_duration: int | None = None
    raw: dict | None = None  # as a --data file gave it, less the sandbox's own ``content`` key

    @property
    def available(self) -> bool:
        return True


@dataclass(slots=True)
class Message:
    id: int
    extension_id: int
    type: str  # SMS | Fax | VoiceMail | Pager
    direction: str
    creation_ms: int
    last_modified_ms: int
    seq: int
    from_party: Party
    to_parties: list
    conversation_id: int | None
    subject: str | None
    attachments: list[Attachment]
    availability: str = "Alive"
    read_status: str = "Read"
    message_status: str = "Received"
    fields: dict[str, Any] = field(default_factory=dict)  # type-specific fields (fax*, vm*, sms*)
    raw: dict | None = None  # the record exactly as a --data file gave it (served as given)
    loaded_seq: int = 0
    rendered: dict | None = None  # variant -> (key, JSON bytes); see render.message_bytes


class AccountData:
    """Every record of one account, indexed for the queries the API answers.

    Writers (admin adds, deletes) take ``lock``; readers copy the lists they iterate.
    """

    def __init__(self, index: int, account_id: str, owner_extension_id: int) -> None:
        self.index = index
        self.account_id = account_id
        self.owner_extension_id = owner_extension_id
        self.extensions: list[Extension] = []
        self.calls: list[Call] = []  # kept sorted by start_ms ascending
        self.messages: list[Message] = []  # kept sorted by creation_ms ascending
        self.call_starts: list[int] = []  # start_ms of ``calls``, for date-range bisection
        self.calls_by_id: dict[str, Call] = {}
        self.recordings: dict[str, Recording] = {}
        self.messages_by_id: dict[int, Message] = {}
        self.lock = threading.RLock()
        self.seq = 0  # modification sequence: sync tokens remember how far a client has seen
        # Derived indexes (per extension, per filter), rebuilt lazily after any change to the call
        # or message lists: ``changed()`` must follow every mutation a list query can see.
        self.version = 0
        self._indexes: dict[Any, tuple[int, Any]] = {}

    def changed(self) -> None:
        self.version += 1

    def cached(self, key: Any, build: Callable[[], Any]) -> Any:
        """``build()``, cached until the data next changes (callers hold no lock while using it:
        indexes are new lists, never mutated in place)."""
        with self.lock:
            hit = self._indexes.get(key)
            if hit is not None and hit[0] == self.version:
                return hit[1]
            value = build()
            self._indexes[key] = (self.version, value)
            return value

    def call_index(self, owner: int | None, show_deleted: bool, recorded: str | None) -> tuple[list[int], list[Call]]:
        """(start times, calls) sorted by start: the calls of one extension (or all), without the
        deleted ones unless asked, and only those with a recording (of a type) if asked."""
        def build() -> tuple[list[int], list[Call]]:
            calls = [c for c in self.calls
                     if (owner is None or c.extension_id == owner) and (show_deleted or not c.deleted)
                     and (recorded is None or (c.recording is not None and recorded in ("All", c.recording.type)))]
            return [c.start_ms for c in calls], calls

        return self.cached(("calls", owner, show_deleted, recorded), build)

    def message_index(self, owner: int) -> tuple[list[int], list[Message]]:
        """(creation times, messages) of one mailbox, oldest first."""
        def build() -> tuple[list[int], list[Message]]:
            msgs = [m for m in self.messages if m.extension_id == owner]
            return [m.creation_ms for m in msgs], msgs

        return self.cached(("messages", owner), build)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def extension(self, ext_id: int) -> Extension | None:
        for e in self.extensions:
            if e.id == ext_id:
                return e
        return None

    def add_call(self, call: Call) -> None:
        with self.lock:
            pos = bisect.bisect_right(self.call_starts, call.start_ms)
            self.calls.insert(pos, call)
            self.call_starts.insert(pos, call.start_ms)
            self.calls_by_id[call.id] = call
            if call.recording is not None:
                self.recordings[call.recording.id] = call.recording
            self.version += 1

    def add_message(self, msg: Message) -> None:
        with self.lock:
            if not self.messages or msg.creation_ms >= self.messages[-1].creation_ms:
                self.messages.append(msg)
            else:
                pos = bisect.bisect_right([m.creation_ms for m in self.messages], msg.creation_ms)
                self.messages.insert(pos, msg)
            self.messages_by_id[msg.id] = msg
            self.version += 1

    def attachment(self, message_id: int, attachment_id: int) -> Attachment | None:
        msg = self.messages_by_id.get(message_id)
        if msg is None or msg.availability == "Purged":
            return None
        for a in msg.attachments:
            if a.id == attachment_id:
                return a
        return None
