"""`meterstream`: one command line for setting up, running and operating the billing jobs locally."""

from __future__ import annotations

import argparse
import sys

from meterstream.kafka_security import add_properties_argument, use_or_exit


def _cmd_setup(args: argparse.Namespace) -> int:
    from meterstream.jars import ensure_jars

    for profile, folder in ensure_jars().items():
        print(f"{profile:10s} jars ready in {folder}")
    return 0


def _cmd_kafka(args: argparse.Namespace) -> int:
    from meterstream import kafka_local

    if args.action == "up":
        info, started = kafka_local.up()
        print(f"Kafka {'started' if started else 'already running'}: bootstrap {info.bootstrap_servers} "
              f"(pid {info.pid}, log {info.log_file})")
    elif args.action == "down":
        print("Kafka stopped" if kafka_local.down() else "Kafka was not running")
    else:
        info = kafka_local.managed_broker()
        if info is None:
            print("Kafka: not running")
            return 3
        print(f"Kafka: running, bootstrap {info.bootstrap_servers} (pid {info.pid})")
    return 0


def _cmd_topics(args: argparse.Namespace) -> int:
    from meterstream.topics import create_topics, output_topic_configs

    names = [*args.names, *args.output]
    if not names:
        raise SystemExit("meterstream topics: name at least one topic (or --output topic)")
    use_or_exit(args.kafka_properties, what="meterstream topics")
    create_topics(args.bootstrap, names, partitions=args.partitions, configs=output_topic_configs(args.output))
    print(f"topics ready: {', '.join(names)}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from meterstream.demo import run_demo

    return run_demo(events=args.events, parallelism=args.parallelism, keep_broker=args.keep_broker)


def _cmd_produce(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from meterstream import loadgen

    use_or_exit(args.kafka_properties, what="meterstream produce")
    plan = loadgen.LoadPlan(events=args.events, duration=timedelta(seconds=args.duration_seconds),
                            customers_per_tenant=args.customers_per_tenant, runs=None if args.forever else args.runs)
    loadgen.run(args.bootstrap, plan, seed=args.seed, usage_topic=args.topic_usage_events,
                grants_topic=None if args.no_grants else args.topic_credit_grants,
                spend_caps_topic=None if args.no_grants else args.topic_spend_caps)
    return 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    from meterstream import cluster

    if args.action == "up":
        info, started = cluster.up(rest_port=args.rest_port, rpc_port=args.rpc_port, metrics_port=args.metrics_port,
                                   taskmanagers=args.taskmanagers)
        ports = ", ".join(str(p) for p in info.taskmanager_metrics_ports())
        print(f"Flink cluster {'started' if started else 'already running'}: REST {info.rest_url} "
              f"(jobmanager rpc {cluster.HOST}:{info.rpc_port}), {info.taskmanagers} TaskManager(s); Prometheus: "
              f"JobManager {info.jobmanager_metrics_url}, TaskManagers on port(s) {ports}; logs {info.home}/log")
        return 0
    if args.action == "down":
        print("Flink cluster stopped" if cluster.down() else "Flink cluster was not running")
        return 0
    address = cluster.jobmanager_address(args.jobmanager)
    try:
        state = cluster.status(address)
    except cluster.ClusterError as exc:
        print(f"Flink cluster: not answering at {address} ({exc})")
        return 3
    overview = state["overview"]
    print(f"Flink cluster: REST http://{address}, {overview.get('taskmanagers', 0)} TaskManager(s), "
          f"slots {overview.get('slots-available', 0)} free of {overview.get('slots-total', 0)}, "
          f"{len(state['running'])} running job(s)")
    for job in state["running"]:
        print(f"  {job['jid']}  {job['name']}  since {job.get('start-time')}")
    return 0


def _cmd_submit(args: argparse.Namespace) -> int:
    import shlex

    from jobs.billing import flink_conf_options
    from jobs.billing import parse_args as billing_args
    from meterstream import cluster
    from meterstream.kafka_security import is_secret_option, redact_args, secrets_in_environment

    # The job's arguments are checked here, before the cluster sees them: an unknown flag or a bad value stops with
    # the job's usage line (exit 2) instead of a failed or, worse, misconfigured submission.
    job = billing_args(args.job_args)
    # `flink run` logs the Python process's whole environment (masked only by variable name) and its command line
    # (unmasked; PythonEnvUtils, INFO, in the client log): secrets must come from a file the job reads itself.
    in_environment = secrets_in_environment()
    if in_environment:
        raise SystemExit(f"meterstream submit: {', '.join(in_environment)} set: the Flink client logs its whole "
                         "environment; put the Kafka secrets in a properties file (-- --kafka-properties FILE)")
    use_or_exit(job.kafka_properties, what="meterstream submit")  # a bad file stops here, not in the cluster
    job_args = cluster.absolute_properties_path(args.job_args)  # flink run starts the job in the project folder
    secret_conf = [key for key in flink_conf_options(job.flink_conf) if is_secret_option(key)]
    if secret_conf:
        print(f"meterstream submit: warning: --flink-conf {', '.join(secret_conf)}: the Flink client log records "
              "the job's arguments (and Flink's own log masks only some keys); set credentials in the cluster's "
              "configuration (flink-conf/config.yaml) instead", file=sys.stderr)
    jobmanager = cluster.jobmanager_address(args.jobmanager)
    job_id, cmd, _ = cluster.submit(jobmanager, job_args, parallelism=args.parallelism,
                                    from_savepoint=args.from_savepoint)
    # What we print never carries a credential's value (`--flink-conf s3.secret-key=...`).
    print(f"$ {shlex.join(redact_args(cmd))}")
    print(f"submitted job {job_id} to http://{jobmanager}")
    return 0


def _cmd_savepoint(args: argparse.Namespace) -> int:
    from meterstream import cluster

    jobmanager = cluster.jobmanager_address(args.jobmanager)
    path = cluster.savepoint(jobmanager, args.job_id, stop=args.stop, target_directory=args.target_directory)
    print(f"savepoint {path}{' (job stopped)' if args.stop else ''}")
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    from meterstream import cluster

    cluster.cancel(cluster.jobmanager_address(args.jobmanager), args.job_id)
    print(f"cancel requested for job {args.job_id}")
    return 0


def _at_least_one(text: str) -> int:
    """argparse type: an integer >= 1 (a count of things to start)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_cluster_commands(sub) -> None:
    jm_help = "REST address host:port (default: the cluster `meterstream cluster up` started, else 127.0.0.1:8081)"
    cluster = sub.add_parser("cluster", help="a standalone Flink cluster (JobManager + TaskManagers) on 127.0.0.1")
    cluster.add_argument("action", choices=["up", "down", "status"])
    cluster.add_argument("--rest-port", type=int, help="default 8081 or METERSTREAM_FLINK_REST_PORT")
    cluster.add_argument("--rpc-port", type=int, help="default 6123 or METERSTREAM_FLINK_RPC_PORT")
    cluster.add_argument("--metrics-port", type=int,
                         help="Prometheus port of the JobManager, TaskManager i's (from 0) is +1+i (default 9249 or "
                              "METERSTREAM_FLINK_METRICS_PORT)")
    cluster.add_argument("--taskmanagers", type=_at_least_one, default=1,
                         help="TaskManagers to start (up; default 1), each with taskmanager.numberOfTaskSlots slots "
                              "and taskmanager.memory.process.size of memory (flink-conf/config.yaml)")
    cluster.add_argument("--jobmanager", help=jm_help)
    cluster.set_defaults(func=_cmd_cluster)

    submit = sub.add_parser("submit", help="submit the billing job to the cluster, detached: "
                                           "meterstream submit [options] -- <billing job arguments>")
    submit.add_argument("--jobmanager", help=jm_help)
    submit.add_argument("--parallelism", type=int)
    submit.add_argument("--from-savepoint", metavar="PATH",
                        help="restore the job's state from this savepoint or retained checkpoint (flink run -s); "
                             "the parallelism may change, up to the max parallelism (128)")
    submit.add_argument("job_args", nargs="*", help="after `--`: the billing job's arguments (--bootstrap ...)")
    submit.set_defaults(func=_cmd_submit)

    savepoint = sub.add_parser("savepoint", help="trigger a savepoint (--stop: stop with a savepoint), print its path")
    savepoint.add_argument("job_id")
    savepoint.add_argument("--stop", action="store_true")
    savepoint.add_argument("--target-directory", help="default: the cluster's execution.checkpointing.savepoint-dir")
    savepoint.add_argument("--jobmanager", help=jm_help)
    savepoint.set_defaults(func=_cmd_savepoint)

    cancel = sub.add_parser("cancel", help="cancel a job (its last checkpoint is retained)")
    cancel.add_argument("job_id")
    cancel.add_argument("--jobmanager", help=jm_help)
    cancel.set_defaults(func=_cmd_cancel)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meterstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    setup = sub.add_parser("setup", help="fetch the Java jars (Kafka connector, Kafka broker) through Maven, once")
    setup.set_defaults(func=_cmd_setup)

    kafka = sub.add_parser("kafka", help="a local single-node Kafka broker (KRaft) on 127.0.0.1")
    kafka.add_argument("action", choices=["up", "down", "status"])
    kafka.set_defaults(func=_cmd_kafka)

    topics = sub.add_parser("topics", help="create topics (idempotent)")
    topics.add_argument("--bootstrap", required=True)
    add_properties_argument(topics)
    topics.add_argument("--partitions", type=int, default=2)
    topics.add_argument("names", nargs="*", help="topics to create with the broker's defaults (the job's inputs)")
    topics.add_argument("--output", nargs="+", default=[], metavar="NAME",
                        help="topics the job writes: created with message.timestamp.type=LogAppendTime (output of a "
                             "replay of old data is kept by time-based retention)")
    topics.set_defaults(func=_cmd_topics)

    sub.add_parser("billing", help="the billing job on the embedded MiniCluster (`meterstream billing --help`)")
    sub.add_parser("chaos", help="failure trials: kill the job at random points, restart from checkpoints, compare "
                                 "its outputs with a run without failures (`meterstream chaos --help`)")

    demo = sub.add_parser("demo", help="local broker + generated workload + the job on the MiniCluster, end to end")
    demo.add_argument("--events", type=int, default=100_000)
    demo.add_argument("--parallelism", type=int, default=2)
    demo.add_argument("--keep-broker", action="store_true", help="leave the broker running afterwards")
    demo.set_defaults(func=_cmd_demo)

    produce = sub.add_parser("produce", help="live demo load in real time: generated usage events (and the demo's "
                                             "credit grants) for a running billing job")
    produce.add_argument("--bootstrap", required=True)
    add_properties_argument(produce)
    produce.add_argument("--events", type=int, default=6_000, help="records per run")
    produce.add_argument("--duration-seconds", type=float, default=300,
                         help="length of a run (its event times follow the wall clock)")
    produce.add_argument("--runs", type=int, default=1)
    produce.add_argument("--forever", action="store_true", help="one run after another until stopped")
    produce.add_argument("--customers-per-tenant", type=int, default=50)
    produce.add_argument("--seed", type=int, help="default: from the start time (event ids never repeat)")
    produce.add_argument("--no-grants", action="store_true", help="usage events only")
    produce.add_argument("--topic-usage-events", default="usage-events")
    produce.add_argument("--topic-credit-grants", default="credit-grants")
    produce.add_argument("--topic-spend-caps", default="spend-caps")
    produce.set_defaults(func=_cmd_produce)
    _add_cluster_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["chaos"]:
        from meterstream.chaos import main as chaos_main

        return chaos_main(argv[1:])
    if argv[:1] == ["billing"]:  # everything after it belongs to the job's own parser
        from jobs.billing import main as billing_main

        return billing_main(argv[1:])
    if argv[:1] == ["submit"] and "--" in argv:  # the job's own options must not meet this parser
        cut = argv.index("--")
        args = build_parser().parse_args(argv[:cut])
        args.job_args = [*args.job_args, *argv[cut + 1:]]
        return args.func(args)
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
