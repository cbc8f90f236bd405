"""unitrain: train and tune models from one JSON job.

``unitrain run JOB.json`` prints the result JSON on stdout (logs go to stderr)
and exits 0; a job that fails validation exits 2 with one message per problem
and starts nothing; a job that fails while running exits 1; a job interrupted
by Ctrl-C exits 130, by SIGTERM 143, each saying how to resume it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

from unitrain._compat import exit_now
from unitrain.completion import bash_script
from unitrain.errors import JobValidationError, NotFoundError, UnitrainError
from unitrain.job.names import encode_job_name
from unitrain.job.objective import Mode
from unitrain.job.params import parse_job
from unitrain.job.plan import JobPlan
from unitrain.planning import plan_job
from unitrain.plugin_loader import available_plugins, load_plugin
from unitrain.runtime import interrupts, local_stack, ray_join
from unitrain.runtime.resources import check_local_machine
from unitrain.runtime.serve import PROJECT_DIR, ServedStack, serve_forever
from unitrain.runtime.served import served_api_url
from unitrain.settings import configure_environment, enable_local_ray_auth, settings
from unitrain.stores.catalog import DatasetCatalog
from unitrain.stores.job_state import JobFolder
from unitrain.stores.registry import BEST_ALIAS_PREFIX, ModelRegistry
from unitrain.stores.retry import scrub
from unitrain.ui.job_list import job_details, list_jobs
from unitrain.ui.terminal import JobView, ProcessOutput

# Imported where they are used, after configure_environment(): Prefect and Ray
# read their settings when they are imported (unitrain.flows.train,
# unitrain.runtime.job_run, unitrain.runtime.prefect_server, unitrain.tune.dry_run).

__all__ = ["main", "command"]

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


def _interruption(error: BaseException) -> int:
    """The exit code for an interrupt (0 when ``error`` is not one)."""
    if interrupts.received_sigterm() or type(error).__name__ == "TerminationSignal":
        return EXIT_TERMINATED
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return 0


_MAX_JOB_BYTES = 10_000_000


def _read_job(path: str) -> Any:
    source = sys.stdin.read() if path == "-" else None
    try:
        text = source if source is not None else Path(path).read_text()
    except OSError as error:
        raise JobValidationError(f"job file {path!r}: {error.strerror}") from None
    if len(text) > _MAX_JOB_BYTES:
        raise JobValidationError(f"job file {path!r} is larger than {_MAX_JOB_BYTES} bytes")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise JobValidationError(
            f"job file {path!r} is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}"
        ) from None
    except RecursionError:
        raise JobValidationError(f"job file {path!r} is nested too deeply to read") from None


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _prepare(
    args: argparse.Namespace, *, start_stack: bool = False, say: Callable[[str], None] = _say
) -> tuple[dict[str, Any], JobPlan]:
    """Read and plan the job: everything is checked before anything starts.

    With ``start_stack``, the local stack starts while the job is planned, once
    the job file is well formed, and a stack that is up already is joined (a
    training job's worker readied) meanwhile; a job refused after that stops
    the stack again and leaves Ray.
    """

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        job = parse_job(_read_job(args.job))
    # Planning may import Ray, which reads its token settings on import.
    enable_local_ray_auth()
    plugin = args.plugin or job.plugin
    if start_stack:
        local_stack.start_early()
        ray_join.connect_early(
            *() if job.params.is_tune else ("unitrain.tasks.train_model:prepare_worker", plugin)
        )
    for note in job.notes:
        say(f"warning: {note}")
    plan = plan_job(job.params, plugin)
    if not settings().ray_address:
        check_local_machine(plan.params.num_cpus, plan.params.num_gpus)
    for note in plan.notes:
        say(f"note: {note}")
    return dict(job.raw), plan


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    finally:
        ray_join.abandon_early_connection()  # the job stopped before its flow started
        local_stack.abandon_early_start()  # the job was refused before it used the stack


def _run(args: argparse.Namespace, results: list[dict[str, Any]] | None = None) -> int:
    """Run the job of ``args``; its result goes to stdout, or into ``results``."""
    # Taken before the stack starts: Ray's driver prints from a thread at any time.
    with ProcessOutput(to_log=not args.verbose, quiet_for=(UnitrainError,)) as output:
        params, plan = _prepare(args, start_stack=True, say=output.say)
        folder = JobFolder(plan.job)
        # Held from here to exit: a second run of this job is refused at once.
        with folder.locked():
            try:
                with JobView(plan, folder.path / "run.log", output, verbose=args.verbose) as view:
                    # Imported first: a stack that is still starting is waited for after.
                    from unitrain.flows.train import train
                    from unitrain.runtime.prefect_server import prefect_api

                    with prefect_api():
                        view.follow()
                        result = train(**params, plugin=plan.plugin, plan=plan)
                    if results is not None:
                        results.append(result)
                    else:
                        json.dump(result, output.result, indent=2, default=str)
                        output.result.write("\n")
                        output.result.flush()
            except BaseException as error:
                code = _interruption(error)
                if not code:
                    raise
                _after_interrupt(plan, args.job, code, output.say)
                return code
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from unitrain.replay import Replay, ReplayRefused, compare_metrics

    try:
        replay = Replay.of(args.model_id)
        for change in replay.version_changes():
            print(f"note: not the version model {args.model_id} was made with: {change}",
                  file=sys.stderr)  # fmt: skip
        replay.check_dataset()
    except ReplayRefused as error:
        print(f"error: replay refused: {scrub(str(error))}", file=sys.stderr)
        return EXIT_INVALID
    name = args.name or f"replay-{args.model_id}-{time.strftime('%Y%m%dT%H%M%S')}"
    job = settings().home / "replays" / f"{encode_job_name(name)}.json"
    job.parent.mkdir(parents=True, exist_ok=True)
    job.write_text(json.dumps(replay.job(name), indent=2))
    print(f"replaying model {args.model_id} as job {name!r} ({job})", file=sys.stderr)
    results: list[dict[str, Any]] = []
    try:
        code = _run(argparse.Namespace(job=str(job), plugin=None, verbose=args.verbose), results)
    finally:
        ray_join.abandon_early_connection()
        local_stack.abandon_early_start()
    if code or not results:
        return code or EXIT_FAILED
    replayed_id = int(results[0]["model_id"])
    replayed = ModelRegistry().get(replayed_id).metrics
    verdict = compare_metrics(replay.record.metrics, replayed, args.tolerance)
    if args.json:
        print(json.dumps({
            "model_id": args.model_id, "replay_model_id": replayed_id, "job": name,
            "equal": verdict.equal, "tolerance": verdict.tolerance,
            "metrics": {n: {"recorded": a, "replayed": b, "equal": same}
                        for n, a, b, same in verdict.rows},
        }, indent=2))  # fmt: skip
    else:
        print("\n".join(verdict.lines(args.model_id, replayed_id)))
    return 0 if verdict.equal else EXIT_FAILED


def _after_interrupt(plan: JobPlan, job_file: str, code: int, say: Callable[[str], None]) -> None:
    """End what the interrupted job left running, and say how to go on."""
    from unitrain.runtime.job_run import end_leftovers

    with contextlib.suppress(Exception):  # best effort: the next run ends them too
        end_leftovers(plan.job, flow_run_id=None)
    how = (
        "finished trials are kept, the others continue from their last checkpoints"
        if plan.mode is Mode.TUNING
        else "training continues from its last checkpoint"
    )
    signal_name = "Ctrl-C" if code == EXIT_INTERRUPTED else "SIGTERM"
    say(
        f"interrupted ({signal_name}): job {plan.job!r} stopped. Run "
        f"'unitrain run {job_file}' again to resume it ({how})."
    )


def _cmd_validate(args: argparse.Namespace) -> int:
    _, plan = _prepare(args)
    from unitrain.tune.dry_run import describe

    print(json.dumps(describe(plan), indent=2, default=str))
    return 0


def _cmd_datasets_add(args: argparse.Namespace) -> int:
    entry = DatasetCatalog().add(args.source, id=args.id, name=args.name)
    print(f"dataset {entry.id} ({entry.name}) -> {entry.uri}")
    return 0


def _cmd_datasets_list(args: argparse.Namespace) -> int:
    rows = [(str(e.id), e.name, e.uri, (e.sha256 or "")[:12]) for e in DatasetCatalog().entries()]
    _table(("ID", "NAME", "URI", "SHA256"), rows)
    return 0


def _cmd_models_list(args: argparse.Namespace) -> int:
    job = encode_job_name(args.job) if args.job else None
    registry = ModelRegistry()
    # The newest (one page): a registry of any size lists as fast.
    records = registry.models(job=job, newest=args.limit + 1)
    more = len(records) > args.limit
    records = records[-args.limit :]
    # The aliases users serve by ("champion"); best-<job> is the BEST column.
    aliases: dict[int, list[str]] = {}
    for alias, model_id in sorted(registry.aliases().items()):
        if not alias.startswith(BEST_ALIAS_PREFIX):
            aliases.setdefault(model_id, []).append(alias)
    if args.json:
        listed = [asdict(r) | {"aliases": aliases.get(r.model_id, [])} for r in records]
        print(json.dumps(listed, indent=2))
        return 0
    rows = [
        (
            str(r.model_id),
            r.job,
            r.trial_id or "-",
            r.plugin,
            r.dataset,
            "★" if r.best else "",
            ", ".join(aliases.get(r.model_id, [])),
            ", ".join(f"{k}={v:.4g}" for k, v in sorted(r.metrics.items())[:4]),
        )
        for r in records
    ]
    _table(("ID", "JOB", "TRIAL", "PLUGIN", "DATASET", "BEST", "ALIASES", "METRICS"), rows)
    if more:
        print(f"(the newest {args.limit}; --limit N shows more)")
    return 0


def _cmd_jobs_list(args: argparse.Namespace) -> int:

    jobs = list_jobs(limit=args.limit)
    if args.json:
        print(json.dumps([j.as_json() for j in jobs], indent=2))
        return 0
    rows = [
        (
            j.name,
            j.mode,
            j.state,
            time.strftime("%Y-%m-%d %H:%M", time.localtime(j.started_at)),
            _duration(j.duration_s),
            ", ".join(f"{k}={v:.4g}" for k, v in sorted(j.best_metrics.items())[:2]) or "-",
            _ids(j.model_ids, more=j.more_models),
        )
        for j in jobs
    ]
    _table(("JOB", "MODE", "STATE", "STARTED", "TOOK", "BEST", "MODELS"), rows)
    return 0


def _cmd_jobs_show(args: argparse.Namespace) -> int:
    details = job_details(args.name)
    if details is None:
        raise NotFoundError(f"no job named {args.name!r} in {settings().storage_dir()}")
    if args.json:
        print(json.dumps(details, indent=2, default=str))
        return 0
    print(f"job {details['name']}: {details['mode']}, {details['state']}")
    models = _ids(details["model_ids"], more=details.get("more_models", False))
    print(f"  took {_duration(details['duration_s'])}; models {models}")
    if details["model_id"] is not None:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(details["best_metrics"].items()))
        print(
            f"  {'best' if details['mode'] == 'tuning' else 'latest'} model "
            f"{details['model_id']}: {metrics}"
        )
    if details["error"]:
        print(f"  error: {details['error']}")
    for where, url in details["links"].items():
        print(f"  {where}: {url}")
    trials = details["trials"]
    if trials:
        print()
        columns = [c for c in trials[0] if c != "trial_id"][:6]
        rows = [
            (
                ("★ " if t["trial_id"] == details.get("best_trial") else "  ") + t["trial_id"],
                *(_cell(t.get(c, "")) for c in columns),
            )
            for t in trials
        ]
        _table(("TRIAL", *(c.upper() for c in columns)), rows)
    return 0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _ids(ids: list[int], *, more: bool = False) -> str:
    count = f"{len(ids)}+" if more else str(len(ids))
    if len(ids) > 6 or more:
        return f"{', '.join(map(str, ids[:3]))}, ... {ids[-1]} ({count})"
    return ", ".join(map(str, ids)) or "-"


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cmd_plugins_list(args: argparse.Namespace) -> int:
    rows = []
    for name, target in available_plugins().items():
        try:
            description = load_plugin(name).description
        except UnitrainError as error:
            description = f"(broken: {error})"
        rows.append((name, target, description))
    _table(("NAME", "MODULE", "DESCRIPTION"), rows)
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    config = settings()
    if args.which == "mlflow":
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            "--backend-store-uri",
            config.mlflow_tracking_uri(),
            "--default-artifact-root",
            config.mlflow_artifact_root(),
            "--host",
            "127.0.0.1",
            "--port",
            str(args.port or 5000),
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(args.port or 4200),
        ]
    print("running: " + " ".join(command), file=sys.stderr)
    os.execv(sys.executable, command)
    return 0  # not reached


def _cmd_serve(args: argparse.Namespace) -> int:
    enable_local_ray_auth()  # its worker's flow runs join the local Ray

    stack = ServedStack(
        prefect_port=args.prefect_port,
        mlflow_port=args.mlflow_port,
        with_mlflow=not args.no_mlflow,
        host=args.host,
    )
    serve_forever(stack, deploy=args.deploy)
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    stopped = local_stack.stop()
    print(
        "stopped the local Prefect API and Ray"
        if stopped
        else "the local Prefect API and Ray were not running"
    )
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    api_url = settings().prefect_api_url or served_api_url()
    if not api_url:
        raise UnitrainError(
            "no Prefect server: start one with 'unitrain serve', or set PREFECT_API_URL"
        )

    env = dict(os.environ, PREFECT_API_URL=api_url)
    command = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"]
    return subprocess.run(command, env=env, cwd=PROJECT_DIR).returncode


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        print(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)
            ).rstrip()
        )


EXIT_CODES = f"""exit codes:
  0    the job finished; its result JSON is on stdout
  {EXIT_FAILED}    the job failed while running (the message says why)
  {EXIT_INVALID}    the job or the command line is invalid; nothing ran
  {EXIT_INTERRUPTED}  interrupted by Ctrl-C; run the same job again to resume it
  {EXIT_TERMINATED}  interrupted by SIGTERM; run the same job again to resume it
"""


def _version() -> str:
    try:
        return version("unitrain")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unitrain",
        description="Train and tune models from one JSON job.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"unitrain {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a train job (JSON file, or - for stdin)",
        description="Run a job: training, or a hyperparameter search when is_tune is true. "
        "The result JSON goes to stdout. On a terminal, a progress bar (and, while tuning, "
        "the best trials) is shown and the logs go to the job's log file; otherwise, or "
        "with -v, the logs go to stderr. A job that was interrupted or "
        "crashed resumes when run again under the same name.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("job", help="the job's JSON file, or - to read it from stdin")
    run.add_argument("--plugin", help="plugin to run (default: the job's, else digits_mlp)")
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="on a terminal, show the libraries' logs instead of the progress view",
    )
    run.set_defaults(handler=_cmd_run)

    validate = commands.add_parser("validate", help="check a job and show what it would run")
    validate.add_argument("job", help="the job's JSON file, or - to read it from stdin")
    validate.add_argument("--plugin")
    validate.set_defaults(handler=_cmd_validate)

    replay = commands.add_parser(
        "replay",
        help="re-run what made a model and compare its metrics with the recorded ones",
        description="Re-run the training or the trial that produced MODEL_ID from what the "
        "registry recorded (plugin, configuration and seed, dataset, checkpoint), under a new "
        "job name, and print the recorded and the replayed metrics side by side with a "
        "verdict. Refused, naming both hashes, if the dataset's content changed; a library "
        "whose version changed is named. Exit code 0: equal, 1: a metric differs.",
    )
    replay.add_argument("model_id", type=int)
    replay.add_argument("--name", help="the replay's job name (default: replay-ID-TIME)")
    replay.add_argument(
        "--tolerance", type=float, default=1e-6, help="relative tolerance (default: 1e-6)"
    )
    replay.add_argument("--json", action="store_true", help="print the comparison as JSON")
    replay.add_argument("-v", "--verbose", action="store_true", help="as for run")
    replay.set_defaults(handler=_cmd_replay)

    datasets = commands.add_parser("datasets", help="the dataset catalog").add_subparsers(
        dest="action", required=True
    )
    add = datasets.add_parser("add", help="register a local path or URI")
    add.add_argument("source")
    add.add_argument("--id", type=int, help="the ID to use (default: the next free one)")
    add.add_argument("--name", help="a unique name (default: the file name)")
    add.set_defaults(handler=_cmd_datasets_add)
    datasets.add_parser("list", help="list datasets").set_defaults(handler=_cmd_datasets_list)

    models = commands.add_parser("models", help="the model registry").add_subparsers(
        dest="action", required=True
    )
    listing = models.add_parser("list", help="list registered models")
    listing.add_argument("--job", help="only the models of this job")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument(
        "--limit", type=int, default=100, help="the newest N models (default: 100)"
    )
    listing.set_defaults(handler=_cmd_models_list)

    jobs = commands.add_parser("jobs", help="recent jobs: state, duration, best model; or one job")
    jobs.add_argument("--limit", type=int, default=20, help="how many (default: 20)")
    jobs.add_argument("--json", action="store_true", help="print JSON")
    jobs.set_defaults(handler=_cmd_jobs_list)
    jobs_actions = jobs.add_subparsers(dest="action", required=False, metavar="show NAME")
    show = jobs_actions.add_parser("show", help="one job: links, models and trial table")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_cmd_jobs_show)

    plugins = commands.add_parser("plugins", help="installed plugins").add_subparsers(
        dest="action", required=True
    )
    plugins.add_parser("list", help="list plugins").set_defaults(handler=_cmd_plugins_list)

    serve = commands.add_parser(
        "serve", help="run the Prefect server and UI, a worker and the MLflow UI until Ctrl-C"
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: loopback only; anything else is reachable from "
        "the network and is said so, with what protects it)",
    )
    serve.add_argument("--prefect-port", type=int, default=4200)
    serve.add_argument("--mlflow-port", type=int, default=5000)
    serve.add_argument("--no-mlflow", action="store_true", help="do not start the MLflow UI")
    serve.add_argument(
        "--deploy", action="store_true", help="also register prefect.yaml's deployments"
    )
    serve.set_defaults(handler=_cmd_serve)

    stop = commands.add_parser(
        "stop", help="stop the local Prefect API and Ray that jobs share (they also stop when idle)"
    )
    stop.set_defaults(handler=_cmd_stop)

    deploy = commands.add_parser("deploy", help="register prefect.yaml's deployments")
    deploy.set_defaults(handler=_cmd_deploy)

    ui = commands.add_parser("ui", help="open the Prefect or MLflow UI on this home's stores")
    ui.add_argument("which", choices=("prefect", "mlflow"))
    ui.add_argument("--port", type=int)
    ui.set_defaults(handler=_cmd_ui)

    completion = commands.add_parser(
        "completion",
        help="print shell completion: source <(unitrain completion bash)",
        description="Print a completion script. Bash: source <(unitrain completion bash), "
        "e.g. in ~/.bashrc. Zsh: run autoload -U bashcompinit && bashcompinit first.",
    )
    completion.add_argument("shell", choices=("bash", "zsh"))
    completion.set_defaults(handler=_cmd_completion)
    return parser


def _cmd_completion(args: argparse.Namespace) -> int:
    print(bash_script(_parser()), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_environment(local_ray_auth=False)  # made when a job is valid, not before

    previous = signal.getsignal(signal.SIGTERM)
    interrupts.install()
    try:
        return int(args.handler(args))
    except JobValidationError as error:
        print(f"error: {scrub(str(error))}", file=sys.stderr)
        return EXIT_INVALID
    except UnitrainError as error:
        print(f"error: {scrub(str(error))}", file=sys.stderr)
        return EXIT_FAILED
    except BaseException as error:
        code = _interruption(error)
        if not code:
            raise
        print("interrupted", file=sys.stderr)
        return code
    finally:
        signal.signal(signal.SIGTERM, previous)


def command() -> NoReturn:
    """The ``unitrain`` program: :func:`main`, then a quick exit.

    Once a command is done, with its exit handlers run and its output flushed,
    tearing down the interpreter only costs time: finalising Ray's, Prefect's
    and MLflow's modules takes about 2 s here, after every command.
    """
    exit_now(main())
    raise SystemExit(0)  # not reached


if __name__ == "__main__":
    command()
