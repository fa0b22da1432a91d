"""Node types: one small module each, registered here by their stable type name.

A node type declares its config fields, its output ports and a `run` that returns an
`Outcome` (which port to leave by, when to wake, what to send) instead of touching the
outside world. Type names are stored in journey documents: never rename one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network
from typing import Any, ClassVar, TypeVar

Config = Mapping[str, Any]
Channels = Mapping[str, str]  # channel slug -> name, for summaries


@dataclass(frozen=True)
class Port:
    name: str
    required: bool = True


@dataclass(frozen=True)
class CheckContext:
    """What config checks may consult: the channels that exist (None: do not check), the
    hosts and private networks calls may go to besides public ones, and the step being
    checked as people read its name (for problems that name it)."""

    channels: frozenset[str] | None = None
    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    step: str | None = None
    # Decision tables with a live version, by key: the outcomes their rules give (None: do
    # not check, and a decide step's outputs are taken as its connections say).
    decisions: Mapping[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Resume:
    """Why a waiting run is advanced again: its timer fired, or an awaited event came."""

    kind: str  # "timer" or "event"
    event: Mapping[str, Any] | None = None


@dataclass
class RunContext:
    node_id: str
    config: Config
    scope: dict[str, Any]
    now: datetime
    customer_key: str
    resume: Resume | None = None
    step: str | None = None
    # The live decision tables, asked by key (engine.decisions.store.live in a live run).
    tables: Callable[[str], Any] | None = None


@dataclass(frozen=True)
class Send:
    node: str
    channel: str
    message: dict[str, Any]
    fallback_channel: str | None = None
    empty: tuple[
        str, ...
    ] = ()  # the names its templates printed empty for this customer
    transactional: bool = False  # untouched by brand-wide policies, counted by no cap


@dataclass(frozen=True)
class WebhookCall:
    node: str
    url: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True)
class ProfileChange:
    set: dict[str, Any] = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)
    increment: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Await:
    """Wait for `event` (matching `where`), or until `timeout_at`."""

    event: str
    where: Mapping[str, Any] | None
    timeout_at: datetime | None


@dataclass
class Outcome:
    """What a node did: leave by `port`, or wait (`wake_at`, `awaits`); with no port and no
    wait the run ends here."""

    port: str | None = None
    wake_at: datetime | None = None
    awaits: Await | None = None
    sends: list[Send] = field(default_factory=list)
    webhooks: list[WebhookCall] = field(default_factory=list)
    profile: ProfileChange | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    # Kept in the run for later steps, merged one level deep into its context.
    context: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The port taken when `port` has no connection (a table's outcome newer than the version).
    fallback: str | None = None

    @property
    def waits(self) -> bool:
        return self.wake_at is not None or self.awaits is not None


class NodeError(Exception):
    """A node could not do its work for this run (for example a template failed to render)."""


class UnknownNodeType(KeyError):
    """A document names a node type Throughline does not have."""


class NodeType:
    """The base of every node type; subclasses are stateless and registered once."""

    type_name: ClassVar[str]
    label: ClassVar[str]
    help: ClassVar[str]
    fields: ClassVar[dict[str, str]] = {}
    waits: ClassVar[bool] = False

    def ports(self, config: Config, ctx: CheckContext | None = None) -> list[Port]:
        """Its outputs; `ctx` for a type whose outputs depend on more than its config."""
        return [Port("out")]

    def knows_ports(self, ctx: CheckContext | None) -> bool:
        """Whether `ports` is complete with `ctx` (else connections are not checked)."""
        return True

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        """Problems with `config` as (field, sentence) pairs."""
        return []

    def run(self, ctx: RunContext) -> Outcome:
        raise NotImplementedError(f"{self.type_name} does not define run()")

    def summary(self, config: Config, channels: Channels) -> str:
        """One short plain sentence saying what this step does with `config`.

        `channels` maps channel slugs to their names. A draft's config may be incomplete
        or wrong: a summary says what it can and never raises.
        """
        return self.label


REGISTRY: dict[str, NodeType] = {}
N = TypeVar("N", bound=type[NodeType])


def register(cls: N) -> N:
    """Class decorator: add a node type to the registry under its type name."""
    if cls.type_name in REGISTRY:
        raise ValueError(f"node type {cls.type_name!r} is registered twice")
    REGISTRY[cls.type_name] = cls()
    return cls


def get(type_name: str) -> NodeType:
    try:
        return REGISTRY[type_name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise UnknownNodeType(
            f"{type_name!r} is not a node type; use one of {known}"
        ) from None


def summarize(type_name: str, config: Any, channels: Channels | None = None) -> str:
    """What a step of `type_name` with `config` does, as one sentence (see NodeType.summary)."""
    node_type = REGISTRY.get(type_name)
    if node_type is None:
        return f"Unknown step type {type_name!r}"
    return node_type.summary(
        config if isinstance(config, Mapping) else {}, channels or {}
    )


def title(type_name: str, label: str | None) -> str:
    """A step's name as people read it: its label, else what its type is called."""
    if label and label.strip():
        return label
    node_type = REGISTRY.get(type_name)
    return node_type.label if node_type else type_name


def names() -> Sequence[str]:
    return tuple(REGISTRY)


MODULES = (
    "trigger", "wait", "wait_until", "wait_for_event", "condition", "switch",
    "split", "decide", "send", "webhook", "update_profile", "exit",
)  # fmt: skip
for _module in MODULES:
    importlib.import_module(f"engine.language.nodes.{_module}")
