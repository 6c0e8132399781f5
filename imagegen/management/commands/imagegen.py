"""``manage.py imagegen <generate|fill|sandbox|demo|sweep|purge-deliveries|status|openapi|
token|c2pa-identity|doctor>``."""

from __future__ import annotations

import argparse
import functools
import time
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    DjangoHelpFormatter,
)
from django.db import DatabaseError, connections, router
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from ... import services
from ...api.auth import SCOPES
from ...c2pa_identity import make_identity
from ...choices import AspectRatio, Mode, Resolution
from ...models import ApiToken, GenerationJob, GenerationRun
from ...sandbox import __main__ as sandbox_cli
from ..progress import wait_for_job

#: Actions that read or write imagegen's tables: they first check its migrations are applied.
DATABASE_ACTIONS = {"generate", "fill", "demo", "sweep", "purge-deliveries", "status", "token"}

NOT_MIGRATED = "The database is not migrated: run `manage.py migrate` first."


class ActionParser(CommandParser):
    """The parser of one action. With ``ignore_separator`` (for an action
    without positional arguments, where ``--`` has nothing to separate) it
    drops a ``--``, so ``imagegen sandbox -- --port 8765`` means ``--port 8765``."""

    def __init__(self, *, ignore_separator: bool = False, **kwargs: Any) -> None:
        self.ignore_separator = ignore_separator
        super().__init__(**kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self.ignore_separator and args and "--" in args:
            args = list(args)
            args.remove("--")
        return super().parse_known_args(args, namespace)


def add_action(subparsers: Any, name: str, **kwargs: Any) -> ActionParser:
    """Add the parser of action ``name``; it also takes Django's common
    options (``--settings``, ``--traceback``, ``-v``...), so that they work
    after the action as well as before it."""
    return subparsers.add_parser(
        name, parents=[_common_options()], formatter_class=DjangoHelpFormatter, **kwargs
    )


@functools.cache
def _common_options() -> CommandParser:
    """Django's options common to all commands, as every command's parser has
    them, with their defaults suppressed: argparse copies an action parser's
    defaults over the values parsed before the action, so a default here would
    undo ``--traceback status``."""
    common = BaseCommand().create_parser("manage.py", "imagegen", add_help=False)
    # Per action, not set_defaults(): parents= would copy parser-level defaults.
    # _actions is read as Django's call_command() reads it.
    for action in common._actions:
        action.default = argparse.SUPPRESS
    return common


class Command(BaseCommand):
    help = "Generate images, run the sandbox or the demo, sweep due jobs, show job status."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="action", required=True, metavar="ACTION", parser_class=ActionParser
        )

        gen = add_action(sub, "generate", help="Create a job (and wait for it with --wait).")
        gen.add_argument("prompt")
        gen.add_argument("--mode", choices=Mode.values, default=None)
        gen.add_argument("--resolution", choices=Resolution.values, default="1k")
        gen.add_argument("--aspect-ratio", choices=AspectRatio.values, default="auto")
        gen.add_argument(
            "--ref",
            action="append",
            default=[],
            metavar="URL",
            help="Reference image URL (repeat for several; implies image-to-image).",
        )
        gen.add_argument("--provider", default=None)
        gen.add_argument("--wait", action="store_true", help="Wait with a progress bar.")
        gen.add_argument(
            "--timeout",
            type=float,
            default=None,
            help="Seconds to wait (default: the job's deadline).",
        )

        fill = add_action(
            sub,
            "fill",
            help="Generate a declared image field for a model's objects (bulk fill): "
            "prints the plan and its price first.",
        )
        fill.add_argument("field", metavar="app_label.Model.field")
        fill.add_argument(
            "--missing", action="store_true", help="Only objects whose field is empty."
        )
        fill.add_argument("--limit", type=int, default=None, metavar="N", help="At most N jobs.")
        fill.add_argument("--dry-run", action="store_true", help="Print the plan only.")
        fill.add_argument(
            "--wait", action="store_true", help="Wait for every job and attach the results."
        )
        fill.add_argument(
            "--user", default=None, help="Username the jobs are made for (budgets, history)."
        )
        fill.add_argument(
            "--all-or-none",
            action="store_true",
            help="Make no job when the budgets do not cover all (default: make those they cover).",
        )
        fill.add_argument(
            "--timeout", type=float, default=None, help="Seconds to wait (default: no limit)."
        )

        sandbox = add_action(
            sub,
            "sandbox",
            help="Run the sandbox server (APIXO protocol); the options of "
            "python -m imagegen.sandbox, optionally after --.",
            ignore_separator=True,
        )
        sandbox_cli.add_arguments(sandbox)

        demo = add_action(sub, "demo", help="Run the whole pipeline against the sandbox.")
        demo.add_argument(
            "--celery-app",
            default=None,
            help="Celery app for the worker and beat (-A). Default: $IMAGEGEN_CELERY_APP, "
            "else the settings module's top package (mysite for mysite.settings).",
        )
        demo.add_argument("--timeout", type=float, default=120.0)
        demo.add_argument(
            "--serve",
            action="store_true",
            help="Afterwards keep the site, worker and sandbox running and open the admin "
            "to a demo superuser, until Ctrl-C.",
        )

        sweep = add_action(sub, "sweep", help="Run the sweeper once (or every N seconds).")
        sweep.add_argument("--every", type=float, default=None, metavar="SECONDS")

        purge = add_action(
            sub,
            "purge-deliveries",
            help="Delete callback delivery records past their retention "
            "(REFUSED_DELIVERY_RETENTION_DAYS, DELIVERY_RETENTION_DAYS).",
        )
        purge.add_argument(
            "--dry-run", action="store_true", help="Only count what would be deleted."
        )

        status = add_action(sub, "status", help="Show recent jobs, or one job.")
        status.add_argument("job_id", nargs="?")
        status.add_argument("--limit", type=int, default=20)

        add_action(sub, "openapi", help="Print the JSON API's OpenAPI document.")

        identity = add_action(
            sub,
            "c2pa-identity",
            help="Write a test C2PA signing identity (root CA, signing certificate, key) "
            "for development; nothing trusts it.",
        )
        identity.add_argument("--out", required=True, metavar="DIR")
        identity.add_argument("--algorithm", choices=["es256", "ed25519"], default="es256")

        token = add_action(sub, "token", help="Create or revoke JSON API tokens.")
        token_sub = token.add_subparsers(dest="token_action", required=True, metavar="ACTION")
        create = add_action(token_sub, "create", help="Create a token; prints it once.")
        create.add_argument("--user", required=True, help="Username the token acts as.")
        create.add_argument("--name", required=True, help="What the token is for.")
        create.add_argument("--expires-days", type=int, default=None, metavar="DAYS")
        create.add_argument(
            "--scope",
            action="append",
            choices=list(SCOPES),
            help="What the token may do; repeat for several (default: every scope).",
        )
        revoke = add_action(token_sub, "revoke", help="Revoke a token by its prefix.")
        revoke.add_argument(
            "prefix", help="The token's prefix (ig_ and 9 characters), or the token."
        )

        from ...health.doctor import DEFAULT_TIMEOUT

        doctor = add_action(
            sub,
            "doctor",
            help="Check the running system (broker, worker, beat, callbacks, storage, "
            "providers); exit status 1 if something is wrong.",
        )
        doctor.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            metavar="SECONDS",
            help=f"Seconds each check may wait (default {DEFAULT_TIMEOUT:g}).",
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action in DATABASE_ACTIONS:
            require_migrated()
        getattr(self, f"handle_{action.replace('-', '_')}")(**options)

    def handle_generate(self, **options: Any) -> None:
        mode = options["mode"] or ("image-to-image" if options["ref"] else "text-to-image")
        try:
            job = services.create_job(
                prompt=options["prompt"],
                mode=mode,
                resolution=options["resolution"],
                aspect_ratio=options["aspect_ratio"],
                reference_urls=options["ref"],
                provider=options["provider"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(_messages(exc))) from None
        self.stdout.write(f"Created job {job.pk} ({job.provider}/{job.model}).")
        if not options["wait"]:
            return
        timeout = options["timeout"] or (job.deadline_at - job.created_at).total_seconds() + 30
        job = wait_for_job(job.pk, stream=self.stdout, timeout=timeout)
        if job.status == "queued":
            raise CommandError("The job is still queued: is a Celery worker running?")
        if job.status != "succeeded":
            raise CommandError(f"Job {job.pk} {job.status}: {job.error_text}")
        for image in job.images.order_by("index"):
            self.stdout.write(f"{image.file.name} {image.width}x{image.height}")

    def handle_fill(self, **options: Any) -> None:
        from ...services import fill

        user = None
        if options["user"]:
            user_model = get_user_model()
            try:
                user = user_model._default_manager.get_by_natural_key(options["user"])
            except user_model.DoesNotExist:
                raise CommandError(f"No user {options['user']!r}.") from None
        arguments = {"user": user, "missing": options["missing"], "limit": options["limit"]}
        try:
            declaration = fill.resolve(options["field"])
            objects = declaration.model._default_manager.all()
            self._write_plan(fill.plan(objects, declaration.field_name, **arguments))
            if options["dry_run"]:
                return
            started = fill.start(
                objects,
                declaration.field_name,
                trim=not options["all_or_none"],
                model=declaration.model,
                **arguments,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(_messages(exc))) from None
        run = started.run
        self.stdout.write(f"Started run {run.pk}: {len(started.jobs)} jobs.")
        if not options["wait"]:
            return
        deadline = time.monotonic() + options["timeout"] if options["timeout"] else None
        last = None
        while True:
            summary = fill.summary(run)
            line = f"{summary['finished']}/{summary['total']} finished " + ", ".join(
                f"{status} {n}" for status, n in sorted(summary["statuses"].items())
            )
            if line != last:
                self.stdout.write(line)
                last = line
            if summary["finished"] >= summary["total"]:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise CommandError(f"Timed out: {line}. Is a Celery worker running?")
            time.sleep(1)  # a progress display's refresh, not a synchronisation
        fill.attach_pending(run)
        summary = fill.summary(GenerationRun.objects.get(pk=run.pk))
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary["outcomes"].items()))
        waiting = summary["pending_review"]
        self.stdout.write(
            f"Done: {outcomes or 'nothing attached'}"
            + (f"; {waiting} waiting for review" if waiting else "")
            + "."
        )

    def _write_plan(self, plan: Any) -> None:
        currency = plan.currency
        price = "no price configured" if plan.price is None else f"{plan.price:.2f} {currency}"
        self.stdout.write(
            f"Bulk fill {plan.declaration.key}: {len(plan.objects)} jobs "
            f"({plan.provider}, {plan.resolution}), {price}"
            + ("" if plan.unit_price is None else f" ({plan.unit_price} each)")
            + (", results wait for review." if plan.review else ", results attached.")
        )
        for state in plan.budgets:
            self.stdout.write(
                f"Budget: {state.label}: {state.left:.2f} of {state.limit:.2f} {currency} left."
            )
        if plan.trimmed:
            ids = ", ".join(str(obj.pk) for obj in plan.trimmed)
            self.stdout.write(f"Not covered by the budgets: {len(plan.trimmed)} objects ({ids}).")
        reasons: dict[str, int] = {}
        for skipped in plan.skipped:
            reasons[skipped.reason] = reasons.get(skipped.reason, 0) + 1
        for reason, count in sorted(reasons.items()):
            self.stdout.write(f"Skipped: {count} objects ({reason}).")

    def handle_c2pa_identity(self, **options: Any) -> None:
        try:
            identity = make_identity(options["algorithm"])
        except ImportError:
            raise CommandError(
                'This needs the "c2pa" extra: pip install "django-imagegen[c2pa]".'
            ) from None
        try:
            paths = identity.write(options["out"])
        except OSError as exc:
            raise CommandError(f"Cannot write to {options['out']}: {exc.strerror}") from None
        self.stdout.write(
            "IMAGEGEN = {\n"
            f'    "C2PA_SIGNING_CERTIFICATES": "{paths["certificates"]}",\n'
            f'    "C2PA_SIGNING_KEY": "{paths["private_key"]}",\n'
            f'    "C2PA_TRUST_ANCHORS": "{paths["root"]}",  # development only\n'
            "}"
        )

    def handle_sandbox(self, **options: Any) -> None:
        sandbox_cli.serve(options)

    def handle_demo(self, **options: Any) -> None:
        from ...demo import DemoError, DemoOptions, run_demo

        try:
            run_demo(
                DemoOptions(
                    celery_app=options["celery_app"],
                    timeout=options["timeout"],
                    serve=options["serve"],
                ),
                self.stdout,
            )
        except DemoError as exc:
            raise CommandError(str(exc)) from None

    def handle_sweep(self, **options: Any) -> None:
        while True:
            counts = services.sweep()
            self.stdout.write(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "idle")
            if not options["every"]:
                return
            time.sleep(options["every"])  # the sweep cadence itself, like beat's schedule

    def handle_purge_deliveries(self, **options: Any) -> None:
        from ...services import retention

        if options["dry_run"]:
            counts = {kind: rows.count() for kind, rows in retention.expired().items()}
            verb = "would delete"
        else:
            counts = retention.purge()
            verb = "deleted"
        self.stdout.write(
            f"{verb} {counts['refused']} refused and {counts['accepted']} other "
            "callback deliveries past their retention."
        )

    def handle_status(self, **options: Any) -> None:
        if options["job_id"]:
            try:
                job = GenerationJob.objects.get(pk=options["job_id"])
            except (GenerationJob.DoesNotExist, ValidationError):
                raise CommandError(f"No job {options['job_id']}.") from None
            jobs = [job]
        else:
            jobs = list(GenerationJob.objects.order_by("-created_at")[: options["limit"]])
        for job in jobs:
            self.stdout.write(
                f"{job.pk}  {job.status:<10} {job.resolution:<3} "
                f"{job.duration.total_seconds():7.1f}s "
                f"polls {job.poll_count:<3} {job.prompt[:50]!r}"
            )
            if job.error_text:
                self.stdout.write(f"    {job.error_code}: {job.error_text}")
            for image in job.images.order_by("index"):
                self.stdout.write(f"    [{image.index}] {image.file.name}")

    def handle_openapi(self, **options: Any) -> None:
        from ...api.openapi import dumps

        self.stdout.write(dumps(), ending="")

    def handle_token(self, **options: Any) -> None:
        from ...api import auth

        if options["token_action"] == "create":  # noqa: S105 (a subcommand's name)
            user_model = get_user_model()
            try:
                user = user_model._default_manager.get_by_natural_key(options["user"])
            except user_model.DoesNotExist:
                raise CommandError(f"No user {options['user']!r}.") from None
            days = options["expires_days"]
            expires = timezone.now() + timedelta(days=days) if days else None
            scopes = options["scope"] or tuple(auth.SCOPES)
            token, raw = auth.create_token(user, options["name"], expires, scopes)
            # The token alone on stdout (TOKEN=$(...)); the notice on stderr.
            self.stderr.write(
                f"Token {token.prefix}… for {user}: copy it now, it is not shown again."
            )
            self.stdout.write(raw)
            return
        prefix = options["prefix"].rstrip("…")[: auth.PREFIX_LENGTH]
        tokens = list(ApiToken.objects.filter(prefix=prefix))
        if not tokens:
            raise CommandError(f"No token has the prefix {prefix!r}.")
        if len(tokens) > 1:
            raise CommandError(
                f"{len(tokens)} tokens have the prefix {prefix!r}; revoke in the admin."
            )
        if not ApiToken.objects.filter(pk=tokens[0].pk, revoked=False).update(revoked=True):
            self.stdout.write(f"Token {prefix}… was already revoked.")
            return
        self.stdout.write(f"Revoked token {prefix}… ({tokens[0].name}, {tokens[0].user}).")

    def handle_doctor(self, **options: Any) -> None:
        from ...health import findings
        from ...health.doctor import run_doctor

        styles = {
            findings.OK: self.style.SUCCESS,
            findings.WARN: self.style.WARNING,
            findings.FAIL: self.style.ERROR,
        }
        failed = 0
        for finding in run_doctor(timeout=options["timeout"]):
            self.stdout.write(finding.line(), styles.get(finding.level))
            failed += finding.failed
        if failed:
            raise CommandError(f"{failed} problem(s): see the FAIL lines above.")


def require_migrated() -> None:
    """Raise CommandError unless imagegen's migrations (and those they depend
    on) are applied to the database its models use."""
    connection = connections[router.db_for_write(GenerationJob)]
    try:
        executor = MigrationExecutor(connection)
        leaves = [key for key in executor.loader.graph.leaf_nodes() if key[0] == "imagegen"]
        unapplied = executor.migration_plan(leaves)
    except DatabaseError as exc:
        raise CommandError(f"Cannot read the database's migrations: {exc}") from None
    if unapplied:
        raise CommandError(NOT_MIGRATED)


def _messages(exc: ValidationError) -> list[str]:
    if hasattr(exc, "message_dict"):
        return [f"{field}: {msg}" for field, msgs in exc.message_dict.items() for msg in msgs]
    return list(exc.messages)
