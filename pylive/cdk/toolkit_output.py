"""Reading the CDK toolkit's output: which lines to show as progress, and the one line that
explains a failure. Pure functions of text; no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

# "<stack> | 2/4 | 10:00:01 AM | CREATE_FAILED | AWS::Lambda::Function | <path> (<id>) reason";
# under "Failed resources:" the same without the progress column.
_EVENT_RE = re.compile(
    r"^(?P<stack>[^|\s]+)\s*\|(?:[^|]*\|)??\s*(?P<time>[^|]*?)\s*\|\s*(?P<status>[A-Z_]+)"
    r"(?: \(skipped\))?\s*\|\s*(?P<type>[^|\s]+)\s*\|\s*(?P<rest>.*)$"
)
_RESOURCE_RE = re.compile(r"^(?P<name>\S+)(?: \((?P<logical>[^)\s]+)\))?\s*(?P<reason>.*)$")
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CANCELLED = ("Resource creation cancelled", "Resource update cancelled")
_FAILED_RE = re.compile(r"^[❌\s]*(?P<what>.+?) failed: (?P<reason>.+)$")
_FAILED_TO_RE = re.compile(r"^❌\s*(?P<what>\S+) failed to \w+")
_PREFIXES = ("ToolkitError: ", "Error: ", "ValidationError: ")

# Lines and blocks that only add noise: pylive prints the outputs itself.
_DROP_PREFIXES = (
    "✨  Synthesis time",
    "✨  Total time",
    "(node:",
    "(Use `node --trace-warnings",
    "NOTICES",
)
_DROP_CONTAINS = (": start: Building", ": success: Built", ": start: Publishing")
_BLOCK_STARTS = ("Outputs:", "Stack ARN:")

BOOTSTRAP_HINTS = (
    "has the environment been bootstrapped",
    "run 'cdk bootstrap'",
    "run `cdk bootstrap`",
    "is not bootstrapped",
    "/cdk-bootstrap/",
)


@dataclass(frozen=True)
class StackEvent:
    stack: str
    status: str
    resource_type: str
    name: str  # the construct path when the toolkit knows it, else the logical id
    logical_id: str
    reason: str

    def describe(self) -> str:
        which = self.name if self.name == self.logical_id else f"{self.name} ({self.logical_id})"
        return f"{which} [{self.resource_type}] {self.status}: {self.reason or 'no reason given'}"

    @property
    def failed(self) -> bool:
        return self.status.endswith("_FAILED")


def clean(line: str) -> str:
    return _ANSI_RE.sub("", line).rstrip()


def parse_event(line: str) -> StackEvent | None:
    """A stack activity line of ``--progress events``, or None."""
    found = _EVENT_RE.match(clean(line))
    if not found:
        return None
    resource = _RESOURCE_RE.match(found.group("rest").strip())
    name = resource.group("name") if resource else ""
    logical = (resource.group("logical") if resource else None) or name
    reason = resource.group("reason").strip() if resource else found.group("rest").strip()
    return StackEvent(
        stack=found.group("stack"),
        status=found.group("status"),
        resource_type=found.group("type"),
        name=name,
        logical_id=logical,
        reason=reason,
    )


class ProgressFilter:
    """Decides which toolkit lines the user sees while CloudFormation works."""

    def __init__(self) -> None:
        self._in_block = False
        self._blank = True

    def __call__(self, raw: str) -> str | None:
        line = clean(raw)
        if self._in_block:
            if line.strip():
                return None
            self._in_block = False
        if line.startswith(_BLOCK_STARTS):
            self._in_block = True
            return None
        if not line.strip():
            # collapse runs of blank lines and drop leading ones
            if self._blank:
                return None
            self._blank = True
            return ""
        if line.startswith(_DROP_PREFIXES) or any(part in line for part in _DROP_CONTAINS):
            return None
        self._blank = False
        return line


def failure_line(lines: list[str]) -> str:
    """One line naming what failed and why: the first failed resource when CloudFormation
    reported one (a cancelled one only when nothing else failed), else the toolkit's own
    error."""
    events = [event for line in lines if (event := parse_event(line)) and event.failed]
    real = [e for e in events if not e.reason.startswith(_CANCELLED)]
    resource_events = [e for e in real if e.resource_type != "AWS::CloudFormation::Stack"]
    candidates = resource_events or real or events
    if candidates:
        return f"{candidates[0].stack}: {candidates[0].describe()}"
    cleaned = [clean(line).strip() for line in lines]
    for index, line in enumerate(cleaned):
        found = _FAILED_RE.match(line)
        if found:
            return f"{found.group('what').strip()}: {_strip_prefixes(found.group('reason'))}"
        failed = _FAILED_TO_RE.match(line)
        if failed:
            # "❌  stack failed to deploy" and the reason on the next "‣ ..." line
            detail = next((n for n in cleaned[index + 1 :] if n), "").lstrip("‣").strip()
            return f"{failed.group('what')}: {_strip_prefixes(detail) or 'no reason given'}"
    for line in reversed(lines):
        text = clean(line).strip().lstrip("❌").strip()
        if text:
            return _strip_prefixes(text)
    return "the AWS CDK toolkit failed without output"


def needs_bootstrap(lines: list[str]) -> bool:
    text = "\n".join(lines).lower()
    return any(hint.lower() in text for hint in BOOTSTRAP_HINTS)


def _strip_prefixes(text: str) -> str:
    text = text.strip()
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if text.startswith(prefix):
                text = text[len(prefix) :]
                changed = True
    return text
