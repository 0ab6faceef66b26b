"""`meterstream`: one command line for setting up, running and operating the billing jobs locally."""

from __future__ import annotations

import argparse
import sys


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
    from meterstream.topics import create_topics

    create_topics(args.bootstrap, args.names, partitions=args.partitions)
    print(f"topics ready: {', '.join(args.names)}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from meterstream.demo import run_demo

    return run_demo(events=args.events, parallelism=args.parallelism, keep_broker=args.keep_broker)


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
    topics.add_argument("--partitions", type=int, default=2)
    topics.add_argument("names", nargs="+")
    topics.set_defaults(func=_cmd_topics)

    sub.add_parser("billing", help="the billing job on the embedded MiniCluster (`meterstream billing --help`)")

    demo = sub.add_parser("demo", help="local broker + generated workload + the job on the MiniCluster, end to end")
    demo.add_argument("--events", type=int, default=100_000)
    demo.add_argument("--parallelism", type=int, default=2)
    demo.add_argument("--keep-broker", action="store_true", help="leave the broker running afterwards")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["billing"]:  # everything after it belongs to the job's own parser
        from jobs.billing import main as billing_main

        return billing_main(argv[1:])
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
