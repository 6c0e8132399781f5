"""``manage.py imagegen`` subcommands that need no worker."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from imagegen import services
from imagegen.models import GenerationJob

pytestmark = [pytest.mark.django_db]


def run(*args):
    out = io.StringIO()
    call_command("imagegen", *args, stdout=out)
    return out.getvalue()


def test_generate_without_wait_creates_a_job(imagegen_settings):
    text = run("generate", "a paper boat", "--resolution", "2k", "--aspect-ratio", "3:4")
    job = GenerationJob.objects.get()
    assert str(job.pk) in text
    assert (job.resolution, job.aspect_ratio, job.mode) == ("2k", "3:4", "text-to-image")


def test_generate_with_ref_is_image_to_image(imagegen_settings):
    run("generate", "a paper boat at sea", "--ref", "https://example.com/boat.png")
    job = GenerationJob.objects.get()
    assert job.mode == "image-to-image"
    assert job.reference_urls == ["https://example.com/boat.png"]


def test_generate_bad_input_is_a_command_error(imagegen_settings):
    with pytest.raises(CommandError, match="prompt"):
        run("generate", "   ")
    assert GenerationJob.objects.count() == 0


def test_status_lists_and_shows_jobs(imagegen_settings):
    job = services.create_job(prompt="a status report")
    assert str(job.pk) in run("status")
    assert "queued" in run("status", str(job.pk))
    with pytest.raises(CommandError):
        run("status", "not-a-uuid")


def test_sweep_once(imagegen_settings):
    job = services.create_job(prompt="due")
    GenerationJob.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    assert "submit 1" in run("sweep")


def parse(*argv: str) -> dict:
    """``manage.py imagegen ARGV`` parsed by the parser run_from_argv() uses."""
    from imagegen.management.commands.imagegen import Command

    return vars(Command().create_parser("manage.py", "imagegen").parse_args(list(argv)))


#: Django's common options: argv, the option's dest, the value it parses to, its default.
COMMON_OPTIONS = {
    "--settings": (["--settings", "tests.settings"], "settings", "tests.settings", None),
    "--pythonpath": (["--pythonpath", "/srv/site"], "pythonpath", "/srv/site", None),
    "--traceback": (["--traceback"], "traceback", True, False),
    "-v": (["-v", "0"], "verbosity", 0, 1),
    "--verbosity": (["--verbosity", "3"], "verbosity", 3, 1),
    "--no-color": (["--no-color"], "no_color", True, False),
    "--force-color": (["--force-color"], "force_color", True, False),
    "--skip-checks": (["--skip-checks"], "skip_checks", True, False),
}

#: One argv for every action (and both forms of sandbox's options).
ACTIONS = {
    "generate": ["generate", "a kite"],
    "sandbox": ["sandbox", "--port", "0"],
    "sandbox --": ["sandbox", "--", "--port", "0"],
    "demo": ["demo"],
    "sweep": ["sweep"],
    "status": ["status"],
    "openapi": ["openapi"],
    "token create": ["token", "create", "--user", "u", "--name", "n"],
    "token revoke": ["token", "revoke", "ig_123456789"],
}


def positions(argv: list[str]) -> dict[str, int]:
    """Where a common option can go: before the action, after all of it, and
    for token's actions between ``token`` and its action."""
    found = {"before": 0, "after": len(argv)}
    if argv[0] == "token":
        found["between"] = 1
    return found


@pytest.mark.parametrize("option", COMMON_OPTIONS)
@pytest.mark.parametrize("action", ACTIONS)
def test_common_options_parse_before_and_after_every_action(action, option):
    """Family: every action x every Django common option x every position. The
    option's value arrives (a value given before the action is not replaced by
    the action's default), and without it each option has Django's default."""
    argv = ACTIONS[action]
    option_argv, dest, value, default = COMMON_OPTIONS[option]
    assert parse(*argv)[dest] == default
    for where, index in positions(argv).items():
        parsed = parse(*argv[:index], *option_argv, *argv[index:])
        assert parsed[dest] == value, (where, parsed)
        assert parsed["action"] == argv[0]


#: Every sandbox option with a value other than its default, and that value.
SANDBOX_OPTIONS = {
    "--host": (["--host", "0.0.0.0"], "host", "0.0.0.0"),  # noqa: S104 (parsed, not bound)
    "--port": (["--port", "9001"], "port", 9001),
    "--latency": (["--latency", "0.5-1.5"], "latency", (0.5, 1.5)),
    "--latency (one value)": (["--latency", "3"], "latency", (3.0, 3.0)),
    "--callback-mode": (["--callback-mode", "reorder"], "callback_mode", "reorder"),
    "--callback-delay": (["--callback-delay", "2.5"], "callback_delay", 2.5),
    "--progress-callbacks": (["--progress-callbacks"], "progress_callbacks", True),
    "--format": (["--format", "jpeg"], "image_format", "jpeg"),
    "--api-key": (["--api-key", "k"], "api_key", "k"),
    "--public-url": (["--public-url", "http://sandbox.test"], "public_url", "http://sandbox.test"),
    "--fail-rate": (["--fail-rate", "0.25"], "fail_rate", 0.25),
    "--balance": (["--balance", "0.5"], "balance", 0.5),
    "--verbose": (["--verbose"], "verbose", True),
}


def sandbox_forms(options: list[str]) -> dict[str, dict]:
    """``options`` parsed as python -m imagegen.sandbox, manage.py imagegen
    sandbox and manage.py imagegen sandbox -- take them."""
    import argparse

    from imagegen.sandbox import __main__ as sandbox_cli

    module = argparse.ArgumentParser()
    sandbox_cli.add_arguments(module)
    return {
        "python -m imagegen.sandbox": vars(module.parse_args(options)),
        "imagegen sandbox": parse("sandbox", *options),
        "imagegen sandbox --": parse("sandbox", "--", *options),
    }


@pytest.mark.parametrize("option", SANDBOX_OPTIONS)
def test_every_sandbox_option_in_every_form(option):
    """Family: every sandbox option, given to ``python -m imagegen.sandbox``,
    to ``imagegen sandbox`` and after ``imagegen sandbox --``: the server would
    run with that value, and with every other option at its default."""
    from dataclasses import asdict

    from imagegen.sandbox import SandboxConfig
    from imagegen.sandbox.__main__ import sandbox_config

    argv, field, value = SANDBOX_OPTIONS[option]
    defaults = {**asdict(SandboxConfig()), "host": "127.0.0.1", "port": 8765}
    for form, options in sandbox_forms(argv).items():
        got = {**asdict(sandbox_config(options)), "host": options["host"], "port": options["port"]}
        assert got == {**defaults, field: value}, form


@pytest.mark.parametrize("latency", ["fast", "3-1", "1-x", "", "-2"])
def test_bad_sandbox_latency_is_a_usage_error(latency):
    """Family: latencies that are not seconds or LOW-HIGH with 0 <= LOW <= HIGH
    are refused by the parser, in both forms, naming the option."""
    for argv in (["sandbox", "--latency", latency], ["sandbox", "--", "--latency", latency]):
        with pytest.raises(CommandError, match="--latency"):
            parse(*argv)
