"""What a sandbox serves and how: size profiles and the options every entry point shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class Profile:
    users: int
    departments: int
    ivr: int
    calls: int
    recordings: int
    messages: int
    # Recordings and voicemails are cut to this many seconds of audio so data sets stay small;
    # the call's ``duration`` and the recording's metadata keep the real length.
    audio_seconds: int


SIZES: dict[str, Profile] = {
    "tiny": Profile(users=4, departments=1, ivr=1, calls=40, recordings=12, messages=30, audio_seconds=3),
    "small": Profile(users=12, departments=2, ivr=1, calls=400, recordings=100, messages=100, audio_seconds=10),
    "medium": Profile(users=40, departments=4, ivr=2, calls=5_000, recordings=1_500, messages=1_500, audio_seconds=4),
    "large": Profile(users=200, departments=10, ivr=3, calls=100_000, recordings=30_000, messages=10_000, audio_seconds=1),
}

# Requests per 60 s window, per (user, app) and group: RingCentral's standard plan.
DEFAULT_PLAN: dict[str, int] = {"Light": 50, "Medium": 40, "Heavy": 10, "Auth": 5}
# What the headers report when limits are off and no plan was given: far beyond any run, so a client
# that learns limits from the headers paces itself to nothing (with no header at all it would fall
# back to the standard plan's 10 Heavy a minute).
UNLIMITED = 1_000_000_000


def parse_plan(value: str | Mapping[str, Any] | None) -> dict[str, int]:
    """A plan from ``heavy=5,medium=40`` (or a mapping): the standard plan with those groups
    changed. Group names are case-insensitive; an unknown group or a limit below 1 is an error."""
    if isinstance(value, str):
        pairs = []
        for item in filter(None, (s.strip() for s in value.split(","))):
            name, sep, n = item.partition("=")
            if not sep:
                raise ValueError(f"bad limit {item!r} in {value!r}: expected GROUP=N, e.g. heavy=5,medium=40")
            pairs.append((name.strip(), n.strip()))
    else:
        pairs = list((value or {}).items())
    plan = dict(DEFAULT_PLAN)
    names = {g.casefold(): g for g in DEFAULT_PLAN}
    for name, n in pairs:
        group = names.get(str(name).casefold())
        if group is None:
            raise ValueError(f"unknown rate-limit group {name!r}; groups: {', '.join(DEFAULT_PLAN)}")
        try:
            plan[group] = int(n)
        except (TypeError, ValueError):
            raise ValueError(f"bad limit for {group}: {n!r} is not a whole number") from None
        if plan[group] < 1:
            raise ValueError(f"bad limit for {group}: {n!r}; at least 1 request per window")
    return plan


def start_of_utc_day(now: datetime | None = None) -> datetime:
    now = now or datetime.now(timezone.utc)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def parse_anchor(value: str | datetime | None) -> datetime:
    if value is None:
        return start_of_utc_day()
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


@dataclass(frozen=True)
class SandboxOptions:
    seed: int = 1
    size: str = "tiny"
    anchor: datetime = field(default_factory=start_of_utc_day)
    accounts: int = 1
    calls: int | None = None
    recordings: int | None = None
    messages: int | None = None
    recording_bytes: int | None = None  # every recording this many bytes (a WAV), for benchmarks
    time_scale: float = 1.0
    faults: str | None = None
    data: Any = None  # path of a --data file, or its parsed mapping
    limits: bool = True  # False: nothing is throttled and no X-Rate-Limit-* header is sent
    plan: Mapping[str, int] | None = None  # None: the standard plan (limits on) or UNLIMITED (limits off)
    rate_headers: bool = True  # False: limits are enforced but X-Rate-Limit-* headers are left out

    def effective_plan(self) -> dict[str, int]:
        if self.plan is not None:
            return dict(self.plan)
        return dict(DEFAULT_PLAN) if self.limits else {group: UNLIMITED for group in DEFAULT_PLAN}

    def profile(self) -> Profile:
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; choose one of {', '.join(SIZES)}")
        base = SIZES[self.size]
        return replace(
            base,
            calls=base.calls if self.calls is None else self.calls,
            recordings=base.recordings if self.recordings is None else self.recordings,
            messages=base.messages if self.messages is None else self.messages,
        )

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> SandboxOptions:
        """Build from loose options (a pipeline file's ``sandbox:`` block, keyword arguments)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"unknown sandbox option(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        values = {k: v for k, v in options.items() if v is not None}
        if "anchor" in values:
            values["anchor"] = parse_anchor(values["anchor"])
        if "plan" in values:
            values["plan"] = parse_plan(values["plan"])
        return cls(**values)
