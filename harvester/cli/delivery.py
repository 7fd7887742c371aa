"""The command that sends: ``digest`` (now, or ``--dry-run`` to preview)."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harvester.cli.common import Options, exit_codes, writing
from harvester.errors import ConfigError

if TYPE_CHECKING:
    from harvester.digests.delivery import DeliveryResult


def digest(
    ctx: typer.Context,
    topics: Annotated[list[str] | None, typer.Argument(help="Topics (default: all)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the digests instead of sending them")
    ] = False,
    preview_dir: Annotated[
        Path, typer.Option("--preview-dir", help="Where --dry-run writes the HTML and Slack JSON")
    ] = Path("digest-preview"),
) -> None:
    """Send unsent digests now (oldest first), then the new studies; --dry-run shows them.

    Each subscription is claimed as the daemon claims it, so a command beside a running
    daemon never sends a digest the daemon is sending."""
    from harvester.app import build_app
    from harvester.digests.delivery import deliver, notifier_for, preview
    from harvester.digests.render import write_preview

    options: Options = ctx.obj
    with exit_codes():
        settings = options.settings(sending=not dry_run)
        wanted = set(topics or [t.name for t in settings.topics])
        for name in wanted:
            settings.topic(name)
        subscriptions = [s for s in settings.subscriptions if wanted & set(s.topics)]
        if not subscriptions:
            raise ConfigError(
                f"{settings.path}: no subscription covers {', '.join(sorted(wanted))}"
            )
        service = build_app(settings)
        failed = False
        try:
            for sub in subscriptions:
                if dry_run:
                    built, rendered = preview(service, sub)
                    with writing(preview_dir):
                        files = write_preview(rendered, preview_dir)
                    typer.echo(f"── {sub.key}: {len(built.items)} studies; would send: ──")
                    typer.echo(f"Subject: {rendered.subject}\n")
                    typer.echo(rendered.text)
                    typer.echo("written: " + ", ".join(str(f) for f in files))
                    continue
                with service.claim_for(f"digest:{sub.key}") as mine:
                    if not mine:
                        typer.echo(
                            f"{sub.key}: skipped: another harvester process is sending its "
                            "digests right now"
                        )
                        continue
                    # a person asked: unsent digests go now, whatever their back-off
                    result = deliver(service, sub, notifier_for(service, sub), ignore_backoff=True)
                failed = failed or bool(result.failed)
                typer.echo(_delivery_report(sub.key, result))
        finally:
            service.close()
    if failed:
        raise typer.Exit(1)


def _delivery_report(key: str, result: DeliveryResult) -> str:
    """One line per subscription: what was sent, what is still unsent and when it is retried,
    how many studies wait for later digests."""
    if result.sent:
        state = f"sent {len(result.sent)} digest(s), {result.items} studies"
    elif result.empty_sent:
        state = "sent 'nothing new'"
    elif result.unsent:
        state = "nothing sent"
    else:
        state = "nothing to send"
    for unsent in result.unsent:
        when = (
            unsent.retry_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            if unsent.retry_at is not None
            else "the next tick"
        )
        why = f"not accepted ({unsent.error})" if unsent.tried else "waiting"
        state += (
            f"; digest #{unsent.digest_id} ({unsent.items} studies) "
            f"still unsent, {why}, after {unsent.attempts} attempt(s); the daemon retries it "
            f"at {when}, or run `harvester digest` again"
        )
    if result.waiting:
        state += f"; {result.waiting} more studies wait for the next digests"
    return f"{key}: {state}"
