"""Request budgets shared through Redis by every process and machine that uses a credential.

Per (credential, group) Redis holds a sorted set of slot time stamps (the sliding window), a
hash of the limit and window learned from headers, and two keys that expire on their own: the
429 penalty and the "server window full" block. Each decision is one Lua script, so taking a slot
is atomic across processes. Times come from the Redis server's clock (``TIME``), so machines with
skewed clocks still agree on one window.

Waiting: the script answers how long until a slot frees up, and the head of this process's
waiting line sleeps that long (at most ``poll_cap``, so it notices what other processes change).
Priorities are strict within a process; across processes they are best effort: each process's
most urgent waiter competes for the next free slot, whatever its priority.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from . import Budget, GroupLimit
from .memory import IN_FLIGHT_LEASE, PerCredentialProvider, QueuedBudget, WindowStore

#: Learned limits outlive a run (the next one starts at the right speed) but not for ever.
LEARNED_TTL_SECONDS = 7 * 24 * 3600

# Every script starts the same way: the server's time and the group's effective limit.
_PRELUDE = """
pcall(redis.replicate_commands)  -- Redis < 5 needs it before writing after TIME; later ones ignore it
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(redis.call('HGET', KEYS[2], 'limit') or ARGV[1])
local window = tonumber(redis.call('HGET', KEYS[2], 'window') or ARGV[2])
local cap = tonumber(ARGV[3])
if cap > 0 and cap < limit then limit = cap end
if limit < 1 then limit = 1 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
"""

# KEYS: slots, meta, penalty, full. ARGV: base limit, base window, cap (0: none), slot id, lease.
# Returns {slot id or '', seconds to wait}.
_TAKE = (
    _PRELUDE
    + """
local blocked = math.max(tonumber(redis.call('GET', KEYS[3]) or '0'), tonumber(redis.call('GET', KEYS[4]) or '0'))
if blocked > now then return {'', tostring(blocked - now)} end
local used = redis.call('ZCARD', KEYS[1])
local lease = math.min(tonumber(ARGV[5]), 2 * window)  -- memory.in_flight_lease
if used < limit then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil((window + lease) * 1000))
  return {ARGV[4], '0'}
end
local nth = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
return {'', tostring(math.max(0, tonumber(nth[2]) + window - now))}
"""
)

# KEYS: slots, meta, penalty, full. ARGV: base limit, base window, cap, slot id, lease,
# learned limit, learned window, remaining, retry after ('' when the header was absent).
_GIVE_BACK = (
    """
if ARGV[6] ~= '' and tonumber(ARGV[6]) > 0 then redis.call('HSET', KEYS[2], 'limit', ARGV[6]) end
if ARGV[7] ~= '' and tonumber(ARGV[7]) > 0 then redis.call('HSET', KEYS[2], 'window', ARGV[7]) end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[10]))
"""
    + _PRELUDE
    + """
local lease = tonumber(ARGV[5])
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil((window + lease) * 1000))
local function block(key, untl)
  local current = tonumber(redis.call('GET', key) or '0')
  if untl > now and untl > current then
    redis.call('SET', key, tostring(untl), 'PX', math.ceil((untl - now) * 1000))
  end
end
if ARGV[9] ~= '' and tonumber(ARGV[9]) > 0 then block(KEYS[3], now + tonumber(ARGV[9])) end
if ARGV[8] ~= '' and tonumber(ARGV[8]) <= 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  block(KEYS[4], tonumber(oldest[2]) + window)
end
return 1
"""
)

# KEYS: slots, meta, penalty, full. ARGV: base limit, base window, cap.
# Returns {used, limit, window, penalty seconds remaining}.
_STATE = (
    _PRELUDE
    + """
