"""Tell the release notifier's webhooks (Slack, Feishu/Lark, DingTalk, WeCom, JSON) that a drill failed."""

from __future__ import annotations

from golive.errors import ConfigError
from golive.model.archive import Drill
from golive.release.notify import Summary, describe_raw, parse_target, send
from golive.release.model import NotifyResult


def notify_drill(values: list[str], at: str, drill: Drill) -> list[NotifyResult]:
    title = f"{'✅' if drill.status == 'passed' else '🚨'} golive drill of {at.rstrip('/').rsplit('/', 1)[-1]}: " \
            f"{drill.status.upper()}"
    lines = [f"Archive {at}", f"Moment {drill.target:%Y-%m-%d %H:%M:%S} UTC, RTO {drill.rto_seconds:.1f} s, "
                              f"RPO {drill.rpo_seconds} s"] + drill.problems[:5]
    summary = Summary(title=title, lines=lines, data={"source": "golive", "event": "drill", "archive": at,
                                                      **drill.model_dump(mode="json")})
    out = []
    for value in values:
        try:
            target = parse_target(value)
        except ConfigError as exc:
            out.append(NotifyResult(target=describe_raw(value), kind="?", ok=False, detail=str(exc)))
            continue
        out.append(send(target, summary))
    return out
