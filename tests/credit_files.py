"""File stand-ins for the credits topics (`credit-grants`, `spend-caps`) in job tests."""

from __future__ import annotations

from jobs.billing_sql import file_options, sql_string, with_options


def file_credit_input_ddl(table: str, *, path: str, topic: str, monitor_interval: str | None = None) -> str:
    """A stand-in for a credits topic in job tests: one record per line; a bounded file, or with `monitor_interval`
    a directory watched for new files. Its event time is fixed at the end of year 9999; like a Kafka topic's, its
    watermark does not reach the ledger (`build_credits` drops it): expiries and voids follow the usage's event time.
    """
    options = file_options(path, monitor_interval)
    return f"""CREATE TEMPORARY TABLE `{table}` (
  `payload` BYTES,
  `src_topic` AS {sql_string(topic)},
  `src_partition` AS 0,
  `src_offset` AS CAST(0 AS BIGINT),
  `kafka_ts` AS TO_TIMESTAMP_LTZ(253402300799000, 3),
  WATERMARK FOR `kafka_ts` AS `kafka_ts`
) WITH (
  {with_options(options)}
)"""