local used = redis.call('ZCARD', KEYS[1])
local penalty = math.max(0, tonumber(redis.call('GET', KEYS[3]) or '0') - now)
return {tostring(used), tostring(limit), tostring(window), tostring(penalty)}
"""
)


def _arg(value: float | int | None) -> str:
    return "" if value is None else repr(value)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisWindows(WindowStore):
    """The sliding windows of one credential, kept in Redis."""

    def __init__(
        self, client: Any, prefix: str, credential: str, *, in_flight_lease: float, poll_cap: float
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._credential = credential
        self._lease = in_flight_lease
        self.poll_cap = poll_cap
        self._take = client.register_script(_TAKE)
        self._give_back = client.register_script(_GIVE_BACK)
        self._state = client.register_script(_STATE)

    def _keys(self, group: str) -> list[str]:
        # The hash tag {credential:group} keeps a group's keys in one Redis Cluster slot.
        base = f"{self._prefix}:budget:{{{self._credential}:{group}}}"
        return [f"{base}:slots", f"{base}:meta", f"{base}:penalty", f"{base}:full"]

    @staticmethod
    def _limit_args(base: GroupLimit, cap: int | None) -> list[str]:
        return [str(int(base.limit)), repr(float(base.window)), str(int(cap or 0))]

    def try_take(self, group: str, base: GroupLimit, cap: int | None, reserve: int = 0) -> tuple[str | None, float]:
        # not parallel: only the head of a line asks (other processes' waiters compete anyway)
        assert reserve == 0, "RedisWindows is not parallel"
        slot_id = uuid.uuid4().hex
        taken, wait = self._take(
            keys=self._keys(group), args=[*self._limit_args(base, cap), slot_id, repr(self._lease)]
        )
        return (_text(taken) or None), float(_text(wait))

    def give_back(self, group, slot_id, base, cap, *, limit, remaining, window, retry_after) -> None:
        args = [*self._limit_args(base, cap), slot_id, repr(self._lease)]
        args += [_arg(limit), _arg(window), _arg(remaining), _arg(retry_after), str(LEARNED_TTL_SECONDS)]
        self._give_back(keys=self._keys(group), args=args)

    def knows_limit(self, group: str) -> bool:
        # asked once per group and process (the budget remembers the answer)
        return bool(self._client.hexists(self._keys(group)[1], "limit"))

    def state(self, group: str, base: GroupLimit, cap: int | None) -> tuple[int, GroupLimit, float]:
        used, limit, window, penalty = (
            _text(v) for v in self._state(keys=self._keys(group), args=self._limit_args(base, cap))
        )
        return int(float(used)), GroupLimit(limit=int(float(limit)), window=float(window)), float(penalty)


class RedisBudget(QueuedBudget):
    """A credential's budget shared through Redis; made by :class:`RedisBudgetProvider`."""

    def __init__(self, windows: RedisWindows, defaults: Mapping[str, GroupLimit] | None = None) -> None:
        super().__init__(windows, defaults)


class RedisBudgetProvider(PerCredentialProvider):
    """Budgets in the Redis at ``url``, under keys starting with ``prefix``.

    Every process that should share a credential's budget must use the same Redis and prefix.
    ``poll_cap`` bounds how long a waiter sleeps before it looks at what other processes did.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "rcetl",
        *,
        poll_cap: float = 0.25,
        in_flight_lease: float = IN_FLIGHT_LEASE,
    ) -> None:
        import redis  # lazily: only pipelines that share budgets through Redis need the package

        super().__init__()
        self._client = redis.Redis.from_url(url)
        self.prefix = prefix
        self._poll_cap = poll_cap
        self._lease = in_flight_lease

    def _create(self, credential: str, defaults: dict[str, GroupLimit]) -> Budget:
        windows = RedisWindows(
            self._client, self.prefix, credential, in_flight_lease=self._lease, poll_cap=self._poll_cap
        )
        return RedisBudget(windows, defaults)

    def name_credential(self, credential: str, label: str) -> None:
        """Say which connection (and account) a credential id is, for `rcetl workers status`:
        credential ids are hashes that must not reveal the JWT, so the names are kept beside them."""
        key = f"{self.prefix}:budget-names"
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(key, credential, label)
        pipe.expire(key, LEARNED_TTL_SECONDS)
        pipe.execute()

    def credential_names(self) -> dict[str, str]:
        return {_text(k): _text(v) for k, v in self._client.hgetall(f"{self.prefix}:budget-names").items()}

    def clear(self) -> int:
        """Forget every window, penalty and learned limit under this prefix (after a plan change,
        or at the end of a test); return how many keys were deleted."""
        keys = list(self._client.scan_iter(match=f"{self.prefix}:budget:*", count=500))
        keys += list(self._client.scan_iter(match=f"{self.prefix}:budget-names", count=500))
        return int(self._client.delete(*keys)) if keys else 0
